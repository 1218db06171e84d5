using PrefOnline.Learning.Pairs;
using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Tests.Pairs;

public sealed class PairBuilderTests
{
    private static PairBuilder Builder(PairingMode mode, double gap = 0) => new(new PairingOptions { Mode = mode, MinRewardGap = gap });

    [Fact]
    public void Best_vs_worst_gives_one_pair_per_group_with_deterministic_ties()
    {
        // Group 0: rows 0..3 with rewards 0.5, 0.9, 0.9, 0.1 → best = row 1 (tie with 2, earlier wins), worst = row 3.
        // Group 1: rows 4..5, both 0.3 → a tie carries no preference: no pair.
        // Group 2: rows 6, 8 (not contiguous) 0.2, 0.7 → (8, 6).
        var pairs = Builder(PairingMode.BestVsWorst).Build([0.5, 0.9, 0.9, 0.1, 0.3, 0.3, 0.2, 1.0, 0.7], [0, 0, 0, 0, 1, 1, 2, 3, 2]);
        Assert.Equal([(1, 3), (8, 6)], pairs);
    }

    [Fact]
    public void Worst_tie_goes_to_the_later_sample()
    {
        // Ranking: 0.9 (row 0), then 0.1 (row 1), 0.1 (row 2): the last of the ranking is row 2.
        Assert.Equal((0, 2), Builder(PairingMode.BestVsWorst).Build([0.9, 0.1, 0.1], [5, 5, 5]).Single());
    }

    [Fact]
    public void All_pairs_is_every_strictly_ordered_pair_above_the_gap()
    {
        var rewards = new double[] { 0.1, 0.4, 0.3, 0.8 };
        var all = Builder(PairingMode.AllPairs).Build(rewards, [0, 0, 0, 0]);
        Assert.Equal(6, all.Count);                                                 // K(K−1)/2 when no ties
        Assert.All(all, p => Assert.True(rewards[p.Chosen] > rewards[p.Rejected]));
        // Ranked 3, 1, 2, 0 → pairs in rank order.
        Assert.Equal([(3, 1), (3, 2), (3, 0), (1, 2), (1, 0), (2, 0)], all.Select(p => (p.Chosen, p.Rejected)));

        var gapped = Builder(PairingMode.AllPairs, gap: 0.25).Build(rewards, [0, 0, 0, 0]);
        Assert.Equal([(3, 1), (3, 2), (3, 0), (1, 0)], gapped.Select(p => (p.Chosen, p.Rejected)));
        Assert.Empty(Builder(PairingMode.AllPairs).Build([0.5, 0.5, 0.5], [0, 0, 0]));
    }

    [Fact]
    public void Minimum_gap_also_filters_best_vs_worst()
    {
        Assert.Empty(Builder(PairingMode.BestVsWorst, gap: 0.5).Build([0.1, 0.4], [0, 0]));
        Assert.Single(Builder(PairingMode.BestVsWorst, gap: 0.3).Build([0.1, 0.4], [0, 0]));   // ≥, not >
    }

    [Fact]
    public void Same_scores_always_give_the_same_pairs()
    {
        var rng = new Random(5);
        var rewards = Enumerable.Range(0, 60).Select(_ => Math.Round(rng.NextDouble(), 1)).ToArray();   // many ties
        var groups = Enumerable.Range(0, 60).Select(i => (i * 7) % 6).ToArray();
        var first = Builder(PairingMode.AllPairs).Build(rewards, groups);
        var second = Builder(PairingMode.AllPairs).Build(rewards.ToArray(), groups.ToArray());
        Assert.Equal(first, second);
    }

    [Fact]
    public void Bad_input_is_rejected()
    {
        Assert.Throws<ArgumentException>(() => Builder(PairingMode.AllPairs).Build([0.1, double.NaN], [0, 0]));
        Assert.Throws<ArgumentException>(() => Builder(PairingMode.AllPairs).Build([0.1], [0, 0]));
        Assert.Throws<ArgumentOutOfRangeException>(() => Builder(PairingMode.AllPairs, gap: -1));
        Assert.Throws<ArgumentException>(() => new PairBuilder(new PairingOptions { Mode = (PairingMode)7 }));
    }

    [Fact]
    public void Human_pairs_pass_through_interleaved_and_convert_to_a_tensor()
    {
        var pairs = PairBuilder.Interleaved(3);
        Assert.Equal([(0, 1), (2, 3), (4, 5)], pairs.Select(p => (p.Chosen, p.Rejected)));
        using var scope = NewDisposeScope();
        var t = PairBuilder.ToTensor(pairs);
        Assert.Equal(new long[] { 3, 2 }, t.shape);
        Assert.Equal(ScalarType.Int64, t.dtype);
        Assert.Equal(new long[] { 0, 1, 2, 3, 4, 5 }, t.data<long>().ToArray());
        Assert.Equal(new long[] { 0, 2 }, PairBuilder.ToTensor([]).shape);
    }
}
