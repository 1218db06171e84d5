using System.Diagnostics;
using Xunit.Abstractions;
using static PrefOnline.IntegrationTests.Process.KafkaWorkerSetup;
using static PrefOnline.IntegrationTests.Process.MockBrokerProcess;

namespace PrefOnline.IntegrationTests.Process;

/// <summary>SIGTERM (what Kubernetes sends) while prompts and labels stream in: a clean stop, as issue 5 item 1 describes it.</summary>
[Collection(ProcessCollection.Name)]
public sealed class GracefulStopTests(ITestOutputHelper output)
{
    private const int Partitions = 4;
    private static readonly TimeSpan ShutdownTimeout = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task Sigterm_mid_stream_exits_0_within_the_shutdown_timeout_after_a_final_checkpoint_and_committed_offsets()
    {
        await using var workspace = new TestWorkspace("sigterm", output);
        var (_, bootstrap) = await MockBrokerProcess.StartAsync(workspace);
        var kcat = new Kcat(bootstrap);
        var policy = await InitPolicyAsync(workspace);
        var configuration = Configuration(bootstrap, policy);
        configuration["Worker"]!["ShutdownTimeout"] = ShutdownTimeout.ToString("c");
        configuration["Kafka"]!["DeliveryTimeout"] = "00:00:05"; // within the grace period (checked at start)
        configuration["Worker"]!["CheckpointInterval"] = "00:00:30"; // the final checkpoint, not a periodic one, must hold the last absorbed input
        var worker = WorkerProcess.Start(workspace, "worker", configuration, workspace.ScratchPath("checkpoints"));
        await worker.WaitForLearnerAsync(TimeSpan.FromMinutes(2));

        await kcat.ProduceAsync(Prompts, Enumerable.Range(0, 400).Select(i => ($"p{i}", Prompt($"p{i}", $"{(char)('a' + i % 8)}:"))));
        await kcat.ProduceAsync(Feedback, Enumerable.Range(0, 1500).Select(i => ($"l{i}", Rating($"l{i}", "a:", new string('b', 1 + i % 17), -(1 + i % 17) / 8.0))));

        // Mid-stream: updates are being applied and labels absorbed, with input still unread.
        await Poll.UntilAsync(async () =>
            (await worker.MetricAsync("prefonline_updates_total") ?? 0) >= 2 &&
            (await worker.MetricAsync("prefonline_messages_total", ("topic", Feedback)) ?? 0) >= 100,
            TimeSpan.FromMinutes(2), "two updates applied and 100 labels read", () => worker.Process.Tail());
        var readBeforeStop = await worker.MetricAsync("prefonline_messages_total", ("topic", Feedback)) ?? 0;

        var clock = Stopwatch.StartNew();
        await worker.Process.TerminateAsync();
        var exitCode = await worker.Process.WaitForExitAsync(ShutdownTimeout + TimeSpan.FromSeconds(30));
        clock.Stop();
        workspace.Log($"SIGTERM after {readBeforeStop} labels read: exit code {exitCode} after {clock.Elapsed.TotalSeconds:0.00} s (Worker:ShutdownTimeout {ShutdownTimeout.TotalSeconds} s)");
        Assert.Equal(0, exitCode);
        Assert.True(clock.Elapsed < ShutdownTimeout, $"the stop took {clock.Elapsed}, more than Worker:ShutdownTimeout {ShutdownTimeout}");

        // The final checkpoint is the latest one, is valid, and holds what was absorbed.
        var finalLine = worker.Process.FindLine("Final checkpoint v") ?? throw new Xunit.Sdk.XunitException("no final checkpoint was logged:\n" + worker.Process.Tail());
        var store = worker.CheckpointDirectory;
        var latest = CheckpointFiles.TryReadLatest(store)!;
        Assert.Contains($"Final checkpoint {CheckpointFiles.DirectoryName(latest.Version)} written; offsets committed", finalLine.Text);
        var (verifyCode, verifyOutput) = await workspace.RunPrefOnlineAsync("verify", TimeSpan.FromMinutes(1), "checkpoint", "verify", "--dir", store);
        Assert.True(verifyCode == 0, verifyOutput);
        Assert.True(latest.Metric("labels_absorbed") > 0);

        // Committed offsets are exactly the final checkpoint's, for both input groups.
        foreach (var (group, topic) in new[] { ("e2e.feedback", Feedback), ("e2e.generators", Prompts) })
        {
            var committed = await KafkaOffsets.CommittedAsync(bootstrap, group, topic, Partitions);
            var expected = Enumerable.Range(0, Partitions).ToDictionary(p => p, p => latest.NextOffset(topic, p));
            workspace.Log($"{group}: committed {KafkaOffsets.Format(committed)}; final checkpoint v{latest.Version} {KafkaOffsets.Format(expected)}; end {KafkaOffsets.Format(await KafkaOffsets.EndAsync(bootstrap, topic, Partitions))}");
            Assert.Equal(KafkaOffsets.Format(expected), KafkaOffsets.Format(committed));
        }
    }

