using PrefOnline.Streaming.Contracts;
using PrefOnline.Streaming.Embedded;
using PrefOnline.Streaming.Simulation;
using PrefOnline.Streaming.Tests.Support;
using PrefOnline.Streaming.Transport;
using PrefOnline.Streaming.Validation;

namespace PrefOnline.Streaming.Tests.Simulation;

public sealed class SimulatedUsersTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    /// <summary>A stand-in generator: answers every prompt with K rollouts of given lengths, tagged with a policy version.</summary>
    private static async Task AnswerPromptsAsync(EmbeddedBroker broker, int k, Func<long> policyVersion, CancellationToken cancellationToken)
    {
        var sink = broker.CreateSink();
        var validator = new RecordValidator(new ValidationLimits(), SchemaNames.PromptTopic);
        await using var prompts = broker.Subscribe(new EmbeddedSourceOptions { GroupId = "generator", Topics = { "prefonline.prompts" } }, new OffsetTracker());
        await foreach (var record in prompts.Records.ReadAllAsync(cancellationToken))
        {
            var prompt = (PromptRecord)validator.Validate(record).Record!;
            for (var i = 0; i < k; i++)
            {
                var rollout = new RolloutRecord($"{prompt.Id}-r{i}", prompt.Id, prompt.Prompt, new string('x', 4 + 6 * i), policyVersion(), -3.5);
                await sink.ProduceAsync(new OutgoingRecord("prefonline.rollouts", System.Text.Encoding.UTF8.GetBytes(prompt.Id), RecordSerializer.Serialize(rollout)), cancellationToken);
            }
        }
    }

    private static EmbeddedBroker Broker()
    {
        var broker = new EmbeddedBroker();
        broker.CreateTopic("prefonline.prompts", 2);
        broker.CreateTopic("prefonline.rollouts", 2);
        broker.CreateTopic("prefonline.feedback", 1);
        return broker;
    }

    [Fact]
    public async Task Users_produce_prompts_and_label_the_rollouts_they_see_with_valid_joinable_records()
    {
        var broker = Broker();
        var options = new SimulatedUsersOptions { Preference = "shorter", PromptsPerSecond = 200, MaxPrompts = 40, RunId = "t1", Temperature = 0, LabelMode = LabelMode.Both };
        var users = new SimulatedUsers(options, broker.CreateSink(),
            resume => broker.Subscribe(new EmbeddedSourceOptions { GroupId = "users", Topics = { "prefonline.rollouts" } }, resume));
        using var cts = new CancellationTokenSource(Timeout);
        var generator = AnswerPromptsAsync(broker, 4, () => 0, cts.Token);
        var run = users.RunAsync(cts.Token);

        var feedbackValidator = new RecordValidator(new ValidationLimits(), SchemaNames.FeedbackTopic);
        await using var feedback = broker.Subscribe(new EmbeddedSourceOptions { GroupId = "worker", Topics = { "prefonline.feedback" } }, new OffsetTracker());
        var labels = (await Eventually.ReadAsync(feedback.Records, 40 * 5, Timeout)).Select(r => feedbackValidator.Validate(r)).ToArray();
        await cts.CancelAsync();
        await run;

        Assert.All(labels, l => Assert.True(l.IsValid, l.Failure?.ToString()));
        var pairs = labels.Select(l => l.Record).OfType<PreferenceRecord>().ToArray();
        var ratings = labels.Select(l => l.Record).OfType<RatingRecord>().ToArray();
        Assert.Equal(40, pairs.Length);
        Assert.Equal(160, ratings.Length);
        // Temperature 0, shorter preferred: the chosen completion is always the shorter one.
        Assert.All(pairs, p => Assert.True(p.Chosen.Length < p.Rejected.Length));
        Assert.All(pairs, p => Assert.StartsWith("sim-t1-p-", p.RolloutIds!.Chosen));
        var stats = users.GetStatistics();
        Assert.Equal(40, stats.PromptsProduced);
        Assert.Equal(160, stats.RolloutsSeen);
        Assert.Equal(40, stats.PairsProduced);
        // Mean of U = −len/8 over lengths 4, 10, 16, 22.
        Assert.Equal(-(4 + 10 + 16 + 22) / 4.0 / 8, stats.UtilityByPolicyVersion[0].Mean, 9);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => generator);
    }

    [Fact]
    public async Task The_preference_shifts_after_the_configured_number_of_labels()
    {
        var broker = Broker();
        var options = new SimulatedUsersOptions { Preference = "shorter", PromptsPerSecond = 500, MaxPrompts = 60, RunId = "t2", Temperature = 0, ShiftAfterLabels = 30, GroupSize = 2 };
        var users = new SimulatedUsers(options, broker.CreateSink(),
            resume => broker.Subscribe(new EmbeddedSourceOptions { GroupId = "users", Topics = { "prefonline.rollouts" } }, resume));
        using var cts = new CancellationTokenSource(Timeout);
        var generator = AnswerPromptsAsync(broker, 2, () => 0, cts.Token);
        var run = users.RunAsync(cts.Token);

        var validator = new RecordValidator(new ValidationLimits(), SchemaNames.FeedbackTopic);
        await using var feedback = broker.Subscribe(new EmbeddedSourceOptions { GroupId = "worker", Topics = { "prefonline.feedback" } }, new OffsetTracker());
        var pairs = (await Eventually.ReadAsync(feedback.Records, 60, Timeout)).Select(r => (PreferenceRecord)validator.Validate(r).Record!).ToArray();
        await cts.CancelAsync();
        await run;

        Assert.All(pairs.Take(30), p => Assert.True(p.Chosen.Length < p.Rejected.Length));
        Assert.All(pairs.Skip(30), p => Assert.True(p.Chosen.Length > p.Rejected.Length));
        Assert.True(users.GetStatistics().PreferenceShifted);
        Assert.StartsWith("reverse of shorter", users.CurrentPreference.Description);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => generator);
    }

    [Fact]
    public async Task Utility_is_tracked_per_policy_version_so_the_demo_can_show_before_and_after()
    {
        var broker = Broker();
        var answered = 0L;
        var options = new SimulatedUsersOptions { Preference = "shorter", PromptsPerSecond = 500, MaxPrompts = 20, RunId = "t3", GroupSize = 4 };
        var users = new SimulatedUsers(options, broker.CreateSink(),
            resume => broker.Subscribe(new EmbeddedSourceOptions { GroupId = "users", Topics = { "prefonline.rollouts" } }, resume));
        using var cts = new CancellationTokenSource(Timeout);
        // The first 40 rollouts come from policy version 0, the next 40 from version 1.
        var generator = AnswerPromptsAsync(broker, 4, () => Interlocked.Increment(ref answered) <= 40 ? 0 : 1, cts.Token);
        var run = users.RunAsync(cts.Token);
        await Eventually.TrueAsync(() => users.GetStatistics().RolloutsSeen >= 80, Timeout, "80 rollouts seen");
        await cts.CancelAsync();
        await run;
        var stats = users.GetStatistics();
        Assert.Equal(40, stats.UtilityByPolicyVersion[0].Count);
        Assert.Equal(40, stats.UtilityByPolicyVersion[1].Count);
        Assert.Equal(80, stats.UtilityByPolicyVersion.Values.Sum(v => v.Count));
        Assert.NotNull(stats.RecentMeanUtility);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => generator);
    }
}
