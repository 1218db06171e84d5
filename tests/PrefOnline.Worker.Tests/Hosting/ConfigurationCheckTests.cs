using PrefOnline.Worker.Serving;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using PrefOnline.Cli;
using PrefOnline.Worker.Hosting;

namespace PrefOnline.Worker.Tests.Hosting;

/// <summary>
/// Start-up validation of <c>prefonline run</c>: one clear line per invalid setting naming its key, the
/// layering of defaults → appsettings.json → --config → PREFONLINE__ environment → flags, and exit code 2
/// before anything starts.
/// </summary>
public sealed class ConfigurationCheckTests : IDisposable
{
    private readonly string directory = Directory.CreateTempSubdirectory("prefonline-config-").FullName;

    [Fact]
    public void TheDefaultsAreValidAndEmbedded()
    {
        var (settings, problems) = ConfigurationCheck.Check(new ConfigurationBuilder().Build());
        Assert.Empty(problems);
        Assert.True(settings.Embedded);
        Assert.Equal(WorkerRole.All, settings.Worker.Role);
    }

    [Fact]
    public void EachInvalidSettingIsOneLineThatNamesItsKey()
    {
        var (_, problems) = Check(new()
        {
            ["Learner:LearningRate"] = "0",
            ["Learner:Objective"] = "sgd",
            ["Replay:Capacity"] = "-1",
            ["Generation:TopP"] = "7",
            ["Guardrails:KlBudget"] = "-1",
            ["Checkpoints:KeepLast"] = "0",
            ["Demo:Users:PromptsPerSecond"] = "-3",
        });
        var expectedKeys = new[] { "Learner:LearningRate", "Learner:Objective", "Replay:Capacity", "Generation:TopP", "Guardrails:KlBudget", "Checkpoints:KeepLast", "Demo:Users:PromptsPerSecond" };
        Assert.Equal(expectedKeys.Length, problems.Count);
        foreach (var key in expectedKeys) Assert.Single(problems, p => p.Contains(key, StringComparison.Ordinal));
        Assert.All(problems, p => Assert.DoesNotContain('\n', p));
    }

