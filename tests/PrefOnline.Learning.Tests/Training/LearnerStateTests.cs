using PrefOnline.Learning.Models;
using PrefOnline.Learning.Models.LogProbs;
using PrefOnline.Learning.Objectives;
using PrefOnline.Learning.Tests.Models;
using PrefOnline.Learning.Training;
using PrefOnline.Learning.TrainingData;
using TorchSharp;
using static TorchSharp.torch;
using PrefOnline.Learning.Optimization;
using static PrefOnline.Learning.Tests.Training.LearnerFixtures;

namespace PrefOnline.Learning.Tests.Training;

/// <summary>
/// A restart resumes exactly: policy weights + the learner's exported state (optimizer moments and
/// step counts, dropout generator, adaptive KL coefficient, moving-average baseline, counters, version)
/// written to files and read back continue bit for bit like a run that never stopped.
/// </summary>
public sealed class LearnerStateTests
{
    private static LearnerOptions Options() => LearnerTests.Base with
    {
        Objective = ObjectiveNames.Ppo,
        Baseline = AdvantageBaseline.MovingAverage,
        BaselineDecay = 0.8,
        LearningRate = 1e-3, WeightDecay = 0.01,
        KlCoefficient = 0.1, TargetKl = 0.01, KlHorizon = 50,
        InnerSteps = 2,
        Seed = 9,
    };

    private static List<Rollout> Batch(PolicyModel policy, int u) =>
        Rollouts(policy, 3, 2, (p, s, _) => p * 0.3 + s * (u % 2 == 0 ? 1 : -1), seed: 50 + u, version: u);

    [Fact]
    public void Save_load_continue_equals_an_uninterrupted_run()
    {
        using var scope = NewDisposeScope();
        var directory = ModelTestSupport.TempDirectory("learner-state");
        using var initial = Policy(seed: 5, dropout: 0.1);
        using var reference = new ReferenceModel(initial);
        // Fixed data for all six updates (behaviour log-probs of the initial policy: off-policy for later updates, as replay is).
        var batches = Enumerable.Range(0, 6).Select(u => Batch(initial, u)).ToList();

        using var policyA = initial.Copy();
        using var learnerA = new Learner(policyA, reference, Tokenizer, Options());
        for (var u = 0; u < 3; u++) learnerA.Update(LearnerBatch.Of(batches[u]));
        var tensorsPath = Path.Combine(directory, Learner.StateTensorsFileName);
        var jsonPath = Path.Combine(directory, Learner.StateJsonFileName);
        using (var state = learnerA.ExportState()) state.Save(tensorsPath, jsonPath);
        var savedWeights = policyA.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone().DetachFromDisposeScope());
        for (var u = 3; u < 6; u++) learnerA.Update(LearnerBatch.Of(batches[u]));

        using var policyB = Policy(seed: 77, dropout: 0.1);                    // different init, overwritten below
        StateDicts.Load(policyB, savedWeights);
        using var learnerB = new Learner(policyB, reference, Tokenizer, Options());
        using (var loaded = TrainingState.Load(tensorsPath, jsonPath)) learnerB.ImportState(loaded);
        Assert.Equal(3, learnerB.UpdateCount);
        for (var u = 3; u < 6; u++) learnerB.Update(LearnerBatch.Of(batches[u]));

        Assert.Equal(WeightBytes(policyA), WeightBytes(policyB));
        Assert.Equal(learnerA.UpdateCount, learnerB.UpdateCount);
        Assert.Equal(learnerA.Counters, learnerB.Counters);
        Assert.Equal(learnerA.KlCoefficient, learnerB.KlCoefficient);
        Assert.NotEqual(0.1, learnerA.KlCoefficient);                          // the controller did move, so restoring it mattered
        Assert.Equal(learnerA.BaselineState, learnerB.BaselineState);

        // Without the learner state (fresh optimizer, seed and controller) the continuation differs.
        using var policyC = Policy(seed: 77, dropout: 0.1);
        StateDicts.Load(policyC, savedWeights);
        using var learnerC = new Learner(policyC, reference, Tokenizer, Options());
        for (var u = 3; u < 6; u++) learnerC.Update(LearnerBatch.Of(batches[u]));
        Assert.NotEqual(WeightBytes(policyA), WeightBytes(policyC));
        foreach (var t in savedWeights.Values) t.Dispose();
    }

    [Fact]
    public void A_damaged_or_mismatched_state_is_refused_and_changes_nothing()
    {
        using var scope = NewDisposeScope();
        using var policy = Policy();
        using var reference = new ReferenceModel(policy);
        using var learner = new Learner(policy, reference, Tokenizer, Options());
        learner.Update(LearnerBatch.Of(Batch(policy, 0)));
        using var good = learner.ExportState();
        var before = TensorBytes(good.Tensors);

        Assert.Throws<InvalidDataException>(() => learner.ImportState(new TrainingState(good.Tensors.ToDictionary(kv => kv.Key, kv => kv.Value.clone()), "{ not json")));
        Assert.Throws<InvalidDataException>(() => learner.ImportState(new TrainingState(
            good.Tensors.ToDictionary(kv => kv.Key, kv => kv.Value.clone()), good.Json.Replace("\"parameters\": ", "\"parameters\": 1", StringComparison.Ordinal))));
        var truncated = good.Tensors.Where(kv => kv.Key != "optimizer.0.exp_avg").ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        Assert.Throws<InvalidDataException>(() => learner.ImportState(new TrainingState(truncated, good.Json)));
        var badGenerator = good.Tensors.ToDictionary(kv => kv.Key, kv => kv.Key == "rng.dropout" ? zeros([3], ScalarType.Byte) : kv.Value.clone());
        Assert.Throws<InvalidDataException>(() => learner.ImportState(new TrainingState(badGenerator, good.Json)));

        using var after = learner.ExportState();
        Assert.Equal(before, TensorBytes(after.Tensors));
        Assert.Equal(good.Json, after.Json);
    }
}
