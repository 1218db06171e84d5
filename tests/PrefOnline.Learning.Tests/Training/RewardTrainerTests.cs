using PrefOnline.Learning.Models;
using PrefOnline.Learning.Models.Reward;
using PrefOnline.Learning.Tests.Models;
using PrefOnline.Learning.Training;
using PrefOnline.Learning.Training.Reward;
using PrefOnline.Learning.TrainingData;
using TorchSharp;
using static TorchSharp.torch;
using PrefOnline.Learning.Optimization;
using static PrefOnline.Learning.Tests.Training.LearnerFixtures;

namespace PrefOnline.Learning.Tests.Training;

/// <summary>
/// Online reward-model training: a toy preference is learned to high accuracy on held-out pairs; the
/// held-out split and the accuracy it reports are exactly what an independent computation gives;
/// ratings land on the documented logit scale; the guard and the state behave as the learner's do.
/// </summary>
public sealed class RewardTrainerTests
{
    private static RewardTrainerOptions Options(double heldOut = 0.2) => new()
    {
        LearningRate = 1e-3,
        BatchSize = 16,
        ReplayPerStep = 16,
        WindowCapacity = 256,
        HeldOutFraction = heldOut,
        HeldOutCapacity = 100,
        EvaluateEvery = 10,
        MinHeldOutPairs = 20,
        RatingMin = 0,          // a unit rating scale, 4 logits wide (the worker's default is [-10, 10] over 8)
        RatingMax = 1,
        RatingLogitRange = 4,
        Seed = 3,
    };

    private static RewardModel Model(ulong seed = 2) => RewardModel.Create(ModelTestSupport.Micro(), seed);

    /// <summary>The toy preference: words from the first half of the alphabet beat words from the second.</summary>
    private static string Word(Random random, bool good) =>
        new(Enumerable.Range(0, random.Next(3, 9)).Select(_ => (char)((good ? 'a' : 'n') + random.Next(13))).ToArray());

    private static List<PreferencePair> ToyPairs(int count, int seed, int firstId = 0)
    {
        var random = new Random(seed);
        return Enumerable.Range(firstId, count).Select(i => HumanPair($"pair-{i}", $"q{random.Next(10)}:", Word(random, good: true), Word(random, good: false), withTokens: false)).ToList();
    }

    [Fact]
    public void It_learns_a_toy_preference_to_high_held_out_accuracy_and_the_live_agreement_rises()
    {
        using var scope = NewDisposeScope();
        using var model = Model();
        using var trainer = new RewardTrainer(model, Tokenizer, Options());
        var agreements = new List<bool>();
        foreach (var chunk in ToyPairs(1200, seed: 1).Chunk(40))
        {
            agreements.AddRange(trainer.AddPairs(chunk).Select(r => r.Agreed!.Value));
            trainer.Train();
        }
        trainer.Evaluate();

        Assert.True(trainer.HeldOutAccuracy >= 0.9, $"held-out accuracy {trainer.HeldOutAccuracy} on {trainer.HeldOutPairCount} pairs");
        Assert.Equal(100, trainer.HeldOutPairCount);                            // capped at the held-out capacity
        var early = agreements.Take(80).Count(a => a) / 80.0;
        var late = agreements.TakeLast(200).Count(a => a) / 200.0;
        Assert.True(late > 0.85 && late > early + 0.2, $"progressive agreement first 80: {early:F2}, last 200: {late:F2}");
        Assert.Equal(1200, trainer.Counters.PairsReceived);
        Assert.Equal(agreements.Count(a => a), trainer.Counters.Agreed);
        Assert.Equal(256, trainer.WindowCount);                                 // the replay window is bounded
        Assert.True(trainer.PendingCount < 16);
    }