    [Fact]
    public void TheCheckBeforeStartAndValidateOnStartReportTheSameLinesFromOneValidatorPerSection()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Worker:TensorThreads"] = "2000",
            ["Kafka:Topics:Prompts"] = "bad topic!",
            ["Validation:MaxIdLength"] = "0",
            ["Model:Dtype"] = "float16",
            ["Generation:TopP"] = "7",
            ["Replay:Capacity"] = "-1",
            ["Learner:BatchSize"] = "0",
            ["Reward:BatchSize"] = "0",
            ["Guardrails:KlBudget"] = "-1",
            ["Checkpoints:KeepLast"] = "0",
            ["Observability:Port"] = "70000",
            ["PolicyDistribution:Port"] = "70000",
            ["Demo:Users:PromptsPerSecond"] = "-3",
        }).Build();

        var (_, beforeStart) = ConfigurationCheck.Check(configuration);

        using var services = new ServiceCollection().AddSectionOptions(configuration).BuildServiceProvider();
        var thrown = Assert.ThrowsAny<Exception>(() => services.GetRequiredService<IStartupValidator>().Validate());
        var atStart = (thrown is AggregateException aggregate ? aggregate.InnerExceptions : [thrown])
            .Select(e => Assert.IsType<OptionsValidationException>(e))
            .SelectMany(e => e.Failures)
            .ToList();

        Assert.Equal(13, beforeStart.Count);
        foreach (var section in new[] { "Worker:", "Kafka:", "Validation:", "Model:", "Generation:", "Replay:", "Learner:", "Reward:", "Guardrails:", "Checkpoints:", "Observability:", "PolicyDistribution:", "Demo:" })
            Assert.Single(beforeStart, p => p.StartsWith(section, StringComparison.Ordinal));
        Assert.Equal(beforeStart.Order(StringComparer.Ordinal), atStart.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void CudaInACpuBuildAndUnknownDevicesOrDtypesAreOneLineEachNamingTheKey()
    {
        var (_, cuda) = Check(new() { ["Model:Device"] = "cuda" });
        Assert.Equal(["Model:Device 'cuda:0' needs a CUDA build of the tensor engine; this one is TorchSharp-cpu (build with -p:TorchBackend=cuda, or use the GPU image)"], cuda);

        var (_, problems) = Check(new() { ["Model:Device"] = "gpu0", ["Model:Dtype"] = "float16" });
        Assert.Equal(2, problems.Count);
        Assert.Single(problems, p => p.StartsWith("Model:Device unknown device 'gpu0': use cpu, cuda or cuda:N", StringComparison.Ordinal));
        Assert.Single(problems, p => p.StartsWith("Model:Dtype unknown dtype 'float16': use float32 or bfloat16", StringComparison.Ordinal));

        var (settings, none) = Check(new() { ["Model:Device"] = "CPU", ["Model:Dtype"] = "bfloat16" });
        Assert.Empty(none);
        Assert.Equal("cpu bfloat16", settings.Model.Placement.ToString());
    }

    [Fact]
    public void TheDecoderIsAutoFusedOrTorchsharpAndFusedNeedsFloat32OnTheCpu()
    {
        var (settings, none) = Check(new());
        Assert.Empty(none);
        Assert.Same(PrefOnline.Learning.Sampling.PolicyDecoderFactory.Default, settings.Model.Decoders);
        foreach (var choice in new[] { "fused", "torchsharp" })
            Assert.Empty(Check(new() { ["Model:Decoder"] = choice }).Problems);
        Assert.Empty(Check(new() { ["Model:Decoder"] = "torchsharp", ["Model:Dtype"] = "bfloat16" }).Problems);

        Assert.Equal(["Model:Decoder unknown decoder 'fast': use auto, fused, torchsharp"], Check(new() { ["Model:Decoder"] = "fast" }).Problems);
        Assert.Equal(["Model:Decoder the fused decoder runs float32 models on the CPU only, not Device cpu with Dtype bfloat16: use auto or torchsharp"],
            Check(new() { ["Model:Decoder"] = "fused", ["Model:Dtype"] = "bfloat16" }).Problems);
    }

    [Fact]
    public void FusedOnALlamaInitialPolicyIsAOneLineStartUpError()
    {
        var dir = Path.Combine(Path.GetTempPath(), "prefonline-tests", $"fused-llama-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            var config = new PrefOnline.Learning.Models.LlamaConfig { VocabularySize = 258, Width = 32, IntermediateSize = 48, Layers = 1, Heads = 4, KeyValueHeadCount = 2, ContextLength = 64 };
            using (var model = PrefOnline.Learning.Models.PolicyModel.Create(config, seed: 1))
                PrefOnline.Learning.Models.Checkpoints.PolicyCheckpoint.Save(dir, model, PrefOnline.Learning.Tokenization.ByteTokenizer.Instance);
            Assert.Equal(["Model:Decoder the fused decoder runs GPT-2 only, but InitialPolicy is a llama model: use auto or torchsharp"],
                Check(new() { ["Model:InitialPolicy"] = dir, ["Model:Decoder"] = "fused" }).Problems);
            Assert.Empty(Check(new() { ["Model:InitialPolicy"] = dir, ["Model:Decoder"] = "auto" }).Problems);
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Once the store holds a checkpoint the worker resumes from it and never reads Model:InitialPolicy: a store
    /// holding a Llama-family policy is refused with fused at start too, in one line, instead of at the first decode.</summary>
    [Fact]
    public async Task FusedOnAStoreHoldingALlamaPolicyIsAOneLineStartUpError()
    {
        var store = Path.Combine(directory, "llama-store");
        var weights = Path.Combine(directory, "llama-policy.safetensors");
        var config = new PrefOnline.Learning.Models.LlamaConfig { VocabularySize = 258, Width = 32, IntermediateSize = 48, Layers = 1, Heads = 4, KeyValueHeadCount = 2, ContextLength = 64 };
        using (var model = PrefOnline.Learning.Models.PolicyModel.Create(config, seed: 1))
            PrefOnline.Learning.Models.Checkpoints.PolicyCheckpoint.SaveWeightsFile(weights, model);
        await using (var checkpoints = await PrefOnline.Worker.Checkpoints.CheckpointStore.OpenAsync(new PrefOnline.Worker.Checkpoints.CheckpointOptions { Directory = store }))
        {
            // Before its first checkpoint the store names no policy: nothing to refuse yet.
            Assert.Empty(Check(new() { ["Checkpoints:Directory"] = store, ["Model:Decoder"] = "fused" }).Problems);
            checkpoints.StartNewLineage();
            await checkpoints.WriteAsync(new PrefOnline.Worker.Checkpoints.CheckpointDraft().CopyFile(PrefOnline.Worker.Pipeline.StateFiles.Policy, weights));
        }

        Assert.Equal([$"Model:Decoder the fused decoder runs GPT-2 only, but Checkpoints:Directory {store} holds a llama policy, which the worker resumes from: use auto or torchsharp"],
            Check(new() { ["Checkpoints:Directory"] = store, ["Model:Decoder"] = "fused" }).Problems);
        Assert.Empty(Check(new() { ["Checkpoints:Directory"] = store, ["Model:Decoder"] = "auto" }).Problems);

        // prefonline run: exit 2, that line, nothing started (the store gets no new version).
        var file = Path.Combine(directory, "fused.json");
        File.WriteAllText(file, """{ "Model": { "Decoder": "fused" } }""");
        var errors = new StringWriter();
        var code = await RunCommand.RunAsync(file, new Dictionary<string, string?> { ["Checkpoints:Directory"] = store }, errors);
        Assert.Equal(ExitStatus.InvalidConfiguration, code);
        var lines = errors.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.StartsWith($"prefonline run: Model:Decoder the fused decoder runs GPT-2 only, but Checkpoints:Directory {store} holds a llama policy", lines[0]);
        Assert.Single(Directory.GetDirectories(store, "v*"));

        // A generator takes its policy from the policy topic, not from the store.
        Assert.DoesNotContain(Check(new() { ["Checkpoints:Directory"] = store, ["Model:Decoder"] = "fused", ["Worker:Role"] = "generator", ["Kafka:BootstrapServers"] = "127.0.0.1:9092" }).Problems,
            p => p.StartsWith("Model:Decoder", StringComparison.Ordinal));
    }

    /// <summary>A LoRA learner starts (the worker checkpoints and publishes its adapter: LoraWorkerTests), exports adapters to
    /// the serving publishers, and a bad adapter value is still refused with its own line.</summary>
    [Fact]
    public void ALoraAdapterStartsAndMakesTheExportAnAdapter()
    {
        var (settings, problems) = Check(new() { ["Learner:Adapter:Rank"] = "8" });
        Assert.Empty(problems);
        Assert.Equal(ServingExportKind.Adapter, ConfigurationCheck.LearnerExportKind(settings));
        Assert.Equal(ServingExportKind.Full, ConfigurationCheck.LearnerExportKind(Check([]).Settings));
        Assert.Contains("Learner:Adapter:Rank: must be at least 1 (got 0)", Check(new() { ["Learner:Adapter:Rank"] = "0" }).Problems);
        // Role all samples from the adapted policy itself: the fused decoder cannot (auto falls back to torchsharp).
        Assert.Contains("Model:Decoder fused cannot sample from a policy with LoRA adapters (Learner:Adapter), which Worker:Role all generates with: use auto (picks torchsharp for it) or torchsharp",
            Check(new() { ["Learner:Adapter:Rank"] = "8", ["Model:Decoder"] = "fused" }).Problems);
    }

    [Fact]
    public void AValueOfTheWrongTypeNamesTheKeyInsteadOfThrowing()
    {
        var (_, problems) = Check(new() { ["Learner:InnerSteps"] = "many", ["Scoring:LabelWait"] = "soon" });
        Assert.Equal(2, problems.Count);
        Assert.Contains(problems, p => p.Contains("Learner:InnerSteps", StringComparison.Ordinal) && p.Contains("many", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("Scoring:LabelWait", StringComparison.Ordinal) && p.Contains("soon", StringComparison.Ordinal));
    }

    [Fact]
    public void AnUnknownSectionIsReportedBecauseATypoWouldOtherwiseBeSilentlyIgnored()
    {
        var (_, problems) = Check(new() { ["Lerner:LearningRate"] = "0.001" });
        Assert.Single(problems, p => p.StartsWith("Lerner is not a known configuration section", StringComparison.Ordinal));
    }

    [Fact]
    public void AStopMustOutlastTheProducersDeliveryTimeout()
    {
        var (_, problems) = Check(new() { ["Kafka:BootstrapServers"] = "kafka:9092", ["Model:InitialPolicy"] = "/models/p", ["Kafka:DeliveryTimeout"] = "00:01:00", ["Worker:ShutdownTimeout"] = "00:00:30" });
        Assert.Single(problems, p => p.StartsWith("Kafka:DeliveryTimeout (00:01:00) must not exceed Worker:ShutdownTimeout (00:00:30)", StringComparison.Ordinal));
    }

    [Fact]
    public void TheEmbeddedTransportOnlyRunsRoleAll()
    {
        var (_, problems) = Check(new() { ["Worker:Role"] = "Generator" });
        Assert.Single(problems, p => p.Contains("Worker:Role generator needs Kafka", StringComparison.Ordinal));
    }

    [Fact]
    public void LaterSourcesWinDefaultsThenAppSettingsThenConfigFileThenEnvironmentThenFlags()
    {
        File.WriteAllText(Path.Combine(directory, WorkerConfiguration.DefaultFileName),
            """{ "Learner": { "InnerSteps": 3, "BatchSize": 11, "MinSamples": 5, "UpdateEverySamples": 70 } }""");
        var file = Path.Combine(directory, "override.json");
        File.WriteAllText(file, """{ "Learner": { "InnerSteps": 4, "BatchSize": 12, "MinSamples": 6 } }""");
        const string variable = WorkerConfiguration.EnvironmentPrefix + "Learner__MinSamples";
        Environment.SetEnvironmentVariable(variable, "7");
        try
        {
            var configuration = WorkerConfiguration.Build(file, new Dictionary<string, string?> { ["Learner:InnerSteps"] = "5" }, directory);
            var (settings, problems) = ConfigurationCheck.Check(configuration);
            Assert.Empty(problems);
            Assert.Equal(70, settings.Learner.UpdateEverySamples); // appsettings.json over the default 64
            Assert.Equal(12, settings.Learner.BatchSize);          // --config over appsettings.json
            Assert.Equal(7, settings.Learner.MinSamples);          // environment over --config
            Assert.Equal(5, settings.Learner.InnerSteps);          // flags over everything
        }
        finally
        {
            Environment.SetEnvironmentVariable(variable, null);
        }
    }

    [Fact]
    public async Task RunExitsWithCodeTwoAndOneLinePerProblemBeforeStartingAnything()
    {
        var file = Path.Combine(directory, "bad.json");
        File.WriteAllText(file, """{ "Learner": { "LearningRate": 0, "Objective": "foo" }, "Replay": { "Capacity": -1 } }""");
        var errors = new StringWriter();
        var code = await RunCommand.RunAsync(file, new Dictionary<string, string?> { ["Checkpoints:Directory"] = Path.Combine(directory, "store") }, errors);
        Assert.Equal(ExitStatus.InvalidConfiguration, code);
        var lines = errors.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(4, lines.Length);
        Assert.All(lines, l => Assert.StartsWith("prefonline run: ", l));
        Assert.EndsWith("3 invalid setting(s); see config/README.md for every key", lines[^1].TrimEnd());
        Assert.False(Directory.Exists(Path.Combine(directory, "store")), "nothing may start on an invalid configuration");
    }

    [Fact]
    public async Task A_learner_in_split_mode_with_a_policy_url_but_no_token_exits_2_before_starting_anything()
    {
        var file = Path.Combine(directory, "learner.json");
        File.WriteAllText(file, """{ "Worker": { "Role": "learner", "PolicyBaseUrl": "http://prefonline-policy.ml.svc:8081" }, "Kafka": { "BootstrapServers": "kafka:9093" } }""");
        var errors = new StringWriter();
        var code = await RunCommand.RunAsync(file, new Dictionary<string, string?> { ["Checkpoints:Directory"] = Path.Combine(directory, "store") }, errors);
        Assert.Equal(ExitStatus.InvalidConfiguration, code);
        var lines = errors.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("prefonline run: PolicyDistribution:TokenFile is required: this learner publishes Worker:PolicyBaseUrl", lines[0]);
        Assert.Equal(2, lines.Length);
        Assert.False(Directory.Exists(Path.Combine(directory, "store")), "nothing may start on an invalid configuration");
    }

    [Fact]
    public async Task AMissingOrMalformedConfigFileIsAUsageError()
    {
        var missing = await Assert.ThrowsAsync<CliException>(() => RunCommand.RunAsync(Path.Combine(directory, "nope.json"), new Dictionary<string, string?>(), TextWriter.Null));
        Assert.Contains("no such file", missing.Message, StringComparison.Ordinal);
        var malformed = Path.Combine(directory, "malformed.json");
        File.WriteAllText(malformed, "{ \"Learner\": ");
        var bad = await Assert.ThrowsAsync<CliException>(() => RunCommand.RunAsync(malformed, new Dictionary<string, string?>(), TextWriter.Null));
        Assert.Contains("malformed.json", bad.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TheRewardModelsRatingScaleReachesTheInputValidator()
    {
        var (settings, problems) = Check(new() { ["Reward:RatingMin"] = "1", ["Reward:RatingMax"] = "5", ["Validation:MaxIdLength"] = "64" });
        Assert.Empty(problems);
        Assert.Equal((1.0, 5.0), settings.InputValidation.GetRatingScale());
        Assert.Equal(64, settings.InputValidation.MaxIdLength); // the Validation section's own limits stay
        Assert.Null(settings.Validation.GetRatingScale());
        var validator = new Streaming.Validation.RecordValidator(settings.InputValidation, Streaming.Contracts.SchemaNames.FeedbackTopic);
        var rating = """{"schema":"prefonline.rating.v1","id":"r-1","prompt":"p","completion":"c","reward":6}"""u8;
        Assert.Equal(Streaming.Validation.ReasonCodes.OutOfRange, validator.Validate(rating).Failure!.Reason);

        Assert.Equal((-10.0, 10.0), ConfigurationCheck.Check(new ConfigurationBuilder().Build()).Settings.InputValidation.GetRatingScale());
    }

    [Fact]
    public void ARatingScaleTheValidatorCannotHonourIsRefusedAtStart()
    {
        var (_, inverted) = Check(new() { ["Reward:RatingMin"] = "5", ["Reward:RatingMax"] = "1" });
        Assert.Single(inverted, p => p.Contains("Reward:RatingMax", StringComparison.Ordinal));
        var (_, elsewhere) = Check(new() { ["Validation:RatingMin"] = "1", ["Validation:RatingScale:Min"] = "1" });
        Assert.Equal(2, elsewhere.Count(p => p.Contains("is not a known setting", StringComparison.Ordinal)));
        var (_, beyond) = Check(new() { ["Reward:RatingMax"] = "2000", ["Validation:MaxAbsReward"] = "1000" });
        Assert.Single(beyond, p => p.StartsWith("Reward:RatingMin/RatingMax [-10, 2000] reach beyond Validation:MaxAbsReward (1000)", StringComparison.Ordinal));
    }

    [Fact]
    public void A_learner_that_serves_policies_or_a_generator_that_fetches_them_needs_a_token_or_an_explicit_override()
    {
        var kafka = new Dictionary<string, string?> { ["Kafka:BootstrapServers"] = "kafka:9092", ["Worker:PolicyBaseUrl"] = "http://prefonline-policy.ml.svc:8081" };
        foreach (var role in new[] { "learner", "all", "generator" })
        {
            var (_, problems) = Check(new(kafka) { ["Worker:Role"] = role });
            var line = Assert.Single(problems);
            Assert.StartsWith("PolicyDistribution:TokenFile is required:", line, StringComparison.Ordinal);
            Assert.Contains("PolicyDistribution:AllowUnauthenticated=true", line, StringComparison.Ordinal);
            // Loopback does not excuse it: every local process could fetch the weights.
            Assert.Single(Check(new(kafka) { ["Worker:Role"] = role, ["PolicyDistribution:BindAddress"] = "127.0.0.1" }).Problems);
            Assert.Empty(Check(new(kafka) { ["Worker:Role"] = role, ["PolicyDistribution:AllowUnauthenticated"] = "true" }).Problems);
            Assert.Empty(Check(new(kafka) { ["Worker:Role"] = role, ["PolicyDistribution:TokenFile"] = TokenFile("abcdefghijklmnop0123") }).Problems);
        }
        // Without a base URL a learner names files on a shared volume and opens no policy port: nothing to protect.
        var (settings, none) = Check(new() { ["Kafka:BootstrapServers"] = "kafka:9092", ["Worker:Role"] = "learner" });
        Assert.Empty(none);
        Assert.False(settings.ServesPolicies);
    }

    [Fact]
    public void The_embedded_demo_serves_policies_without_a_token_on_loopback_only()
    {
        var (settings, loopback) = Check(new());
        Assert.Empty(loopback);
        Assert.True(settings.ServesPolicies);
        Assert.Equal("127.0.0.1", settings.PolicyDistribution.BindAddress);
        var open = Assert.Single(Check(new() { ["PolicyDistribution:BindAddress"] = "0.0.0.0" }).Problems);
        Assert.StartsWith("PolicyDistribution:BindAddress 0.0.0.0 would serve the demo's weights without authentication", open, StringComparison.Ordinal);
        Assert.Empty(Check(new() { ["PolicyDistribution:BindAddress"] = "0.0.0.0", ["PolicyDistribution:Token"] = "abcdefghijklmnop0123" }).Problems);
    }

    [Fact]
    public void A_token_that_is_missing_short_malformed_or_given_twice_is_refused_at_start()
    {
        Assert.Single(Check(new() { ["PolicyDistribution:TokenFile"] = Path.Combine(directory, "absent") }).Problems,
            p => p.StartsWith("PolicyDistribution:TokenFile ", StringComparison.Ordinal) && p.EndsWith("does not exist", StringComparison.Ordinal));
        Assert.Single(Check(new() { ["PolicyDistribution:TokenFile"] = TokenFile("short") }).Problems, p => p.Contains("at least 16 are required", StringComparison.Ordinal));
        Assert.Single(Check(new() { ["PolicyDistribution:Token"] = "has spaces in it, 0123456789" }).Problems, p => p.StartsWith("PolicyDistribution:Token ", StringComparison.Ordinal));
        Assert.Single(Check(new() { ["PolicyDistribution:Token"] = "abcdefghijklmnop0123", ["PolicyDistribution:TokenFile"] = TokenFile("abcdefghijklmnop0123") }).Problems,
            p => p.Contains("are both set", StringComparison.Ordinal));
        // The token itself never appears in a problem line.
        var (_, problems) = Check(new() { ["PolicyDistribution:TokenFile"] = TokenFile("s3cr3t with space 0123456789") });
        Assert.DoesNotContain(problems, p => p.Contains("s3cr3t", StringComparison.Ordinal));
    }

    [Fact]
    public void Policy_download_limits_are_checked()
    {
        var (_, problems) = Check(new() { ["PolicyDistribution:MaxDownloadBytes"] = "1000", ["PolicyDistribution:MaxConnections"] = "0", ["PolicyDistribution:DownloadTimeout"] = "00:00:00" });
        Assert.Equal(3, problems.Count);
        Assert.Contains(problems, p => p.StartsWith("PolicyDistribution:MaxDownloadBytes must be between 1048576", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("Settings", "enable.ssl.certificate.verification", "false")]
    [InlineData("ConsumerSettings", "enable.ssl.certificate.verification", "0")]
    [InlineData("ProducerSettings", "ssl.endpoint.identification.algorithm", "none")]
    [InlineData("Settings", "ssl.endpoint.identification.algorithm", "")]
    public void Settings_that_switch_off_the_brokers_certificate_check_are_refused_unless_explicitly_allowed(string section, string key, string value)
    {
        var values = new Dictionary<string, string?> { ["Kafka:BootstrapServers"] = "kafka:9093", ["Kafka:SecurityProtocol"] = "SSL", [$"Kafka:{section}:{key}"] = value };
        var line = Assert.Single(Check(values).Problems);
        Assert.StartsWith($"Kafka:{section}:{key}={value} is refused:", line, StringComparison.Ordinal);
        Assert.Contains("Kafka:AllowUnverifiedTls=true", line, StringComparison.Ordinal);
        Assert.Empty(Check(new(values) { ["Kafka:AllowUnverifiedTls"] = "true" }).Problems);
        Assert.Empty(Check(new(values) { [$"Kafka:{section}:{key}"] = key.StartsWith("enable", StringComparison.Ordinal) ? "true" : "https" }).Problems);
    }

    [Fact]
    public void The_consumer_buffer_must_hold_one_record()
    {
        var line = Assert.Single(Check(new() { ["Kafka:MaxBufferedBytes"] = "1000" }).Problems);
        Assert.StartsWith("Kafka:MaxBufferedBytes (1000) must hold at least one record of Validation:MaxRecordBytes (262144)", line, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("dpo", true)]
    [InlineData("sft", true)]            // "SFT on preferred" trains on the chosen side of pairs: one sample per prompt makes none
    [InlineData("reinforce", false)]
    public void Pairwise_objectives_need_two_samples_per_prompt_or_human_pairs(string objective, bool refused)
    {
        var values = new Dictionary<string, string?> { ["Learner:Objective"] = objective, ["Generation:SamplesPerPrompt"] = "1", ["Learner:HumanPairsPerUpdate"] = "0" };
        var problems = Check(values).Problems;
        Assert.Equal(refused, problems.Any(p => p.StartsWith($"Generation:SamplesPerPrompt must be at least 2 for objective {objective}", StringComparison.Ordinal)));
        Assert.Empty(Check(new(values) { ["Learner:HumanPairsPerUpdate"] = "8" }).Problems);
    }

    [Fact]
    public void The_objectives_verb_lists_every_objective_of_the_catalogue()
    {
        var lines = ObjectivesCommand.Table().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(Learning.Objectives.ObjectiveCatalog.All.Count + 1, lines.Length);
        Assert.Contains(lines, l => l.StartsWith("dpo ", StringComparison.Ordinal) && l.Contains("pairs", StringComparison.Ordinal) && l.EndsWith("−E[log σ(β·ℓ)]", StringComparison.Ordinal));
    }

    private string TokenFile(string content)
    {
        var path = Path.Combine(directory, $"token-{Guid.NewGuid():N}");
        File.WriteAllText(path, content + "\n");
        return path;
    }

    private static (WorkerSettings Settings, IReadOnlyList<string> Problems) Check(Dictionary<string, string?> values) =>
        ConfigurationCheck.Check(new ConfigurationBuilder().AddInMemoryCollection(values).Build());

    public void Dispose() => Directory.Delete(directory, recursive: true);
}
