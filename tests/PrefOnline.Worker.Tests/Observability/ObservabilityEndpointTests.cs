using System.Net;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using PrefOnline.Learning.Guardrails;
using PrefOnline.Worker.Guardrails;
using PrefOnline.Worker.Observability;
using PrefOnline.Worker.Observability.Health;
using PrefOnline.Worker.Tests.Tools;
using Xunit.Abstractions;

namespace PrefOnline.Worker.Tests.Observability;

public sealed class ObservabilityEndpointTests(ITestOutputHelper output)
{
    private static JsonElement Json(string body) => JsonDocument.Parse(body).RootElement;

    private static JsonElement Check(JsonElement report, string name) =>
        report.GetProperty("checks").EnumerateArray().Single(c => c.GetProperty("name").GetString() == name);

    [Fact]
    public async Task MetricsEndpointServesPrometheusTextThatPromtoolAccepts()
    {
        var promtool = ExternalTool.Require("promtool", "apt-get install -y --no-install-recommends prometheus");
        await using var host = await ObservabilityTestHost.StartAsync(configure: (s, c) => s.AddPrefOnlineGuardrail(c).AddGuardrailReadiness());
        var metrics = host.Get<PrefOnlineMetrics>();
        metrics.SetBuildInfo("test", "learner");
        metrics.LearnerStarted(DateTimeOffset.UtcNow);
        metrics.UpdateApplied(new UpdateReport(1, Loss: 0.5, GradNorm: 2, KlToReference: 0.1, Entropy: 3, MeanReward: 0.2), TimeSpan.FromSeconds(1.5), DateTimeOffset.UtcNow);
        metrics.UpdateSkipped(SkipReasons.Paused);
        metrics.ObserveReward(DriftSource.Human, 3);

        using var response = await host.Client.GetAsync("/metrics");
        var body = await response.Content.ReadAsStringAsync();
        output.WriteLine(body);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain; version=0.0.4; charset=utf-8", response.Content.Headers.ContentType!.ToString());
        Assert.Contains("prefonline_updates_total 1\n", body);
        Assert.Contains("prefonline_update_duration_seconds_bucket{le=\"2.5\"} 1\n", body);
        Assert.Contains("prefonline_skipped_updates_total{reason=\"paused\"} 1\n", body);
        Assert.Contains("prefonline_guardrail_state 0\n", body);
        Assert.Contains("prefonline_build_info{role=\"learner\",version=\"test\"} 1\n", body);

        var (exit, stdout, stderr) = await ExternalTool.RunAsync(promtool, ["check", "metrics"], stdin: body);
        Assert.True(exit == 0 && (stdout + stderr).Trim() == "", $"promtool check metrics ({exit}): {stdout}{stderr}");
    }

