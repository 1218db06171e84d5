using System.Runtime.InteropServices;
using PrefOnline.Learning.Models;
using PrefOnline.Learning.Models.Adapters;
using PrefOnline.Learning.Models.Checkpoints;
using PrefOnline.Learning.Models.Reward;
using PrefOnline.Learning.Tests.Models;
using PrefOnline.Learning.Training;
using PrefOnline.Learning.Training.Reward;
using PrefOnline.Learning.TrainingData;
using static TorchSharp.torch;
using static PrefOnline.Learning.Tests.Training.LearnerFixtures;

namespace PrefOnline.Learning.Tests.Training;

/// <summary>
/// The reward model of a LoRA run (<see cref="RewardModel.FromPolicyWithAdapters"/>): its trunk stays the policy's base
/// bit for bit (sharing its tensors, not copying them), a step changes only the adapters and the score head, the
/// optimizer holds only those, and what
/// <see cref="RewardCheckpoint.SaveAdapter"/> writes (adapters + head, not the trunk) with the trainer's state restores
/// it exactly: same scores, and training on from there equals an uninterrupted run.
/// </summary>
public sealed class RewardLoraTests
{
    private static readonly LoraOptions Lora = new() { Rank = 4, Alpha = 8, Dropout = 0.1 };

    private static RewardTrainerOptions Options() => new()
    {
        LearningRate = 1e-2,
        BatchSize = 16,
        ReplayPerStep = 8,
        WindowCapacity = 64,
        HeldOutFraction = 0.2,
        HeldOutCapacity = 50,
        EvaluateEvery = 3,
        MinHeldOutPairs = 5,
        Seed = 3,
    };

    private static readonly List<(string Prompt, string Completion)> FixedBatch =
        [("q1:", "abcde"), ("q2:", "nopqr"), ("q3:", "hello"), ("q4:", "zzyzx"), ("q5:", "a")];

    private static int[] Bits(Tensor t) => MemoryMarshal.Cast<float, int>(t.detach().contiguous().data<float>().ToArray().AsSpan()).ToArray();

    private static List<PreferencePair> ToyPairs(int count, int seed, int firstId = 0)
    {
        var random = new Random(seed);
        string Word(bool good) => new(Enumerable.Range(0, random.Next(3, 9)).Select(_ => (char)((good ? 'a' : 'n') + random.Next(13))).ToArray());
        return Enumerable.Range(firstId, count).Select(i => HumanPair($"pair-{i}", $"q{random.Next(10)}:", Word(good: true), Word(good: false), withTokens: false)).ToList();
    }

    [Fact]
    public void A_reward_step_under_lora_changes_only_the_adapters_and_the_head_and_the_optimizer_holds_only_them()
    {
        using var scope = NewDisposeScope();
        using var policy = Policy(seed: 3, dropout: 0.1);
        using var model = RewardModel.FromPolicyWithAdapters(policy, Lora, seed: 7);
        var adapters = model.Adapters;
        Assert.NotNull(adapters);
        Assert.NotEmpty(adapters.Paths);
        Assert.DoesNotContain("score", adapters.Paths);
        // The trunk is the policy's base, frozen; the head and the adapters train.
        var policyTrunk = policy.Trunk.state_dict();
        foreach (var (name, value) in model.Trunk.state_dict()) Assert.Equal(Bits(policyTrunk[name]), Bits(value));
        Assert.All(model.Trunk.parameters(), p => Assert.False(p.requires_grad));
        Assert.All(model.Head.parameters(), p => Assert.True(p.requires_grad));
        var trunkBefore = model.Trunk.state_dict().ToDictionary(kv => kv.Key, kv => Bits(kv.Value));
        var headBefore = Bits(model.Head.weight!);

        using var trainer = new RewardTrainer(model, Tokenizer, Options());
        trainer.AddPairs(ToyPairs(64, seed: 1));
        var steps = trainer.Train(flush: true);
        Assert.Contains(steps, s => s.Applied);

        foreach (var (name, value) in model.Trunk.state_dict())
            Assert.True(trunkBefore[name].SequenceEqual(Bits(value)), $"frozen trunk weight {name} changed");
        Assert.False(headBefore.SequenceEqual(Bits(model.Head.weight!)), "the score head did not train");
        Assert.Contains(adapters.Pairs(), p => p.B.abs().max().item<float>() > 0);

        // The optimizer (and so its saved state) covers the adapters' A and B and the head's weight and bias alone.
        using var state = trainer.ExportState();
        Assert.Contains($"\"parameters\":{2 * adapters.Paths.Count + 2}", state.Json);
        Assert.Contains("rng.adapter_dropout", state.Tensors.Keys);
        var moments = state.Tensors.Where(kv => kv.Key.StartsWith("optimizer.", StringComparison.Ordinal) && kv.Key.EndsWith(".exp_avg", StringComparison.Ordinal)).ToList();
        Assert.Equal(2 * adapters.Paths.Count + 2, moments.Count);
        Assert.Equal(adapters.ParameterCount + model.Config.Width + 1, moments.Sum(kv => kv.Value.numel()));
        Assert.True(adapters.ParameterCount + model.Config.Width + 1 < StateDicts.ParameterCount(model.Trunk) / 4);
    }

