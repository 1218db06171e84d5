using System.Diagnostics.Metrics;
using PrefOnline.Learning.Guardrails;
using PrefOnline.Worker.Observability;
using PrefOnline.Worker.Tests.Tools;
using Xunit.Abstractions;

namespace PrefOnline.Worker.Tests.Observability;

public sealed class PrefOnlineMetricsTests(ITestOutputHelper output) : IDisposable
{
    private readonly IsolatedMeter meters = new();

    public void Dispose() => meters.Dispose();

    private static KeyValuePair<string, object?> Tag(string key, object? value) => new(key, value);

    /// <summary>Every instrument of the catalog gets a value: the worker's via PrefOnlineMetrics, Streaming's two directly (as Streaming does), and the exporter's own two by provoking them.</summary>
    internal static (PrometheusExporter Exporter, PrefOnlineMetrics Metrics, Guardrail Guardrail) PopulateEverything(IsolatedMeter meters)
    {
        var exporter = meters.Exporter();
        var metrics = new PrefOnlineMetrics(meters.Create());
        var guardrail = new Guardrail(new GuardrailOptions { ModelReward = new DriftStreamOptions { Cusum = new CusumOptions { WarmUp = 5 } } }, initialGood: 3);
        metrics.AttachGuardrail(guardrail);
        metrics.SetBuildInfo("1.2.3+abc", "all");
        metrics.SetReady(true);
        metrics.LearnerStarted(DateTimeOffset.FromUnixTimeSeconds(1_700_000_000));
        for (var v = 1; v <= 8; v++)
        {
            var report = new UpdateReport(v, Loss: 0.69, GradNorm: 1.5, KlToReference: 0.12, Entropy: 2.3, MeanReward: 0.4 + 0.01 * (v % 3));
            guardrail.Evaluate(report);
            metrics.UpdateApplied(report, TimeSpan.FromSeconds(0.8 * v), DateTimeOffset.FromUnixTimeSeconds(1_700_000_000 + v), meanSampleStaleness: 0.5);
        }
        metrics.UpdateSkipped(SkipReasons.NonFinite);
        metrics.ObserveReward(DriftSource.Model, 0.4);
        metrics.ObserveReward(DriftSource.Human, 4);
        for (var i = 0; i < 60; i++) guardrail.ObserveRewardModelPrediction(i % 4 != 0);
        metrics.SetReplaySize(1024);
        metrics.AddGeneratedTokens(5000);
        metrics.CheckpointWritten();
        metrics.RolledBack();

        var streaming = meters.Create();
        streaming.CreateCounter<long>("prefonline_messages_total").Add(12, Tag("topic", "prefonline.feedback"), Tag("result", "accepted"));
        streaming.CreateCounter<long>("prefonline_messages_total").Add(1, Tag("topic", "prefonline.feedback"), Tag("result", MessageResults.DeadLetter), Tag("prompt", "leak?"));
        streaming.CreateCounter<long>("prefonline_dead_letters_total").Add(1, Tag("topic", "prefonline.feedback"), Tag("reason", "invalid-json"));
        streaming.CreateCounter<long>("prefonline_messages_total").Add(1, Tag("topic", "prefonline.policy"), Tag("result", MessageResults.Skipped));
        streaming.CreateCounter<long>("prefonline_skipped_records_total").Add(1, Tag("topic", "prefonline.policy"), Tag("reason", "lone-surrogate"));
        streaming.CreateObservableGauge("prefonline_consumer_lag", () => new Measurement<long>(42, Tag("topic", "prefonline.prompts"), Tag("partition", 0)));
        streaming.CreateObservableGauge<double>("prefonline_test_broken_callback", (Func<double>)(() => throw new InvalidOperationException("provoked")));
        return (exporter, metrics, guardrail);
    }

    [Fact]
    public async Task EveryCatalogMetricAppearsInAScrapeWithItsHelpAndType()
    {
        var (exporter, metrics, _) = PopulateEverything(meters);
        using (exporter)
        using (metrics)
        {
            var text = await exporter.ScrapeAsync();
            output.WriteLine(text);
            foreach (var definition in MetricCatalog.All)
            {
                Assert.Contains($"# HELP {definition.Name} {definition.Help}\n", text);
                var type = definition.Kind.ToString().ToLowerInvariant();
                Assert.Contains($"# TYPE {definition.Name} {type}\n", text);
            }
            Assert.Contains("prefonline_guardrail_state 0\n", text);
            Assert.Contains("prefonline_good_version 3\n", text);
            Assert.Contains("prefonline_updates_total 8\n", text);
            Assert.Contains("prefonline_policy_version 8\n", text);
            Assert.Contains("prefonline_last_update_timestamp_seconds 1700000008\n", text);
            Assert.Contains("prefonline_reward_model_accuracy 0.75\n", text);
            Assert.Contains("prefonline_update_duration_seconds_count 8\n", text);
            Assert.Contains("prefonline_build_info{role=\"all\",version=\"1.2.3+abc\"} 1\n", text);
        }
    }

