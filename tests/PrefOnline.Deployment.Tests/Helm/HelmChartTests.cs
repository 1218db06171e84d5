using System.Text.Json;
using PrefOnline.Deployment.Tests.Tools;
using Xunit.Abstractions;

namespace PrefOnline.Deployment.Tests.Helm;

/// <summary>
/// helm lint and helm template over the chart with several values files, asserting on the rendered
/// objects: what exists under which flags, security settings, probes, mounts, config and secrets.
/// </summary>
public sealed class HelmChartTests(ITestOutputHelper output)
{
    private static string CiValues(string name) => Path.Combine(RepositoryPaths.Chart, "ci", name);

    private static readonly string AllFeatures = CiValues("all-features-values.yaml");
    private static readonly string Minimal = CiValues("minimal-values.yaml");
    private static readonly string Single = CiValues("single-values.yaml");

    public static TheoryData<string> ValuesFiles => new() { "", "all-features-values.yaml", "minimal-values.yaml", "single-values.yaml" };

    [Theory]
    [MemberData(nameof(ValuesFiles))]
    public async Task HelmLintPassesStrict(string valuesFile)
    {
        var arguments = new List<string> { "lint", RepositoryPaths.Chart, "--strict" };
        if (valuesFile != "") arguments.AddRange(["-f", CiValues(valuesFile)]);
        var result = await ExternalTool.RunAsync(ExternalTool.Helm(), arguments);
        output.WriteLine(result.Output);
        Assert.True(result.ExitCode == 0, result.Output);
        Assert.Contains("0 chart(s) failed", result.Output);
    }

    [Fact]
    public async Task DefaultsRenderTheSplitTopologyWithoutOptionalObjects()
    {
        var chart = await RenderedChart.RenderAsync();
        output.WriteLine(string.Join("\n", chart.Inventory));
        Assert.Equal(
        [
            "ConfigMap/rel-prefonline-config",
            "Deployment/rel-prefonline-generator",
            "NetworkPolicy/rel-prefonline-generator",
            "NetworkPolicy/rel-prefonline-learner",
            "PodDisruptionBudget/rel-prefonline-generator",
            "Secret/rel-prefonline-policy-token",
            "Service/rel-prefonline-learner",
            "Service/rel-prefonline-metrics",
            "Service/rel-prefonline-policy",
            "ServiceAccount/rel-prefonline",
            "StatefulSet/rel-prefonline-learner",
        ], chart.Inventory);

        var learner = chart.Get("StatefulSet", "rel-prefonline-learner").GetProperty("spec");
        Assert.Equal(1, learner.GetProperty("replicas").GetInt32());
        Assert.Equal("rel-prefonline-learner", learner.GetProperty("serviceName").GetString());
        Assert.Equal(["run", "--config", "/etc/prefonline/config/appsettings.json", "--role", "learner"],
            RenderedChart.Strings(RenderedChart.Container(learner.GetProperty("template").GetProperty("spec")).GetProperty("args")));
        var claim = learner.GetProperty("volumeClaimTemplates").EnumerateArray().Single();
        Assert.Equal("checkpoints", claim.GetProperty("metadata").GetProperty("name").GetString());
        Assert.Equal("20Gi", claim.GetProperty("spec").GetProperty("resources").GetProperty("requests").GetProperty("storage").GetString());
        Assert.Equal("Retain", learner.GetProperty("persistentVolumeClaimRetentionPolicy").GetProperty("whenDeleted").GetString());

        var generator = chart.Get("Deployment", "rel-prefonline-generator").GetProperty("spec");
        Assert.Equal(2, generator.GetProperty("replicas").GetInt32());
        Assert.Equal(["run", "--config", "/etc/prefonline/config/appsettings.json", "--role", "generator"],
            RenderedChart.Strings(RenderedChart.Container(generator.GetProperty("template").GetProperty("spec")).GetProperty("args")));
    }

    [Fact]
    public async Task AllFeaturesOnRendersMonitoringDashboardAndBothBudgets()
    {
        var chart = await RenderedChart.RenderAsync(AllFeatures);
        output.WriteLine(string.Join("\n", chart.Inventory));
        // The generators mount the shared volume: the learner serves no policy port, so there is no policy Service.
        Assert.Equal(
        [
            "ConfigMap/rel-prefonline-config",
            "ConfigMap/rel-prefonline-dashboard",
            "Deployment/rel-prefonline-generator",
            "NetworkPolicy/rel-prefonline-generator",
            "NetworkPolicy/rel-prefonline-learner",
            "PodDisruptionBudget/rel-prefonline-generator",
            "PodDisruptionBudget/rel-prefonline-learner",
            "PrometheusRule/rel-prefonline",
            "Secret/rel-prefonline-policy-token",
            "Service/rel-prefonline-learner",
            "Service/rel-prefonline-metrics",
            "ServiceAccount/rel-prefonline",
            "ServiceMonitor/rel-prefonline",
            "StatefulSet/rel-prefonline-learner",
        ], chart.Inventory);
        Assert.Equal(4, chart.Get("Deployment", "rel-prefonline-generator").GetProperty("spec").GetProperty("replicas").GetInt32());
        Assert.Equal("registry.example.com/ml/prefonline:1.4.2",
            RenderedChart.Container(chart.PodSpecs().First().PodSpec).GetProperty("image").GetString());
    }

