using System.Runtime.InteropServices;
using PrefOnline.Learning.Models;
using PrefOnline.Learning.Models.Adapters;
using PrefOnline.Learning.Models.LogProbs;
using PrefOnline.Learning.Objectives;
using PrefOnline.Learning.Optimization;
using PrefOnline.Learning.Training;
using TorchSharp;
using static TorchSharp.torch;
using static PrefOnline.Learning.Tests.Training.LearnerFixtures;

namespace PrefOnline.Learning.Tests.Training;

/// <summary>
/// The learner with <see cref="LearnerOptions.Adapter"/> set: it trains the LoRA adapters alone (base
/// weights bit for bit unchanged, optimizer state for the adapters only), its reference is the policy's
/// base with the adapters off (no copy; its log-probs are bitwise those of a copy of the base), and the
/// update still moves log-probs towards the better sample.
/// </summary>
public sealed class LearnerLoraTests
{
    private static readonly LoraOptions Lora = new() { Rank = 4, Alpha = 16, Dropout = 0.05 };

    private static LearnerOptions Options(int innerSteps = 3) => new()
    {
        Objective = ObjectiveNames.Dpo,
        LearningRate = 5e-3,
        WeightDecay = 0,
        KlCoefficient = 0.05,
        InnerSteps = innerSteps,
        Adapter = Lora,
        Seed = 9,
    };

    private static int[] Bits(Tensor t) => MemoryMarshal.Cast<float, int>(t.detach().contiguous().data<float>().ToArray().AsSpan()).ToArray();

    /// <summary>Mean over prompts of log π(sample 0) − log π(sample 1), eval mode, adapters on.</summary>
    private static double Gap(PolicyModel policy, IReadOnlyList<Learning.TrainingData.Rollout> rollouts)
    {
        var values = TokenLogProbs(policy, rollouts.Select(r => (r.PromptTokens.ToArray(), r.CompletionTokens.ToArray())).ToList()).Select(v => v.Sum()).ToArray();
        return Enumerable.Range(0, values.Length / 2).Average(p => values[2 * p] - values[2 * p + 1]);
    }

    [Fact]
    public void A_lora_update_trains_only_the_adapters_against_the_base_as_reference()
    {
        using var scope = NewDisposeScope();
        using var policy = Policy(seed: 5, dropout: 0.1);
        using var baseCopy = new ReferenceModel(policy);                 // what the base computes, for comparison only
        var baseWeights = policy.state_dict().ToDictionary(kv => kv.Key, kv => Bits(kv.Value));
        var rollouts = Rollouts(policy, prompts: 6, k: 2, (_, s, _) => s == 0 ? 1.0 : 0.0, seed: 21);
        var gapBefore = Gap(policy, rollouts);

        using var learner = new Learner(policy, reference: null, Tokenizer, Options());
        var adapters = policy.Adapters;
        Assert.NotNull(adapters);
        Assert.Equal(Lora.Rank, adapters.Options.Rank);
        var update = learner.Update(LearnerBatch.Of(rollouts));

        Assert.True(update.Applied, update.SkipReason.ToString());
        Assert.Equal(3, update.InnerSteps);
        foreach (var (name, value) in policy.state_dict())
            Assert.True(baseWeights[name].SequenceEqual(Bits(value)), $"base weight {name} changed");
        Assert.True(Gap(policy, rollouts) > gapBefore + 0.05, $"gap {gapBefore} → {Gap(policy, rollouts)}");
        Assert.True(update.KlToReference is > 0 and < 5, $"KL against the base = {update.KlToReference}");

        // The reference is the base: log-probs bitwise those of a separate copy of it.
        using var batch = SequenceBatch.FromTokens(rollouts.Select(r => (r.PromptTokens.ToArray(), r.CompletionTokens.ToArray())).ToList(), 64, Tokenizer.PaddingId);
        using var shared = ReferenceModel.BaseOf(policy);
        Assert.True(shared.SharesPolicyWeights);
        Assert.Equal(Bits(baseCopy.Compute(batch, LogProbReduction.Sum).TokenLogProbs), Bits(shared.Compute(batch, LogProbReduction.Sum).TokenLogProbs));

        // The optimizer and the exported state cover the adapters alone.
        var state = learner.ExportState();
        Assert.Contains($"\"parameters\": {2 * adapters.Paths.Count}", state.Json);
        Assert.Contains("rng.adapter_dropout", state.Tensors.Keys);
        var moments = state.Tensors.Where(kv => kv.Key.StartsWith("optimizer.", StringComparison.Ordinal) && kv.Key.EndsWith(".exp_avg", StringComparison.Ordinal)).ToList();
        Assert.Equal(2 * adapters.Paths.Count, moments.Count);
        Assert.Equal(adapters.ParameterCount, moments.Sum(kv => kv.Value.numel()));
    }

    [Fact]
    public void Exported_state_resumes_bit_for_bit_on_a_policy_with_the_saved_adapters()
    {
        var directory = Models.ModelTestSupport.TempDirectory("lora-learner");
        try
        {
            using var scope = NewDisposeScope();
            using var policy = Policy(seed: 5, dropout: 0.1);
            using var resumed = policy.Copy();                            // the same base weights
            var first = Rollouts(policy, prompts: 4, k: 2, (_, s, _) => s == 0 ? 1.0 : 0.0, seed: 31);
            var second = Rollouts(policy, prompts: 4, k: 2, (_, s, _) => s == 1 ? 1.0 : 0.0, seed: 32);
            using var learner = new Learner(policy, null, Tokenizer, Options(innerSteps: 2));
            learner.Update(LearnerBatch.Of(first));
            PeftAdapter.Save(directory, policy.Adapters!);
            var state = learner.ExportState();

            PeftAdapter.Load(directory, resumed);
            using var again = new Learner(resumed, null, Tokenizer, Options(innerSteps: 2));
            again.ImportState(state);
            learner.Update(LearnerBatch.Of(second));
            again.Update(LearnerBatch.Of(second));
            var a = policy.Adapters!.TrainableParameters();
            var b = resumed.Adapters!.TrainableParameters();
            for (var i = 0; i < a.Count; i++) Assert.Equal(Bits(a[i]), Bits(b[i]));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void A_separate_reference_copy_or_untrained_adapters_are_refused()
    {
        using var policy = Policy(seed: 7);
        using var copy = new ReferenceModel(policy);
        var withCopy = Assert.Throws<ArgumentException>(() => new Learner(policy, copy, Tokenizer, Options()));
        Assert.Contains("pass no ReferenceModel", withCopy.Message);
        Assert.Null(policy.Adapters);

        LoraAdapters.Attach(policy, Lora with { Rank = 2 }, seed: 1);
        var fullFineTune = Options() with { Adapter = null };
        Assert.Contains("set LearnerOptions.Adapter", Assert.Throws<ArgumentException>(() => new Learner(policy, null, Tokenizer, fullFineTune)).Message);
        Assert.Contains("differ from LearnerOptions.Adapter", Assert.Throws<ArgumentException>(() => new Learner(policy, null, Tokenizer, Options())).Message);
        Assert.Contains("Rank: must be at least 1",
            Assert.Throws<ArgumentException>(() => new Learner(policy, null, Tokenizer, Options() with { Adapter = Lora with { Rank = 0 } })).Message);
    }
}
