using System.Text.Json;

using PrefOnline.Worker.Tests.ModelVerbs;

namespace PrefOnline.Worker.Tests.Cli;

/// <summary>The <c>prefonline experiment bandit</c> verb end to end, as a user runs it: a separate process,
/// real files, the printed table, and one-line errors with the usage exit code.</summary>
public sealed class ExperimentCommandTests
{
    private static (int ExitCode, string Stdout, string Stderr) Prefonline(params string[] args) => CliProcess.Run(args);

    [Fact]
    public void Bandit_writes_results_curves_and_plot_and_prints_the_table()
    {
        var directory = Path.Combine(Path.GetTempPath(), $"prefonline-bandit-{Guid.NewGuid():N}");
        try
        {
            // --quick, with explicit options winning over the preset (and kept small for CI).
            var (code, stdout, stderr) = Prefonline("experiment", "bandit", "--quick", "--methods", "dpo,best_of_n", "--seeds", "1",
                "--epochs", "3", "--offline-steps", "20", "--eval-states", "10", "--peak", "20", "--out", directory);
            Assert.True(code == 0, $"exit {code}: {stderr}");
            Assert.Contains("peak c=20", stdout);
            Assert.Contains("on-policy @1000 samples", stdout);
            Assert.Matches(@"dpo\s+\d\.\d{3} ± \d\.\d{3}", stdout);
            foreach (var file in new[] { "results.json", "curves.csv", "bandit.svg" })
                Assert.True(File.Exists(Path.Combine(directory, file)), $"{file} was not written");
            using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(directory, "results.json")));
            var options = json.RootElement.GetProperty("options");
            Assert.Equal(20, options.GetProperty("peak").GetInt32());
            Assert.Equal(3, options.GetProperty("epochs").GetInt32());
            Assert.Equal(10, options.GetProperty("eval_states").GetInt32());
            Assert.Equal(2 * 2, json.RootElement.GetProperty("runs").GetArrayLength());
        }
        finally
        {
            if (Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
        }
    }

    [Theory]
    [InlineData("--methods", "nonsense", "--methods: unknown bandit method 'nonsense'; valid methods: best_of_n")]
    [InlineData("--modes", "sideways", "--modes: unknown mode 'sideways'; valid modes: offline, on-policy")]
    [InlineData("--seeds", "0", "--seeds 0: must be at least 1")]
    [InlineData("--peak", "100", "--peak 100: the peak is a bin index in [0, 99]")]
    public void Bad_options_give_one_line_and_the_usage_exit_code(string flag, string value, string expected)
    {
        var (code, stdout, stderr) = Prefonline("experiment", "bandit", flag, value, "--out", Path.Combine(Path.GetTempPath(), "never-written"));
        Assert.Equal(2, code);
        Assert.Contains(expected, stderr);
        Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.DoesNotContain("   at ", stderr);                                    // no stack trace
        Assert.DoesNotContain("wrote", stdout);
    }
}