    [Fact]
    public async Task SingleModeRunsEveryRoleInOnePodWithoutKafka()
    {
        var chart = await RenderedChart.RenderAsync(Single);
        Assert.Null(chart.TryGet("Deployment", "rel-prefonline-generator"));
        Assert.Null(chart.TryGet("PodDisruptionBudget", "rel-prefonline-generator"));
        var pod = chart.Get("StatefulSet", "rel-prefonline-learner").GetProperty("spec").GetProperty("template").GetProperty("spec");
        Assert.Equal("all", RenderedChart.Strings(RenderedChart.Container(pod).GetProperty("args"))[^1]);
        // Persistence off: checkpoints go to an emptyDir, still writable under a read-only root.
        var checkpoints = pod.GetProperty("volumes").EnumerateArray().Single(v => v.GetProperty("name").GetString() == "checkpoints");
        Assert.True(checkpoints.TryGetProperty("emptyDir", out _));
        Assert.False(chart.Get("StatefulSet", "rel-prefonline-learner").GetProperty("spec").TryGetProperty("volumeClaimTemplates", out _));
    }

    public static TheoryData<string> AllValuesFiles => new() { "", AllFeatures, Minimal, Single };

    [Theory]
    [MemberData(nameof(AllValuesFiles))]
    public async Task EveryPodIsNonRootReadOnlyWithoutCapabilitiesWithAWritableTmpAndBoundedEphemeralStorage(string valuesFile)
    {
        var chart = await RenderedChart.RenderAsync(valuesFile == "" ? [] : [valuesFile]);
        Assert.NotEmpty(chart.PodSpecs());
        foreach (var (workload, pod) in chart.PodSpecs())
        {
            var podSecurity = pod.GetProperty("securityContext");
            Assert.True(podSecurity.GetProperty("runAsNonRoot").GetBoolean(), workload);
            Assert.Equal(10001, podSecurity.GetProperty("runAsUser").GetInt32());
            Assert.Equal("RuntimeDefault", podSecurity.GetProperty("seccompProfile").GetProperty("type").GetString());
            Assert.False(pod.GetProperty("automountServiceAccountToken").GetBoolean());

            var container = RenderedChart.Container(pod);
            var security = container.GetProperty("securityContext");
            Assert.True(security.GetProperty("readOnlyRootFilesystem").GetBoolean(), workload);
            Assert.False(security.GetProperty("allowPrivilegeEscalation").GetBoolean(), workload);
            Assert.Equal(["ALL"], RenderedChart.Strings(security.GetProperty("capabilities").GetProperty("drop")));

            var mounts = container.GetProperty("volumeMounts").EnumerateArray().ToDictionary(m => m.GetProperty("mountPath").GetString()!, m => m);
            var tmpVolume = pod.GetProperty("volumes").EnumerateArray().Single(v => v.GetProperty("name").GetString() == mounts["/tmp"].GetProperty("name").GetString());
            Assert.True(tmpVolume.TryGetProperty("emptyDir", out _), $"{workload}: /tmp is not an emptyDir");
            Assert.True(mounts["/etc/prefonline/config"].GetProperty("readOnly").GetBoolean());
            // Every writable mount is /tmp, the learner's checkpoint volume or a generator's policy downloads: nothing else may be written.
            foreach (var (path, mount) in mounts)
            {
                var readOnly = mount.TryGetProperty("readOnly", out var ro) && ro.GetBoolean();
                if (!readOnly) Assert.Contains(path, new[] { "/tmp", "/var/lib/prefonline", "/var/cache/prefonline/policies" });
            }
            Assert.True(mounts["/etc/prefonline/policy-token"].GetProperty("readOnly").GetBoolean(), workload);
            var resources = container.GetProperty("resources");
            Assert.True(resources.GetProperty("limits").TryGetProperty("memory", out _), $"{workload}: no memory limit");
            Assert.True(resources.GetProperty("limits").TryGetProperty("ephemeral-storage", out _), $"{workload}: no ephemeral-storage limit");
            Assert.True(resources.GetProperty("requests").TryGetProperty("ephemeral-storage", out _), $"{workload}: no ephemeral-storage request");
            // Every emptyDir has a size limit: a full disk must evict this pod, not its neighbours.
            foreach (var volume in pod.GetProperty("volumes").EnumerateArray().Where(v => v.TryGetProperty("emptyDir", out _)))
                Assert.True(volume.GetProperty("emptyDir").TryGetProperty("sizeLimit", out _), $"{workload}: emptyDir {volume.GetProperty("name").GetString()} without sizeLimit");
        }
    }