    [Fact]
    public async Task Sigterm_during_a_broker_outage_still_writes_the_final_checkpoint_in_time_and_a_restart_loses_no_label()
    {
        await using var workspace = new TestWorkspace("sigterm-outage", output);
        var (broker, bootstrap) = await MockBrokerProcess.StartAsync(workspace);
        var kcat = new Kcat(bootstrap);
        var policy = await InitPolicyAsync(workspace);
        var configuration = Configuration(bootstrap, policy, audit: true);
        configuration["Worker"]!["ShutdownTimeout"] = ShutdownTimeout.ToString("c");
        // On exit the producer settles its records in flight for up to Kafka:DeliveryTimeout (default 30 s): it
        // must be shorter than the grace period for the exit to fit in it during an outage.
        configuration["Kafka"]!["DeliveryTimeout"] = "00:00:05";
        var store = workspace.ScratchPath("checkpoints");
        var worker = WorkerProcess.Start(workspace, "worker-1", configuration, store);
        await worker.WaitForLearnerAsync(TimeSpan.FromMinutes(2));

        const int LabelCount = 600;
        var labels = Enumerable.Range(0, LabelCount).Select(i => ($"l{i}", Rating($"l{i}", "a:", new string('b', 1 + i % 17), -(1 + i % 17) / 8.0))).ToList();
        await kcat.ProduceAsync(Prompts, Enumerable.Range(0, 400).Select(i => ($"p{i}", Prompt($"p{i}", $"{(char)('a' + i % 8)}:"))));
        await kcat.ProduceAsync(Feedback, labels);
        await Poll.UntilAsync(async () => (await worker.MetricAsync("prefonline_updates_total") ?? 0) >= 2, TimeSpan.FromMinutes(2), "two updates applied", () => worker.Process.Tail());

        // The broker goes down while rollouts, policy events and commits are in flight; then Kubernetes stops the pod.
        await broker.StandardInput.WriteLineAsync("down");
        await broker.StandardInput.FlushAsync();
        await broker.WaitForLineAsync("ok down", TimeSpan.FromSeconds(30));
        await worker.Process.WaitForLineAsync("broker unreachable", TimeSpan.FromMinutes(1));
        // Stop only once a delivery is stuck (a rollout or policy event is being retried): the case that used to
        // hold the stop until the grace period ran out, with no final checkpoint.
        await worker.Process.WaitForLineAsync("not delivered yet", TimeSpan.FromMinutes(1));
        var clock = Stopwatch.StartNew();
        await worker.Process.TerminateAsync();
        var exitCode = await worker.Process.WaitForExitAsync(ShutdownTimeout + TimeSpan.FromSeconds(40));
        clock.Stop();
        workspace.Log($"SIGTERM during the outage: exit code {exitCode} after {clock.Elapsed.TotalSeconds:0.00} s (Worker:ShutdownTimeout {ShutdownTimeout.TotalSeconds} s)");
        Assert.Equal(0, exitCode);
        Assert.True(clock.Elapsed < ShutdownTimeout, $"the stop took {clock.Elapsed}, more than Worker:ShutdownTimeout {ShutdownTimeout}");
        var final = CheckpointFiles.TryReadLatest(store)!;
        Assert.NotNull(worker.Process.FindLine($"Final checkpoint {CheckpointFiles.DirectoryName(final.Version)} written"));
        var (verifyCode, verifyOutput) = await workspace.RunPrefOnlineAsync("verify", TimeSpan.FromMinutes(1), "checkpoint", "verify", "--dir", store, "--all");
        Assert.True(verifyCode == 0, verifyOutput);

        // The broker returns; a restart resumes from the final checkpoint and absorbs every label exactly once.
        await broker.StandardInput.WriteLineAsync("up");
        await broker.StandardInput.FlushAsync();
        await broker.WaitForLineAsync("ok up", TimeSpan.FromSeconds(30));
        var restarted = WorkerProcess.Start(workspace, "worker-2", configuration, store);
        await restarted.Process.WaitForLineAsync($"Learner running (role all) from {CheckpointFiles.DirectoryName(final.Version)}:", TimeSpan.FromMinutes(2));
        await Poll.UntilAsync(() => (CheckpointFiles.TryReadLatest(store)?.Metric("labels_absorbed") ?? 0) >= LabelCount, TimeSpan.FromMinutes(2),
            $"a checkpoint holding all {LabelCount} labels", () => restarted.Process.Tail());
        await restarted.Process.TerminateAsync();
        Assert.Equal(0, await restarted.Process.WaitForExitAsync(ShutdownTimeout + TimeSpan.FromSeconds(10)));
        var latest = CheckpointFiles.TryReadLatest(store)!;
        var absorbed = CheckpointFiles.Lineage(store, latest.Version).SelectMany(CheckpointFiles.Audit).Select(l => l.Id).ToList();
        workspace.Log($"after the restart: {absorbed.Count} labels absorbed ({absorbed.Distinct().Count()} distinct) of {LabelCount} produced");
        Assert.Equal(labels.Select(l => l.Item1).Order(), absorbed.Order());
    }
}
