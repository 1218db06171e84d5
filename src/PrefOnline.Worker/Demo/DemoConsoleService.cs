using System.Globalization;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using PrefOnline.Learning.Sampling;
using PrefOnline.Streaming.Simulation;
using PrefOnline.Worker.Hosting;
using PrefOnline.Worker.Pipeline;

namespace PrefOnline.Worker.Demo;

/// <summary>
/// The embedded demo's console and report. Once the learner runs it shows a few sample completions of the
/// starting policy, then a progress line every <see cref="DemoOptions.ConsoleInterval"/>: policy version, the
/// simulated users' hidden utility of the latest rollouts (the ground truth of "better"), KL to the
/// reference, labels per second, updates. On stop (before the pipeline's final checkpoint) it shows samples
/// of the final policy and writes <c>reward-curve.svg</c> and <c>summary.json</c> to <see cref="DemoOptions.OutputDirectory"/>.
/// </summary>
public sealed class DemoConsoleService(
    WorkerSettings settings,
    DemoUsersService usersService,
    LearnerPipeline pipeline,
    PipelineStatus status,
    Microsoft.AspNetCore.Hosting.Server.IServer server,
    ILogger<DemoConsoleService> logger,
    TimeProvider time) : BackgroundService
{
    private static readonly TimeSpan SampleEvery = TimeSpan.FromSeconds(2);
    private readonly List<DemoProgressPoint> points = [];
    private IReadOnlyList<DemoSample> before = [];
    private long firstVersion = -1;

    /// <summary>The report written on stop (null before).</summary>
    public DemoSummary? Summary { get; private set; }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            while (!status.Running) await Task.Delay(TimeSpan.FromMilliseconds(100), time, stoppingToken).ConfigureAwait(false);
            firstVersion = status.PolicyVersion;
            before = await SampleAsync(stoppingToken).ConfigureAwait(false);
            if (settings.Demo.Console)
            {
                var preference = usersService.Users?.CurrentPreference ?? HiddenPreferences.Parse(settings.Demo.Users.Preference);
                Console.WriteLine();
                Console.WriteLine($"PrefOnline demo: simulated users prefer {preference.Description}; learning from their labels online ({settings.Learner.Objective}, K={settings.Generation.SamplesPerPrompt}).");
                var address = server.Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()?.Addresses.FirstOrDefault() ?? $"http://{settings.Observability.BindAddress}:{settings.Observability.Port}";
                var report = Path.GetFullPath(settings.Demo.OutputDirectory);
                Console.WriteLine($"Metrics: {address}/metrics   Report on exit and log: {report} ({DemoLogFile.FileName})   Ctrl-C stops early.");
                PrintSamples($"Samples of the starting policy v{firstVersion}:", before);
                Console.WriteLine();
                foreach (var line in Legend) Console.WriteLine(line);
                Console.WriteLine("  time  policy  users' reward (start)   KL ref  labels/s  updates  replay  guardrail");
            }
            var lastPrint = time.GetTimestamp();
            long lastLabels = 0;
            var lastLabelTime = time.GetTimestamp();
            using var timer = new PeriodicTimer(SampleEvery, time);
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                var point = Record();
                if (!settings.Demo.Console || time.GetElapsedTime(lastPrint) < settings.Demo.ConsoleInterval) continue;
                var elapsed = time.GetElapsedTime(lastLabelTime).TotalSeconds;
                var rate = elapsed > 0 ? (point.Labels - lastLabels) / elapsed : 0;
                lastLabels = point.Labels;
                lastLabelTime = time.GetTimestamp();
                lastPrint = time.GetTimestamp();
                var start = StartReward();
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{Clock(point.Seconds),6}  v{point.PolicyVersion,-6} {Format(point.UsersReward),8} ({Format(start)})   {Format(point.Kl),7}  {rate,8:0.0}  {point.Updates,7}  {pipeline.State?.Replay.Count ?? 0,6}  {Guardrail()}"));
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        if (firstVersion < 0) return; // never ran
        Record();
        IReadOnlyList<DemoSample> after = [];
        try
        {
            after = await SampleAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ObjectDisposedException or OperationCanceledException or InvalidOperationException)
        {
            logger.LogWarning("Could not sample the final policy: {Error}", e.Message);
        }
        var users = usersService.Users?.GetStatistics();
        Summary = DemoSummary.Create(settings, status, users, firstVersion, points, before, after);
        var files = DemoReport.Write(settings.Demo.OutputDirectory, Summary, points, status.Updates);
        if (settings.Demo.Console)
        {
            PrintBeforeAfter(firstVersion, before, status.PolicyVersion, after);
            Console.WriteLine(DemoReport.Format(Summary));
            foreach (var file in files) Console.WriteLine($"  wrote {file}");
        }
    }

    private DemoProgressPoint Record()
    {
        var users = usersService.Users?.GetStatistics();
        var updates = status.Updates;
        var point = new DemoProgressPoint(status.RunningSeconds, status.PolicyVersion, users?.RecentMeanUtility, updates.Count > 0 ? updates[^1].Kl : null, status.LabelsAbsorbed, updates.Count);
        lock (points) points.Add(point);
        return point;
    }

    private double? StartReward()
    {
        var users = usersService.Users?.GetStatistics();
        return users is not null && users.UtilityByPolicyVersion.TryGetValue(firstVersion, out var summary) ? summary.Mean : null;
    }

    private string Guardrail() => pipeline.State is null ? "restarting" : status.Rollbacks.Count > 0 ? $"{status.Rollbacks.Count} rollback(s)" : "ok";

    /// <summary>Three prompts, one seeded sample each, from the current policy, with the users' hidden utility.</summary>
    private async Task<IReadOnlyList<DemoSample>> SampleAsync(CancellationToken cancellationToken)
    {
        var options = usersService.Options();
        var prompts = options.Prompts.Take(3).ToList();
        var preference = usersService.Users?.CurrentPreference ?? HiddenPreferences.Parse(options.Preference);
        var sampling = settings.Generation.ToSamplingOptions(20240601) with { SamplesPerPrompt = 1 };
        // Through the running epoch's learning loop, the one caller of the learning state: none while the pipeline restarts.
        IReadOnlyList<SampledCompletion> completions = pipeline.Epoch?.Loop is { } loop ? await loop.SampleAsync(prompts, sampling, cancellationToken).ConfigureAwait(false) : [];
        return completions.Select((c, i) => new DemoSample(prompts[i], c.Text, preference.Utility(prompts[i], c.Text))).ToList();
    }

    /// <summary>What the table's numbers are: the users' reward is the ground truth the demo can see because it
    /// simulates the users; the worker itself never sees it — it learns from labels and its reward model, whose
    /// scores (on their own scale) are what its log calls the training reward.</summary>
    public static readonly IReadOnlyList<string> Legend =
    [
        "users' reward: the simulated users' hidden utility of the latest rollouts, in nats (higher is better; in brackets: the",
        "               starting policy's). It is the ground truth the worker never sees: it learns from the users' labels, and",
        "               its log (worker.log) reports the \"training reward\" of each update: labels or the reward model's score, another scale.",
        "KL ref:        KL(policy || reference) of the last update, nats per sequence: how far the leash is stretched.",
    ];

    /// <summary>The same prompts and seeds before and after, side by side, with the users' utility of each.</summary>
    private static void PrintBeforeAfter(long firstVersion, IReadOnlyList<DemoSample> before, long lastVersion, IReadOnlyList<DemoSample> after)
    {
        Console.WriteLine($"Before (v{firstVersion}) and after (v{lastVersion}), same prompts and seeds:");
        for (var i = 0; i < before.Count; i++)
        {
            var b = before[i];
            var afterText = i < after.Count ? string.Create(CultureInfo.InvariantCulture, $"{Quote(after[i].Completion)} ({after[i].Utility:0.00})") : "(not sampled)";
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {Quote(b.Prompt)}  {Quote(b.Completion)} ({b.Utility:0.00})  ->  {afterText}"));
        }
    }

    private static void PrintSamples(string heading, IReadOnlyList<DemoSample> samples)
    {
        Console.WriteLine(heading);
        foreach (var s in samples)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {Quote(s.Prompt)} -> {Quote(s.Completion)}  (users' utility {s.Utility:0.00})"));
    }

    private static string Quote(string text) => "\"" + text.Replace("\n", "\\n", StringComparison.Ordinal) + "\"";

    private static string Clock(double seconds) => $"{(int)(seconds / 60)}:{(int)(seconds % 60):00}";

    private static string Format(double? value) => value is { } v ? v.ToString("0.000", CultureInfo.InvariantCulture) : "–";
}
