using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging.Abstractions;
using PrefOnline.Learning.Models.Adapters;
using PrefOnline.Learning.Models.Checkpoints;
using PrefOnline.Streaming.Contracts;
using PrefOnline.Tensors;
using PrefOnline.Worker.Observability;
using PrefOnline.Worker.Serving;
using PrefOnline.Worker.Tests.ModelVerbs;

namespace PrefOnline.Worker.Tests.Serving;

/// <summary>
/// A tiny policy as the learner's checkpoints hold it — <c>policy.safetensors</c> with its config in the metadata, the
/// tokenizer file beside it — made once per test class from <c>prefonline init --preset tiny</c>, and announced versions of it.
/// </summary>
public sealed class ServingTestKit : IDisposable
{
    public ServingTestKit()
    {
        Root = CliProcess.TempDirectory("serving");
        InitDirectory = Path.Combine(Root, "init");
        var init = CliProcess.Run("init", "--preset", "tiny", "--seed", "11", "--out", InitDirectory);
        if (init.Code != 0) throw new InvalidOperationException(init.Stderr);
        Source = Path.Combine(Root, "checkpoint");
        Directory.CreateDirectory(Source);
        using (var thread = new TensorThread("serving-kit"))
        {
            thread.RunAsync(() =>
            {
                using var model = PolicyCheckpoint.LoadModel(InitDirectory);
                PolicyCheckpoint.SaveWeightsFile(Path.Combine(Source, "policy.safetensors"), model);

                // A LoRA version as the learner writes it: the base as reference.safetensors, a real PEFT adapter (B set away
                // from zero so it changes what the model computes), the tokenizer; no merged weights.
                using (var copy = model.Copy()) // saved before the adapters attach: the plain base
                {
                    var adapters = LoraAdapters.Attach(model, new LoraOptions { Rank = 4, Alpha = 8 }, seed: 1);
                    using (var generator = new TorchSharp.torch.Generator(2))
                    using (TorchSharp.torch.no_grad())
                        foreach (var (_, _, b) in adapters.Pairs()) b.normal_(0, 0.2, generator);
                    PeftAdapter.Save(LoraSource, adapters); // (re)creates the directory
                    PolicyCheckpoint.SaveWeightsFile(Path.Combine(LoraSource, "reference.safetensors"), copy);
                }
            }, CancellationToken.None).GetAwaiter().GetResult();
        }
        foreach (var file in Directory.EnumerateFiles(InitDirectory).Where(f => Path.GetFileName(f).StartsWith("tokenizer", StringComparison.Ordinal)))
        {
            File.Copy(file, Path.Combine(Source, Path.GetFileName(file)));
            File.Copy(file, Path.Combine(LoraSource, Path.GetFileName(file)));
        }
        // An adapter in PEFT's file names (content is irrelevant to the hand-off: it is copied and verified, not read).
        Adapter = Path.Combine(Root, "adapter");
        Directory.CreateDirectory(Adapter);
        File.WriteAllText(Path.Combine(Adapter, VersionExporter.AdapterConfig), """{"peft_type": "LORA", "r": 8, "lora_alpha": 16}""");
        File.WriteAllBytes(Path.Combine(Adapter, VersionExporter.AdapterWeights), RandomNumberGenerator.GetBytes(4096));
    }

    public string Root { get; }

    public string InitDirectory { get; }

    /// <summary>The learner-style files of the full policy.</summary>
    public string Source { get; }

    /// <summary>PEFT adapter files.</summary>
    public string Adapter { get; }

    /// <summary>A LoRA version's policy files as this build's learner writes them: reference.safetensors (the base), a PEFT adapter, the tokenizer.</summary>
    public string LoraSource => Path.Combine(Root, "lora-checkpoint");

