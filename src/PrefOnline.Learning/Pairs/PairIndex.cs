namespace PrefOnline.Learning.Pairs;

/// <summary>One preference pair as row indices into a batch of scored samples: <see cref="Chosen"/>
/// was preferred over <see cref="Rejected"/>, by <see cref="RewardGap"/> &gt; 0 when built from rewards
/// (NaN for human pairs, which come without scores).</summary>
public readonly record struct PairIndex(int Chosen, int Rejected, double RewardGap);
