using System.Security.Cryptography;
using System.Text;
using Polly;
using PrefOnline.Worker.Checkpoints;

namespace PrefOnline.Worker.Tests.Checkpoints;

/// <summary>A fresh store root per test under the temp directory, removed afterwards.</summary>
internal sealed class TempStore : IDisposable
{
    public TempStore()
    {
        Root = Path.Combine(Path.GetTempPath(), "prefonline-checkpoint-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Root);
    }

    public string Root { get; }

    public CheckpointOptions Options(int keepLast = 5) => new() { Directory = Root, KeepLast = keepLast, RetryCount = 2, RetryBaseDelay = TimeSpan.Zero, RetryMaxDelay = TimeSpan.Zero };

    public Task<CheckpointStore> OpenAsync(int keepLast = 5, ResiliencePipeline? pipeline = null, TimeProvider? time = null) =>
        CheckpointStore.OpenAsync(Options(keepLast), ioPipeline: pipeline, timeProvider: time ?? new SteppingTimeProvider());

    /// <summary>
    /// Opens the store again right after this process disposed its previous writer (a simulated crash). The
    /// lock's descriptor is close-on-exec, but a child process that another test forks at that moment holds a
    /// copy of it until its exec, so the flock can outlive our close by the fork-to-exec window (milliseconds
    /// on a loaded machine). Waits for that window to pass instead of failing on it; a writer that never lets
    /// go still fails after 10 s.
    /// </summary>
    public async Task<CheckpointStore> ReopenAsync(int keepLast = 5)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            try
            {
                return await OpenAsync(keepLast);
            }
            catch (CheckpointLockedException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(10);
            }
        }
    }

    public CheckpointReader Reader() => new(Root, CheckpointRetry.CreatePipeline(Options()));

    public string VersionDir(long version) => Path.Combine(Root, CheckpointVersion.DirectoryName(version));

    public string PathOf(long version, string file) => Path.Combine(VersionDir(version), file);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temp directory is harmless; never fail a test on cleanup.
        }
    }
}

/// <summary>A clock that starts at a fixed instant and advances <paramref name="stepSeconds"/> per reading.</summary>
internal sealed class SteppingTimeProvider(DateTimeOffset? start = null, int stepSeconds = 1) : TimeProvider
{
    private DateTimeOffset _now = start ?? new DateTimeOffset(2025, 6, 1, 12, 0, 0, 250, TimeSpan.Zero);

    public override DateTimeOffset GetUtcNow()
    {
        var now = _now;
        _now = _now.AddSeconds(stepSeconds);
        return now;
    }
}

internal static class CheckpointTestKit
{
    /// <summary>A draft with three artefacts whose bytes depend on <paramref name="seed"/>, written three different ways.</summary>
    public static CheckpointDraft Draft(int seed, long feedbackOffset = 100)
    {
        var random = new Random(seed);
        var policy = new byte[4096 + seed];
        random.NextBytes(policy);
        var optimizer = new byte[2048];
        random.NextBytes(optimizer);
        return new CheckpointDraft()
            .AddBytes("policy.safetensors", policy)
            .AddFile("optimizer.safetensors", async (stream, ct) => await stream.WriteAsync(optimizer, ct))
            .AddFileAt("replay.jsonl", (path, ct) => new ValueTask(File.WriteAllTextAsync(path, $"{{\"seed\":{seed}}}\n", ct)))
            .SetOffset("prefonline.feedback", 0, feedbackOffset)
            .SetOffset("prefonline.feedback", 1, feedbackOffset + 7)
            .SetOffset("prefonline.prompts", 0, 3 * feedbackOffset)
            .SetMetric("reward", 0.5 + seed / 100.0)
            .SetMetric("kl_to_reference", 0.01 * seed)
            .WithConfigHash("sha256:" + new string('a', 64));
    }

    /// <summary>Opens a store, loads (empty → fresh) and writes <paramref name="count"/> versions.</summary>
    public static async Task<CheckpointStore> OpenWithVersionsAsync(TempStore temp, int count, int keepLast = 10)
    {
        var store = await temp.OpenAsync(keepLast);
        await store.LoadLatestValidAsync();
        for (var i = 1; i <= count; i++) await store.WriteAsync(Draft(i, 100 * i));
        return store;
    }

    public static string Sha256Hex(string path) => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));

    public static void FlipByte(string path, long position)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        file.Position = position;
        var b = file.ReadByte();
        file.Position = position;
        file.WriteByte((byte)(b ^ 0x01));
    }

    /// <summary>Replaces manifest.json and updates manifest.sha256 to match: a consistent edit, as if another writer had made it.</summary>
    public static void RewriteManifest(string versionDirectory, string content)
    {
        var bytes = Encoding.UTF8.GetBytes(content);
        File.WriteAllBytes(Path.Combine(versionDirectory, "manifest.json"), bytes);
        File.WriteAllText(Path.Combine(versionDirectory, "manifest.sha256"), Convert.ToHexStringLower(SHA256.HashData(bytes)) + "  manifest.json\n");
    }

    public static void WritePointer(string root, string pointer, string content) => File.WriteAllText(Path.Combine(root, pointer), content, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
}
