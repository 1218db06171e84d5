namespace PrefOnline.Learning.Objectives;

/// <summary>
/// RLOO advantages (Kool et al. 2019; Ahmadian et al. 2024): within each prompt's group of K samples,
/// A_i = r_i − mean_{j≠i} r_j = K/(K−1) · (r_i − mean r). Unbiased (the baseline does not depend on
/// the sample it is subtracted from) and needs no state. A group of one sample has no other sample to
/// compare with and gets A = 0: with K = 1 use <see cref="MovingAverageBaseline"/>.
/// </summary>
public static class LeaveOneOutBaseline
{
    /// <param name="rewards">One reward per sample (finite).</param>
    /// <param name="groups">The prompt group of each sample; groups need not be contiguous.</param>
    public static double[] Advantages(IReadOnlyList<double> rewards, IReadOnlyList<int> groups)
    {
        ArgumentNullException.ThrowIfNull(rewards);
        ArgumentNullException.ThrowIfNull(groups);
        if (rewards.Count != groups.Count)
            throw new ArgumentException($"{rewards.Count} rewards but {groups.Count} group ids", nameof(groups));
        var sums = new Dictionary<int, (double Sum, int Count)>();
        for (var i = 0; i < rewards.Count; i++)
        {
            if (!double.IsFinite(rewards[i])) throw new ArgumentException($"reward {i} is {rewards[i]}; rewards must be finite", nameof(rewards));
            sums.TryGetValue(groups[i], out var s);
            sums[groups[i]] = (s.Sum + rewards[i], s.Count + 1);
        }
        var advantages = new double[rewards.Count];
        for (var i = 0; i < rewards.Count; i++)
        {
            var (sum, count) = sums[groups[i]];
            advantages[i] = count < 2 ? 0 : rewards[i] - (sum - rewards[i]) / (count - 1);
        }
        return advantages;
    }
}
