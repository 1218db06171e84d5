using System.Text.Json;
using System.Text.RegularExpressions;
using PrefOnline.Deployment.Tests.Tools;
using Xunit.Abstractions;

namespace PrefOnline.Deployment.Tests.Prometheus;

/// <summary>
/// config/prometheus/prefonline-alerts.yml checked and unit-tested by promtool (Debian's prometheus
/// package). Mutation tests prove the unit tests have a firing and a not-firing case for every alert:
/// disabling an alert must break a firing expectation, and making it fire always must break a
/// not-firing one.
/// </summary>
public sealed partial class PromtoolRuleTests(ITestOutputHelper output)
{
    private static readonly string[] AlertNames =
    [
        "PrefOnlineRewardDrift", "PrefOnlineGuardrailTripped", "PrefOnlineUpdatesStalled", "PrefOnlineConsumerLagHigh",
        "PrefOnlineDeadLetterRateHigh", "PrefOnlineRollback", "PrefOnlineServingHandOffFailing", "PrefOnlineNotReady",
    ];

    public static TheoryData<string> Alerts => new(AlertNames);

    [Fact]
    public async Task TheRulesFilePassesPromtoolCheckRules()
    {
        var result = await ExternalTool.RunAsync(ExternalTool.Promtool(), ["check", "rules", RepositoryPaths.AlertRules]);
        output.WriteLine(result.Output);
        Assert.True(result.ExitCode == 0, result.Output);
        Assert.Contains("SUCCESS: 8 rules found", result.Output);
    }

    [Fact]
    public async Task TheRuleUnitTestsPass()
    {
        var result = await ExternalTool.RunAsync(ExternalTool.Promtool(), ["test", "rules", RepositoryPaths.AlertRuleTests]);
        output.WriteLine(result.Output);
        Assert.True(result.ExitCode == 0, result.Output);
        Assert.Contains("SUCCESS", result.Output);
    }

    [Fact]
    public async Task EveryAlertHasSeveritySummaryDescriptionAndRunbook()
    {
        var rules = await Yaml.ParseAsync(await File.ReadAllTextAsync(RepositoryPaths.AlertRules));
        var alerts = rules.GetProperty("groups").EnumerateArray().SelectMany(g => g.GetProperty("rules").EnumerateArray()).ToList();
        Assert.Equal(AlertNames.Order(), alerts.Select(a => a.GetProperty("alert").GetString()!).Order());
        foreach (var alert in alerts)
        {
            var name = alert.GetProperty("alert").GetString();
            Assert.Contains(alert.GetProperty("labels").GetProperty("severity").GetString(), new[] { "warning", "critical" });
            var annotations = alert.GetProperty("annotations");
            foreach (var key in new[] { "summary", "description", "runbook" })
                Assert.True(annotations.TryGetProperty(key, out var text) && text.GetString()!.Length > 10, $"{name} lacks {key}");
            Assert.Contains("docs/OPERATIONS.md#" + name!.ToLowerInvariant(), annotations.GetProperty("runbook").GetString());
        }
    }

    [Theory]
    [MemberData(nameof(Alerts))]
    public async Task EveryAlertHasAFiringCase(string alert)
    {
        // Rename the alert: every "expected to fire" case for it must now fail.
        var rules = (await File.ReadAllTextAsync(RepositoryPaths.AlertRules)).Replace($"- alert: {alert}\n", $"- alert: {alert}Disabled\n");
        var failures = await RunMutatedAsync(rules);
        Assert.Contains(failures, f => f.Alert == alert && f.Expected != "[]" && f.Got == "[]");
    }

    [Theory]
    [MemberData(nameof(Alerts))]
    public async Task EveryAlertHasANotFiringCase(string alert)
    {
        // Make the alert fire unconditionally: some "expected silent" case for it must now fail.
        var failures = await RunMutatedAsync(ReplaceExpression(await File.ReadAllTextAsync(RepositoryPaths.AlertRules), alert, "vector(1)"));
        Assert.Contains(failures, f => f.Alert == alert && f.Expected == "[]");
    }

    private async Task<IReadOnlyList<(string Alert, string Expected, string Got)>> RunMutatedAsync(string rules)
    {
        var dir = Directory.CreateTempSubdirectory("prefonline-rules-");
        try
        {
            await File.WriteAllTextAsync(Path.Combine(dir.FullName, "rules.yml"), rules);
            var tests = (await File.ReadAllTextAsync(RepositoryPaths.AlertRuleTests)).Replace("../../../config/prometheus/prefonline-alerts.yml", "rules.yml");
            await File.WriteAllTextAsync(Path.Combine(dir.FullName, "tests.yml"), tests);
            var result = await ExternalTool.RunAsync(ExternalTool.Promtool(), ["test", "rules", "tests.yml"], workingDirectory: dir.FullName);
            Assert.NotEqual(0, result.ExitCode);
            var failures = FailureBlock().Matches(result.Output)
                .Select(m => (m.Groups["alert"].Value, m.Groups["exp"].Value.Trim(), m.Groups["got"].Value.Trim()))
                .ToList();
            output.WriteLine(string.Join("\n", failures.Select(f => $"{f.Item1}: exp {Short(f.Item2)} got {Short(f.Item3)}")));
            return failures;
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private static string Short(string s) => s.Length > 40 ? s[..40] + "…" : s;

    /// <summary>Replaces the (possibly multi-line) expr of one alert.</summary>
    internal static string ReplaceExpression(string rules, string alert, string expression)
    {
        var lines = rules.Split('\n').ToList();
        var start = lines.FindIndex(l => l.Trim() == $"- alert: {alert}");
        Assert.True(start >= 0, $"alert {alert} not found");
        var expr = lines.FindIndex(start, l => l.TrimStart().StartsWith("expr:", StringComparison.Ordinal));
        var indent = lines[expr][..(lines[expr].Length - lines[expr].TrimStart().Length)];
        var end = expr + 1;
        while (end < lines.Count && (lines[end].StartsWith(indent + " ", StringComparison.Ordinal) || lines[end].Trim() == "")) end++;
        lines.RemoveRange(expr, end - expr);
        lines.Insert(expr, $"{indent}expr: {expression}");
        return string.Join('\n', lines);
    }

    [GeneratedRegex(@"alertname: (?<alert>\w+), time: [^\n]*\n\s*exp:(?<exp>\[.*?\]),\s*\n\s*got:(?<got>\[.*?\])\s*(?=\n\s*alertname:|\z)", RegexOptions.Singleline)]
    private static partial Regex FailureBlock();
}
