using PrefOnline.Learning.Tokenization;
using PrefOnline.Learning.Models;
using PrefOnline.Learning.Models.Checkpoints;
using PrefOnline.Learning.Models.Reward;
using TorchSharp;
using static TorchSharp.torch;
using PrefOnline.Learning.Optimization;
using static PrefOnline.Learning.Tests.Models.ModelTestSupport;

namespace PrefOnline.Learning.Tests.Models;

public sealed class RewardModelTests
{
    [Fact]
    public void Bradley_terry_and_regression_losses_follow_their_formulas()
    {
        using var scope = NewDisposeScope();
        var chosen = tensor([2f, 0f, -1f]);
        var rejected = tensor([1f, 0f, 1f]);
        static double LogSigmoid(double x) => -Math.Log(1 + Math.Exp(-x));
        double[] margins = [1, 0, -2];
        Assert.Equal(-margins.Average(LogSigmoid), RewardLoss.BradleyTerry(chosen, rejected).ToDouble(), 5);
        var smoothed = margins.Average(m => -0.9 * LogSigmoid(m) - 0.1 * LogSigmoid(-m));
        Assert.Equal(smoothed, RewardLoss.BradleyTerry(chosen, rejected, labelSmoothing: 0.1).ToDouble(), 5);
        Assert.Equal((1 + 0 + 4) / 3.0, RewardLoss.Regression(chosen, rejected).ToDouble(), 5);
        Assert.Throws<ArgumentOutOfRangeException>(() => RewardLoss.BradleyTerry(chosen, rejected, 0.5));
        Assert.Throws<ArgumentException>(() => RewardLoss.Regression(chosen, tensor([1f])));
    }

    [Fact]
    public void Learns_a_simple_preference_and_ranks_held_out_pairs()
    {
        // Preference: completions with more 'x' are better. Learnable from the last token's state.
        var tokenizer = ByteTokenizer.Instance;
        var random = new Random(3);
        (string Prompt, string Chosen, string Rejected) Pair()
        {
            var n = random.Next(0, 6);
            var m = random.Next(n + 2, 10);
            string Text(int xs) => new(Enumerable.Range(0, 10).Select(i => i < xs ? 'x' : 'o').OrderBy(_ => random.Next()).ToArray());
            return ("count:", Text(m), Text(n));
        }
        var train = Enumerable.Range(0, 256).Select(_ => Pair()).ToList();
        var heldOut = Enumerable.Range(0, 64).Select(_ => Pair()).ToList();

        using var model = RewardModel.Create(Micro(), seed: 1);
        var before = model.Evaluate(tokenizer, heldOut);
        using var optimizer = new AdamWOptimizer(model.parameters(), new AdamWOptions { LearningRate = 3e-3, WeightDecay = 0 });
        double firstLoss = 0, lastLoss = 0;
        for (var step = 0; step < 60; step++)
        {
            using var scope = NewDisposeScope();
            var batch = train.Skip(step * 16 % train.Count).Take(16).ToList();
            var (chosen, rejected) = model.PairRewards(tokenizer, batch);
            var loss = RewardLoss.BradleyTerry(chosen, rejected, labelSmoothing: 0.05);
            optimizer.ZeroGrad();
            loss.backward();
            optimizer.Step();
            if (step == 0) firstLoss = loss.ToDouble();
            lastLoss = loss.ToDouble();
        }
        var after = model.Evaluate(tokenizer, heldOut);
        Assert.True(lastLoss < firstLoss, $"loss {firstLoss} → {lastLoss}");
        Assert.True(after.Accuracy >= 0.9, $"held-out accuracy {before.Accuracy} → {after.Accuracy}");
        Assert.True(after.MeanMargin > before.MeanMargin);
        Assert.Equal(64, after.Count);
    }

    [Fact]
    public void Regression_fits_scalar_ratings()
    {
        var tokenizer = ByteTokenizer.Instance;
        var items = new List<(string, string)> { ("q", "good"), ("q", "bad"), ("q", "fine"), ("q", "awful") };
        using var model = RewardModel.Create(Micro(), seed: 2);
        using var optimizer = new AdamWOptimizer(model.parameters(), new AdamWOptions { LearningRate = 1e-2, WeightDecay = 0 });
        double loss = double.NaN;
        for (var step = 0; step < 80; step++)
        {
            using var scope = NewDisposeScope();
            using var batch = Learning.Models.LogProbs.SequenceBatch.FromText(tokenizer, items, 64);
            var l = RewardLoss.Regression(model.Forward(batch), tensor([1f, -1f, 0.5f, -2f]));
            optimizer.ZeroGrad();
            l.backward();
            optimizer.Step();
            loss = l.ToDouble();
        }
        Assert.True(loss < 0.05, $"final MSE {loss}");
        var scores = model.Score(tokenizer, items);
        Assert.Equal(1, scores[0], 0.4);
        Assert.Equal(-2, scores[3], 0.4);
    }

    [Fact]
    public void Batched_scores_equal_one_at_a_time_and_training_mode_is_restored()
    {
        var tokenizer = ByteTokenizer.Instance;
        var items = new List<(string, string)> { ("a", "b"), ("a much longer prompt", "and a long completion too"), ("", "x") };
        using var model = RewardModel.Create(Micro(dropout: 0.3), seed: 4);
        var batched = model.Score(tokenizer, items, batchSize: 8);
        var single = model.Score(tokenizer, items, batchSize: 1);
        Assert.True(MaxAbsDiff(batched, single) < 1e-5);
        Assert.True(model.training);
    }

    [Fact]
    public void Save_load_round_trip_and_start_from_a_policy()
    {
        var dir = TempDirectory("reward");
        try
        {
            using var policy = PolicyModel.Create(Micro(), 8);
            using var model = RewardModel.FromPolicy(policy, seed: 9);
            Assert.True(model.state_dict()["transformer.h.1.attn.c_proj.weight"].eq(policy.state_dict()["h.1.attn.c_proj.weight"]).all().ToDouble() == 1);
            var path = Path.Combine(dir, "reward.safetensors");
            RewardCheckpoint.Save(path, model);
            using var loaded = RewardCheckpoint.Load(path);
            Assert.Equal(model.Config, loaded.Config);
            foreach (var (name, tensor) in model.state_dict())
                Assert.True(tensor.eq(loaded.state_dict()[name]).all().ToDouble() == 1, name);
            Assert.Contains("score.weight", loaded.state_dict().Keys);

            var policyFile = Path.Combine(dir, "policy.safetensors");
            PolicyCheckpoint.SaveWeightsFile(policyFile, policy);
            var e = Assert.Throws<InvalidCheckpointException>(() => RewardCheckpoint.Load(policyFile));
            Assert.Contains("missing tensors", e.Message);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
