namespace PrefOnline.Learning.Pairs;

/// <summary>Pair-building settings, validated when a <see cref="PairBuilder"/> is made.</summary>
public sealed record PairingOptions
{
    public PairingMode Mode { get; init; } = PairingMode.BestVsWorst;

    /// <summary>
    /// A pair is built only when r(chosen) − r(rejected) ≥ this (the paper's bandit code skips pairs
    /// closer than its reward_threshold, 0.2 for offline IPO). Exact ties never make a pair, whatever the
    /// gap: they carry no preference, and a tie "winner" would be an arbitrary choice the loss then
    /// trusts. In <see cref="PairingMode.BestVsWorst"/> the single pair is dropped when its gap is short.
    /// </summary>
    public double MinRewardGap { get; init; }

    public void Validate()
    {
        if (!Enum.IsDefined(Mode)) throw new ArgumentException($"unknown pairing mode {(int)Mode}; valid: {string.Join(", ", Enum.GetNames<PairingMode>())}", nameof(Mode));
        if (!(MinRewardGap >= 0) || double.IsInfinity(MinRewardGap))
            throw new ArgumentOutOfRangeException(nameof(MinRewardGap), MinRewardGap, "the minimum reward gap must be a finite number ≥ 0");
    }
}
