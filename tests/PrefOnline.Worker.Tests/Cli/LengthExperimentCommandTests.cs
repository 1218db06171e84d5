using System.Text.Json;

using PrefOnline.Worker.Tests.ModelVerbs;

namespace PrefOnline.Worker.Tests.Cli;

/// <summary>The <c>prefonline experiment length</c> verb end to end, as a user runs it: a separate process,
/// real files, the printed tables, and one-line errors with the usage exit code.</summary>
public sealed class LengthExperimentCommandTests
{
    private static (int ExitCode, string Stdout, string Stderr) Prefonline(params string[] args) => CliProcess.Run(args);

    [Fact]
    public void Length_writes_results_curves_and_plots_and_prints_the_tables()
    {
        var directory = Path.Combine(Path.GetTempPath(), $"prefonline-length-{Guid.NewGuid():N}");
        try
        {
            // --quick, with explicit options winning over the preset (and kept small for CI).
            var (code, stdout, stderr) = Prefonline("experiment", "length", "--quick", "--tasks", "min,skew", "--methods", "dpo", "--pretrain-steps", "5",
                "--updates", "2", "--evaluate-every", "1", "--reuse-sweep", "1,2", "--batch-sweep", "none", "--out", directory);
            Assert.True(code == 0, $"exit {code}: {stderr}");
            Assert.Contains("task min: reference reward", stdout);
            Assert.Contains("task skew: reference reward", stdout);
            Assert.Contains("sample reuse (online, task min", stdout);
            Assert.DoesNotContain("batch size (online", stdout);
            Assert.Matches(@"dpo\s+\d\.\d{3} ± \d\.\d{3}", stdout);
            foreach (var file in new[] { "results.json", "curves.csv", "length.svg", "length-sweeps.svg" })
                Assert.True(File.Exists(Path.Combine(directory, file)), $"{file} was not written");
            using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(directory, "results.json")));
            var options = json.RootElement.GetProperty("options");
            Assert.Equal(2, options.GetProperty("updates").GetInt32());
            Assert.Equal(5, options.GetProperty("pretrain_steps").GetInt32());
            Assert.Equal(1, options.GetProperty("seeds").GetInt32());                        // from --quick
            Assert.Equal(0, options.GetProperty("batch_sweep").GetArrayLength());
            // 2 tasks × 2 modes, plus the sweep's T = 1 (T = 2 is the grid's own run).
            Assert.Equal(2 * 2 + 1, json.RootElement.GetProperty("runs").GetArrayLength());
        }
        finally
        {
            if (Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
        }
    }

    [Theory]
    [InlineData("--tasks", "longest", "--tasks: unknown task 'longest'; valid tasks: min, mode, skew")]
    [InlineData("--methods", "nonsense", "--methods: unknown length method 'nonsense'; valid methods: sft, best_of_n")]
    [InlineData("--modes", "sideways", "--modes: unknown mode 'sideways'; valid modes: offline, online")]
    [InlineData("--seeds", "0", "--seeds 0: must be at least 1")]
    [InlineData("--samples", "1", "--samples 1: pairs and leave-one-out baselines need at least 2 samples per prompt")]
    [InlineData("--reuse-sweep", "1,x", "--reuse-sweep: 'x' is not an integer")]
    [InlineData("--batch-sweep", "4,4", "--batch-sweep: a batch size is listed twice")]
    [InlineData("--sweep-task", "longest", "--sweep-task: unknown task 'longest'")]
    [InlineData("--lr", "-1", "--lr -1: must be a positive finite number")]
    [InlineData("--max-length", "1", "--max-length 1: must be in [2, 100]")]
    [InlineData("--mean-length", "30", "--mean-length 30: must be in [1, 20]")]
    [InlineData("--ppo-clip", "1.5", "--ppo-clip 1.5: must be in (0, 1)")]
    public void Bad_options_give_one_line_and_the_usage_exit_code(string flag, string value, string expected)
    {
        var (code, stdout, stderr) = Prefonline("experiment", "length", flag, value, "--out", Path.Combine(Path.GetTempPath(), "never-written"));
        Assert.Equal(2, code);
        Assert.Contains(expected, stderr);
        Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.DoesNotContain("   at ", stderr);                                    // no stack trace
        Assert.DoesNotContain("wrote", stdout);
    }
}
