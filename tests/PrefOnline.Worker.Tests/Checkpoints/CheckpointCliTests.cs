using System.Diagnostics;
using System.Text.Json;
using PrefOnline.Worker.Checkpoints;
using static PrefOnline.Worker.Tests.Checkpoints.CheckpointTestKit;

namespace PrefOnline.Worker.Tests.Checkpoints;

/// <summary>
/// <c>prefonline checkpoint list|verify|rollback</c> run as the real built binary in a child process
/// (the prefonline.dll the test build copies beside the tests), with exit codes and output asserted.
/// </summary>
public sealed class CheckpointCliTests
{
    private static readonly TimeSpan ProcessDeadline = TimeSpan.FromSeconds(90);

    private sealed record CliRun(int ExitCode, string StdOut, string StdErr)
    {
        public string[] ErrLines => StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    }

    private static async Task<CliRun> RunAsync(IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        var binary = Path.Combine(AppContext.BaseDirectory, "prefonline.dll");
        if (!File.Exists(binary)) throw new FileNotFoundException($"the CLI under test is missing: {binary} (build tests/PrefOnline.Worker.Tests first)");
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(binary);
        foreach (var arg in args) start.ArgumentList.Add(arg);
        start.Environment.Remove("PREFONLINE__Checkpoints__Directory");
        start.Environment.Remove("PREFONLINE_DEBUG");
        foreach (var (key, value) in environment ?? new Dictionary<string, string>()) start.Environment[key] = value;

        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start dotnet");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(ProcessDeadline);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"prefonline {string.Join(' ', args)} did not exit within {ProcessDeadline}");
        }
        return new CliRun(process.ExitCode, await stdout, await stderr);
    }

    private static Task<CliRun> RunAsync(params string[] args) => RunAsync(null, args);

    /// <summary>v1 corrupt, v2 good, v3 latest.</summary>
    private static async Task<TempStore> StoreWithThreeVersionsAsync()
    {
        var temp = new TempStore();
        using (var store = await OpenWithVersionsAsync(temp, 3)) await store.MarkGoodAsync(2);
        FlipByte(temp.PathOf(1, "policy.safetensors"), 100);
        return temp;
    }

    [Fact]
    public async Task List_prints_a_table_with_pointers_sizes_metrics_and_verdicts()
    {
        using var temp = await StoreWithThreeVersionsAsync();
        var run = await RunAsync("checkpoint", "list", "--dir", temp.Root);
        Assert.Equal(0, run.ExitCode);
        Assert.Equal("", run.StdErr);
        var lines = run.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal($"checkpoint store {temp.Root}: latest v000003, good v000002, 3 version(s)", lines[0]);
        Assert.StartsWith("VERSION", lines[1]);
        Assert.Matches(@"^v000003\s+2025-06-01 12:00:\d\d\s+v000002\s+latest\s+6\.\d KiB\s+yes\s+kl_to_reference=0\.03 reward=0\.53$", lines[2]);
        Assert.Matches(@"^v000002\s+\S+ \S+\s+v000001\s+good\s+.*\byes\b", lines[3]);
        Assert.Matches(@"^v000001\s+\S+ \S+\s+-\s+-\s+.*\bNO\b", lines[4]);
        Assert.StartsWith("invalid v000001: policy.safetensors: sha256 mismatch", lines[5]);
    }

    [Fact]
    public async Task List_json_and_quick_modes()
    {
        using var temp = await StoreWithThreeVersionsAsync();
        var run = await RunAsync("checkpoint", "list", "--dir", temp.Root, "--json");
        Assert.Equal(0, run.ExitCode);
        using var json = JsonDocument.Parse(run.StdOut);
        Assert.Equal(3, json.RootElement.GetProperty("latest").GetInt64());
        Assert.Equal(2, json.RootElement.GetProperty("good").GetInt64());
        var versions = json.RootElement.GetProperty("versions").EnumerateArray().ToList();
        Assert.Equal([3L, 2L, 1L], versions.Select(v => v.GetProperty("version").GetInt64()).ToArray());
        Assert.Equal([true, true, false], versions.Select(v => v.GetProperty("valid").GetBoolean()).ToArray());
        Assert.Contains("sha256 mismatch", versions[2].GetProperty("problems")[0].GetString());

        var quick = await RunAsync("checkpoint", "list", "--dir", temp.Root, "--quick");
        Assert.Equal(0, quick.ExitCode);
        Assert.DoesNotContain("invalid", quick.StdOut); // a flipped byte keeps the size: only the full check sees it
        Assert.Contains("(quick: SHA-256 not checked", quick.StdOut);
    }

    [Fact]
    public async Task Verify_exits_zero_for_a_valid_version_and_one_with_the_reason_for_a_corrupt_one()
    {
        using var temp = await StoreWithThreeVersionsAsync();
        var latest = await RunAsync("checkpoint", "verify", "--dir", temp.Root);
        Assert.Equal(0, latest.ExitCode);
        Assert.Matches(@"^v000003: valid \(3 files, 6\.\d KiB, sha256 checked\)\n$", latest.StdOut);

        var corrupt = await RunAsync("checkpoint", "verify", "--dir", temp.Root, "--version", "1");
        Assert.Equal(1, corrupt.ExitCode);
        Assert.StartsWith("prefonline: v000001 is invalid: policy.safetensors: sha256 mismatch (manifest ", Assert.Single(corrupt.ErrLines));

        var all = await RunAsync("checkpoint", "verify", "--dir", temp.Root, "--all");
        Assert.Equal(1, all.ExitCode);
        Assert.Contains("v000003: valid", all.StdOut);
        Assert.Contains("v000002: valid", all.StdOut);
        Assert.Equal(["prefonline: 1 of 3 versions are invalid"], all.ErrLines.Where(l => l.Contains(" of ", StringComparison.Ordinal)));

        var missing = await RunAsync("checkpoint", "verify", "--dir", temp.Root, "--version", "v000042");
        Assert.Equal(1, missing.ExitCode);
        Assert.Equal("prefonline: v000042 is invalid: v000042 does not exist", Assert.Single(missing.ErrLines));
    }

    [Fact]
    public async Task Rollback_moves_latest_to_good_by_default_and_records_the_reason()
    {
        using var temp = await StoreWithThreeVersionsAsync();
        var run = await RunAsync("checkpoint", "rollback", "--dir", temp.Root, "--reason", "reward drift alert");
        Assert.Equal(0, run.ExitCode);
        Assert.Equal($"rolled back {temp.Root}: latest v000003 -> v000002 (reason: reward drift alert); the next checkpoint will be v000004 with parent v000002\n", run.StdOut);
        Assert.Equal(2, temp.Reader().ReadPointers().Latest);
        Assert.Equal([1L, 2L, 3L], temp.Reader().ListVersions().ToArray());
        var rollback = Assert.Single(temp.Reader().ReadEvents(), e => e.Kind == CheckpointEventKind.Rollback);
        Assert.Equal((3L, 2L, "reward drift alert"), (rollback.From!.Value, rollback.To!.Value, rollback.Reason));
        Assert.NotEqual(Environment.ProcessId, rollback.ProcessId); // written by the child process

        var again = await RunAsync("checkpoint", "rollback", "--dir", temp.Root, "--to", "good");
        Assert.Equal(0, again.ExitCode);
        Assert.Contains("is already v000002; nothing changed", again.StdOut);
    }

    [Fact]
    public async Task Offline_rollback_below_good_moves_good_too_so_the_next_rollback_to_good_stays_on_the_new_line()
    {
        // Issue 11 item 3: the offline rollback left `good` ahead of `latest`; a later rollback to `good` went forward
        // to the abandoned line.
        using var temp = new TempStore();
        using (var store = await OpenWithVersionsAsync(temp, 4)) await store.MarkGoodAsync(3);
        var run = await RunAsync("checkpoint", "rollback", "--dir", temp.Root, "--to", "2", "--reason", "bad labels after v2");
        Assert.Equal(0, run.ExitCode);
        Assert.Equal($"rolled back {temp.Root}: latest v000004 -> v000002; good v000003 -> v000002 (it named a version after the target, now abandoned) (reason: bad labels after v2); the next checkpoint will be v000005 with parent v000002\n", run.StdOut);
        Assert.Equal((2L, 2L), (temp.Reader().ReadPointers().Latest!.Value, temp.Reader().ReadPointers().Good!.Value));

        var again = await RunAsync("checkpoint", "rollback", "--dir", temp.Root);
        Assert.Equal(0, again.ExitCode);
        Assert.Contains("is already v000002; nothing changed", again.StdOut);

        var list = await RunAsync("checkpoint", "list", "--dir", temp.Root, "--json");
        using var listing = JsonDocument.Parse(list.StdOut);
        var abandoned = listing.RootElement.GetProperty("versions").EnumerateArray().Where(v => v.GetProperty("abandoned").GetBoolean()).Select(v => v.GetProperty("version").GetInt64());
        Assert.Equal([4L, 3L], abandoned);
    }

    [Fact]
    public async Task Rollback_to_a_corrupt_or_absent_version_is_refused_and_latest_stays()
    {
        using var temp = await StoreWithThreeVersionsAsync();
        var corrupt = await RunAsync("checkpoint", "rollback", "--dir", temp.Root, "--to", "1");
        Assert.Equal(1, corrupt.ExitCode);
        Assert.StartsWith($"prefonline: checkpoint v000001 in {temp.Root} is invalid: policy.safetensors: sha256 mismatch", Assert.Single(corrupt.ErrLines));

        var absent = await RunAsync("checkpoint", "rollback", "--dir", temp.Root, "--to", "v9");
        Assert.Equal(1, absent.ExitCode);
        Assert.Equal($"prefonline: checkpoint rollback: v000009 does not exist in {temp.Root}", Assert.Single(absent.ErrLines));
        Assert.Equal(3, temp.Reader().ReadPointers().Latest);
    }

    [Fact]
    public async Task Rollback_while_a_learner_holds_the_store_leaves_a_request_the_learner_applies()
    {
        using var temp = await StoreWithThreeVersionsAsync();
        using var learner = await temp.OpenAsync();
        await learner.LoadLatestValidAsync();
        var run = await RunAsync("checkpoint", "rollback", "--dir", temp.Root, "--reason", "operator saw drift");
        Assert.Equal(0, run.ExitCode);
        Assert.Equal("", run.StdErr);
        Assert.StartsWith($"a learner holds {temp.Root} (pid {Environment.ProcessId} on host ", run.StdOut);
        Assert.Contains("requested rollback to v000002 (reason: operator saw drift)", run.StdOut);
        Assert.Equal(3, temp.Reader().ReadPointers().Latest); // not moved under the learner's feet

        var list = await RunAsync("checkpoint", "list", "--dir", temp.Root);
        Assert.Contains("warning: pending rollback to v000002 requested by ", list.StdOut);

        var applied = await learner.ApplyRequestedRollbackAsync();
        Assert.Equal((3L, 2L), (applied!.From!.Value, applied.To));
        Assert.Equal(2, temp.Reader().ReadPointers().Latest);

        var corrupt = await RunAsync("checkpoint", "rollback", "--dir", temp.Root, "--to", "1");
        Assert.Equal(1, corrupt.ExitCode);
        Assert.Contains("v000001", Assert.Single(corrupt.ErrLines));
        Assert.Null(temp.Reader().ReadRollbackRequest().Request);
    }

    [Theory]
    [InlineData(new[] { "checkpoint", "list" }, "prefonline: checkpoint list: give --dir DIR, or --config FILE with a Checkpoints:Directory setting")]
    [InlineData(new[] { "checkpoint", "verify", "--dir", "/nonexistent/prefonline-store" }, "prefonline: checkpoint verify: checkpoint directory /nonexistent/prefonline-store does not exist")]
    [InlineData(new[] { "checkpoint", "rollback", "--dir", "{root}", "--to", "yesterday" }, "prefonline: checkpoint rollback: --to 'yesterday' is neither a version number (e.g. 7 or v000007) nor 'good'")]
    [InlineData(new[] { "checkpoint", "verify", "--dir", "{root}", "--version", "x1" }, "prefonline: checkpoint verify: --version 'x1' is not a version number (e.g. 7 or v000007)")]
    [InlineData(new[] { "checkpoint", "verify", "--dir", "{root}", "--version", "1", "--all" }, "prefonline: checkpoint verify: give --version or --all, not both")]
    [InlineData(new[] { "checkpoint", "rollback", "--dir", "{root}", "--reason", " " }, "prefonline: checkpoint rollback: --reason cannot be empty")]
    [InlineData(new[] { "checkpoint", "list", "--config", "/nonexistent/appsettings.json" }, "prefonline: checkpoint list: --config /nonexistent/appsettings.json: no such file")]
    public async Task Bad_arguments_give_one_clear_line_and_exit_two(string[] args, string expected)
    {
        using var temp = await StoreWithThreeVersionsAsync();
        var run = await RunAsync(args.Select(a => a.Replace("{root}", temp.Root, StringComparison.Ordinal)).ToArray());
        Assert.Equal(CliAction_UsageError, run.ExitCode);
        Assert.Equal(expected, Assert.Single(run.ErrLines));
        Assert.Equal("", run.StdOut);
        Assert.Equal(3, temp.Reader().ReadPointers().Latest);
    }

    [Fact]
    public async Task Verify_without_a_latest_pointer_says_what_to_do()
    {
        using var temp = new TempStore();
        var run = await RunAsync("checkpoint", "verify", "--dir", temp.Root);
        Assert.Equal(1, run.ExitCode);
        Assert.Equal($"prefonline: checkpoint verify: {temp.Root} has no 'latest' pointer; give --version N", Assert.Single(run.ErrLines));
    }

    [Fact]
    public async Task The_directory_comes_from_the_config_file_or_the_environment_when_dir_is_absent()
    {
        using var temp = await StoreWithThreeVersionsAsync();
        var config = Path.Combine(temp.Root, "..", Guid.NewGuid().ToString("N") + "-appsettings.json");
        await File.WriteAllTextAsync(config, JsonSerializer.Serialize(new { Checkpoints = new { Directory = temp.Root, KeepLast = 3 } }));
        try
        {
            var fromFile = await RunAsync("checkpoint", "verify", "--config", config);
            Assert.Equal(0, fromFile.ExitCode);
            Assert.StartsWith("v000003: valid", fromFile.StdOut);

            var fromEnvironment = await RunAsync(new Dictionary<string, string> { ["PREFONLINE__Checkpoints__Directory"] = temp.Root }, "checkpoint", "list");
            Assert.Equal(0, fromEnvironment.ExitCode);
            Assert.StartsWith($"checkpoint store {temp.Root}: latest v000003", fromEnvironment.StdOut);

            await File.WriteAllTextAsync(config, "{ not json");
            var broken = await RunAsync("checkpoint", "list", "--config", config);
            Assert.Equal(2, broken.ExitCode);
            Assert.StartsWith($"prefonline: checkpoint list: --config {config}: ", Assert.Single(broken.ErrLines));
        }
        finally
        {
            File.Delete(config);
        }
    }

    private const int CliAction_UsageError = PrefOnline.Cli.CliAction.UsageError;
}