    public string NewDirectory(string name)
    {
        var path = Path.Combine(Root, $"{name}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(path);
        return path;
    }

    /// <summary>Version <paramref name="version"/> of the full policy (a rollback when <paramref name="rolledBackFrom"/> is given).</summary>
    public ServedVersion Full(long version, long? rolledBackFrom = null) => Announce(Source, "policy.safetensors", version, rolledBackFrom);

    /// <summary>Version <paramref name="version"/> of <see cref="LoraSource"/>: the adapter's weights are the event's, the base listed beside it.</summary>
    public ServedVersion Lora(long version) => Announce(LoraSource, VersionExporter.AdapterWeights, version, null);

    /// <summary>Version <paramref name="version"/> as a LoRA adapter.</summary>
    public ServedVersion AdapterVersion(long version) => Announce(Adapter, VersionExporter.AdapterWeights, version, null);

    private static ServedVersion Announce(string directory, string weights, long version, long? rolledBackFrom)
    {
        var files = Directory.EnumerateFiles(directory).ToDictionary(f => Path.GetFileName(f), f => f, StringComparer.Ordinal);
        var hashes = files.ToDictionary(f => f.Key, f => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(f.Value))), StringComparer.Ordinal);
        var uri = new Uri(Path.Combine(directory, weights)).AbsoluteUri;
        var policyEvent = rolledBackFrom is { } from
            ? PolicyEvent.Rollback(from, version, "test rollback", uri, hashes[weights], DateTimeOffset.UnixEpoch, new Dictionary<string, double>(), hashes)
            : PolicyEvent.Publish(version, uri, hashes[weights], DateTimeOffset.UnixEpoch, new Dictionary<string, double>(), hashes);
        return new ServedVersion(policyEvent, version + 100, files);
    }

    public void Dispose() => Directory.Delete(Root, recursive: true);
}

/// <summary>The measurements of one <see cref="PrefOnlineMetrics"/> (a meter of its own), by instrument and tags.</summary>
internal sealed class RecordedMetrics : IDisposable
{
    private readonly MeterListener listener = new();
    private readonly ConcurrentQueue<(string Name, double Value, Dictionary<string, string> Tags)> measurements = new();

    public RecordedMetrics()
    {
        var meter = new Meter(new MeterOptions(MetricCatalog.MeterName) { Scope = this });
        Metrics = new PrefOnlineMetrics(meter);
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter, meter)) l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Add(instrument, value, tags));
        listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => Add(instrument, value, tags));
        listener.Start();
    }

    public PrefOnlineMetrics Metrics { get; }

    /// <summary>Sum of the counter's increments with these publisher and result labels.</summary>
    public long Count(string publisher, string result) => (long)measurements
        .Where(m => m.Name == MetricCatalog.ServingPublishTotal.Name && m.Tags.GetValueOrDefault("publisher") == publisher && m.Tags.GetValueOrDefault("result") == result)
        .Sum(m => m.Value);

    /// <summary>The last value recorded for the publisher's version gauge.</summary>
    public long? Version(string publisher) => measurements
        .Where(m => m.Name == MetricCatalog.ServingVersion.Name && m.Tags.GetValueOrDefault("publisher") == publisher)
        .Select(m => (long?)m.Value).LastOrDefault();

    public int Durations(string publisher) => measurements.Count(m => m.Name == MetricCatalog.ServingPublishDuration.Name && m.Tags.GetValueOrDefault("publisher") == publisher);

    private void Add(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, tag) in tags) map[key] = tag?.ToString() ?? "";
        measurements.Enqueue((instrument.Name, value, map));
    }

    public void Dispose()
    {
        listener.Dispose();
        Metrics.Dispose();
    }
}

/// <summary>Builds a hand-off for tests: fast retries, no logging.</summary>
internal static class TestHandOff
{
    public static ServingOptions Options(params ServingPublisherOptions[] publishers) => new()
    {
        Publishers = [.. publishers],
        MaxAttempts = 4,
        RetryBaseDelay = TimeSpan.FromMilliseconds(20),
        RetryMaxDelay = TimeSpan.FromMilliseconds(100),
    };

    public static async Task<ServingHandOff> StartAsync(ServingOptions options, RecordedMetrics metrics)
    {
        Assert.Empty(options.Problems());
        var handOff = new ServingHandOff(options, ServingPublishers.Create(options, NullLoggerFactory.Instance), metrics.Metrics, NullLogger<ServingHandOff>.Instance, TimeProvider.System);
        await handOff.StartAsync(CancellationToken.None);
        return handOff;
    }

    /// <summary>Waits until <paramref name="condition"/> holds (polling; the hand-off runs in the background).</summary>
    public static async Task WaitUntilAsync(Func<bool> condition, string what, TimeSpan? timeout = null)
    {
        using var deadline = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        while (!condition())
        {
            if (deadline.IsCancellationRequested) throw new TimeoutException(what);
            await Task.Delay(20, CancellationToken.None);
        }
    }
}
