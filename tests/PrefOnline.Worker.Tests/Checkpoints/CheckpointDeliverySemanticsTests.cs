using System.Text.Json;
using Xunit.Abstractions;
using PrefOnline.Worker.Checkpoints;
using static PrefOnline.Worker.Tests.Checkpoints.CheckpointTestKit;

namespace PrefOnline.Worker.Tests.Checkpoints;

/// <summary>
/// docs/ARCHITECTURE.md "Delivery semantics", played against the real store: a learner absorbs labels from a
/// partitioned log, checkpoints its state together with the next offsets, and dies at every stage a
/// process can die (between records, inside an artefact writer, after the version directory is in
/// place but before the pointer moved, after a commit whose file then rots). Each restart loads the
/// latest valid checkpoint and seeks to its offsets. At the end every label is in the state exactly once.
/// Every version also shares a frozen "base" blob that changes every few writes, so crashes also land after a blob
/// was written for a version that never committed, and retention collects blobs: at the end the blob area holds
/// exactly what the remaining versions reference. Publish-only versions (Checkpoints:Interval) come between checkpoints
/// too, and a crash after them resumes from the checkpoint they follow.
/// </summary>
public sealed class CheckpointDeliverySemanticsTests(ITestOutputHelper output)
{
    private const string Topic = "prefonline.feedback";
    private const int Partitions = 3;

    private enum Crash
    {
        BetweenRecords,
        InsideWriter,
        BeforePointerMoved,
        AfterCommitFileRotted,
        AfterPublishOnly,
    }

    [Fact]
    public async Task Every_label_is_absorbed_exactly_once_whatever_stage_the_learner_dies_at()
    {
        var seen = new HashSet<Crash>();
        for (var seed = 1; seed <= 4; seed++)
        {
            var (crashes, writes) = await RunScheduleAsync(seed);
            output.WriteLine($"seed {seed}: {writes} checkpoints written, crashes: {string.Join(", ", crashes.GroupBy(c => c).Select(g => $"{g.Key} x{g.Count()}"))}");
            seen.UnionWith(crashes);
        }
        Assert.Equal(Enum.GetValues<Crash>().ToHashSet(), seen); // every crash kind was exercised
    }

