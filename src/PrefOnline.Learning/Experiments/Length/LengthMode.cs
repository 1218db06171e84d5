namespace PrefOnline.Learning.Experiments.Length;

/// <summary>Where a length run's training samples come from.</summary>
public enum LengthMode
{
    /// <summary>A fixed dataset sampled once from the reference (for <see cref="LengthTask.Skew"/>, from the
    /// skewed distribution), as large as the online run's total sample budget: each sample is trained on in
    /// one update, like the online ones; only where the samples come from differs.</summary>
    Offline,

    /// <summary>Every update samples fresh completions from the current policy (on-policy).</summary>
    Online,
}
