using Xunit.Abstractions;
using static PrefOnline.IntegrationTests.Process.KafkaWorkerSetup;
using static PrefOnline.IntegrationTests.Process.MockBrokerProcess;

namespace PrefOnline.IntegrationTests.Process;

/// <summary>
/// Exactly-once absorption across a crash: the worker process is killed with SIGKILL while labels stream in,
/// then restarted on the same checkpoint store and broker. The proof comes from the worker's opt-in audit
/// (<c>Worker:AuditAbsorbedLabels</c>): each checkpoint lists the labels absorbed since its parent, so the
/// lineage of the final checkpoint lists every label its state absorbed — compared here with the ids kcat produced.
/// Exactly-once includes duplicates (issue 11 item 5): the producer re-sends ids before the kill (refused, some of
/// them read again after the restart) and after it (ids the crashed process had absorbed and checkpointed); the
/// restarted worker refuses every one of them, from the duplicate-id window its checkpoint saved.
/// </summary>
[Collection(ProcessCollection.Name)]
public sealed class KillRestartTests(ITestOutputHelper output)
{
    private const int Partitions = 4;
    private const int FirstWave = 400;
    private const int SecondWave = 800;
    private const int FeedbackQueue = 256;
    private const int FeedbackBatch = 32;
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(2);