    [Fact]
    public async Task ProbesUseHealthzAndReadyzOnTheMetricsPort()
    {
        var chart = await RenderedChart.RenderAsync();
        foreach (var (workload, pod) in chart.PodSpecs())
        {
            var container = RenderedChart.Container(pod);
            Assert.Equal(8080, container.GetProperty("ports").EnumerateArray().Single(p => p.GetProperty("name").GetString() == "metrics").GetProperty("containerPort").GetInt32());
            foreach (var (probe, path) in new[] { ("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz") })
            {
                var get = container.GetProperty(probe).GetProperty("httpGet");
                Assert.Equal(path, get.GetProperty("path").GetString());
                Assert.Equal("metrics", get.GetProperty("port").GetString());
            }
            var env = container.GetProperty("env").EnumerateArray().ToDictionary(e => e.GetProperty("name").GetString()!, e => e);
            Assert.Equal("8080", env["PREFONLINE__Observability__Port"].GetProperty("value").GetString());
            Assert.Equal("0.0.0.0", env["PREFONLINE__Observability__BindAddress"].GetProperty("value").GetString());
            Assert.Equal("kafka:9092", env["PREFONLINE__Kafka__BootstrapServers"].GetProperty("value").GetString());
            output.WriteLine($"{workload}: probes and env ok");
        }
    }

    [Fact]
    public async Task WithoutASharedVolumeTheLearnerServesPoliciesToGeneratorsThroughItsPolicyService()
    {
        static string? PolicyBaseUrl(JsonElement pod) => RenderedChart.Env(pod).TryGetValue("PREFONLINE__Worker__PolicyBaseUrl", out var e) ? e.GetProperty("value").GetString() : null;
        var defaults = await RenderedChart.RenderAsync();
        // Both name the policy Service: the learner publishes it in its events, generators accept only events that point there.
        Assert.Equal("http://rel-prefonline-policy.ml.svc:8081", PolicyBaseUrl(defaults.Pod("StatefulSet", "rel-prefonline-learner")));
        Assert.Equal("http://rel-prefonline-policy.ml.svc:8081", PolicyBaseUrl(defaults.Pod("Deployment", "rel-prefonline-generator")));
        // With the volume shared, file:// URIs work and nobody needs a base URL.
        var shared = await RenderedChart.RenderAsync(AllFeatures);
        Assert.Null(PolicyBaseUrl(shared.Pod("StatefulSet", "rel-prefonline-learner")));
        Assert.Null(PolicyBaseUrl(shared.Pod("Deployment", "rel-prefonline-generator")));
    }

