using PrefOnline.Learning.Configuration;
using PrefOnline.Worker.Hosting;

namespace PrefOnline.Worker.Pipeline;

/// <summary>Configuration section <c>Feedback</c>: how labels (preference pairs, ratings) flow into the state.</summary>
public sealed class FeedbackOptions : IValidatedOptions
{
    public const string SectionName = "Feedback";

    /// <summary>Validated labels buffered before absorption (bounded: a busy tensor thread stops the feedback consumer).</summary>
    public int QueueCapacity { get; set; } = 512;

    /// <summary>Most labels absorbed in one step on the tensor thread (their pairs are scored by the reward model in one forward).</summary>
    public int MaxBatch { get; set; } = 64;

    public IReadOnlyList<string> Problems()
    {
        var p = new ProblemList(SectionName);
        p.Range(nameof(QueueCapacity), QueueCapacity, 1, 1_000_000);
        p.Range(nameof(MaxBatch), MaxBatch, 1, 10_000);
        return p.Items;
    }
}
