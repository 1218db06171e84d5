using Microsoft.Extensions.Configuration;
using PrefOnline.Worker.Cli;
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

    private static (WorkerSettings Settings, IReadOnlyList<string> Problems) Check(Dictionary<string, string?> values) =>
        ConfigurationCheck.Check(new ConfigurationBuilder().AddInMemoryCollection(values).Build());

    public void Dispose() => Directory.Delete(directory, recursive: true);
}