    [Fact]
    public async Task CountersTheCatalogDeclaresStartAtZeroSoIncreaseSeesTheFirstEvent()
    {
        using var exporter = meters.Exporter();
        using var metrics = new PrefOnlineMetrics(meters.Create());
        metrics.AttachGuardrail(new Guardrail(new GuardrailOptions()));
        var text = await exporter.ScrapeAsync();
        Assert.Contains("prefonline_rollbacks_total 0\n", text);
        Assert.Contains("prefonline_updates_total 0\n", text);
        Assert.Contains("prefonline_checkpoints_total 0\n", text);
        foreach (var reason in SkipReasons.All) Assert.Contains($"prefonline_skipped_updates_total{{reason=\"{reason}\"}} 0\n", text);
        Assert.Contains("prefonline_drift_alarms_total{direction=\"down\",source=\"human\"} 0\n", text);
        Assert.Contains("prefonline_guardrail_trips_total{check=\"kl_budget\"} 0\n", text);
        Assert.Contains("prefonline_update_duration_seconds_count 0\n", text);
        // Gauges have no "zero" before they are known: no policy version until one is loaded (prometheus-net writes the
        // declared metric's HELP and TYPE lines, but no sample).
        Assert.DoesNotContain(text.Split('\n'), l => l.StartsWith("prefonline_policy_version", StringComparison.Ordinal));
        Assert.DoesNotContain(text.Split('\n'), l => l.StartsWith("prefonline_last_update_timestamp_seconds", StringComparison.Ordinal));
    }

    [Fact]
    public async Task LastUpdateReadsTheStartTimeOnlyUntilTheFirstUpdate()
    {
        using var exporter = meters.Exporter();
        using var metrics = new PrefOnlineMetrics(meters.Create());
        metrics.LearnerStarted(DateTimeOffset.FromUnixTimeSeconds(100));
        Assert.Contains("prefonline_last_update_timestamp_seconds 100\n", await exporter.ScrapeAsync());
        metrics.UpdateApplied(new UpdateReport(1), TimeSpan.FromSeconds(1), DateTimeOffset.FromUnixTimeSeconds(200));
        metrics.LearnerStarted(DateTimeOffset.FromUnixTimeSeconds(300));
        Assert.Contains("prefonline_last_update_timestamp_seconds 200\n", await exporter.ScrapeAsync());
    }

    [Fact]
    public async Task GuardrailMetricsFollowTheGuardrail()
    {
        using var exporter = meters.Exporter();
        using var metrics = new PrefOnlineMetrics(meters.Create());
        var guardrail = new Guardrail(new GuardrailOptions { Action = GuardrailAction.PauseUpdates, NonFiniteTripAfter = 1 });
        metrics.AttachGuardrail(guardrail);
        guardrail.Evaluate(new UpdateReport(1, Loss: double.NaN));
        var text = await exporter.ScrapeAsync();
        Assert.Contains("prefonline_guardrail_state 2\n", text);
        Assert.Contains("prefonline_guardrail_paused 1\n", text);
        Assert.Contains("prefonline_guardrail_trips_total{check=\"non_finite\"} 1\n", text);
        guardrail.Resume();
        text = await exporter.ScrapeAsync();
        Assert.Contains("prefonline_guardrail_state 0\n", text);
        Assert.Contains("prefonline_guardrail_paused 0\n", text);
        Assert.Contains("prefonline_guardrail_trips_total{check=\"non_finite\"} 1\n", text); // counters never go back
    }

    [Fact]
    public async Task RewardIsARollingMeanPerSource()
    {
        using var exporter = meters.Exporter();
        using var metrics = new PrefOnlineMetrics(meters.Create());
        for (var i = 0; i < PrefOnlineMetrics.RewardWindow; i++) metrics.ObserveReward(DriftSource.Model, 100);
        for (var i = 0; i < PrefOnlineMetrics.RewardWindow; i++) metrics.ObserveReward(DriftSource.Model, 1); // window fully replaced
        metrics.ObserveReward(DriftSource.Human, double.NaN);
        var text = await exporter.ScrapeAsync();
        Assert.Contains("prefonline_reward{source=\"model\"} 1\n", text);
        Assert.DoesNotContain("source=\"human\"} NaN", text);
    }

    [Fact]
    public void WrongRoleOrSkipReasonIsAProgrammingErrorCaughtAtOnce()
    {
        using var metrics = new PrefOnlineMetrics(meters.Create());
        Assert.Throws<ArgumentException>(() => metrics.SetBuildInfo("1", "trainer"));
        Assert.Throws<ArgumentException>(() => metrics.UpdateSkipped("because"));
    }

    [Fact]
    public async Task AFullScrapePassesPromtoolCheckMetrics()
    {
        var promtool = ExternalTool.Require("promtool", "apt-get install -y --no-install-recommends prometheus");
        var (exporter, metrics, _) = PopulateEverything(meters);
        using (exporter)
        using (metrics)
        {
            var text = await exporter.ScrapeAsync();
            var (exit, stdout, stderr) = await ExternalTool.RunAsync(promtool, ["check", "metrics"], stdin: text);
            output.WriteLine($"promtool exit {exit}\n{stdout}{stderr}");
            Assert.True(exit == 0, $"promtool check metrics failed ({exit}):\n{stdout}{stderr}");
            Assert.Equal("", (stdout + stderr).Trim());
        }
    }

    [Fact]
    public async Task PromtoolRejectsABrokenScrapeSoTheCheckAboveCanFail()
    {
        var promtool = ExternalTool.Require("promtool", "apt-get install -y --no-install-recommends prometheus");
        var broken = "# HELP x_total x\n# TYPE x_total counter\nx_total{a=\"unterminated} 1\n";
        var (exit, _, _) = await ExternalTool.RunAsync(promtool, ["check", "metrics"], stdin: broken);
        Assert.NotEqual(0, exit);
    }
}
