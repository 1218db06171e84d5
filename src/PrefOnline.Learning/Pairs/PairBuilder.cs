using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Pairs;

/// <summary>
/// Builds preference pairs on-policy from K scored samples per prompt, or passes human pairs through.
/// Deterministic: within a prompt the samples are ranked by reward, highest first, exact ties broken
/// by batch position (earlier first); "best" is the first of that ranking, "worst" the last. Output is
/// ordered by prompt group (in order of first appearance), then by rank of the chosen, then of the
/// rejected sample, so the same scores always give the same pairs in the same order.
/// </summary>
public sealed class PairBuilder
{
    public PairBuilder(PairingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
    }

    public PairingOptions Options { get; }

    /// <param name="rewards">Reward of each sample; must be finite (a NaN would make every ranking arbitrary).</param>
    /// <param name="groups">Prompt group of each sample; groups need not be contiguous.</param>
    public IReadOnlyList<(int Chosen, int Rejected)> Build(IReadOnlyList<double> rewards, IReadOnlyList<int> groups)
    {
        ArgumentNullException.ThrowIfNull(rewards);
        ArgumentNullException.ThrowIfNull(groups);
        if (rewards.Count != groups.Count) throw new ArgumentException($"{rewards.Count} rewards but {groups.Count} group ids", nameof(groups));
        for (var i = 0; i < rewards.Count; i++)
            if (!double.IsFinite(rewards[i])) throw new ArgumentException($"reward of sample {i} is {rewards[i]}; rewards must be finite", nameof(rewards));

        var members = new Dictionary<int, List<int>>();
        var order = new List<int>();
        for (var i = 0; i < groups.Count; i++)
        {
            if (!members.TryGetValue(groups[i], out var list))
            {
                members[groups[i]] = list = new List<int>();
                order.Add(groups[i]);
            }
            list.Add(i);
        }

        var pairs = new List<(int Chosen, int Rejected)>();
        foreach (var group in order)
        {
            var ranked = members[group];
            // Stable: List.Sort is not, so ties are broken explicitly by index.
            ranked.Sort((a, b) => rewards[a] != rewards[b] ? rewards[b].CompareTo(rewards[a]) : a.CompareTo(b));
            if (Options.Mode == PairingMode.BestVsWorst)
            {
                if (ranked.Count >= 2) TryAdd(pairs, rewards, ranked[0], ranked[^1]);
                continue;
            }
            for (var i = 0; i < ranked.Count - 1; i++)
            for (var j = i + 1; j < ranked.Count; j++)
                TryAdd(pairs, rewards, ranked[i], ranked[j]);
        }
        return pairs;
    }

    private void TryAdd(List<(int Chosen, int Rejected)> pairs, IReadOnlyList<double> rewards, int chosen, int rejected)
    {
        var gap = rewards[chosen] - rewards[rejected];
        if (gap > 0 && gap >= Options.MinRewardGap) pairs.Add((chosen, rejected));
    }

    /// <summary>
    /// Human pairs passed straight through: the learner lays out pair k's chosen response at row 2k and
    /// its rejected one at row 2k + 1 of the batch, and these are the pairs over that layout.
    /// </summary>
    public static IReadOnlyList<(int Chosen, int Rejected)> Interleaved(int pairCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(pairCount);
        var pairs = new (int Chosen, int Rejected)[pairCount];
        for (var k = 0; k < pairCount; k++) pairs[k] = (2 * k, 2 * k + 1);
        return pairs;
    }

    /// <summary>The (P, 2) int64 tensor <see cref="Objectives.ObjectiveInputs.Pairs"/> expects.</summary>
    public static Tensor ToTensor(IReadOnlyList<(int Chosen, int Rejected)> pairs)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        var flat = new long[pairs.Count * 2];
        for (var k = 0; k < pairs.Count; k++)
        {
            flat[2 * k] = pairs[k].Chosen;
            flat[2 * k + 1] = pairs[k].Rejected;
        }
        return tensor(flat, [pairs.Count, 2]);
    }
}
