using PrefOnline.Learning.Models.LogProbs;
using PrefOnline.Learning.Objectives;
using PrefOnline.Learning.Tests.Support;
using PrefOnline.Learning.Training;
using TorchSharp;
using static TorchSharp.torch;
using PrefOnline.Learning.Optimization;
using static PrefOnline.Learning.Tests.Training.LearnerFixtures;

namespace PrefOnline.Learning.Tests.Training;

/// <summary>200 updates leave exactly the native tensors that existed before them: every tensor of an
/// update lives in its DisposeScopes and gradients are dropped (set to none) after each step.</summary>
[Collection(SerialCollection.Name)]
public sealed class LearnerMemoryTests
{
    [Theory]
    [InlineData(ObjectiveNames.Dpo)]
    [InlineData(ObjectiveNames.Ppo)]
    public void Two_hundred_updates_leave_live_tensors_at_baseline(string objective)
    {
        using var policy = Policy();
        using var reference = new ReferenceModel(policy);
        var batches = Enumerable.Range(0, 4).Select(i => Rollouts(policy, 2, 2, (_, s, _) => s == 0 ? 1.0 : 0.0, seed: 60 + i)).ToList();
        var pairs = new[] { HumanPair("h", "q:", "good", "bad", withTokens: false) };
        using var learner = new Learner(policy, reference, Tokenizer, LearnerTests.ObjectiveFor(objective) with
        {
            LearningRate = 1e-4, WeightDecay = 0,
            KlCoefficient = 0.05, TargetKl = 1, KlHorizon = 1000,
            InnerSteps = 2,
        });
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var baseline = LiveTensors.Count;

        for (var u = 0; u < 200; u++)
        {
            var update = learner.Update(LearnerBatch.Of(batches[u % batches.Count], pairs));
            Assert.True(update.Applied);
        }
        using (var state = learner.ExportState()) Assert.NotEmpty(state.Tensors);   // export/dispose round trip adds nothing either

        GC.Collect();
        GC.WaitForPendingFinalizers();
        Assert.Equal(baseline, LiveTensors.Count);
        Assert.Equal(200, learner.UpdateCount);
    }
}