    [Fact]
    public async Task ReadinessListsEveryContributorWithItsReasonAndDrivesTheReadyGauge()
    {
        var model = new ReadinessGate("model", "policy not loaded yet");
        var kafkaReachable = true;
        await using var host = await ObservabilityTestHost.StartAsync(
            configure: (services, _) =>
            {
                services.AddSingleton<IReadinessContributor>(model);
                services.AddSingleton<IReadinessContributor>(new DelegateReadinessContributor("kafka", _ =>
                    Task.FromResult(kafkaReachable ? ProbeResult.Pass("kafka", "3 brokers") : ProbeResult.Fail("kafka", "no broker reachable"))));
            });

        using var notReady = await host.Client.GetAsync("/readyz");
        var body = Json(await notReady.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.ServiceUnavailable, notReady.StatusCode);
        Assert.Equal("fail", body.GetProperty("status").GetString());
        Assert.False(Check(body, "model").GetProperty("healthy").GetBoolean());
        Assert.Equal("policy not loaded yet", Check(body, "model").GetProperty("reason").GetString());
        Assert.True(Check(body, "kafka").GetProperty("healthy").GetBoolean());
        Assert.Contains("prefonline_ready 0\n", await host.Client.GetStringAsync("/metrics"));

        model.MarkReady("policy v7 loaded");
        using var ready = await host.Client.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.Equal("ok", Json(await ready.Content.ReadAsStringAsync()).GetProperty("status").GetString());
        Assert.Contains("prefonline_ready 1\n", await host.Client.GetStringAsync("/metrics"));

        kafkaReachable = false;
        using var kafkaDown = await host.Client.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, kafkaDown.StatusCode);
        Assert.Equal("no broker reachable", Check(Json(await kafkaDown.Content.ReadAsStringAsync()), "kafka").GetProperty("reason").GetString());
    }

    [Fact]
    public async Task AGuardrailPauseMakesThePodNotReadyWithTheTripReason()
    {
        await using var host = await ObservabilityTestHost.StartAsync(
            new Dictionary<string, string?> { ["Guardrails:Action"] = "PauseUpdates", ["Guardrails:NonFiniteTripAfter"] = "1" },
            (services, configuration) => services.AddPrefOnlineGuardrail(configuration).AddGuardrailReadiness());
        Assert.Equal(HttpStatusCode.OK, (await host.Client.GetAsync("/readyz")).StatusCode);

        var guardrail = host.Get<Guardrail>();
        guardrail.Evaluate(new UpdateReport(3, Loss: double.NaN));
        using var paused = await host.Client.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, paused.StatusCode);
        var reason = Check(Json(await paused.Content.ReadAsStringAsync()), "guardrail").GetProperty("reason").GetString();
        Assert.StartsWith("updates paused by the guardrail: non_finite:", reason);
        var scrape = await host.Client.GetStringAsync("/metrics");
        Assert.Contains("prefonline_guardrail_state 2\n", scrape);
        Assert.Contains("prefonline_guardrail_paused 1\n", scrape);
        Assert.Contains("prefonline_ready 0\n", scrape);

        guardrail.Resume();
        Assert.Equal(HttpStatusCode.OK, (await host.Client.GetAsync("/readyz")).StatusCode);
    }

    [Fact]
    public async Task AHangingOrThrowingCheckFailsWithAReasonInsteadOfHangingTheProbe()
    {
        var never = new TaskCompletionSource<ProbeResult>();
        await using var host = await ObservabilityTestHost.StartAsync(
            new Dictionary<string, string?> { ["Observability:ProbeTimeout"] = "00:00:00.300", ["Observability:TensorThreadAnswerWait"] = "00:00:00.100" },
            (services, _) =>
            {
                services.AddSingleton<IReadinessContributor>(new DelegateReadinessContributor("kafka", _ => never.Task));
                services.AddSingleton<IReadinessContributor>(new DelegateReadinessContributor("model", _ => throw new IOException("disk gone")));
            });
        var started = DateTime.UtcNow;
        using var response = await host.Client.GetAsync("/readyz");
        var elapsed = DateTime.UtcNow - started;
        var body = Json(await response.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("did not answer within 0.3 s", Check(body, "kafka").GetProperty("reason").GetString());
        Assert.Equal("check threw IOException: disk gone", Check(body, "model").GetProperty("reason").GetString());
        Assert.True(elapsed < TimeSpan.FromSeconds(20), $"the probe took {elapsed}");
    }

    [Fact]
    public async Task LivenessIsTheTensorThreadAnsweringAndFailsOnlyWhenItIsStuck()
    {
        var clock = new ManualClock(DateTimeOffset.UnixEpoch);
        var ping = new TaskCompletionSource();
        var probe = new TensorThreadLivenessProbe(() => ping.Task, () => 1, TimeSpan.FromMilliseconds(50), TimeSpan.FromMinutes(5), clock);
        await using var host = await ObservabilityTestHost.StartAsync(configure: (services, _) => services.AddSingleton<ILivenessProbe>(probe));

        using var busy = await host.Client.GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.OK, busy.StatusCode); // an unanswered ping within the stall timeout is "busy", not dead
        Assert.StartsWith("busy:", Check(Json(await busy.Content.ReadAsStringAsync()), "tensor_thread").GetProperty("reason").GetString());

        clock.Advance(TimeSpan.FromMinutes(6));
        using var stuck = await host.Client.GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, stuck.StatusCode);
        Assert.Contains("a work item is stuck", Check(Json(await stuck.Content.ReadAsStringAsync()), "tensor_thread").GetProperty("reason").GetString());

        ping.SetResult();
        using var recovered = await host.Client.GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.OK, recovered.StatusCode);
    }

    [Fact]
    public async Task WithoutProbesHealthzMeansTheProcessAnswers()
    {
        await using var host = await ObservabilityTestHost.StartAsync();
        using var response = await host.Client.GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json; charset=utf-8", response.Content.Headers.ContentType!.ToString());
        Assert.Equal("alive", Check(Json(await response.Content.ReadAsStringAsync()), "process").GetProperty("reason").GetString());
    }

    [Fact]
    public async Task InvalidObservabilityOptionsStopTheHostWithTheKeyNamed()
    {
        var e = await Assert.ThrowsAnyAsync<Exception>(() => ObservabilityTestHost.StartAsync(new Dictionary<string, string?>
        {
            ["Observability:Otlp:Enabled"] = "true",
            ["Observability:Otlp:Protocol"] = "HttpProtobuf",
            ["Observability:Otlp:Endpoint"] = "http://collector:4318",
        }));
        Assert.Contains("Observability:Otlp:Endpoint for HttpProtobuf must be the full URL ending in /v1/metrics", e.Message);

        var validator = new ObservabilityOptionsValidator();
        var result = validator.Validate(null, new ObservabilityOptions { Port = 70000, BindAddress = "localhost", Otlp = new OtlpOptions { Enabled = true, Endpoint = "not a url" } });
        Assert.Contains(result.Failures!, f => f.Contains("Observability:Port"));
        Assert.Contains(result.Failures!, f => f.Contains("Observability:BindAddress"));
        Assert.Contains(result.Failures!, f => f.Contains("Observability:Otlp:Endpoint must be an absolute"));
        Assert.True(validator.Validate(null, new ObservabilityOptions()).Succeeded);
    }

    [Fact]
    public void OtlpIsOffByDefault()
    {
        using var exporter = new OtlpMetricsExporter(Options.Create(new ObservabilityOptions()));
        Assert.False(exporter.Enabled);
    }

    private sealed class ManualClock(DateTimeOffset start) : TimeProvider
    {
        private DateTimeOffset now = start;

        public override DateTimeOffset GetUtcNow() => now;

        public void Advance(TimeSpan by) => now += by;
    }
}
