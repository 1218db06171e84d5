namespace PrefOnline.Learning.TrainingData;

/// <summary>Where a preference pair came from.</summary>
public enum PairSource : byte
{
    /// <summary>A person's judgement (prefonline.preference.v1).</summary>
    Human = 0,

    /// <summary>Built on-policy from K scored samples of one prompt (see Pairs.PairBuilder).</summary>
    OnPolicy = 1,
}
