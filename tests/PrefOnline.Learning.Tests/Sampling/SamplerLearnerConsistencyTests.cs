using PrefOnline.Learning.Models;
using PrefOnline.Learning.Models.LogProbs;
using PrefOnline.Learning.Sampling;
using PrefOnline.Learning.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Tests.Sampling;

/// <summary>
/// The property PPO relies on: the behaviour log-probs the sampler records are the log-probs the
/// learner computes for the same tokens with <see cref="SequenceLogProbs"/> on the same
/// <see cref="PolicyModel"/> — before and after an in-place update of its weights.
/// </summary>
[Collection(NativeMemoryCollection.Name)]
public class SamplerLearnerConsistencyTests
{
    [Fact]
    public void Recorded_policy_log_probs_equal_the_learners_log_probs_of_the_same_tokens()
    {
        using var model = PolicyModel.Create(Gpt2Config.Tiny() with { Layers = 2 }, seed: 3);
        model.eval();
        using var sampler = PolicySampler.Create(model, ByteTokenizer.Instance, () => 1);
        var options = new SamplingOptions { SamplesPerPrompt = 4, MaxNewTokens = 24, Temperature = 0.7, TopP = 0.9, Seed = 5 };

        Check(sampler.Sample(["The cat", "", "Once upon a time, there"], options));

        // What AdamW does between two sampling rounds: the parameters change in place.
        using (var generator = new Generator(9))
        using (var scope = NewDisposeScope())
            using (no_grad()) foreach (var p in model.parameters()) p.add_(randn(p.shape, generator: generator), alpha: 0.02);
        Check(sampler.Sample(["The cat"], options));

        void Check(IReadOnlyList<SampledCompletion> completions)
        {
            using var batch = SequenceBatch.FromTokens(completions.Select(c => (c.PromptTokens, c.Tokens)).ToList(), model.Config.ContextLength,
                ByteTokenizer.Instance.PaddingId);
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var learner = SequenceLogProbs.Compute(model, batch, LogProbReduction.Sum);
            var perToken = learner.TokenLogProbs.data<float>().ToArray();
            var columns = (int)learner.TokenLogProbs.size(1);
            var sums = learner.Values.data<float>().ToArray();
            for (var i = 0; i < completions.Count; i++)
            {
                var c = completions[i];
                for (var t = 0; t < c.Tokens.Length; t++)
                    Assert.True(Math.Abs(perToken[i * columns + t] - c.PolicyLogProbs[t]) < 1e-4,
                        $"completion {i} token {t}: sampler {c.PolicyLogProbs[t]} vs learner {perToken[i * columns + t]}");
                Assert.Equal(sums[i], c.LogProb, 1e-3);
                // The sampler's own log-probs differ: temperature 0.7 and top-p 0.9 reshape the distribution.
                Assert.NotEqual(c.PolicyLogProbs, c.SamplerLogProbs);
            }
        }
    }
}
