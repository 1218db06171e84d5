using System.Diagnostics;
using System.Globalization;
using System.Net;
using PrefOnline.IntegrationTests.Process;
using Microsoft.Extensions.DependencyInjection;
using PrefOnline.IntegrationTests.Streaming;
using PrefOnline.Learning.Guardrails;
using PrefOnline.Learning.Models.Checkpoints;
using PrefOnline.Streaming.Contracts;
using PrefOnline.Streaming.DeadLetters;
using PrefOnline.Streaming.Simulation;
using PrefOnline.Streaming.Validation;
using PrefOnline.Tensors;
using PrefOnline.Worker.Checkpoints;
using PrefOnline.Worker.Demo;
using PrefOnline.Worker.Guardrails;
using PrefOnline.Worker.Hosting;
using PrefOnline.Worker.Pipeline;
using Xunit.Abstractions;
using static PrefOnline.IntegrationTests.Worker.WorkerCluster;

namespace PrefOnline.IntegrationTests.Worker;

/// <summary>
/// Issue 11 item 9, as the user found it, on the mock cluster: users reverse their preference while the worker
/// learns (role all, the guardrail's Rollback action). The drift guardrail trips once and rolls back to a recent
/// <c>good</c> (not the first version); none of the users' labels is dead-lettered (the regenerated completions
/// carry new rollout ids); the labels read again after the rollback are absorbed once more by the restored state
/// but do not trip the detector a second time; learning resumes, and the users' reward under their new preference
/// recovers. The label audit of the final lineage shows every label exactly once.
/// </summary>
[Collection(KafkaCollection.Name)]
public sealed class WorkerPreferenceReversalTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromMinutes(3);
    private static readonly string[] Letters = ["a:", "b:", "c:", "d:", "e:", "f:", "g:", "h:"];

    /// <summary>How much the users' mean reward (nats, new preference) must rise after the rollback over its level right after it.</summary>
    private const double Recovery = 0.5;

    [Fact]
    public async Task Users_reversing_their_preference_trip_the_guardrail_once_lose_no_label_and_learning_recovers_on_the_new_preference()
    {
        var clock = Stopwatch.StartNew();
        await using var cluster = WorkerCluster.Start();
        await using var worker = await WorkerUnderTest.StartAsync(cluster, output, Settings(), initialPolicy: DemoPolicyAsync);
        await using var rollouts = new TopicTail(cluster.BootstrapServers, Rollouts, InputPartitions);
        await using var deadLetters = new TopicTail(cluster.BootstrapServers, DeadLetter, 1);
        await worker.WaitReadyAsync(Deadline);
        var guardrail = worker.App.Services.GetRequiredService<GuardrailHolder>().Current ?? throw new InvalidOperationException("no guardrail");
        var reader = new CheckpointReader(worker.CheckpointDirectory);
        var startedAt = clock.Elapsed;

        var users = new ReversingUsers(cluster, rollouts);
        await using var stop = new BackgroundLoops();
        var asking = stop.Start(t => cluster.AskAsync("rev-p", Letters, TimeSpan.FromMilliseconds(165), t)); // 6 a second
        var labelling = stop.Start(users.RunAsync);

        // Before: users like longer answers. Reverse once the human-rating detector has a baseline and `good` has
        // advanced past the first version (a rollback must cost minutes, not the run).
        await Until(() => guardrail.Status is { HumanDetectorArmed: true, GoodVersion: > 3 }, worker, "the human-rating detector armed and good past v3");
        var goodAtShift = guardrail.Status.GoodVersion!.Value;
        var shiftAt = clock.Elapsed;
        users.Reverse();
        output.WriteLine($"{shiftAt.TotalSeconds:0.0} s: users reverse their preference (good v{goodAtShift}, policy v{(long)(await worker.MetricAsync("prefonline_policy_version"))!})");

        // The trip and the rollback, to a recent good version.
        await Until(() => reader.ReadEvents().Any(e => e.Kind == CheckpointEventKind.Rollback), worker, "the guardrail's rollback");
        var rollback = reader.ReadEvents().Single(e => e.Kind == CheckpointEventKind.Rollback);
        var rolledBackAt = clock.Elapsed;
        output.WriteLine($"{rolledBackAt.TotalSeconds:0.0} s: rolled back v{rollback.From} -> v{rollback.To}: {rollback.Reason}");
        Assert.StartsWith("guardrail: drift_human", rollback.Reason);
        Assert.True(rollback.To >= goodAtShift, $"rolled back to v{rollback.To}, older than good v{goodAtShift} at the shift");
        var mark = users.MarkRollback();

        // After: learning resumes on the new line and the users' reward under their new preference recovers.
        double early = double.NaN, late = double.NaN;
        await Until(() =>
        {
            (early, late) = users.RewardAfter(mark);
            return late >= early + Recovery;
        }, worker, $"the users' mean reward after the rollback rising by {Recovery} nats", () => $"first 32 rollouts after the rollback {early:0.###}, last 32 {late:0.###}");
        var recoveredAt = clock.Elapsed;
        output.WriteLine($"{recoveredAt.TotalSeconds:0.0} s: users' reward {early:0.###} right after the rollback -> {late:0.###} (new preference: shorter)");

        await stop.CancelAsync();
        await asking;
        await labelling;
        users.LabelNew();
        await cluster.FlushAsync(Deadline);
        var feedbackEnds = cluster.EndOffsets(Feedback, InputPartitions);
        await UntilAsync(async () => worker.Latest() is { } v && (await worker.ManifestsAsync())[v] is var m && feedbackEnds.All(e => WorkerEndToEndTests.Offset(m, Feedback, e.Key) == e.Value),
            worker, "a checkpoint holding every label");

        // One trip, one rollback, never paused; ready; the policy moved on past the abandoned line.
        var status = guardrail.Status;
        Assert.Equal(1, status.Trips.Values.Sum());
        Assert.Equal(1, status.Trips[GuardrailChecks.HumanRatingDrift]);
        Assert.Equal(1, await worker.MetricAsync("prefonline_rollbacks_total"));
        Assert.Equal(0, await worker.MetricAsync("prefonline_guardrail_paused"));
        Assert.False(status.UpdatesPaused);
        Assert.Equal(HttpStatusCode.OK, (await worker.ReadinessAsync()).Status);
        Assert.True(await worker.MetricAsync("prefonline_policy_version") > rollback.From, "no update after the rollback");
        Assert.True(status.GoodVersion > rollback.From, $"good v{status.GoodVersion} did not advance on the new line");

        // None of the users' labels was dead-lettered (the regenerated completions carry new rollout ids), and
        // every rollout id is unique.
        Assert.DoesNotContain(deadLetters.Records, r => DeadLetterHeader(r, DeadLetterHeaders.SourceTopic) == Feedback);
        Assert.Equal(users.Rollouts.Count, users.Rollouts.Select(r => r.Id).Distinct().Count());

        // Every label exactly once on the final lineage — including the ones the abandoned line had absorbed, read
        // again and absorbed by the restored state (the replay the detector did not judge a second time).
        var audit = await worker.AuditChainAsync();
        Assert.Equal(users.Produced.Order(StringComparer.Ordinal), audit.Select(a => a.Id).Order(StringComparer.Ordinal));
        var manifests = await worker.ManifestsAsync();
        var abandoned = await reader.AbandonedVersionsAsync();
        var absorbedByAbandoned = abandoned.Where(manifests.ContainsKey)
            .SelectMany(v => File.Exists(Path.Combine(worker.CheckpointDirectory, CheckpointVersion.DirectoryName(v), LabelAudit.FileName))
                ? LabelAudit.Parse(File.ReadAllText(Path.Combine(worker.CheckpointDirectory, CheckpointVersion.DirectoryName(v), LabelAudit.FileName)))
                : []).Select(a => a.Id).ToHashSet(StringComparer.Ordinal);
        Assert.NotEmpty(absorbedByAbandoned);
        Assert.All(absorbedByAbandoned, id => Assert.Contains(id, audit.Select(a => a.Id)));

        await worker.StopAsync();
        Assert.Equal(ExitStatus.Success, worker.Exit.Code);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"timeline: worker ready {startedAt.TotalSeconds:0.0} s, shift {shiftAt.TotalSeconds:0.0} s, rollback {rolledBackAt.TotalSeconds:0.0} s (v{rollback.From} -> v{rollback.To}), recovered {recoveredAt.TotalSeconds:0.0} s, total {clock.Elapsed.TotalSeconds:0.0} s; {users.Produced.Count} labels, {absorbedByAbandoned.Count} of them absorbed again after the rollback"));
    }

    /// <summary>The demo's fast learning setup on the harness's short intervals; the guardrail rolls back on human-rating drift.</summary>
    private static Dictionary<string, string?> Settings() => new()
    {
        ["Guardrails:Action"] = "Rollback",
        ["Guardrails:KlBudget"] = "1e9",
        ["Guardrails:AccuracyFloor"] = "0",
        ["Guardrails:HumanRating:Cusum:WarmUp"] = "30",
        ["Generation:MaxNewTokens"] = "24",
        ["Generation:MaxPromptsPerBatch"] = "8",
        ["Learner:UpdateEverySamples"] = "16",
        ["Learner:BatchSize"] = "32",
        ["Learner:LearningRate"] = "3e-4",
        ["Learner:MaxSamplesAhead"] = "96",
        ["Scoring:LabelWait"] = "00:00:01",
    };

    /// <summary>The embedded demo's initial policy (a tiny GPT-2 fitted on alphabet answers of ~12 letters), with a short fit.</summary>
    private static async Task DemoPolicyAsync(string directory)
    {
        using var thread = new TensorThread("it-demo-policy", 1);
        await thread.RunAsync(() =>
        {
            var (policy, tokenizer) = new DemoPolicySource(new DemoPolicyOptions { FitSteps = 60, FitBatch = 32, Seed = 1 }).Create(CancellationToken.None);
            using (policy) PolicyCheckpoint.Save(directory, policy, tokenizer);
        }, CancellationToken.None);
    }

    private static string? DeadLetterHeader(Confluent.Kafka.ConsumeResult<byte[], byte[]> record, string name) =>
        record.Message.Headers.TryGetLastBytes(name, out var bytes) ? System.Text.Encoding.UTF8.GetString(bytes) : null;

    private static Task Until(Func<bool> condition, WorkerUnderTest worker, string what, Func<string>? detail = null) =>
        UntilAsync(() => Task.FromResult(condition()), worker, what, detail);

    /// <summary>Polls <paramref name="condition"/> against <see cref="Deadline"/>, failing at once if the worker stopped by itself.</summary>
    private static Task UntilAsync(Func<Task<bool>> condition, WorkerUnderTest worker, string what, Func<string>? detail = null) =>
        Poll.UntilAsync(async () =>
        {
            if (await condition()) return true;
            worker.AssertRunning();
            return false;
        }, Deadline, what, detail);

    /// <summary>
    /// Users who rate every rollout (reward = utility + N(0, 0.5²), <see cref="SimulatedLabeler"/>) as soon as both
    /// samples of a prompt are on the rollouts topic (<see cref="RolloutLabeler"/>): first they prefer longer answers,
    /// after <see cref="Reverse"/> shorter ones. Keeps each rated rollout's utility under the new preference, in the
    /// order they were rated.
    /// </summary>
    private sealed class ReversingUsers
    {
        private readonly SimulatedLabeler labeler = new(new SimulatedUsersOptions { LabelMode = LabelMode.Ratings, RatingNoiseStd = 0.5 }, seed: 23, idPrefix: "rev");
        private readonly IHiddenPreference longer = new LengthPreference(preferShorter: false);
        private readonly IHiddenPreference shorter = new LengthPreference(preferShorter: true);
        private readonly List<double> newUtility = [];
        private readonly RolloutLabeler users;
        private volatile bool reversed;

        public ReversingUsers(WorkerCluster cluster, TopicTail rollouts) =>
            users = new RolloutLabeler(cluster, rollouts, samplesPerPrompt: 2, group =>
            {
                lock (newUtility) newUtility.AddRange(group.Select(r => shorter.Utility(r.Prompt, r.Completion)));
                return labeler.Label(group, reversed ? shorter : longer);
            });

        public IReadOnlyList<RolloutRecord> Rollouts => users.Rollouts;

        public IReadOnlyList<string> Produced => users.Produced;

        public void Reverse() => reversed = true;

        /// <summary>Where the rollouts seen from now on begin (after the rollback).</summary>
        public int MarkRollback()
        {
            lock (newUtility) return newUtility.Count;
        }

        /// <summary>Mean utility under the new preference of the first and of the last 32 rollouts after <paramref name="mark"/> (NaN until 64 arrived).</summary>
        public (double First, double Last) RewardAfter(int mark)
        {
            lock (newUtility)
            {
                var after = newUtility.Skip(mark).ToList();
                return after.Count < 64 ? (double.NaN, double.NaN) : (after.Take(32).Average(), after.TakeLast(32).Average());
            }
        }

        public Task RunAsync(CancellationToken stop) => users.RunAsync(stop);

        public void LabelNew() => users.LabelNew();
    }
}