    [Fact]
    public void The_held_out_split_is_by_id_and_the_accuracy_is_that_of_exactly_those_pairs()
    {
        using var scope = NewDisposeScope();
        using var model = Model();
        var options = Options(heldOut: 0.3) with { EvaluateEvery = 1000 };
        using var trainer = new RewardTrainer(model, Tokenizer, options);
        var pairs = ToyPairs(400, seed: 2);
        var routes = trainer.AddPairs(pairs);
        trainer.Train();

        var expected = pairs.Where(p => HeldOutSplit.IsHeldOut(p.Id, 0.3)).ToList();
        Assert.Equal(expected.Select(p => p.Id), pairs.Where((p, i) => routes[i].Route == LabelRoute.HeldOut).Select(p => p.Id));
        Assert.Equal(expected.Count, trainer.Counters.HeldOutPairs);
        var kept = expected.TakeLast(100).Select(p => (p.Prompt, p.Chosen, p.Rejected)).ToList();
        Assert.Equal(kept, trainer.HeldOutPairs);

        var measured = trainer.Evaluate();
        var independent = model.Evaluate(Tokenizer, kept);
        Assert.Equal(independent.Accuracy, measured.PairAccuracy);
        Assert.Equal(independent.MeanMargin, measured.MeanMargin!.Value, 12);
        Assert.Equal(100, measured.PairCount);
        Assert.Equal(independent.Accuracy, trainer.HeldOutAccuracy);

        // The split depends on the id alone: same answer in another trainer, about the configured share overall.
        var ids = Enumerable.Range(0, 20_000).Select(i => $"id-{i}").ToList();
        var share = ids.Count(id => HeldOutSplit.IsHeldOut(id, 0.1)) / (double)ids.Count;
        Assert.InRange(share, 0.09, 0.11);
        Assert.All(ids.Take(100), id => Assert.Equal(HeldOutSplit.IsHeldOut(id, 0.1), HeldOutSplit.IsHeldOut(id, 0.1)));
        Assert.All(ids.Take(500), id => Assert.True(!HeldOutSplit.IsHeldOut(id, 0.1) || HeldOutSplit.IsHeldOut(id, 0.2)));   // nested fractions
    }

    [Fact]
    public void Held_out_accuracy_is_withheld_until_enough_pairs_are_held_out()
    {
        using var scope = NewDisposeScope();
        using var model = Model();
        using var trainer = new RewardTrainer(model, Tokenizer, Options(heldOut: 0.2) with { MinHeldOutPairs = 50 });
        trainer.AddPairs(ToyPairs(100, seed: 3));
        trainer.Train(flush: true);
        Assert.NotNull(trainer.HeldOut);
        Assert.True(trainer.HeldOut!.PairCount < 50);
        Assert.Null(trainer.HeldOutAccuracy);
    }

    [Fact]
    public void Ratings_are_regressed_onto_the_documented_logit_scale()
    {
        using var scope = NewDisposeScope();
        using var model = Model();
        var options = Options(heldOut: 0.2) with { RatingMin = 1, RatingMax = 5, RatingLogitRange = 4 };
        using var trainer = new RewardTrainer(model, Tokenizer, options);
        Assert.Equal(-2.0, options.RatingTarget(1));
        Assert.Equal(0.0, options.RatingTarget(3));
        Assert.Equal(2.0, options.RatingTarget(5));
        var random = new Random(4);
        for (var i = 0; i < 1200; i++)
        {
            var good = i % 2 == 0;
            Assert.NotEqual(LabelRoute.Rejected, trainer.AddRating(new Rating { Id = $"rating-{i}", Prompt = "q:", Completion = Word(random, good), Value = good ? 4.5 : 1.5 }));
            if (i % 40 == 39) trainer.Train();
        }
        var metrics = trainer.Evaluate();

        Assert.True(metrics.RatingRmse < 0.4, $"held-out RMSE {metrics.RatingRmse} stars over {metrics.RatingCount} ratings");
        var scores = model.Score(Tokenizer, [("q:", "abcde"), ("q:", "nopqr")]);
        Assert.InRange(scores[0], options.RatingTarget(4.5) - 0.5, options.RatingTarget(4.5) + 0.5);   // ≈ +1.5 logits
        Assert.InRange(scores[1], options.RatingTarget(1.5) - 0.5, options.RatingTarget(1.5) + 0.5);   // ≈ −1.5 logits
        Assert.Equal(LabelRoute.Rejected, trainer.AddRating(new Rating { Id = "x", Prompt = "q:", Completion = "a", Value = 6 }));
        Assert.Equal(LabelRoute.Rejected, trainer.AddRating(new Rating { Id = "y", Prompt = "q:", Completion = "a", Value = double.NaN }));
        Assert.Equal(2, trainer.Counters.Rejected);
    }

    [Fact]
    public void A_step_mixes_new_and_replayed_labels_of_both_kinds()
    {
        using var scope = NewDisposeScope();
        using var model = Model();
        using var trainer = new RewardTrainer(model, Tokenizer, Options(heldOut: 0) with { BatchSize = 4, ReplayPerStep = 3 });
        trainer.AddPairs(ToyPairs(4, seed: 5));
        var first = Assert.Single(trainer.Train());
        Assert.Equal((4, 0, 4, 0), (first.FreshLabels, first.ReplayedLabels, first.Pairs, first.Ratings));

        trainer.AddPairs(ToyPairs(2, seed: 6, firstId: 100));
        trainer.AddRating(new Rating { Id = "r1", Prompt = "q:", Completion = "abc", Value = 0.9 });
        trainer.AddRating(new Rating { Id = "r2", Prompt = "q:", Completion = "xyz", Value = 0.1 });
        var second = Assert.Single(trainer.Train());
        Assert.Equal((4, 3), (second.FreshLabels, second.ReplayedLabels));
        Assert.Equal(2, second.Ratings);
        Assert.Equal(5, second.Pairs);
        Assert.NotNull(second.PairLoss);
        Assert.NotNull(second.RatingLoss);
        Assert.Equal(second.PairLoss!.Value + second.RatingLoss!.Value, second.Loss, 6);
        Assert.Equal(8, trainer.WindowCount);
        Assert.Equal(8, trainer.Counters.LabelsTrained);
    }

