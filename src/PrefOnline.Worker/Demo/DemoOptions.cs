using PrefOnline.Learning.Configuration;
using PrefOnline.Worker.Hosting;

namespace PrefOnline.Worker.Demo;

/// <summary>
/// Configuration section <c>Demo</c>: what <c>prefonline run</c> does when no Kafka is configured — the embedded
/// transport, simulated users (<see cref="Users"/>), an initial policy fitted on a synthetic corpus
/// (<see cref="Policy"/>), a live console, and a report (reward curve SVG and summary) on exit.
/// </summary>
public sealed class DemoOptions : IValidatedOptions
{
    public const string SectionName = "Demo";

    /// <summary>How long the demo runs when <c>--duration</c> / <c>Worker:Duration</c> is not given. 00:00:00 = until Ctrl-C.</summary>
    public TimeSpan Duration { get; set; } = TimeSpan.FromMinutes(4);

    /// <summary>Where the report goes (reward-curve.svg, summary.json); relative to the working directory.</summary>
    public string OutputDirectory { get; set; } = "prefonline-demo";

    /// <summary>How often the console prints a progress line.</summary>
    public TimeSpan ConsoleInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Show progress lines on the console (the report is written either way).</summary>
    public bool Console { get; set; } = true;

    /// <summary>Partitions of each embedded topic.</summary>
    public int Partitions { get; set; } = 2;

    /// <summary>Records each embedded partition holds (older ones every reader has read are dropped).</summary>
    public int PartitionCapacity { get; set; } = 10_000;

    public DemoUsersOptions Users { get; set; } = new();

    public DemoPolicyOptions Policy { get; set; } = new();

    public IReadOnlyList<string> Problems()
    {
        var p = new ProblemList(SectionName);
        p.Duration(nameof(Duration), Duration, TimeSpan.Zero, TimeSpan.FromDays(365));
        if (string.IsNullOrWhiteSpace(OutputDirectory)) p.Add(nameof(OutputDirectory), $"must name a directory");
        p.Duration(nameof(ConsoleInterval), ConsoleInterval, TimeSpan.FromSeconds(1), TimeSpan.FromHours(1));
        p.Range(nameof(Partitions), Partitions, 1, 256);
        p.Range(nameof(PartitionCapacity), PartitionCapacity, 100, 10_000_000);
        foreach (var problem in (Users ?? new DemoUsersOptions()).Problems($"{SectionName}:Users")) p.AddRaw(problem);
        foreach (var problem in (Policy ?? new DemoPolicyOptions()).Problems($"{SectionName}:Policy")) p.AddRaw(problem);
        return p.Items;
    }
}