    private static async Task<(IReadOnlyCollection<Crash> Crashes, int Writes)> RunScheduleAsync(int seed)
    {
        var random = new Random(seed);
        var log = Enumerable.Range(0, Partitions).Select(p => Enumerable.Range(0, 30 + random.Next(20)).Select(i => $"p{p}-{i}").ToArray()).ToArray();
        var crashes = new List<Crash>();
        var writes = 0;
        using var temp = new TempStore();
        for (var restart = 0; ; restart++)
        {
            Assert.True(restart < 200, "the schedule must finish");
            using var store = await temp.ReopenAsync(keepLast: 3);
            var resumed = (await store.LoadLatestValidAsync()).Checkpoint;
            var state = resumed is null ? [] : JsonSerializer.Deserialize<List<string>>(await File.ReadAllBytesAsync(resumed.GetPath("state.json")))!;
            var positions = Enumerable.Range(0, Partitions).Select(p => resumed?.NextOffset(Topic, p) ?? 0L).ToArray(); // seek

            Crash? crash = null;
            while (crash is null && Enumerable.Range(0, Partitions).Any(p => positions[p] < log[p].Length))
            {
                for (var k = 1 + random.Next(8); k > 0; k--)
                {
                    var open = Enumerable.Range(0, Partitions).Where(p => positions[p] < log[p].Length).ToArray();
                    if (open.Length == 0) break;
                    var p = open[random.Next(open.Length)];
                    state.Add(log[p][positions[p]++]);
                }
                var roll = random.Next(40);                  // per batch: 1/10 a crash, 3/10 a checkpoint
                if (roll == 0) crash = Crash.BetweenRecords; // in-memory progress since the last checkpoint is lost
                else if (roll is >= 4 and < 10 && store.ResumePoint is { } resume)
                {
                    // Checkpoints:Interval: an update published without a checkpoint (its policy, the offsets of the
                    // checkpoint it follows); sometimes the process dies right after it.
                    await store.WriteAsync(new CheckpointDraft().AddBytes("policy.json", JsonSerializer.SerializeToUtf8Bytes(state.Count))
                        .ShareFile("base.bin", Base(temp, writes)).SetOffsets(resume.Offsets).AsPublishOnly());
                    if (roll == 4) crash = Crash.AfterPublishOnly;
                }
                else if (roll is > 3 and < 28) continue;     // keep absorbing
                else if (roll == 1)
                {
                    await Assert.ThrowsAsync<InvalidOperationException>(() => store.WriteAsync(Snapshot(state, positions, Base(temp, writes))
                        .AddFileAt("zz-killed.bin", (_, _) => throw new InvalidOperationException("process killed mid-checkpoint"))));
                    crash = Crash.InsideWriter;
                }
                else
                {
                    var previousLatest = temp.Reader().ReadPointers().Latest;
                    var written = await store.WriteAsync(Snapshot(state, positions, Base(temp, writes)));
                    writes++;
                    if (roll == 2)
                    {
                        // The directory was renamed into place but the pointer rename never happened.
                        if (previousLatest is { } previous) RestoreLatestPointer(temp.Root, previous);
                        else File.Delete(Path.Combine(temp.Root, "latest"));
                        crash = Crash.BeforePointerMoved;
                    }
                    else if (roll == 3)
                    {
                        FlipByte(written.GetPath("state.json"), 0); // bit rot after a good commit
                        crash = Crash.AfterCommitFileRotted;
                    }
                }
            }
            if (crash is { } c)
            {
                crashes.Add(c);
                continue; // `store` is disposed: the lock goes with the "process"
            }
            await store.WriteAsync(Snapshot(state, positions, Base(temp, writes)));
            break;
        }

        var final = (await temp.Reader().LoadLatestValidAsync()).Checkpoint!;
        var referenced = new HashSet<string>(StringComparer.Ordinal);
        foreach (var version in temp.Reader().ListVersions())
        {
            var verdict = await temp.Reader().VerifyAsync(version, CheckpointVerificationLevel.Quick);
            if (verdict.Manifest is { } manifest) referenced.UnionWith(manifest.Files.Values.Where(f => f.Shared).Select(f => f.Sha256));
            Assert.DoesNotContain(verdict.Problems, p => p.Contains("blob", StringComparison.Ordinal)); // no referenced blob is ever missing
        }
        var blobs = Directory.GetFiles(Path.Combine(temp.Root, "blobs", "sha256")).Select(Path.GetFileName).OfType<string>().ToHashSet(StringComparer.Ordinal);
        Assert.True(referenced.SetEquals(blobs), $"blobs on disk {string.Join(",", blobs)} vs referenced {string.Join(",", referenced)}"); // none leaked
        var absorbed = JsonSerializer.Deserialize<List<string>>(await File.ReadAllBytesAsync(final.GetPath("state.json")))!;
        Assert.Equal(log.Sum(p => p.Length), absorbed.Count);
        Assert.Equal(log.SelectMany(p => p).Order(StringComparer.Ordinal), absorbed.Order(StringComparer.Ordinal)); // each exactly once
        for (var p = 0; p < Partitions; p++)
        {
            Assert.Equal(log[p], absorbed.Where(id => id.StartsWith($"p{p}-", StringComparison.Ordinal))); // in partition order
            Assert.Equal(log[p].Length, final.NextOffset(Topic, p));
        }
        return (crashes, writes);
    }

    private static CheckpointDraft Snapshot(List<string> state, long[] positions, string frozenBase)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(state); // taken now: the writer may run again on retry
        var draft = new CheckpointDraft().AddBytes("state.json", bytes).ShareFile("base.bin", frozenBase);
        for (var p = 0; p < positions.Length; p++) draft.SetOffset(Topic, p, positions[p]);
        return draft;
    }

    /// <summary>The frozen base of the <paramref name="writes"/>-th write: new content every 4 writes (a new base model).</summary>
    private static string Base(TempStore temp, int writes)
    {
        var path = Path.Combine(temp.Root, "sources", $"base-{writes / 4}.bin");
        if (File.Exists(path)) return path;
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, $"frozen base #{writes / 4}\n");
        return path;
    }

    private static void RestoreLatestPointer(string root, long version) =>
        WritePointer(root, "latest", CheckpointVersion.DirectoryName(version) + "\n");
}
