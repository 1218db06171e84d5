using PrefOnline.IntegrationTests.Process;
using System.Net;
using PrefOnline.IntegrationTests.Streaming;
using PrefOnline.Streaming.Contracts;
using PrefOnline.MockKafka;
using PrefOnline.Worker.Hosting;
using Xunit.Abstractions;
using static PrefOnline.IntegrationTests.Worker.WorkerCluster;

namespace PrefOnline.IntegrationTests.Worker;

/// <summary>
/// The broker goes down under a running worker and comes back (mock cluster API): /readyz fails with a
/// kafka reason while it is down; the worker recovers by itself, without a restart; nothing is lost —
/// every label produced (before, during and after the outage) is absorbed exactly once (the label audit
/// of the checkpoint lineage), and learning goes on after the broker returns.
/// </summary>
[Collection(KafkaCollection.Name)]
public sealed class WorkerBrokerOutageTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Deadline = WorkerEndToEndTests.Deadline;

    [Fact]
    public async Task Broker_down_then_up_fails_readiness_with_a_kafka_reason_then_the_worker_recovers_by_itself_and_absorbs_every_label_once()
    {
        await using var cluster = WorkerCluster.Start();
        await using var worker = await WorkerUnderTest.StartAsync(cluster, output);
        await using var rollouts = new TopicTail(cluster.BootstrapServers, Rollouts, InputPartitions);
        await using var policy = new TopicTail(cluster.BootstrapServers, WorkerCluster.Policy, 1);
        await worker.WaitReadyAsync(Deadline);
        var labeler = new RolloutLabeler(cluster, rollouts, samplesPerPrompt: 2);
        await using var stop = new BackgroundLoops();
        var labelling = stop.Start(labeler.RunAsync);
        var prompts = 0;
        void AskPrompts(int count)
        {
            for (var i = 0; i < count; i++, prompts++)
                cluster.Produce(Prompts, prompts % InputPartitions, new PromptRecord($"outage-prompt-{prompts:D3}", WorkerEndToEndTests.Questions[prompts % WorkerEndToEndTests.Questions.Length]));
        }

        // Before: learning under way (an update published, labels flowing).
        AskPrompts(16);
        await cluster.FlushAsync(Deadline);
        var before = await policy.WaitForAsync(r => WorkerEndToEndTests.PolicyEvents(r).Select(e => e.Version).Distinct().Count() >= 2, Deadline, "a first update's policy event");
        var versionBefore = WorkerEndToEndTests.PolicyEvents(before).Max(e => e.Version);
        await Eventually(() => labeler.Produced.Count >= 4, "labels before the outage");

        // Down: readiness fails, naming kafka. Labels produced meanwhile wait in the test producer's queue.
        cluster.Cluster.SetBrokerDown(MockKafkaCluster.AllBrokers);
        var (status, kafka) = (HttpStatusCode.OK, (Name: "kafka", Healthy: true, Reason: ""));
        await Poll.UntilAsync(async () =>
        {
            var (answer, checks) = await worker.ReadinessAsync();
            (status, kafka) = (answer, checks.Single(c => c.Name == "kafka"));
            return status == HttpStatusCode.ServiceUnavailable && !kafka.Healthy;
        }, Deadline, "/readyz to fail on kafka after the broker went down", () => $"/readyz still {status} ({kafka.Reason})");
        Assert.Contains("broker", kafka.Reason, StringComparison.OrdinalIgnoreCase);
        // While down: more prompts and labels of users who cannot wait (queued in the test producer until the
        // broker returns). The outage outlasts the consumers' session timeout (6 s), so the group expires its
        // members and the worker's consumers must rejoin and be re-assigned: they resume from the checkpoint
        // trackers, and replays must not be absorbed twice. (Its length is the scenario, not a synchronisation.)
        AskPrompts(8);
        var standalone = Enumerable.Range(0, 10).Select(i => $"outage-label-{i:D2}").ToList();
        foreach (var (id, i) in standalone.Select((id, i) => (id, i)))
            cluster.Produce(Feedback, i % InputPartitions, new PreferenceRecord(id, "Say hello.", "Hello!", $"Go away {i}."));
        await Task.Delay(TimeSpan.FromSeconds(8));
        var producedDuringOutage = labeler.Produced.Count;
        worker.AssertRunning();
        Assert.Equal(HttpStatusCode.OK, await worker.LivenessAsync()); // down brokers are not a reason to restart the process

        // Up: ready again by itself, then learning resumes past the version reached before.
        cluster.Cluster.SetBrokerUp(MockKafkaCluster.AllBrokers);
        await worker.WaitReadyAsync(Deadline);
        AskPrompts(16);
        await cluster.FlushAsync(Deadline);
        await policy.WaitForAsync(r => WorkerEndToEndTests.PolicyEvents(r).Max(e => e.Version) > versionBefore + 1, Deadline, "updates after the broker returned");
        await rollouts.WaitForAsync(r => r.Count >= prompts * 2, Deadline, $"rollouts for all {prompts} prompts");
        await stop.CancelAsync();
        await labelling;
        labeler.LabelNew(); // the last groups too
        Assert.True(labeler.Produced.Count > producedDuringOutage, "no label produced after the outage");

        // Nothing lost, nothing twice: every label produced is in the audit of the latest lineage exactly once.
        await cluster.FlushAsync(Deadline);
        var produced = labeler.Produced.Concat(standalone).ToList();
        var audit = await EveryLabelAbsorbedAsync(worker, produced, "after the outage");
        Assert.Equal(produced.Order(StringComparer.Ordinal), audit.Select(a => a.Id).Order(StringComparer.Ordinal));
        Assert.Equal(audit.Count, audit.Select(a => (a.Partition, a.Offset)).Distinct().Count());

        // Every prompt answered exactly once (K rollouts each, no re-generation after the reconnect).
        Assert.All(labeler.Rollouts.GroupBy(r => r.PromptId), g => Assert.Equal(2, g.Count()));
        Assert.Equal(prompts, labeler.Rollouts.Select(r => r.PromptId).Distinct().Count());

        await worker.StopAsync();
        Assert.True(worker.Pipeline.Completed, "the pipeline did not finish its final checkpoint after the outage");

        // Commits resumed after the outage: both groups hold the final checkpoint's offsets.
        var final = (await worker.LatestManifestAsync());
        foreach (var (topic, group) in new[] { (Prompts, WorkerUnderTest.PromptGroup), (Feedback, WorkerUnderTest.FeedbackGroup) })
        {
            var committed = cluster.Committed(group, topic, InputPartitions);
            foreach (var (partition, end) in cluster.EndOffsets(topic, InputPartitions))
            {
                Assert.Equal(end, WorkerEndToEndTests.Offset(final, topic, partition));
                Assert.Equal(end, committed[partition]);
            }
        }
    }

    [Fact]
    public async Task A_clean_stop_while_the_broker_is_down_writes_the_final_checkpoint_within_the_grace_period_and_a_restart_loses_nothing()
    {
        var shutdownTimeout = TimeSpan.FromSeconds(15);
        var overrides = new Dictionary<string, string?> { ["Worker:ShutdownTimeout"] = shutdownTimeout.ToString("c") };
        await using var cluster = WorkerCluster.Start();
        var root = Path.Combine(Path.GetTempPath(), "prefonline-worker-it-" + Guid.NewGuid().ToString("N")[..12]);
        try
        {
            await using var rollouts = new TopicTail(cluster.BootstrapServers, Rollouts, InputPartitions);
            await using var policy = new TopicTail(cluster.BootstrapServers, WorkerCluster.Policy, 1);
            var labeler = new RolloutLabeler(cluster, rollouts, samplesPerPrompt: 2);
            var standalone = Enumerable.Range(0, 8).Select(i => $"stop-label-{i:D2}").ToList();
            await using (var worker = await WorkerUnderTest.StartAsync(cluster, output, overrides, root))
            {
                await worker.WaitReadyAsync(Deadline);
                await using var stop = new BackgroundLoops();
                var labelling = stop.Start(labeler.RunAsync);
                for (var i = 0; i < 24; i++)
                    cluster.Produce(Prompts, i % InputPartitions, new PromptRecord($"stop-prompt-{i:D3}", WorkerEndToEndTests.Questions[i % WorkerEndToEndTests.Questions.Length]));
                foreach (var (id, i) in standalone.Select((id, i) => (id, i)))
                    cluster.Produce(Feedback, i % InputPartitions, new PreferenceRecord(id, "Say hello.", "Hello!", $"Go away {i}."));
                await cluster.FlushAsync(Deadline);
                await policy.WaitForAsync(r => WorkerEndToEndTests.PolicyEvents(r).Select(e => e.Version).Distinct().Count() >= 2, Deadline, "a first update's policy event");
                await stop.CancelAsync();
                await labelling;

                // The broker goes down with work in flight (prompts waiting to be generated, labels absorbed
                // since the last checkpoint); then SIGTERM.
                cluster.Cluster.SetBrokerDown(MockKafkaCluster.AllBrokers);
                await Poll.UntilAsync(async () => (await worker.ReadinessAsync()).Status == HttpStatusCode.ServiceUnavailable, Deadline, "/readyz to fail while the broker is down");
                await Task.Delay(WorkerUnderTest.UpdateInterval * 2); // the scenario: an update may fall due while down
                var clock = System.Diagnostics.Stopwatch.StartNew();
                await worker.StopAsync();
                output.WriteLine($"clean stop during the outage took {clock.Elapsed.TotalSeconds:0.0} s");
                Assert.True(worker.Pipeline.Completed, $"the stop during the outage did not write its final checkpoint (took {clock.Elapsed.TotalSeconds:0.0} s; grace {shutdownTimeout.TotalSeconds} s)");
                Assert.Equal(ExitStatus.Success, worker.Exit.Code);
                Assert.True(clock.Elapsed < shutdownTimeout, $"the stop took {clock.Elapsed.TotalSeconds:0.0} s, beyond the grace period");
            }

            // Broker back, worker restarted on the same checkpoints: it resumes, and every label (including
            // the groups still to be labelled) is absorbed exactly once along the lineage.
            cluster.Cluster.SetBrokerUp(MockKafkaCluster.AllBrokers);
            await using (var restarted = await WorkerUnderTest.StartAsync(cluster, output, overrides, root))
            {
                await restarted.WaitReadyAsync(Deadline);
                await using var stop = new BackgroundLoops();
                var labelling = stop.Start(labeler.RunAsync);
                await rollouts.WaitForAsync(r => r.Count >= 48, Deadline, "rollouts for all 24 prompts");
                await stop.CancelAsync();
                await labelling;
                labeler.LabelNew();
                await cluster.FlushAsync(Deadline);
                var produced = labeler.Produced.Concat(standalone).ToList();
                var audit = await EveryLabelAbsorbedAsync(restarted, produced, "after the restart");
                Assert.Equal(produced.Order(StringComparer.Ordinal), audit.Select(a => a.Id).Order(StringComparer.Ordinal));
                Assert.Equal(24, labeler.Rollouts.Select(r => r.PromptId).Distinct().Count());
            }
        }
        finally
        {
            WorkerUnderTest.DeleteRoot(root);
        }
    }

    /// <summary>Waits until the audit of the worker's lineage holds every produced label id (the worker must stay up), and returns it.</summary>
    private static async Task<IReadOnlyList<PrefOnline.Worker.Pipeline.AbsorbedLabel>> EveryLabelAbsorbedAsync(WorkerUnderTest worker, IReadOnlyList<string> produced, string when)
    {
        IReadOnlyList<PrefOnline.Worker.Pipeline.AbsorbedLabel> audit = [];
        await Poll.UntilAsync(async () =>
        {
            worker.AssertRunning();
            audit = await worker.AuditChainAsync();
            return produced.All(id => audit.Any(a => a.Id == id));
        }, Deadline, $"every label absorbed {when}", () => $"{produced.Count(id => audit.Any(a => a.Id == id))} of {produced.Count} labels absorbed");
        return audit;
    }

    private static async Task Eventually(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + Deadline;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"timed out after {Deadline} waiting for {what}");
            await Task.Delay(50);
        }
    }
}
