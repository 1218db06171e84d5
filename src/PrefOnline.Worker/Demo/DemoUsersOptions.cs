using PrefOnline.Streaming.Simulation;
using PrefOnline.Worker.Hosting;

namespace PrefOnline.Worker.Demo;

/// <summary>
/// <c>Demo:Users</c>: the simulated user population of the embedded demo (PrefOnline.Streaming's
/// <see cref="SimulatedUsers"/>): prompt rate, the hidden preference that decides their labels, label noise,
/// and an optional preference shift (drift) after a time or a number of labels.
/// </summary>
public sealed class DemoUsersOptions
{
    /// <summary>length:N[:charsPerNat] (default length:4: answers of 4 letters, 4 letters per nat), shorter[:charsPerNat], longer[:charsPerNat], contains:PATTERN or avoids:PATTERN.</summary>
    public string Preference { get; set; } = HiddenPreferences.DefaultSpec;

    /// <summary>The preference after a shift (default: the reverse of <see cref="Preference"/>).</summary>
    public string? ShiftedPreference { get; set; }

    /// <summary>Shift the preference this long after the users start (drift; unset: never by time).</summary>
    public TimeSpan? ShiftAfter { get; set; }

    /// <summary>Shift the preference after this many labels (unset: never by count).</summary>
    public long? ShiftAfterLabels { get; set; }

    /// <summary>Prompts the simulated users send per second.</summary>
    public double PromptsPerSecond { get; set; } = 8;

    /// <summary>Pairs (default), Ratings or Both.</summary>
    public LabelMode LabelMode { get; set; } = LabelMode.Pairs;

    /// <summary>Bradley–Terry temperature of the users' choices, nats (0: always the better one).</summary>
    public double Temperature { get; set; } = 0.5;

    /// <summary>Probability that a pair label is flipped after the choice (careless clicks).</summary>
    public double FlipProbability { get; set; }

    /// <summary>Gaussian noise on ratings, nats.</summary>
    public double RatingNoiseStd { get; set; } = 0.5;

    /// <summary>Share of prompts whose rollouts get labeled.</summary>
    public double LabelFraction { get; set; } = 1.0;

    /// <summary>Preference pairs per labeled group of K rollouts.</summary>
    public int PairsPerGroup { get; set; } = 2;

    /// <summary>Human latency before labels are sent.</summary>
    public TimeSpan LabelDelay { get; set; } = TimeSpan.Zero;

    /// <summary>A group with fewer than K rollouts is labeled anyway after this long.</summary>
    public TimeSpan GroupTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Seed of the users' prompts, choices and noise.</summary>
    public int Seed { get; set; } = 1234;

    /// <summary>Stop producing prompts after this many (unset: never).</summary>
    public long? MaxPrompts { get; set; }

    /// <summary>The prompts users ask (unset: a built-in list of short everyday questions).</summary>
    public List<string>? Prompts { get; set; }

    /// <summary>Id of this simulated run inside every id (unset: the start time): fixed for reproducible records.</summary>
    public string? RunId { get; set; }

    public SimulatedUsersOptions ToSimulation(string promptsTopic, string feedbackTopic, int groupSize) => new()
    {
        Seed = Seed,
        PromptsTopic = promptsTopic,
        FeedbackTopic = feedbackTopic,
        RunId = RunId,
        PromptsPerSecond = PromptsPerSecond,
        MaxPrompts = MaxPrompts,
        Prompts = Prompts is { Count: > 0 } custom ? custom.ToList() : new List<string>(SimulatedUsersOptions.DefaultPrompts),
        Preference = Preference,
        ShiftedPreference = ShiftedPreference,
        ShiftAfter = ShiftAfter,
        ShiftAfterLabels = ShiftAfterLabels,
        LabelMode = LabelMode,
        Temperature = Temperature,
        FlipProbability = FlipProbability,
        RatingNoiseStd = RatingNoiseStd,
        LabelFraction = LabelFraction,
        GroupSize = groupSize,
        GroupTimeout = GroupTimeout,
        PairsPerGroup = PairsPerGroup,
        LabelDelay = LabelDelay,
    };

    public IReadOnlyList<string> Problems(string prefix) =>
        ToSimulation("prefonline.prompts", "prefonline.feedback", 4).Problems().Select(p => $"{prefix}:{p}").ToList(); // each problem starts with its key
}