    [Fact]
    public void A_NaN_gradient_skips_the_step_and_leaves_weights_and_optimizer_untouched()
    {
        using var scope = NewDisposeScope();
        using var model = Model();
        using var trainer = new RewardTrainer(model, Tokenizer, Options(heldOut: 0));
        trainer.AddPairs(ToyPairs(16, seed: 7));
        trainer.Train();
        var weights = TensorBytes(model.state_dict());
        byte[] optimizer;
        using (var s = trainer.ExportState()) optimizer = TensorBytes(s.Tensors);
        trainer.AfterBackward = parameters =>
        {
            using var inner = NewDisposeScope();
            parameters[0].grad!.mul_(double.PositiveInfinity);
        };

        trainer.AddPairs(ToyPairs(16, seed: 8, firstId: 50));
        var step = Assert.Single(trainer.Train());

        Assert.False(step.Applied);
        Assert.Equal(1, trainer.Counters.StepsSkipped);
        Assert.Equal(weights, TensorBytes(model.state_dict()));
        using (var s = trainer.ExportState()) Assert.Equal(optimizer, TensorBytes(s.Tensors));
    }

    [Fact]
    public void Bad_pairs_are_rejected_with_a_reason_and_never_queued()
    {
        using var scope = NewDisposeScope();
        using var model = Model();
        using var trainer = new RewardTrainer(model, Tokenizer, Options());
        var results = trainer.AddPairs([HumanPair("", "q:", "a", "b", false), HumanPair("same", "q:", "a", "a", false), HumanPair("ok", "q:", "a", "b", false)]);
        Assert.Equal(LabelRoute.Rejected, results[0].Route);
        Assert.Contains("id", results[0].Problem);
        Assert.Equal(LabelRoute.Rejected, results[1].Route);
        Assert.Contains("same text", results[1].Problem);
        Assert.NotEqual(LabelRoute.Rejected, results[2].Route);
        Assert.NotNull(results[2].Agreed);
        Assert.Equal(2, trainer.Counters.Rejected);
    }

    [Fact]
    public void Save_load_continue_equals_an_uninterrupted_run()
    {
        using var scope = NewDisposeScope();
        var directory = ModelTestSupport.TempDirectory("reward-state");
        var options = Options() with { EvaluateEvery = 3 };
        using var modelA = Model();
        using var trainerA = new RewardTrainer(modelA, Tokenizer, options);
        trainerA.AddPairs(ToyPairs(150, seed: 9));
        trainerA.AddRating(new Rating { Id = "r", Prompt = "q:", Completion = "abc", Value = 0.7 });
        trainerA.Train();
        var tensors = Path.Combine(directory, RewardTrainer.StateTensorsFileName);
        var json = Path.Combine(directory, RewardTrainer.StateJsonFileName);
        using (var state = trainerA.ExportState()) state.Save(tensors, json);
        var saved = modelA.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone().DetachFromDisposeScope());
        var later = ToyPairs(150, seed: 10, firstId: 1000);
        trainerA.AddPairs(later);
        trainerA.Train(flush: true);

        using var modelB = Model(seed: 99);
        StateDicts.Load(modelB, saved);
        using var trainerB = new RewardTrainer(modelB, Tokenizer, options);
        using (var loaded = TrainingState.Load(tensors, json)) trainerB.ImportState(loaded);
        Assert.Equal(trainerA.HeldOutPairCount - later.Count(p => HeldOutSplit.IsHeldOut(p.Id, 0.2)), trainerB.HeldOutPairCount);
        trainerB.AddPairs(later);
        trainerB.Train(flush: true);

        Assert.Equal(TensorBytes(modelA.state_dict()), TensorBytes(modelB.state_dict()));
        Assert.Equal(trainerA.Counters, trainerB.Counters);
        Assert.Equal(trainerA.HeldOut, trainerB.HeldOut);
        Assert.Equal(trainerA.WindowCount, trainerB.WindowCount);
        foreach (var t in saved.Values) t.Dispose();
    }
}