    [Fact]
    public void The_frozen_reward_trunk_shares_the_policys_base_tensors_and_a_whole_reward_model_does_not()
    {
        using var scope = NewDisposeScope();
        using var policy = Policy(seed: 3);
        using var lora = RewardModel.FromPolicyWithAdapters(policy, Lora, seed: 7);
        using var whole = RewardModel.FromPolicy(policy, seed: 7);
        var name = policy.Trunk.state_dict().Keys.First(k => k.EndsWith("weight", StringComparison.Ordinal));
        var baseTensor = policy.Trunk.state_dict()[name];
        var before = Bits(whole.Trunk.state_dict()[name]);
        // A write into the base (which nothing does in a run: this only proves the aliasing) shows in the LoRA reward trunk.
        using (no_grad()) baseTensor.add_(1);
        Assert.Equal(Bits(baseTensor), Bits(lora.Trunk.state_dict()[name]));
        Assert.Equal(before, Bits(whole.Trunk.state_dict()[name]));
        using (no_grad()) baseTensor.sub_(1);
    }

    [Fact]
    public void The_saved_adapter_and_head_with_the_trainer_state_restore_the_reward_model_exactly()
    {
        using var scope = NewDisposeScope();
        var directory = ModelTestSupport.TempDirectory("reward-lora");
        var adapterFile = Path.Combine(directory, "reward_adapter.safetensors");
        var tensors = Path.Combine(directory, RewardTrainer.StateTensorsFileName);
        var json = Path.Combine(directory, RewardTrainer.StateJsonFileName);
        using var policyA = Policy(seed: 3, dropout: 0.1);
        using var modelA = RewardModel.FromPolicyWithAdapters(policyA, Lora, seed: 7);
        using var trainerA = new RewardTrainer(modelA, Tokenizer, Options());
        trainerA.AddPairs(ToyPairs(60, seed: 9));
        trainerA.Train();
        RewardCheckpoint.SaveAdapter(adapterFile, modelA);
        using (var state = trainerA.ExportState()) state.Save(tensors, json);
        var scoresSaved = modelA.Score(Tokenizer, FixedBatch);

        // Only the adapters and the head are in the file, far smaller than the whole reward model.
        var keys = SafeTensorsHeaderNames(adapterFile);
        Assert.All(keys, k => Assert.Matches(@"(\.lora_[AB]\.weight|^score\.(weight|bias))$", k));
        var whole = Path.Combine(directory, "reward.safetensors");
        RewardCheckpoint.Save(whole, modelA);
        Assert.True(new FileInfo(adapterFile).Length * 4 < new FileInfo(whole).Length, $"{new FileInfo(adapterFile).Length} vs {new FileInfo(whole).Length} bytes");

        // A restart: the base (a fresh policy of the same weights) + the file + the state.
        using var basePolicy = Policy(seed: 3, dropout: 0.1);
        using var modelB = RewardCheckpoint.LoadAdapter(adapterFile, basePolicy, Lora);
        using var trainerB = new RewardTrainer(modelB, Tokenizer, Options());
        using (var loaded = TrainingState.Load(tensors, json)) trainerB.ImportState(loaded);
        Assert.Equal(scoresSaved, modelB.Score(Tokenizer, FixedBatch));

        var later = ToyPairs(40, seed: 10, firstId: 1000);
        trainerA.AddPairs(later);
        trainerA.Train(flush: true);
        trainerB.AddPairs(later);
        trainerB.Train(flush: true);
        Assert.Equal(modelA.Score(Tokenizer, FixedBatch), modelB.Score(Tokenizer, FixedBatch));
        Assert.Equal(trainerA.Counters, trainerB.Counters);
        foreach (var ((pathA, a, b), (pathB, a2, b2)) in modelA.Adapters!.Pairs().Zip(modelB.Adapters!.Pairs()))
        {
            Assert.Equal(pathA, pathB);
            Assert.Equal(Bits(a), Bits(a2));
            Assert.Equal(Bits(b), Bits(b2));
        }
    }

    [Fact]
    public void A_saved_reward_adapter_of_other_options_or_without_its_tensors_is_refused_with_the_reason()
    {
        using var scope = NewDisposeScope();
        var directory = ModelTestSupport.TempDirectory("reward-lora-bad");
        var adapterFile = Path.Combine(directory, "reward_adapter.safetensors");
        using var policy = Policy(seed: 3);
        using (var model = RewardModel.FromPolicyWithAdapters(policy, Lora, seed: 7)) RewardCheckpoint.SaveAdapter(adapterFile, model);

        var otherRank = Assert.Throws<InvalidCheckpointException>(() => RewardCheckpoint.LoadAdapter(adapterFile, policy, Lora with { Rank = 2 }));
        Assert.Contains("differ from Learner:Adapter's", otherRank.Message);

        var whole = Path.Combine(directory, "reward.safetensors");
        using (var plain = RewardModel.FromPolicy(policy, seed: 7)) RewardCheckpoint.Save(whole, plain);
        var notAdapter = Assert.Throws<InvalidCheckpointException>(() => RewardCheckpoint.LoadAdapter(whole, policy, Lora));
        Assert.Contains("not a reward adapter", notAdapter.Message);
        using var plainModel = RewardModel.FromPolicy(policy, seed: 7);
        Assert.Throws<ArgumentException>(() => RewardCheckpoint.SaveAdapter(adapterFile, plainModel));
    }

    private static List<string> SafeTensorsHeaderNames(string path) =>
        PrefOnline.Tensors.Serialization.SafeTensorsFile.ReadHeader(path).Entries.Select(e => e.Name).ToList();
}
