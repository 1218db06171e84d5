using PrefOnline.Learning.Objectives;
using PrefOnline.Learning.Tokenization;
using PrefOnline.Learning.Models;
using PrefOnline.Learning.Models.Checkpoints;
using PrefOnline.Learning.Models.LogProbs;
using TorchSharp;
using static TorchSharp.torch;
using static PrefOnline.Learning.Tests.Models.ModelTestSupport;

namespace PrefOnline.Learning.Tests.Models;

public sealed class LogProbTests
{
    private const int Pad = 257;

    [Fact]
    public void A_rows_logprobs_do_not_change_when_batched_with_longer_rows()
    {
        using var model = PolicyModel.Create(Micro(), 2);
        var random = new Random(1);
        var row = (RandomTokens(random, 3), RandomTokens(random, 4));
        var longer = (RandomTokens(random, 20), RandomTokens(random, 30));
        var other = (RandomTokens(random, 9), RandomTokens(random, 1));
        using var alone = SequenceBatch.FromTokens([row], 64, Pad);
        using var batched = SequenceBatch.FromTokens([longer, row, other], 64, Pad);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var a = SequenceLogProbs.Compute(model, alone, LogProbReduction.Sum);
        var b = SequenceLogProbs.Compute(model, batched, LogProbReduction.Sum);
        Assert.Equal([3L, 30], b.TokenLogProbs.shape);
        var aTokens = a.TokenLogProbs.data<float>().ToArray();
        var bTokens = b.TokenLogProbs.select(0, 1).slice(0, 0, 4, 1).contiguous().data<float>().ToArray();
        Assert.True(MaxAbsDiff(aTokens, bTokens) < 1e-5);
        Assert.Equal(a.Values.data<float>().ToArray()[0], b.Values.data<float>().ToArray()[1], 4);
        Assert.All(b.TokenLogProbs.select(0, 1).slice(0, 4, 30, 1).contiguous().data<float>().ToArray(), v => Assert.Equal(0f, v));
        Assert.Equal([30f, 4f, 1f], b.TokenCounts().data<float>().ToArray());
    }

    [Fact]
    public void Mean_is_the_sum_over_the_token_count()
    {
        using var model = PolicyModel.Create(Micro(), 2);
        using var batch = SequenceBatch.FromTokens([([1, 2], [3, 4, 5]), ([6], [7])], 64, Pad);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var sum = SequenceLogProbs.Compute(model, batch, LogProbReduction.Sum).Values.data<float>().ToArray();
        var mean = SequenceLogProbs.Compute(model, batch, LogProbReduction.Mean).Values.data<float>().ToArray();
        Assert.Equal(sum[0] / 3, mean[0], 5);
        Assert.Equal(sum[1], mean[1], 5);
        Assert.All(sum, v => Assert.True(v < 0));
    }

