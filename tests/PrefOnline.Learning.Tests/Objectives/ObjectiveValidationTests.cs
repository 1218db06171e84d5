using PrefOnline.Learning.Objectives;
using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Tests.Objectives;

/// <summary>Options fail at construction with the field named; missing inputs fail with what is needed and why.</summary>
public sealed class ObjectiveValidationTests
{
    [Fact]
    public void Unknown_objective_lists_every_valid_name()
    {
        var e = Assert.Throws<ArgumentException>(() => new TrainingObjective(new() { Name = "dpoo" }));
        Assert.Contains("'dpoo'", e.Message);
        foreach (var name in ObjectiveNames.All) Assert.Contains(name, e.Message);
    }

    [Theory]
    [InlineData(ObjectiveNames.Dpo, "Beta")]
    [InlineData(ObjectiveNames.Ipo, "Beta")]
    public void Non_positive_beta_is_rejected(string name, string field)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new TrainingObjective(new() { Name = name, Beta = 0 }));
        Assert.Equal(field, e.ParamName);
    }

    [Fact]
    public void Label_smoothing_belongs_to_cdpo_only()
    {
        Assert.Throws<ArgumentException>(() => new TrainingObjective(new() { Name = ObjectiveNames.Dpo, LabelSmoothing = 0.1 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TrainingObjective(new() { Name = ObjectiveNames.ConservativeDpo }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TrainingObjective(new() { Name = ObjectiveNames.ConservativeDpo, LabelSmoothing = 0.5 }));
        _ = new TrainingObjective(new() { Name = ObjectiveNames.ConservativeDpo, LabelSmoothing = 0.2 });
    }

    [Fact]
    public void Other_ranges_are_checked()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new TrainingObjective(new() { Name = ObjectiveNames.Ppo, PpoClipRange = 1 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TrainingObjective(new() { Name = ObjectiveNames.Rwr, RwrTemperature = double.PositiveInfinity }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TrainingObjective(new() { Name = ObjectiveNames.Rwr, RwrMaxWeight = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TrainingObjective(new() { Name = ObjectiveNames.NegativeGradientSft, NegativeWeight = -1 }));
        Assert.Throws<ArgumentException>(() => new TrainingObjective(new() { KlEstimator = (KlEstimator)9 }));
    }

    [Fact]
    public void Missing_inputs_say_what_is_needed()
    {
        using var scope = NewDisposeScope();
        var policy = tensor(new[] { -1.0, -2.0 });
        var pairs = tensor(new long[] { 0, 1 }, [1, 2]);
        var e = Assert.Throws<ArgumentException>(() => new TrainingObjective(new() { Name = ObjectiveNames.Dpo }).Compute(new() { PolicyLogProbs = policy, Pairs = pairs }));
        Assert.Contains("ReferenceLogProbs", e.Message);
        e = Assert.Throws<ArgumentException>(() => new TrainingObjective(new() { Name = ObjectiveNames.Ppo }).Compute(new() { PolicyLogProbs = policy, Advantages = policy }));
        Assert.Contains("BehaviourLogProbs", e.Message);
        e = Assert.Throws<ArgumentException>(() => new TrainingObjective(new() { Name = ObjectiveNames.Ipo }).Compute(new() { PolicyLogProbs = policy, ReferenceLogProbs = policy }));
        Assert.Contains("Pairs", e.Message);
        e = Assert.Throws<ArgumentException>(() => new TrainingObjective(new() { Name = ObjectiveNames.Sft }).Compute(new() { PolicyLogProbs = policy }, klCoefficient: 0.1));
        Assert.Contains("KL penalty", e.Message);
        e = Assert.Throws<ArgumentException>(() => new TrainingObjective(new() { Name = ObjectiveNames.Reinforce })
            .Compute(new() { PolicyLogProbs = policy, Advantages = tensor(new[] { 1.0, 2.0, 3.0 }) }));
        Assert.Contains("(2,)", e.Message);
        e = Assert.Throws<ArgumentException>(() => new TrainingObjective(new() { Name = ObjectiveNames.BestOfN })
            .Compute(new() { PolicyLogProbs = policy, Pairs = tensor(new[] { 0.0, 1.0 }, [1, 2]) }));
        Assert.Contains("int64", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new TrainingObjective(new() { Name = ObjectiveNames.Sft }).Compute(new() { PolicyLogProbs = policy }, klCoefficient: double.NaN));
    }

    [Fact]
    public void Needs_flags_tell_the_learner_what_to_compute()
    {
        Assert.True(new TrainingObjective(new() { Name = ObjectiveNames.Dpo }).NeedsReference);
        Assert.False(new TrainingObjective(new() { Name = ObjectiveNames.BestOfN }).NeedsReference);
        Assert.True(new TrainingObjective(new() { Name = ObjectiveNames.Ppo }).NeedsBehaviour);
        Assert.True(new TrainingObjective(new() { Name = ObjectiveNames.Ppo }).NeedsAdvantages);
        Assert.True(new TrainingObjective(new() { Name = ObjectiveNames.Rwr }).NeedsRewards);
        Assert.False(new TrainingObjective(new() { Name = ObjectiveNames.Sft }).NeedsPairs);
    }

    [Fact]
    public void Every_catalogue_entry_is_complete_and_computes_from_exactly_what_it_declares()
    {
        Assert.Equal(ObjectiveCatalog.Names.Count, ObjectiveCatalog.Names.Distinct(StringComparer.Ordinal).Count());
        using var scope = NewDisposeScope();
        var policy = tensor(new[] { -1.0f, -2.0f, -1.5f, -3.0f }).requires_grad_();
        foreach (var d in ObjectiveCatalog.All)
        {
            Assert.True(d.PairLoss is not null || d.SequenceLoss is not null, $"{d.Name} has no loss");
            Assert.False(string.IsNullOrWhiteSpace(d.Formula));
            if (d.Reads(ObjectiveInput.Pairs)) Assert.True(d.Pairwise, $"{d.Name} requires pairs but is not pairwise");
            foreach (var field in d.Hyperparameters) Assert.NotNull(typeof(ObjectiveOptions).GetProperty(field));
            // Built from its declared needs only, every objective gives a finite loss that back-propagates.
            var inputs = new ObjectiveInputs
            {
                PolicyLogProbs = policy,
                ReferenceLogProbs = d.Reads(ObjectiveInput.Reference) ? tensor(new[] { -1.2f, -1.8f, -1.5f, -2.5f }) : null,
                BehaviourLogProbs = d.Reads(ObjectiveInput.Behaviour) ? tensor(new[] { -1.1f, -2.1f, -1.4f, -2.9f }) : null,
                Advantages = d.Reads(ObjectiveInput.Advantages) ? tensor(new[] { 1.0f, -1.0f, 0.5f, -0.5f }) : null,
                Rewards = d.Reads(ObjectiveInput.Rewards) ? tensor(new[] { 1.0f, 0.0f, 2.0f, -1.0f }) : null,
                Pairs = d.Reads(ObjectiveInput.Pairs) ? tensor(new long[] { 0, 1, 2, 3 }, [2, 2]) : null,
            };
            var options = new ObjectiveOptions { Name = d.Name, LabelSmoothing = d.Hyperparameters.Contains(nameof(ObjectiveOptions.LabelSmoothing)) ? 0.1 : 0 };
            var result = new TrainingObjective(options).Compute(inputs);
            Assert.True(double.IsFinite(result.Loss.ToDouble()), d.Name);
            result.Loss.backward();
            Assert.NotNull(policy.grad);
            policy.grad!.zero_();
        }
    }
}