    [Fact]
    public async Task Sigkill_mid_stream_then_restart_absorbs_every_label_exactly_once_from_the_latest_checkpoint()
    {
        await using var workspace = new TestWorkspace("kill-restart", output);
        var (_, bootstrap) = await MockBrokerProcess.StartAsync(workspace);
        var kcat = new Kcat(bootstrap);
        var policy = await InitPolicyAsync(workspace);
        var configuration = Configuration(bootstrap, policy, audit: true);
        // Checkpoints every few seconds (not every second), so that at the kill the state holds labels it has
        // absorbed but not yet checkpointed; the feedback buffers are sized here so the test can tell those apart
        // from labels merely read ahead (see the kill condition).
        configuration["Worker"]!["CheckpointInterval"] = "00:00:05";
        configuration["Learner"]!["UpdateEverySamples"] = 64;
        configuration["Learner"]!["MaxSamplesAhead"] = 128;
        configuration["Feedback"] = new System.Text.Json.Nodes.JsonObject { ["QueueCapacity"] = FeedbackQueue, ["MaxBatch"] = FeedbackBatch };
        var store = workspace.ScratchPath("checkpoints");
        var random = new Random(20240601);
        var labels = Enumerable.Range(0, FirstWave + SecondWave).Select(i => Label(i, random)).ToList();

        // Run 1: prompts keep generation, updates and their checkpoints busy while the labels arrive.
        var first = WorkerProcess.Start(workspace, "worker-1", configuration, store);
        await first.WaitForLearnerAsync(Patience);
        await kcat.ProduceAsync(Prompts, Enumerable.Range(0, 200).Select(i => ($"p{i}", Prompt($"p{i}", $"{(char)('a' + i % 8)}:"))));
        await kcat.ProduceAsync(Feedback, labels.Take(FirstWave));
        await Poll.UntilAsync(() => (CheckpointFiles.TryReadLatest(store)?.Metric("labels_absorbed") ?? 0) >= FirstWave / 2, Patience,
            "a checkpoint holding half of the first wave", () => first.Process.Tail());

        // Re-sent before the kill: ids of the first wave again, at new positions (same key, so after the original in
        // its partition). Refused as duplicates; those the checkpoint at the kill has not passed are read again
        // after the restart and must be refused again, not absorbed.
        var resentBeforeKill = labels.Take(FirstWave).Where((_, i) => i % 20 == 7).ToList();
        await kcat.ProduceAsync(Feedback, resentBeforeKill);

        // Kill while the worker's state holds labels it has absorbed but not checkpointed (lost with the process:
        // they must be absorbed again, once) besides labels it has only read ahead (they must not be lost). The
        // validated-records counter runs ahead of absorption by at most the feedback queue, one batch and the
        // record in hand, so a larger lead over the latest checkpoint proves absorbed-but-uncheckpointed labels.
        await kcat.ProduceAsync(Feedback, labels.Skip(FirstWave));
        const int ReadAhead = FeedbackQueue + FeedbackBatch + 1;
        double readAtKill = 0, checkpointedAtKill = 0;
        await Poll.UntilAsync(async () =>
        {
            checkpointedAtKill = CheckpointFiles.TryReadLatest(store)?.Metric("labels_absorbed") ?? 0;
            readAtKill = await first.MetricAsync("prefonline_messages_total", ("topic", Feedback)) ?? 0;
            return readAtKill >= checkpointedAtKill + ReadAhead + 32 && readAtKill > FirstWave;
        }, Patience, $"the worker reads more than {ReadAhead + 32} labels beyond its latest checkpoint", () => first.Process.Tail());
        await first.Process.KillHardAsync(TimeSpan.FromSeconds(30));
        var killedAt = CheckpointFiles.Latest(store) ?? throw new InvalidOperationException("no checkpoint before the kill");
        var atKill = CheckpointFiles.Read(store, killedAt);
        workspace.Log($"SIGKILL: exit code {first.Process.ExitCode}; the worker had read {readAtKill} labels, its latest checkpoint v{killedAt} holds {atKill.Metric("labels_absorbed")}");
        Assert.NotEqual(0, first.Process.ExitCode);
        Assert.Null(first.Process.FindLine("Final checkpoint"));

        // No checkpoint is corrupt after the kill (a write may have been cut short: it must be invisible).
        await VerifyStoreAsync(workspace, store, "verify-after-kill");

        // Run 2 on the same store and broker: resumes from the latest checkpoint and its offsets.
        var second = WorkerProcess.Start(workspace, "worker-2", configuration, store);
        await second.Process.WaitForLineAsync($"Learner running (role all) from {CheckpointFiles.DirectoryName(killedAt)}:", Patience);
        var assigned = await second.Process.WaitForLineAsync($"Assigned {Feedback}[", Patience);
        var expectedSeek = string.Join(", ", Enumerable.Range(0, Partitions).Select(p => $"{Feedback}[{p}]@{atKill.NextOffset(Feedback, p)}"));
        Assert.Contains(expectedSeek, assigned.Text);

        // Re-sent after the restart: ids the crashed process absorbed into a checkpoint (positions below the
        // offsets of the checkpoint at the kill), which the new process has never read itself.
        var beforeKillPositions = (await kcat.ReadAllAsync(Feedback)).Where(r => r.Offset < atKill.NextOffset(Feedback, r.Partition)).Select(r => r.Key).ToHashSet();
        var resentAfterRestart = labels.Where(l => beforeKillPositions.Contains(l.Key)).Where((_, i) => i % 10 == 4).Take(20).ToList();
        Assert.Equal(20, resentAfterRestart.Count);
        await kcat.ProduceAsync(Feedback, resentAfterRestart);
        var resent = resentBeforeKill.Count + resentAfterRestart.Count;

        await Poll.UntilAsync(() => (CheckpointFiles.TryReadLatest(store)?.Metric("labels_absorbed") ?? 0) >= labels.Count, Patience,
            $"a checkpoint holding all {labels.Count} labels", () => second.Process.Tail());
        var feedbackEnd = await KafkaOffsets.EndAsync(bootstrap, Feedback, Partitions);
        await Poll.UntilAsync(() => CheckpointFiles.TryReadLatest(store) is { } latest && Enumerable.Range(0, Partitions).All(p => latest.NextOffset(Feedback, p) == feedbackEnd[p]), Patience,
            "a checkpoint past every label and every re-sent duplicate", () => second.Process.Tail());
        await second.Process.TerminateAsync();
        Assert.Equal(0, await second.Process.WaitForExitAsync(TimeSpan.FromSeconds(45)));
        await VerifyStoreAsync(workspace, store, "verify-at-end");

        // The proof: the final checkpoint's lineage lists every produced label exactly once ...
        var final = CheckpointFiles.TryReadLatest(store)!;
        var lineage = CheckpointFiles.Lineage(store, final.Version);
        var audited = lineage.SelectMany(c => CheckpointFiles.Audit(c).Select(label => (Checkpoint: c.Version, Label: label))).ToList();
        var produced = labels.Select(l => l.Key).ToHashSet();
        var absorbedIds = audited.Select(a => a.Label.Id).ToList();
        var duplicates = absorbedIds.Count - absorbedIds.Distinct().Count();
        var lost = produced.Except(absorbedIds).Count();
        var unexpected = absorbedIds.Distinct().Except(produced).Count();
        var afterRestart = audited.Where(a => a.Checkpoint > killedAt).ToList();
        workspace.Log($"kill-restart: produced {produced.Count}, absorbed {absorbedIds.Count} ({absorbedIds.Distinct().Count()} distinct), duplicates {duplicates}, lost {lost}, unexpected {unexpected}; " +
                      $"lineage v{lineage[0].Version}..v{final.Version} ({lineage.Count} checkpoints); run 1 read {readAtKill} and checkpointed {atKill.Metric("labels_absorbed")}; " +
                      $"run 2 absorbed {afterRestart.Count}; at the kill run 1 had read {readAtKill - (atKill.Metric("labels_absorbed") ?? 0)} labels beyond its checkpoint, " +
                      $"of which at least {readAtKill - (atKill.Metric("labels_absorbed") ?? 0) - (FeedbackQueue + FeedbackBatch + 1)} absorbed into its (lost) state");
        Assert.Equal(0, duplicates);
        Assert.Equal(0, lost);
        Assert.Equal(0, unexpected);
        Assert.Equal(labels.Count, (int)final.Metric("labels_absorbed")!.Value);

        // ... each at the position kcat first wrote it to (a re-sent copy is never the one absorbed); the re-sent
        // copies are the gaps, and every one is in the dead-letter topic as duplicate-id (some twice: refused before
        // the kill, read again and refused again after it); run 2 started where v{killedAt} ended.
        var written = await kcat.ReadAllAsync(Feedback);
        Assert.Equal(labels.Count + resent, written.Count);
        var firstPositions = written.GroupBy(r => r.Key).ToDictionary(g => g.Key, g => g.OrderBy(r => r.Offset).First());
        Assert.All(audited, a => Assert.Equal((firstPositions[a.Label.Id].Partition, firstPositions[a.Label.Id].Offset), (a.Label.Partition, a.Label.Offset)));
        var copies = written.Where(r => firstPositions[r.Key] != r).ToList();
        Assert.Equal(resent, copies.Count);
        var refused = (await kcat.ReadAllAsync(DeadLetter)).Where(d => d.Headers.GetValueOrDefault("source-topic") == Feedback).ToList();
        foreach (var copy in copies)
        {
            var letters = refused.Where(d => d.Headers["source-partition"] == copy.Partition.ToString() && d.Headers["source-offset"] == copy.Offset.ToString()).ToList();
            Assert.True(letters.Count > 0, $"the re-sent {copy.Key} at {Feedback}[{copy.Partition}]@{copy.Offset} was not dead-lettered");
            Assert.All(letters, d => Assert.Equal("duplicate-id", d.Headers["reason"]));
        }
        Assert.All(refused, d => Assert.Contains(copies, c => d.Headers["source-partition"] == c.Partition.ToString() && d.Headers["source-offset"] == c.Offset.ToString()));
        var refusedAgain = refused.Count - refused.Select(d => (d.Headers["source-partition"], d.Headers["source-offset"])).Distinct().Count();
        workspace.Log($"re-sent {resent} ids ({resentBeforeKill.Count} before the kill, {resentAfterRestart.Count} after the restart): {refused.Count} dead letters, {refusedAgain} of them for a copy refused before the kill and read again after it");
        for (var partition = 0; partition < Partitions; partition++)
        {
            var offsets = audited.Where(a => a.Label.Partition == partition).Select(a => a.Label.Offset)
                .Concat(copies.Where(c => c.Partition == partition).Select(c => c.Offset)).Order().ToList();
            Assert.Equal(Enumerable.Range(0, offsets.Count).Select(o => (long)o), offsets);
            var resumed = afterRestart.Where(a => a.Label.Partition == partition).Select(a => a.Label.Offset).DefaultIfEmpty(-1).Min();
            if (resumed >= 0) Assert.True(resumed >= atKill.NextOffset(Feedback, partition), $"run 2 absorbed {Feedback}[{partition}]@{resumed}, before v{killedAt}'s offset");
        }

        // Committed offsets caught up with the final checkpoint (the end of the topic).
        var end = await KafkaOffsets.EndAsync(bootstrap, Feedback, Partitions);
        var committed = await KafkaOffsets.CommittedAsync(bootstrap, "e2e.feedback", Feedback, Partitions);
        Assert.Equal(KafkaOffsets.Format(end), KafkaOffsets.Format(committed));
    }

    private static (string Key, string Value) Label(int index, Random random)
    {
        var id = $"label-{index:D5}";
        var length = random.Next(1, 24);
        var completion = new string(Enumerable.Range(0, length).Select(_ => (char)('a' + random.Next(26))).ToArray());
        return index % 3 == 0
            ? (id, Preference(id, "a:", completion, completion + "z"))
            : (id, Rating(id, $"{(char)('a' + index % 8)}:", completion, Math.Round(-length / 8.0 + random.NextDouble() - 0.5, 3)));
    }

    private static async Task VerifyStoreAsync(TestWorkspace workspace, string store, string name)
    {
        var (code, text) = await workspace.RunPrefOnlineAsync(name, TimeSpan.FromMinutes(2), "checkpoint", "verify", "--dir", store, "--all");
        workspace.Log($"checkpoint verify --all: exit {code}, {text.Split('\n').Count(l => l.Contains(": valid"))} valid");
        Assert.True(code == 0, $"prefonline checkpoint verify --all failed ({code}):\n{text}");
    }
}
