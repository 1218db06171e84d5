using PrefOnline.Learning.Randomness;
using PrefOnline.Learning.Sampling;

namespace PrefOnline.Learning.Tests.Sampling;

/// <summary>
/// The sampling rule every decoder backend shares, on hand-made logits: greedy and its ties, top-k,
/// top-p and temperature against their closed forms (which ids can appear, the sampler's log-probability
/// of each, empirical frequencies), suppressed ids, non-finite logits and seed reproducibility.
/// </summary>
public sealed class SamplingRuleTests
{
    // Probabilities 0.5, 0.3, 0.15, 0.05 (logits = their logs).
    private static readonly float[] Logits = [MathF.Log(0.5f), MathF.Log(0.3f), MathF.Log(0.15f), MathF.Log(0.05f)];

    private static SamplingRule.Scratch Scratch(params int[] suppressed)
    {
        var scratch = new SamplingRule.Scratch(Logits.Length);
        scratch.Suppress(suppressed);
        return scratch;
    }

    private static Dictionary<int, (int Count, float SamplerLogProb, float PolicyLogProb)> Draw(SamplingSettings settings, int draws, SamplingRule.Scratch scratch, ulong seed = 1)
    {
        var random = new Xoshiro256StarStar(seed);
        var seen = new Dictionary<int, (int, float, float)>();
        for (var i = 0; i < draws; i++)
        {
            var s = SamplingRule.Sample(Logits, settings, random, scratch)!.Value;
            seen[s.Token] = (seen.TryGetValue(s.Token, out var c) ? c.Item1 + 1 : 1, s.SamplerLogProb, s.PolicyLogProb);
        }
        return seen;
    }

    [Fact]
    public void Greedy_takes_the_argmax_lower_id_on_ties_with_a_zero_sampler_log_prob()
    {
        var s = SamplingRule.Sample(Logits, new SamplingSettings(0, 0, 1), new Xoshiro256StarStar(1), Scratch())!.Value;
        Assert.Equal(0, s.Token);
        Assert.Equal(MathF.Log(0.5f), s.PolicyLogProb, 5);
        Assert.Equal(0f, s.SamplerLogProb);
        float[] tied = [1f, 3f, 3f, 0f];
        Assert.Equal(1, SamplingRule.Sample(tied, new SamplingSettings(1, 1, 1), new Xoshiro256StarStar(1), Scratch())!.Value.Token);  // top-k 1 is greedy
    }

    [Fact]
    public void Top_k_samples_only_the_k_most_likely_renormalised()
    {
        var seen = Draw(new SamplingSettings(1, 2, 1), 20_000, Scratch());
        Assert.Equal([0, 1], seen.Keys.Order());
        Assert.Equal(Math.Log(0.5 / 0.8), seen[0].SamplerLogProb, 5);
        Assert.Equal(Math.Log(0.3 / 0.8), seen[1].SamplerLogProb, 5);
        Assert.Equal(Math.Log(0.3), seen[1].PolicyLogProb, 5);       // the policy's own, untruncated
        Assert.InRange(seen[0].Count / 20_000.0, 0.625 - 0.02, 0.625 + 0.02);
    }

    [Fact]
    public void Top_p_keeps_the_smallest_head_reaching_p()
    {
        // 0.5 < 0.75 ≤ 0.5 + 0.3: the nucleus is {0, 1}; p = 0.95 needs {0, 1, 2}.
        var seen = Draw(new SamplingSettings(1, 0, 0.75), 20_000, Scratch());
        Assert.Equal([0, 1], seen.Keys.Order());
        Assert.Equal(Math.Log(0.3 / 0.8), seen[1].SamplerLogProb, 5);
        var wider = Draw(new SamplingSettings(1, 0, 0.95), 20_000, Scratch());
        Assert.Equal([0, 1, 2], wider.Keys.Order());
        Assert.Equal(Math.Log(0.15 / 0.95), wider[2].SamplerLogProb, 4);
        Assert.InRange(wider[2].Count / 20_000.0, 0.158 - 0.015, 0.158 + 0.015);
    }

    [Fact]
    public void Temperature_flattens_the_distribution_as_softmax_of_logits_over_t()
    {
        var seen = Draw(new SamplingSettings(2, 0, 1), 40_000, Scratch());
        var tempered = Logits.Select(l => Math.Exp(l / 2.0)).ToArray();
        var total = tempered.Sum();
        for (var i = 0; i < Logits.Length; i++)
        {
            Assert.Equal(Math.Log(tempered[i] / total), seen[i].SamplerLogProb, 5);
            Assert.Equal(Logits[i], seen[i].PolicyLogProb, 5);        // log softmax at temperature 1 = the logits here
            Assert.InRange(seen[i].Count / 40_000.0, tempered[i] / total - 0.015, tempered[i] / total + 0.015);
        }
    }

    [Fact]
    public void A_suppressed_id_is_never_sampled_but_its_mass_stays_in_the_policy_log_prob()
    {
        var seen = Draw(new SamplingSettings(1, 0, 1), 5_000, Scratch(0));
        Assert.DoesNotContain(0, seen.Keys);
        Assert.Equal(Math.Log(0.3), seen[1].PolicyLogProb, 5);                     // out of all four
        Assert.Equal(Math.Log(0.3 / 0.5), seen[1].SamplerLogProb, 5);              // out of the three left
        var greedy = SamplingRule.Sample(Logits, new SamplingSettings(0, 0, 1), new Xoshiro256StarStar(1), Scratch(0))!.Value;
        Assert.Equal(1, greedy.Token);
    }

    [Fact]
    public void Non_finite_logits_give_no_token_and_the_same_seed_gives_the_same_tokens()
    {
        Assert.Null(SamplingRule.Sample([0f, float.NaN, 1f], new SamplingSettings(1, 0, 1), new Xoshiro256StarStar(1), new SamplingRule.Scratch(3)));
        Assert.Null(SamplingRule.Sample([0f, float.PositiveInfinity, 1f], new SamplingSettings(1, 0, 1), new Xoshiro256StarStar(1), new SamplingRule.Scratch(3)));
        int[] Tokens(ulong seed)
        {
            var random = new Xoshiro256StarStar(seed);
            return Enumerable.Range(0, 50).Select(_ => SamplingRule.Sample(Logits, new SamplingSettings(1.3, 3, 0.9), random, Scratch())!.Value.Token).ToArray();
        }
        Assert.Equal(Tokens(5), Tokens(5));
        Assert.NotEqual(Tokens(5), Tokens(6));
    }
}
