using System.Net;
using Microsoft.Extensions.DependencyInjection;
using PrefOnline.IntegrationTests.Process;
using PrefOnline.IntegrationTests.Streaming;
using PrefOnline.Streaming.Contracts;
using PrefOnline.Worker.Checkpoints;
using PrefOnline.Worker.Hosting;
using PrefOnline.Worker.Tests.Checkpoints;
using Xunit.Abstractions;
using static PrefOnline.IntegrationTests.Worker.WorkerCluster;

namespace PrefOnline.IntegrationTests.Worker;

/// <summary>
/// Issue 11 items 3, 4 and 8 on the whole worker (role all, mock Kafka cluster): the checkpoint store's state
/// machine under a full volume, an operator's rollback below <c>good</c> while the learner runs, and a store
/// left inconsistent at start.
/// </summary>
[Collection(KafkaCollection.Name)]
public sealed class WorkerCheckpointStateTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Deadline = WorkerEndToEndTests.Deadline;

    [Fact]
    public async Task A_full_checkpoint_volume_never_stops_the_learner_readyz_says_why_retention_makes_room_and_checkpoints_resume_when_space_is_back()
    {
        var root = NewRoot();
        try
        {
            await using var cluster = WorkerCluster.Start();
            var checkpoints = Path.Combine(root, "checkpoints");
            var disk = new SimulatedFullDisk(checkpoints);
            var retry = new CheckpointOptions { Directory = checkpoints, RetryCount = 1, RetryBaseDelay = TimeSpan.Zero, RetryMaxDelay = TimeSpan.Zero };
            await using var worker = await WorkerUnderTest.StartAsync(cluster, output, root: root,
                services: s => s.AddSingleton(new CheckpointIoPipeline(disk.Pipeline(retry))));
            await using var rollouts = new TopicTail(cluster.BootstrapServers, Rollouts, InputPartitions);
            await worker.WaitReadyAsync(Deadline);
            var labeler = new RolloutLabeler(cluster, rollouts, samplesPerPrompt: 2);
            await using var stop = new BackgroundLoops();
            var labelling = stop.Start(labeler.RunAsync);
            var asking = stop.Start(t => cluster.AskAsync("full-prompt-", WorkerEndToEndTests.Questions, TimeSpan.FromMilliseconds(250), t)); // 4 a second
            var reader = new CheckpointReader(checkpoints);

            // A: the volume holds only what is on it now. The next checkpoint finds no room, the store deletes the
            // oldest version nothing needs (KeepLast is 10,000 here), and the checkpoint succeeds: no failure at all.
            await Until(async () => reader.ListVersions().Count >= 4 && reader.ReadPointers().Good > 1 && await worker.MetricAsync("prefonline_updates_total") >= 2, worker, "four checkpoints and a good version past the first");
            // Waits for the deletion and a commit after it: a checkpoint in flight when the limit is set (or committed
            // just before) moves latest without needing room (clean-clone CI: no deletion by the time latest moved).
            disk.MaxVersions = reader.ListVersions().Count;
            List<CheckpointEvent> roomMade = [];
            await Until(() =>
            {
                static bool ForRoom(CheckpointEvent e) => e is { Kind: CheckpointEventKind.Delete } && e.Reason!.StartsWith("the device is full", StringComparison.Ordinal);
                var events = reader.ReadEvents().ToList();
                roomMade = events.Where(ForRoom).ToList();
                var firstForRoom = events.FindIndex(ForRoom);
                return Task.FromResult(firstForRoom >= 0 && events.Skip(firstForRoom).Any(e => e.Kind == CheckpointEventKind.Commit));
            }, worker, "a checkpoint on the full volume after retention made room");
            Assert.DoesNotContain(roomMade, e => e.Version == reader.ReadPointers().Good || e.Version == reader.ReadPointers().Latest);
            Assert.Equal(0, await worker.MetricAsync("prefonline_checkpoint_failures_total", ("reason", "out_of_space")));
            disk.MaxVersions = 0;

            // B: full for good. Checkpoints fail; the learner keeps learning and absorbing in memory; /readyz says why.
            disk.Full = true;
            var updatesAtFull = await worker.MetricAsync("prefonline_updates_total") ?? 0;
            var feedbackAtFull = await worker.MetricAsync("prefonline_messages_total", ("topic", Feedback), ("result", "ok")) ?? 0;
            await Until(async () =>
            {
                var (status, checks) = await worker.ReadinessAsync();
                return status == HttpStatusCode.ServiceUnavailable && checks.Any(c => c is { Name: "checkpoints", Healthy: false } && c.Reason.Contains("because the checkpoint volume is full", StringComparison.Ordinal));
            }, worker, "/readyz failing with the checkpoints reason");
            var latestWhileFull = reader.ReadPointers().Latest!.Value;
            await Until(async () => await worker.MetricAsync("prefonline_updates_total") >= updatesAtFull + 3
                                    && await worker.MetricAsync("prefonline_messages_total", ("topic", Feedback), ("result", "ok")) > feedbackAtFull + 8,
                worker, "updates and labels absorbed while no checkpoint can be written");
            worker.AssertRunning();
            Assert.Equal(HttpStatusCode.OK, await worker.LivenessAsync());
            Assert.Equal(latestWhileFull, reader.ReadPointers().Latest);
            Assert.True(await worker.MetricAsync("prefonline_checkpoint_failures_total", ("reason", "out_of_space")) >= 1);
            Assert.True(disk.Refused >= 2);

            // C: space is back: the next checkpoint holds everything learned meanwhile, readiness returns.
            disk.Full = false;
            await Until(async () => (await worker.ReadinessAsync()).Status == HttpStatusCode.OK && reader.ReadPointers().Latest > latestWhileFull, worker, "a checkpoint and readiness once space is back");
            await stop.CancelAsync();
            await asking;
            await labelling;
            labeler.LabelNew();
            await cluster.FlushAsync(Deadline);
            var feedbackEnds = cluster.EndOffsets(Feedback, InputPartitions);
            await Until(async () =>
            {
                var latest = (await worker.LatestManifestAsync());
                return feedbackEnds.All(e => WorkerEndToEndTests.Offset(latest, Feedback, e.Key) == e.Value);
            }, worker, "a checkpoint that absorbed every label");
            await worker.StopAsync();
            Assert.Equal(ExitStatus.Success, worker.Exit.Code);

            // Every label absorbed exactly once (the state's own count; the audit chain lost the versions deleted for room).
            var final = (await worker.LatestManifestAsync());
            Assert.Equal(labeler.Produced.Count, (int)final.Metrics["labels_absorbed"]);
            var committed = cluster.Committed(WorkerUnderTest.FeedbackGroup, Feedback, InputPartitions);
            Assert.All(feedbackEnds, e => Assert.Equal(e.Value, committed[e.Key]));
        }
        finally
        {
            WorkerUnderTest.DeleteRoot(root);
        }
    }

    [Fact]
    public async Task An_operator_rollback_below_good_while_learning_moves_good_back_and_a_store_that_lost_its_newest_versions_resumes_on_goods_line_and_says_so()
    {
        var root = NewRoot();
        try
        {
            await using var cluster = WorkerCluster.Start();
            var checkpoints = Path.Combine(root, "checkpoints");
            var reader = new CheckpointReader(checkpoints);
            long target, abandonedHead;
            await using (var worker = await WorkerUnderTest.StartAsync(cluster, output, root: root))
            {
                await using var rollouts = new TopicTail(cluster.BootstrapServers, Rollouts, InputPartitions);
                await worker.WaitReadyAsync(Deadline);
                var labeler = new RolloutLabeler(cluster, rollouts, samplesPerPrompt: 2);
                await using var stop = new BackgroundLoops();
                var labelling = stop.Start(labeler.RunAsync);
                var asking = stop.Start(t => cluster.AskAsync("rollback-prompt-", WorkerEndToEndTests.Questions, TimeSpan.FromMilliseconds(250), t)); // 4 a second

                // `good` advances while learning; the operator rolls back below it (kubectl exec … checkpoint rollback
                // --to N while the learner holds the store: a rollback request the learner applies).
                await Until(() => Task.FromResult(reader.ReadPointers() is { Good: > 3, Latest: { } latest } pointers && latest >= pointers.Good + 2), worker, "good past v3 and two versions beyond it");
                var good = reader.ReadPointers().Good!.Value;
                target = good - 2;
                await CheckpointStore.RequestRollbackAsync(checkpoints, target, "operator: labels after v" + target + " came from a broken labelling job");
                await Until(() => Task.FromResult(reader.ReadEvents().Any(e => e.Kind == CheckpointEventKind.Rollback && e.To == target)), worker, "the learner applying the rollback");
                var rollback = reader.ReadEvents().Last(e => e.Kind == CheckpointEventKind.Rollback);
                abandonedHead = rollback.From!.Value;

                // The learner keeps running (today it stopped: "good only moves forward"), good moved back with latest,
                // and learning continues on the new line, where good advances again.
                var goodMove = reader.ReadEvents().Last(e => e.Kind == CheckpointEventKind.MarkGood && e.To == target);
                Assert.True(goodMove.From >= good, $"good moved back from v{goodMove.From}, expected from v{good} or later");
                await Until(async () => reader.ReadPointers() is { Latest: { } latest } && latest > abandonedHead
                                        && (await worker.ManifestsAsync())[latest].Parent is not null
                                        && await worker.MetricAsync("prefonline_good_version") is { } metric && (long)metric == reader.ReadPointers().Good,
                    worker, "a commit on the new line");
                var goodNow = reader.ReadPointers().Good!.Value; // read first: good trails latest, and both only move forward on this line
                var newLine = await LineAsync(worker, reader.ReadPointers().Latest!.Value);
                Assert.Contains(target, newLine);
                Assert.DoesNotContain(abandonedHead, newLine);
                Assert.True(await reader.AbandonedVersionsAsync() is var abandoned && abandoned.Contains(abandonedHead) && !abandoned.Contains(target));
                Assert.True(newLine.Contains(goodNow), $"good v{goodNow} is on latest's line");
                Assert.Equal(HttpStatusCode.OK, (await worker.ReadinessAsync()).Status);
                worker.AssertRunning();

                await stop.CancelAsync();
                await asking;
                await labelling;
                await worker.StopAsync();
                Assert.Equal(ExitStatus.Success, worker.Exit.Code);
            }

            // The store loses what the new line wrote and its log (a restore from an old backup, a bad volume) while
            // `good` still names the rollback target: latest names a version that is gone, and the next lower number on
            // disk is the abandoned line's head. The worker must resume on good's line and say so.
            foreach (var version in reader.ListVersions().Where(v => v > abandonedHead))
                Directory.Delete(Path.Combine(checkpoints, CheckpointVersion.DirectoryName(version)), recursive: true);
            File.Delete(Path.Combine(checkpoints, "events.jsonl"));
            await File.WriteAllTextAsync(Path.Combine(checkpoints, "good"), CheckpointVersion.DirectoryName(target) + "\n");
            var missing = reader.ReadPointers().Latest!.Value;
            Assert.False(Directory.Exists(Path.Combine(checkpoints, CheckpointVersion.DirectoryName(missing))));

            await using var restarted = await WorkerUnderTest.StartAsync(cluster, output, root: root);
            await restarted.WaitReadyAsync(Deadline);
            var (status, checks) = await restarted.ReadinessAsync();
            Assert.Equal(HttpStatusCode.OK, status);
            var note = checks.Single(c => c.Name == "checkpoints").Reason;
            output.WriteLine("checkpoints readiness: " + note);
            Assert.Contains($"refused {CheckpointVersion.DirectoryName(missing)}: {CheckpointVersion.DirectoryName(missing)} does not exist", note);
            Assert.Contains("falling back on good's line", note);
            Assert.Contains($"resumed from {CheckpointVersion.DirectoryName(target)}", note);
            // Not the abandoned head (the next lower number on disk): the target. The restarted worker reads its labels
            // again from the target's offsets and learns at once, so by now it may have committed versions of its own
            // (numbered above the abandoned head; CI saw v10 over v3): then the first of them is the target's child.
            if (LastCheckpoint(restarted) != target)
            {
                var manifests = await restarted.ManifestsAsync(); // listed after the commit that moved the counter
                Assert.Equal(target, manifests[manifests.Keys.Where(v => v > abandonedHead).Min()].Parent);
            }
        }
        finally
        {
            WorkerUnderTest.DeleteRoot(root);
        }
    }

    /// <summary>The version the worker loaded or last committed (it moves on with every checkpoint).</summary>
    private static long LastCheckpoint(WorkerUnderTest worker) => worker.App.Services.GetRequiredService<PrefOnline.Worker.Pipeline.PipelineStatus>().LastCheckpoint;

    private static string NewRoot()
    {
        var root = Path.Combine(Path.GetTempPath(), "prefonline-worker-it-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(root);
        return root;
    }

    private static async Task<IReadOnlyList<long>> LineAsync(WorkerUnderTest worker, long version)
    {
        var manifests = await worker.ManifestsAsync();
        var line = new List<long>();
        for (long? v = version; v is { } current; v = manifests[current].Parent) line.Add(current);
        return line;
    }

    private static Task Until(Func<Task<bool>> condition, WorkerUnderTest worker, string what) =>
        Poll.UntilAsync(async () =>
        {
            worker.AssertRunning();
            return await condition();
        }, Deadline, what);
}