    [Fact]
    public async Task ThePolicyPortIsItsOwnSurfaceWithItsOwnClusterIpServiceTokenAndLimits()
    {
        var chart = await RenderedChart.RenderAsync();
        static Dictionary<string, int> Ports(JsonElement pod) => RenderedChart.Container(pod).GetProperty("ports").EnumerateArray()
            .ToDictionary(p => p.GetProperty("name").GetString()!, p => p.GetProperty("containerPort").GetInt32());
        var learner = chart.Pod("StatefulSet", "rel-prefonline-learner");
        Assert.Equal(new Dictionary<string, int> { ["metrics"] = 8080, ["policy"] = 8081 }, Ports(learner));
        Assert.Equal(new Dictionary<string, int> { ["metrics"] = 8080 }, Ports(chart.Pod("Deployment", "rel-prefonline-generator")));

        var env = RenderedChart.Env(learner);
        Assert.Equal("8081", env["PREFONLINE__PolicyDistribution__Port"].GetProperty("value").GetString());
        Assert.Equal("0.0.0.0", env["PREFONLINE__PolicyDistribution__BindAddress"].GetProperty("value").GetString());
        Assert.Equal("16", env["PREFONLINE__PolicyDistribution__MaxConnections"].GetProperty("value").GetString());
        Assert.Equal("10", env["PREFONLINE__PolicyDistribution__RequestsPerSecond"].GetProperty("value").GetString());
        foreach (var (workload, pod) in chart.PodSpecs())
        {
            Assert.Equal("/etc/prefonline/policy-token/token", RenderedChart.Env(pod)["PREFONLINE__PolicyDistribution__TokenFile"].GetProperty("value").GetString());
            var token = pod.GetProperty("volumes").EnumerateArray().Single(v => v.GetProperty("name").GetString() == "policy-token");
            Assert.Equal("rel-prefonline-policy-token", token.GetProperty("secret").GetProperty("secretName").GetString());
            output.WriteLine($"{workload}: token from the Secret");
        }

        // The policy Service: ClusterIP, the learner only, the policy port only. The metrics Service never carries it.
        var policy = chart.Get("Service", "rel-prefonline-policy").GetProperty("spec");
        Assert.Equal("ClusterIP", policy.GetProperty("type").GetString());
        Assert.Equal("learner", policy.GetProperty("selector").GetProperty("app.kubernetes.io/component").GetString());
        var port = Assert.Single(policy.GetProperty("ports").EnumerateArray());
        Assert.Equal((8081, "policy"), (port.GetProperty("port").GetInt32(), port.GetProperty("targetPort").GetString()));
        foreach (var name in new[] { "rel-prefonline-metrics", "rel-prefonline-learner" })
            Assert.All(chart.Get("Service", name).GetProperty("spec").GetProperty("ports").EnumerateArray(), p => Assert.Equal("metrics", p.GetProperty("targetPort").GetString()));

        // The token: random, 48 letters and digits, made by the chart unless an existing Secret is named.
        static string Token(RenderedChart c) => System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(
            c.Get("Secret", "rel-prefonline-policy-token").GetProperty("data").GetProperty("token").GetString()!));
        Assert.Matches("^[A-Za-z0-9]{48}$", Token(chart));
        Assert.NotEqual(Token(chart), Token(await RenderedChart.RenderAsync()));
        var own = await RenderedChart.RenderWithAsync([], ["--set", "policyServer.auth.existingSecret=my-token", "--set", "policyServer.auth.tokenKey=bearer"]);
        Assert.Empty(own.OfKind("Secret"));
        Assert.Equal("my-token", own.Pod("StatefulSet", "rel-prefonline-learner").GetProperty("volumes").EnumerateArray()
            .Single(v => v.GetProperty("name").GetString() == "policy-token").GetProperty("secret").GetProperty("secretName").GetString());
        Assert.Equal("/etc/prefonline/policy-token/bearer", RenderedChart.Env(own.Pod("Deployment", "rel-prefonline-generator"))["PREFONLINE__PolicyDistribution__TokenFile"].GetProperty("value").GetString());
    }

    [Fact]
    public async Task GeneratorsFetchPoliciesIntoASizeLimitedEmptyDirWithACap()
    {
        var chart = await RenderedChart.RenderWithAsync([], ["--set", "generator.policyDownloads.maxBytes=1073741824", "--set", "generator.policyDownloads.sizeLimit=2Gi"]);
        var pod = chart.Pod("Deployment", "rel-prefonline-generator");
        var env = RenderedChart.Env(pod);
        Assert.Equal("/var/cache/prefonline/policies", env["PREFONLINE__PolicyDistribution__DownloadDirectory"].GetProperty("value").GetString());
        Assert.Equal("1073741824", env["PREFONLINE__PolicyDistribution__MaxDownloadBytes"].GetProperty("value").GetString());
        var downloads = pod.GetProperty("volumes").EnumerateArray().Single(v => v.GetProperty("name").GetString() == "policy-downloads");
        Assert.Equal("2Gi", downloads.GetProperty("emptyDir").GetProperty("sizeLimit").GetString());
        Assert.Contains(RenderedChart.Container(pod).GetProperty("volumeMounts").EnumerateArray(),
            m => m.GetProperty("name").GetString() == "policy-downloads" && m.GetProperty("mountPath").GetString() == "/var/cache/prefonline/policies");
        // The default cap (4 GiB) renders as an exact integer, not in Helm's float notation.
        Assert.Equal("4294967296", RenderedChart.Env((await RenderedChart.RenderAsync()).Pod("Deployment", "rel-prefonline-generator"))["PREFONLINE__PolicyDistribution__MaxDownloadBytes"].GetProperty("value").GetString());
    }

    [Fact]
    public async Task NetworkPoliciesAdmitOnlyGeneratorsToThePolicyPortAndOnlyPrometheusToTheMetricsPort()
    {
        static IReadOnlyList<(string Port, IReadOnlyList<JsonElement> From)> Rules(RenderedChart chart, string name)
        {
            var spec = chart.Get("NetworkPolicy", name).GetProperty("spec");
            Assert.Equal(["Ingress"], RenderedChart.Strings(spec.GetProperty("policyTypes")));
            return spec.GetProperty("ingress").EnumerateArray().Select(rule =>
            {
                var port = Assert.Single(rule.GetProperty("ports").EnumerateArray());
                Assert.Equal("TCP", port.GetProperty("protocol").GetString());
                var from = rule.GetProperty("from").EnumerateArray().ToList();
                Assert.NotEmpty(from); // a rule without peers would admit everyone
                return (port.GetProperty("port").GetString()!, (IReadOnlyList<JsonElement>)from);
            }).ToList();
        }
        static string Labels(JsonElement selector) => string.Join(",", selector.GetProperty("matchLabels").EnumerateObject().Select(l => $"{l.Name}={l.Value.GetString()}").Order(StringComparer.Ordinal));
        const string prometheus = "app.kubernetes.io/name=prometheus";

        var chart = await RenderedChart.RenderAsync();
        var learnerPolicy = chart.Get("NetworkPolicy", "rel-prefonline-learner").GetProperty("spec").GetProperty("podSelector");
        Assert.Equal("app.kubernetes.io/component=learner,app.kubernetes.io/instance=rel,app.kubernetes.io/name=prefonline", Labels(learnerPolicy));
        var learner = Rules(chart, "rel-prefonline-learner");
        Assert.Equal(["policy", "metrics"], learner.Select(r => r.Port).ToArray());
        var generators = Assert.Single(learner[0].From);
        Assert.Equal("app.kubernetes.io/component=generator,app.kubernetes.io/instance=rel,app.kubernetes.io/name=prefonline", Labels(generators.GetProperty("podSelector")));
        Assert.False(generators.TryGetProperty("namespaceSelector", out _)); // this namespace's generators of this release only
        var scraper = Assert.Single(learner[1].From);
        Assert.Equal(prometheus, Labels(scraper.GetProperty("podSelector")));
        Assert.Equal("kubernetes.io/metadata.name=monitoring", Labels(scraper.GetProperty("namespaceSelector")));
        var generator = Assert.Single(Rules(chart, "rel-prefonline-generator"));
        Assert.Equal("metrics", generator.Port);
        Assert.Equal(prometheus, Labels(Assert.Single(generator.From).GetProperty("podSelector")));

        // The serving stack, when enabled, joins the generators on the policy port and nowhere else.
        var serving = await RenderedChart.RenderWithAsync([], ["--set", "networkPolicy.servingStack.enabled=true", "--set", "networkPolicy.servingStack.podSelector.matchLabels.app=vllm",
            "--set", "networkPolicy.servingStack.namespaceSelector.matchLabels.team=serving", "--set", "networkPolicy.prometheus.namespaceSelector=null"]);
        var withServing = Rules(serving, "rel-prefonline-learner");
        Assert.Equal(2, withServing[0].From.Count);
        Assert.Equal("app=vllm", Labels(withServing[0].From[1].GetProperty("podSelector")));
        Assert.Equal("team=serving", Labels(withServing[0].From[1].GetProperty("namespaceSelector")));
        Assert.False(Assert.Single(withServing[1].From).TryGetProperty("namespaceSelector", out _)); // null: Prometheus of this namespace only
        Assert.Single(Rules(serving, "rel-prefonline-generator"));

        // Single mode (no generators) and a shared volume (no policy port): nobody reaches the policy port.
        Assert.Equal(["metrics"], Rules(await RenderedChart.RenderAsync(Single), "rel-prefonline-learner").Select(r => r.Port).ToArray());
        Assert.Equal(["metrics"], Rules(await RenderedChart.RenderAsync(AllFeatures), "rel-prefonline-learner").Select(r => r.Port).ToArray());
        Assert.Empty((await RenderedChart.RenderWithAsync([], ["--set", "networkPolicy.enabled=false"])).OfKind("NetworkPolicy"));
    }

    [Fact]
    public async Task ServingPublishersBecomeTheLearnersServingKeysWithTheTokenFromASecret()
    {
        var chart = await RenderedChart.RenderAsync(AllFeatures);
        var env = RenderedChart.Env(chart.Pod("StatefulSet", "rel-prefonline-learner"));
        string Value(string name) => env[name].GetProperty("value").GetString()!;
        Assert.Equal("sglang", Value("PREFONLINE__Serving__Publishers__0__Type"));
        Assert.Equal("http://sglang.ml.svc:30000", Value("PREFONLINE__Serving__Publishers__0__BaseUrl"));
        Assert.Equal("/var/lib/prefonline/serving", Value("PREFONLINE__Serving__Publishers__0__Directory"));
        Assert.Equal("/models/prefonline", Value("PREFONLINE__Serving__Publishers__0__ServerPath"));
        Assert.Equal("true", Value("PREFONLINE__Serving__Publishers__0__AbortAllRequests"));
        Assert.Equal("PREFONLINE_SERVING_TOKEN_0", Value("PREFONLINE__Serving__Publishers__0__TokenVariable"));
        var secret = env["PREFONLINE_SERVING_TOKEN_0"].GetProperty("valueFrom").GetProperty("secretKeyRef");
        Assert.Equal(("sglang-api-key", "key"), (secret.GetProperty("name").GetString(), secret.GetProperty("key").GetString()));
        Assert.Equal(("watchers", "directory", "2"), (Value("PREFONLINE__Serving__Publishers__1__Name"), Value("PREFONLINE__Serving__Publishers__1__Type"), Value("PREFONLINE__Serving__Publishers__1__KeepVersions")));
        Assert.False(env.ContainsKey("PREFONLINE__Serving__Publishers__1__TokenVariable"));
        // Generators publish nothing: the worker would refuse publishers there.
        Assert.DoesNotContain(RenderedChart.Env(chart.Pod("Deployment", "rel-prefonline-generator")).Keys, k => k.Contains("Serving", StringComparison.Ordinal));

        var refused = await RenderedChart.TemplateAsync([], ["--set", "serving.publishers[0].type=tgi"]);
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains("serving/publishers/0/type", refused.Output);
    }

    [Fact]
    public async Task KafkaIsSaslSslByDefaultAndPlaintextNeedsAnExplicitAllowance()
    {
        var env = RenderedChart.Env((await RenderedChart.RenderAsync()).Pod("StatefulSet", "rel-prefonline-learner"));
        Assert.Equal("SASL_SSL", env["PREFONLINE__Kafka__SecurityProtocol"].GetProperty("value").GetString());
        Assert.Equal("prefonline-kafka-credentials", env["PREFONLINE__Kafka__SaslPassword"].GetProperty("valueFrom").GetProperty("secretKeyRef").GetProperty("name").GetString());

        foreach (var protocol in new[] { "PLAINTEXT", "SASL_PLAINTEXT" })
        {
            var refused = await RenderedChart.TemplateAsync([], ["--set", $"kafka.securityProtocol={protocol}"]);
            Assert.NotEqual(0, refused.ExitCode);
            Assert.Contains($"kafka.securityProtocol {protocol} sends every record", refused.Output);
            var allowed = await RenderedChart.RenderWithAsync([], ["--set", $"kafka.securityProtocol={protocol}", "--set", "kafka.allowPlaintext=true"]);
            Assert.Equal(protocol, RenderedChart.Env(allowed.Pod("Deployment", "rel-prefonline-generator"))["PREFONLINE__Kafka__SecurityProtocol"].GetProperty("value").GetString());
        }
        // The learner may authenticate as a principal of its own, so that only it can be allowed to write the policy topic.
        var own = await RenderedChart.RenderWithAsync([], ["--set", "kafka.sasl.learnerExistingSecret=prefonline-kafka-learner"]);
        static string SaslSecret(JsonElement pod) => RenderedChart.Env(pod)["PREFONLINE__Kafka__SaslPassword"].GetProperty("valueFrom").GetProperty("secretKeyRef").GetProperty("name").GetString()!;
        Assert.Equal("prefonline-kafka-learner", SaslSecret(own.Pod("StatefulSet", "rel-prefonline-learner")));
        Assert.Equal("prefonline-kafka-credentials", SaslSecret(own.Pod("Deployment", "rel-prefonline-generator")));
        // The embedded demo has no Kafka: no protocol, no credentials, nothing to refuse.
        var demo = RenderedChart.Env((await RenderedChart.RenderAsync(Single)).Pod("StatefulSet", "rel-prefonline-learner"));
        Assert.DoesNotContain(demo.Keys, k => k.StartsWith("PREFONLINE__Kafka__S", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AnImageDigestReplacesTheTag()
    {
        var digest = "sha256:" + new string('a', 64);
        var chart = await RenderedChart.RenderWithAsync([AllFeatures], ["--set", $"image.digest={digest}"]);
        foreach (var (workload, pod) in chart.PodSpecs())
            Assert.Equal($"registry.example.com/ml/prefonline@{digest}", RenderedChart.Container(pod).GetProperty("image").GetString());
    }

    [Fact]
    public async Task CheckpointVolumeIsWritableForTheLearnerAndReadOnlyForGenerators()
    {
        var defaults = await RenderedChart.RenderAsync();
        var generator = RenderedChart.Container(defaults.Get("Deployment", "rel-prefonline-generator").GetProperty("spec").GetProperty("template").GetProperty("spec"));
        Assert.DoesNotContain(generator.GetProperty("volumeMounts").EnumerateArray(), m => m.GetProperty("name").GetString() == "checkpoints");

        var all = await RenderedChart.RenderAsync(AllFeatures);
        var learnerPod = all.Get("StatefulSet", "rel-prefonline-learner").GetProperty("spec").GetProperty("template").GetProperty("spec");
        var learnerMount = RenderedChart.Container(learnerPod).GetProperty("volumeMounts").EnumerateArray().Single(m => m.GetProperty("name").GetString() == "checkpoints");
        Assert.Equal("/var/lib/prefonline", learnerMount.GetProperty("mountPath").GetString());
        Assert.False(learnerMount.TryGetProperty("readOnly", out _));
        Assert.Equal("prefonline-checkpoints-rwx", learnerPod.GetProperty("volumes").EnumerateArray()
            .Single(v => v.GetProperty("name").GetString() == "checkpoints").GetProperty("persistentVolumeClaim").GetProperty("claimName").GetString());

        var generatorPod = all.Get("Deployment", "rel-prefonline-generator").GetProperty("spec").GetProperty("template").GetProperty("spec");
        var generatorMount = RenderedChart.Container(generatorPod).GetProperty("volumeMounts").EnumerateArray().Single(m => m.GetProperty("name").GetString() == "checkpoints");
        Assert.True(generatorMount.GetProperty("readOnly").GetBoolean());
        Assert.True(generatorPod.GetProperty("volumes").EnumerateArray().Single(v => v.GetProperty("name").GetString() == "checkpoints")
            .GetProperty("persistentVolumeClaim").GetProperty("readOnly").GetBoolean());
    }

    [Fact]
    public async Task KafkaCredentialsComeOnlyFromExistingSecrets()
    {
        foreach (var values in new[] { Array.Empty<string>(), [AllFeatures], [Minimal], [Single] })
        {
            var chart = await RenderedChart.RenderAsync(values);
            // The only Secret the chart makes is the policy port's random token: no credential comes from values.
            Assert.Equal(["rel-prefonline-policy-token"], chart.OfKind("Secret").Select(RenderedChart.Name).ToArray());
        }
        var all = await RenderedChart.RenderAsync(AllFeatures);
        foreach (var (workload, pod) in all.PodSpecs())
        {
            var env = RenderedChart.Container(pod).GetProperty("env").EnumerateArray().ToDictionary(e => e.GetProperty("name").GetString()!, e => e);
            var password = env["PREFONLINE__Kafka__SaslPassword"];
            Assert.False(password.TryGetProperty("value", out _), workload);
            var secretRef = password.GetProperty("valueFrom").GetProperty("secretKeyRef");
            Assert.Equal("prefonline-kafka-credentials", secretRef.GetProperty("name").GetString());
            Assert.Equal("pass", secretRef.GetProperty("key").GetString());
            Assert.Equal("SASL_SSL", env["PREFONLINE__Kafka__SecurityProtocol"].GetProperty("value").GetString());
            Assert.Equal("/etc/prefonline/kafka-tls/ca.crt", env["PREFONLINE__Kafka__SslCaLocation"].GetProperty("value").GetString());
            Assert.Equal("PauseUpdates", env["PREFONLINE__Guardrails__Action"].GetProperty("value").GetString());
            var tls = pod.GetProperty("volumes").EnumerateArray().Single(v => v.GetProperty("name").GetString() == "kafka-tls");
            Assert.Equal("prefonline-kafka-tls", tls.GetProperty("secret").GetProperty("secretName").GetString());
        }
        var plain = await RenderedChart.RenderWithAsync([], ["--set", "kafka.securityProtocol=SSL"]);
        var plainEnv = RenderedChart.Container(plain.PodSpecs().First().PodSpec).GetProperty("env").EnumerateArray().Select(e => e.GetProperty("name").GetString()).ToList();
        Assert.DoesNotContain("PREFONLINE__Kafka__SaslPassword", plainEnv);
    }

    [Fact]
    public async Task TheConfigMapCarriesTheRepositoryConfigFiles()
    {
        var chart = await RenderedChart.RenderAsync();
        var data = chart.Get("ConfigMap", "rel-prefonline-config").GetProperty("data");
        var expected = Directory.GetFiles(RepositoryPaths.Config, "*.json").Select(f => Path.GetFileName(f)).Order(StringComparer.Ordinal).ToList();
        Assert.Contains("appsettings.json", expected);
        Assert.Equal(expected, data.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal).ToList());
        foreach (var name in expected)
            Assert.Equal(File.ReadAllText(Path.Combine(RepositoryPaths.Config, name)).TrimEnd('\n'), data.GetProperty(name).GetString());
        // Pods restart when the configuration changes.
        var annotations = chart.Get("StatefulSet", "rel-prefonline-learner").GetProperty("spec").GetProperty("template").GetProperty("metadata").GetProperty("annotations");
        Assert.Matches("^[0-9a-f]{64}$", annotations.GetProperty("checksum/config").GetString());
    }

    [Fact]
    public async Task ThePrometheusRuleIsTheConfigRulesFileVerbatim()
    {
        var chart = await RenderedChart.RenderAsync(AllFeatures);
        var rule = chart.Get("PrometheusRule", "rel-prefonline");
        Assert.Equal("kube-prometheus-stack", rule.GetProperty("metadata").GetProperty("labels").GetProperty("release").GetString());
        var fromFile = await Yaml.ParseAsync(await File.ReadAllTextAsync(RepositoryPaths.AlertRules));
        Assert.Equal(Yaml.Canonical(fromFile), Yaml.Canonical(rule.GetProperty("spec")));
    }

    [Fact]
    public async Task TheServiceMonitorScrapesTheMetricsServiceIncludingNotReadyPods()
    {
        var chart = await RenderedChart.RenderAsync(AllFeatures);
        var monitor = chart.Get("ServiceMonitor", "rel-prefonline").GetProperty("spec");
        var service = chart.Get("Service", "rel-prefonline-metrics");
        var serviceLabels = service.GetProperty("metadata").GetProperty("labels");
        foreach (var label in monitor.GetProperty("selector").GetProperty("matchLabels").EnumerateObject())
            Assert.Equal(label.Value.GetString(), serviceLabels.GetProperty(label.Name).GetString());
        Assert.Equal("metrics", monitor.GetProperty("endpoints")[0].GetProperty("port").GetString());
        Assert.Equal("/metrics", monitor.GetProperty("endpoints")[0].GetProperty("path").GetString());
        Assert.True(service.GetProperty("spec").GetProperty("publishNotReadyAddresses").GetBoolean());
        Assert.Equal("metrics", service.GetProperty("spec").GetProperty("ports")[0].GetProperty("name").GetString());
        // The learner's headless service must not be scraped twice.
        Assert.NotEqual("metrics", chart.Get("Service", "rel-prefonline-learner").GetProperty("metadata").GetProperty("labels").GetProperty("app.kubernetes.io/component").GetString());
    }

    [Fact]
    public async Task TheGrafanaDashboardIsValidJsonWithTheSidecarLabel()
    {
        var chart = await RenderedChart.RenderAsync(AllFeatures);
        var map = chart.Get("ConfigMap", "rel-prefonline-dashboard");
        Assert.Equal("monitoring", map.GetProperty("metadata").GetProperty("namespace").GetString());
        Assert.Equal("1", map.GetProperty("metadata").GetProperty("labels").GetProperty("grafana_dashboard").GetString());
        using var dashboard = JsonDocument.Parse(map.GetProperty("data").GetProperty("prefonline-overview.json").GetString()!);
        Assert.Equal("prefonline-overview", dashboard.RootElement.GetProperty("uid").GetString());
        Assert.True(dashboard.RootElement.GetProperty("panels").GetArrayLength() >= 15);
    }

    [Fact]
    public async Task PodDisruptionBudgetsAllowEvictingUnhealthyPods()
    {
        var chart = await RenderedChart.RenderAsync(AllFeatures);
        foreach (var pdb in chart.OfKind("PodDisruptionBudget"))
        {
            Assert.Equal("AlwaysAllow", pdb.GetProperty("spec").GetProperty("unhealthyPodEvictionPolicy").GetString());
            Assert.True(pdb.GetProperty("spec").GetProperty("selector").GetProperty("matchLabels").TryGetProperty("app.kubernetes.io/component", out _));
        }
        Assert.Equal(1, chart.Get("PodDisruptionBudget", "rel-prefonline-generator").GetProperty("spec").GetProperty("maxUnavailable").GetInt32());
    }

    /// <summary>File, expected message, and whether values.schema.json (rather than a template rule) rejects it.</summary>
    public static TheoryData<string, string, bool> InvalidValues => new()
    {
        { "invalid-mode.yaml", "at '/mode': value must be one of 'split', 'single'", true },
        { "invalid-inline-password.yaml", "additional properties 'password' not allowed", true },
        { "invalid-sasl-without-secret.yaml", "at '/kafka/sasl/existingSecret': minLength", true },
        { "invalid-split-without-kafka.yaml", "at '/kafka/bootstrapServers': minLength", true },
        { "invalid-typo.yaml", "additional properties 'persistance' not allowed", true },
        { "invalid-root.yaml", "at '/podSecurityContext/runAsNonRoot': value must be true", true },
        { "invalid-replicas.yaml", "at '/generator/replicas': minimum", true },
        { "invalid-mount-without-claim.yaml", "generator.mountCheckpoints needs learner.persistence.existingClaim", false },
        { "invalid-plaintext.yaml", "kafka.securityProtocol PLAINTEXT sends every record", false },
        { "invalid-sasl-plaintext.yaml", "kafka.securityProtocol SASL_PLAINTEXT sends every record", false },
        { "invalid-policy-service-type.yaml", "at '/policyServer/service/type': value must be 'ClusterIP'", true },
        { "invalid-password-in-env.yaml", "invalid propertyName 'Kafka__SaslPassword'", true },
        { "invalid-secret-in-env.yaml", "invalid propertyName 'Observability__Otlp__ClientSecret'", true },
        { "invalid-token-in-env.yaml", "invalid propertyName 'PolicyDistribution__TOKEN'", true },
        { "invalid-capabilities.yaml", "at '/securityContext/capabilities/drop': no items match contains schema", true },
        { "invalid-seccomp.yaml", "at '/podSecurityContext/seccompProfile/type': value must be one of 'RuntimeDefault', 'Localhost'", true },
        { "invalid-no-ephemeral-limit.yaml", "at '/generator/resources/limits': missing property 'ephemeral-storage'", true },
        { "invalid-digest.yaml", "at '/image/digest': 'latest' does not match pattern", true },
        { "invalid-empty-prometheus-selector.yaml", "at '/networkPolicy/prometheus': missing property 'podSelector'", true },
        { "invalid-serving-stack-everyone.yaml", "at '/networkPolicy/servingStack/podSelector': minProperties", true },
    };

    [Theory]
    [MemberData(nameof(InvalidValues))]
    public async Task InvalidValuesAreRejectedWithAClearMessage(string file, string expected, bool bySchema)
    {
        var result = await RenderedChart.TemplateAsync([Path.Combine(RepositoryPaths.InvalidValues, file)]);
        output.WriteLine(result.Output);
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains(expected, result.Output);
        if (!bySchema) return; // helm lint deliberately treats a template's fail() as information, so only schema errors fail lint
        var lint = await ExternalTool.RunAsync(ExternalTool.Helm(), ["lint", RepositoryPaths.Chart, "-f", Path.Combine(RepositoryPaths.InvalidValues, file)]);
        Assert.NotEqual(0, lint.ExitCode);
        Assert.Contains(expected, lint.Output);
    }

    [Fact]
    public async Task APackagedChartCarriesTheLinkedConfigAndRules()
    {
        var dir = Directory.CreateTempSubdirectory("prefonline-chart-");
        try
        {
            var package = await ExternalTool.RunAsync(ExternalTool.Helm(), ["package", RepositoryPaths.Chart, "-d", dir.FullName]);
            Assert.True(package.ExitCode == 0, package.Output);
            var archive = Directory.GetFiles(dir.FullName, "prefonline-*.tgz").Single();
            var listing = await ExternalTool.RunAsync("/usr/bin/tar", ["-tzf", archive]);
            Assert.Contains("prefonline/files/config/prometheus/prefonline-alerts.yml", listing.StdOut);
            Assert.Contains("prefonline/files/config/appsettings.json", listing.StdOut);
            Assert.DoesNotContain("prefonline/ci/", listing.StdOut);
            var rendered = await ExternalTool.RunAsync(ExternalTool.Helm(), ["template", "rel", archive, "--set", "metrics.prometheusRule.enabled=true"]);
            Assert.True(rendered.ExitCode == 0, rendered.Output);
            Assert.Contains("alert: PrefOnlineRewardDrift", rendered.StdOut);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