    [Fact]
    public void Gradient_flows_only_from_real_completion_tokens_and_ascends_the_logprob()
    {
        using var model = PolicyModel.Create(Micro(), 4);
        var rows = new List<(int[], int[])> { ([10, 11, 12], [13, 14, 15, 16]), ([20], [21]) };
        using var batch = SequenceBatch.FromTokens(rows, 64, Pad);
        using var batchOtherPadding = SequenceBatch.FromTokens(rows, 64, paddingId: 0);

        float[] GradOf(SequenceBatch b)
        {
            model.zero_grad();
            using var scope = NewDisposeScope();
            SequenceLogProbs.Compute(model, b, LogProbReduction.Sum).Values.sum().backward();
            return model.state_dict()["h.0.attn.c_attn.weight"].grad!.data<float>().ToArray();
        }

        var g = GradOf(batch);
        Assert.All(g, v => Assert.True(float.IsFinite(v)));
        Assert.True(g.Max(Math.Abs) > 1e-4);
        // What sits in the padding positions cannot matter.
        Assert.True(MaxAbsDiff(g, GradOf(batchOtherPadding)) < 1e-6);

        // One small step along the gradient raises the summed log-prob (first-order sanity).
        double Objective()
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            return SequenceLogProbs.Compute(model, batch, LogProbReduction.Sum).Values.sum().ToDouble();
        }
        var before = Objective();
        model.zero_grad();
        using (var scope = NewDisposeScope()) SequenceLogProbs.Compute(model, batch, LogProbReduction.Sum).Values.sum().backward();
        using (var scope = NewDisposeScope())
        {
            using (no_grad()) foreach (var p in model.parameters()) p.add_(p.grad!, alpha: 1e-3);
        }
        Assert.True(Objective() > before + 1e-4);
    }

    [Fact]
    public void No_graph_is_recorded_under_no_grad()
    {
        using var model = PolicyModel.Create(Micro(), 4);
        using var batch = SequenceBatch.FromTokens([([1], [2, 3])], 64, Pad);
        using var scope = NewDisposeScope();
        Assert.True(SequenceLogProbs.Compute(model, batch, LogProbReduction.Sum).Values.requires_grad);
        using var noGrad = no_grad();
        Assert.False(SequenceLogProbs.Compute(model, batch, LogProbReduction.Sum).Values.requires_grad);
    }

    [Fact]
    public void Context_truncation_keeps_the_completion_and_the_prompts_end()
    {
        var prompt = Enumerable.Range(1, 10).ToArray();
        using var fits = SequenceBatch.FromTokens([(prompt, [100, 101, 102])], 8, Pad);
        Assert.Equal(5, fits.PromptLengths[0]);
        Assert.Equal(5, fits.PromptTokensDropped[0]);
        Assert.False(fits.CompletionTruncated[0]);
        Assert.Equal([6L, 7, 8, 9, 10, 100, 101, 102], fits.Tokens.data<long>().ToArray());

        using var cut = SequenceBatch.FromTokens([(prompt, Enumerable.Range(100, 12).ToArray())], 8, Pad);
        Assert.True(cut.CompletionTruncated[0]);
        Assert.Equal(1, cut.PromptLengths[0]);
        Assert.Equal(7, cut.CompletionLengths[0]);
        Assert.Equal([10L, 100, 101, 102, 103, 104, 105, 106], cut.Tokens.data<long>().ToArray());

        Assert.Throws<ArgumentException>(() => SequenceBatch.FromTokens([([], [1])], 8, Pad));
        Assert.Throws<ArgumentException>(() => SequenceBatch.FromTokens([([-1], [1])], 8, Pad));
    }

    [Fact]
    public void Text_batches_append_end_of_sequence_and_start_empty_prompts_with_it()
    {
        var tokenizer = ByteTokenizer.Instance;
        using var batch = SequenceBatch.FromText(tokenizer, [("", "ab"), ("hi", "")], 64);
        Assert.Equal([1, 2], batch.PromptLengths);
        Assert.Equal([3, 1], batch.CompletionLengths);
        Assert.Equal([256L, 97, 98, 256, 104, 105, 256, 257], batch.Tokens.data<long>().ToArray());
        Assert.Equal([97L, 98, 256, 256, 257, 257], batch.CompletionTokens.data<long>().ToArray());
        Assert.Equal([1f, 1, 1, 1, 0, 0], batch.CompletionMask.data<float>().ToArray());
        Assert.Equal([3L, 2], batch.LastTokenPositions.data<long>().ToArray());

        using var model = PolicyModel.Create(Micro() with { VocabularySize = 200 }, 0);
        Assert.Contains("outside the model's vocabulary", Assert.Throws<ArgumentException>(() => SequenceLogProbs.Compute(model, batch, LogProbReduction.Sum)).Message);
    }

    [Fact]
    public void Reference_model_is_frozen_and_unaffected_by_policy_updates()
    {
        using var policy = PolicyModel.Create(Micro(), 6);
        using var reference = new ReferenceModel(policy);
        using var batch = SequenceBatch.FromTokens([([1, 2], [3, 4, 5])], 64, Pad);
        using var scope = NewDisposeScope();
        var before = reference.Compute(batch, LogProbReduction.Sum);
        Assert.False(before.Values.requires_grad);
        Assert.All(reference.StateDictCopy().Values, t => Assert.False(t.requires_grad));

        SequenceLogProbs.Compute(policy, batch, LogProbReduction.Sum).Values.sum().backward();
        using (no_grad()) foreach (var p in policy.parameters()) p.add_(p.grad!, alpha: 0.1);

        var after = reference.Compute(batch, LogProbReduction.Sum);
        Assert.Equal(before.Values.data<float>().ToArray(), after.Values.data<float>().ToArray());
        using var noGrad = no_grad();
        Assert.NotEqual(before.Values.data<float>().ToArray(), SequenceLogProbs.Compute(policy, batch, LogProbReduction.Sum).Values.data<float>().ToArray());
    }

    [Fact]
    public void Kl_estimators_vanish_for_identical_models_and_agree_on_different_ones()
    {
        using var policy = PolicyModel.Create(Micro(), 6);
        using var reference = new ReferenceModel(policy);
        using var batch = SequenceBatch.FromTokens([([1, 2], [3, 4, 5]), ([9], [8])], 64, Pad);
        using var scope = NewDisposeScope();

        var p = SequenceLogProbs.Compute(policy, batch, LogProbReduction.Sum, keepDistributions: true);
        var q = reference.Compute(batch, LogProbReduction.Sum, keepDistributions: true);
        foreach (var estimator in Enum.GetValues<KlEstimator>())
            Assert.True(PolicyDivergence.TokenKl(p, q, estimator).abs().max().ToDouble() < 1e-6, estimator.ToString());

        using (no_grad())
        {
            using (no_grad()) foreach (var param in policy.parameters()) param.add_(param.detach().sign(), alpha: 0.05);
        }
        p = SequenceLogProbs.Compute(policy, batch, LogProbReduction.Sum, keepDistributions: true);
        var k1 = PolicyDivergence.TokenKl(p, q, KlEstimator.LogRatio);
        var k3 = PolicyDivergence.TokenKl(p, q, KlEstimator.LowVariance);
        var full = PolicyDivergence.TokenKl(p, q, KlEstimator.FullVocabulary);
        Assert.Equal((p.TokenLogProbs - q.TokenLogProbs).data<float>().ToArray(), k1.data<float>().ToArray());
        Assert.True(k3.min().ToDouble() >= 0);
        Assert.True(full.min().ToDouble() >= -1e-6);
        Assert.True(full.max().ToDouble() > 1e-3);
        Assert.Equal(0f, full.data<float>().ToArray()[4]);                     // padding of row 1
        Assert.True(full.requires_grad, "the KL term must carry the policy's gradient");

        // Full KL by hand at one position: Σ p (log p − log q).
        var lp = p.LogDistributions!.select(0, 0).select(0, 0);
        var lq = q.LogDistributions!.select(0, 0).select(0, 0);
        Assert.Equal((lp.exp() * (lp - lq)).sum().ToDouble(), full.data<float>().ToArray()[0], 5);

        var meanKl = PolicyDivergence.MeanOverTokens(full, p.Mask).ToDouble();
        Assert.Equal(full.sum().ToDouble() / 4, meanKl, 5);
        Assert.Throws<ArgumentException>(() => PolicyDivergence.TokenKl(SequenceLogProbs.Compute(policy, batch, LogProbReduction.Sum), q, KlEstimator.FullVocabulary));
    }

    [Fact]
    public void Entropy_of_a_uniform_policy_is_log_vocabulary()
    {
        using var policy = PolicyModel.Create(Micro(), 6);
        using (no_grad()) policy.TokenEmbedding.fill_(0);               // tied head: all logits 0
        using var batch = SequenceBatch.FromTokens([([1, 2], [3, 4]), ([5], [6])], 64, Pad);
        using var scope = NewDisposeScope();
        var p = SequenceLogProbs.Compute(policy, batch, LogProbReduction.Sum, keepDistributions: true);
        var entropy = PolicyDivergence.Entropy(p).data<float>().ToArray();
        Assert.Equal(Math.Log(258), entropy[0], 4);
        Assert.Equal(Math.Log(258), entropy[2], 4);
        Assert.Equal(0f, entropy[3]);                                    // padding
        Assert.Equal(-2 * Math.Log(258), p.Values.data<float>().ToArray()[0], 3);
    }
}
