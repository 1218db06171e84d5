using Confluent.Kafka;
using PrefOnline.IntegrationTests.Process;
using PrefOnline.IntegrationTests.Streaming;
using PrefOnline.Streaming.Contracts;
using PrefOnline.MockKafka;
using Xunit.Abstractions;
using static PrefOnline.IntegrationTests.Worker.WorkerCluster;

namespace PrefOnline.IntegrationTests.Worker;

/// <summary>
/// Committed offsets catch up with the latest checkpoint after commits failed, even when no new input
/// arrives to cause another checkpoint (the group's committed offsets are what Kafka tooling and the
/// consumer group see: they must not stay behind indefinitely after a broker blip).
/// </summary>
[Collection(KafkaCollection.Name)]
public sealed class WorkerCommitRetryTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Deadline = WorkerEndToEndTests.Deadline;

    [Fact]
    public async Task Offsets_whose_commit_failed_are_committed_later_without_new_input()
    {
        await using var cluster = WorkerCluster.Start();
        // Every offset commit is refused (a permanent error: librdkafka does not retry it by itself) until cleared.
        cluster.Cluster.PushRequestErrors(KafkaApiKey.OffsetCommit, Enumerable.Repeat(ErrorCode.GroupAuthorizationFailed, 10_000).ToArray());
        await using var worker = await WorkerUnderTest.StartAsync(cluster, output);
        await using var rollouts = new TopicTail(cluster.BootstrapServers, Rollouts, InputPartitions);
        await worker.WaitReadyAsync(Deadline);
        var labeler = new RolloutLabeler(cluster, rollouts, samplesPerPrompt: 2);
        await using var stop = new BackgroundLoops();
        var labelling = stop.Start(labeler.RunAsync);
        for (var i = 0; i < 8; i++)
            cluster.Produce(Prompts, i % InputPartitions, new PromptRecord($"commit-prompt-{i:D3}", WorkerEndToEndTests.Questions[i % WorkerEndToEndTests.Questions.Length]));
        await cluster.FlushAsync(Deadline);
        await rollouts.WaitForAsync(r => r.Count >= 16, Deadline, "rollouts for all 8 prompts");
        await stop.CancelAsync();
        await labelling;
        labeler.LabelNew();
        await cluster.FlushAsync(Deadline);

        // Everything absorbed into a checkpoint, nothing committed (every commit refused).
        var ends = new Dictionary<string, IReadOnlyDictionary<int, long>> { [Prompts] = cluster.EndOffsets(Prompts, InputPartitions), [Feedback] = cluster.EndOffsets(Feedback, InputPartitions) };
        await Poll.UntilAsync(async () =>
        {
            worker.AssertRunning();
            var latest = worker.Latest() is { } v ? (await worker.ManifestsAsync())[v] : null;
            return latest is not null && ends.All(t => t.Value.All(p => WorkerEndToEndTests.Offset(latest, t.Key, p.Key) == p.Value));
        }, Deadline, "the worker absorbing every prompt and label into a checkpoint");
        Assert.All(cluster.Committed(WorkerUnderTest.FeedbackGroup, Feedback, InputPartitions).Values, c => Assert.Null(c));

        // Idle: the last labelled groups scored and trained on, no checkpoint for 4 s (four checkpoint intervals,
        // two update intervals): from here on nothing would write another checkpoint by itself.
        var quietSince = DateTime.UtcNow;
        var lastVersion = worker.Latest();
        await Poll.UntilAsync(() =>
        {
            if (worker.Latest() != lastVersion) (lastVersion, quietSince) = (worker.Latest(), DateTime.UtcNow);
            return DateTime.UtcNow - quietSince >= TimeSpan.FromSeconds(4);
        }, Deadline, "the worker going idle (no checkpoint for 4 s)");

        // Commits accepted again; no new input: the committed offsets must still reach the checkpoint's.
        cluster.Cluster.ClearRequestErrors(KafkaApiKey.OffsetCommit);
        string GroupOf(string topic) => topic == Prompts ? WorkerUnderTest.PromptGroup : WorkerUnderTest.FeedbackGroup;
        await Poll.UntilAsync(() =>
        {
            worker.AssertRunning();
            return ends.All(t =>
            {
                var committed = cluster.Committed(GroupOf(t.Key), t.Key, InputPartitions);
                return t.Value.All(p => committed[p.Key] == p.Value);
            });
        }, TimeSpan.FromSeconds(20), // many checkpoint intervals (1 s)
            "committed offsets catching up with the latest checkpoint after commits were accepted again",
            () => string.Join("; ", ends.Keys.Select(t => $"{t}: {string.Join(",", cluster.Committed(GroupOf(t), t, InputPartitions).Select(c => $"{c.Key}={c.Value?.ToString() ?? "none"}"))}")));
    }
}
