namespace PrefOnline.Learning.Experiments.Bandit;

/// <summary>Where the bandit's training data comes from.</summary>
public enum BanditMode
{
    /// <summary>One batch sampled from the reference policy, reused for all T steps.</summary>
    Offline,

    /// <summary>A fresh batch from the current policy every epoch (the first from the reference, as in
    /// the official code), T steps on each.</summary>
    OnPolicy,
}
