using System.Diagnostics;
using System.Globalization;
using System.Threading.Channels;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;
using PrefOnline.Worker.Observability;
using PrefOnline.Worker.Observability.Health;

namespace PrefOnline.Worker.Serving;

/// <summary>
/// Hands every announced policy version (published, or restored by a rollback) to each configured publisher, in the
/// background: <see cref="Announce"/> never waits, so the learner's update loop never does. Per publisher:
/// <list type="bullet">
/// <item>one hand-off at a time; of the announcements that arrive meanwhile only the newest is kept (what is announced
///   last is what serving must have: after a rollback, the restored older version);</item>
/// <item>a version the publisher handed off already (same version, same weights) is not handed off again (<c>unchanged</c>);</item>
/// <item>transient failures are retried with Polly (exponential back-off with jitter, <c>Serving:MaxAttempts</c> attempts);
///   a newer announcement ends the waiting between retries of an older one (<c>superseded</c>) — never an attempt in
///   flight, which a server would finish anyway;</item>
/// <item>a permanent failure is not retried (<c>rejected</c>); both it and running out of attempts (<c>failed</c>) show on
///   /readyz (<see cref="Checks"/>) until a later hand-off succeeds.</item>
/// </list>
/// Outcomes are counted in <c>prefonline_serving_publish_total</c>, <c>prefonline_serving_version</c> and
/// <c>prefonline_serving_publish_duration_seconds</c>. On stop a pending hand-off is dropped: the next start announces the
/// version it loads.
/// </summary>
public sealed class ServingHandOff : IHostedService, IAsyncDisposable
{
    private readonly ServingOptions options;
    private readonly PrefOnlineMetrics metrics;
    private readonly ILogger logger;
    private readonly TimeProvider time;
    private readonly IReadOnlyList<Lane> lanes;
    private readonly CancellationTokenSource stopping = new();
    private Task[] loops = [];

    public ServingHandOff(ServingOptions options, IReadOnlyList<IServingPublisher> publishers, PrefOnlineMetrics metrics, ILogger<ServingHandOff> logger, TimeProvider time)
    {
        this.options = options;
        this.metrics = metrics;
        this.logger = logger;
        this.time = time;
        lanes = publishers.Select(p => new Lane(p, options.FailReadinessOnError)).ToList();
    }

    /// <summary>One /readyz check per publisher (<c>serving-&lt;name&gt;</c>).</summary>
    public IReadOnlyList<IReadinessContributor> Checks => lanes;

    /// <summary>Checkpoint versions a hand-off is reading or will read: retention must keep them (<c>CheckpointStore.ProtectFromRetention</c>).</summary>
    public IReadOnlyCollection<long> CheckpointsInUse() => lanes.SelectMany(l => l.CheckpointsInUse()).Distinct().ToList();

    /// <summary>Queues <paramref name="version"/> for every publisher and returns at once.</summary>
    public void Announce(ServedVersion version)
    {
        foreach (var lane in lanes) lane.Announce(version);
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        loops = lanes.Select(lane => Task.Run(() => RunAsync(lane, stopping.Token), CancellationToken.None)).ToArray();
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await stopping.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(loops).WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        if (!stopping.IsCancellationRequested) await StopAsync(CancellationToken.None).ConfigureAwait(false);
        stopping.Dispose();
        foreach (var lane in lanes) (lane.Publisher as IDisposable)?.Dispose();
    }

    private async Task RunAsync(Lane lane, CancellationToken stop)
    {
        var pipeline = RetryPipeline(lane);
        try
        {
            await foreach (var version in lane.Pending.Reader.ReadAllAsync(stop).ConfigureAwait(false))
            {
                if (version.SameAs(lane.LastSuccess))
                {
                    metrics.ServingHandOff(lane.Publisher.Name, "unchanged");
                    continue;
                }
                await HandOffAsync(lane, pipeline, version, stop).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // stopping: what is pending is announced again by the next start
        }
    }

    private async Task HandOffAsync(Lane lane, ResiliencePipeline pipeline, ServedVersion version, CancellationToken stop)
    {
        var name = lane.Publisher.Name;
        var started = Stopwatch.GetTimestamp();
        using var superseded = CancellationTokenSource.CreateLinkedTokenSource(stop);
        lane.Started(version, superseded);
        try
        {
            // Attempts run with the stop token only; the supersede token ends the waiting between them.
            var note = await pipeline.ExecuteAsync(async _ => await lane.Publisher.PublishAsync(version, stop).ConfigureAwait(false), superseded.Token).ConfigureAwait(false);
            var elapsed = Stopwatch.GetElapsedTime(started);
            lane.Succeeded(version, note, time.GetUtcNow());
            metrics.ServingHandOff(name, "success", elapsed, version.Version);
            logger.LogInformation("Serving {Publisher}: handed off {Version} in {Seconds:0.###} s ({Note})", name, version.ToString(), elapsed.TotalSeconds, note);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            lane.Finished();
            throw;
        }
        catch (OperationCanceledException) when (superseded.IsCancellationRequested)
        {
            lane.Finished();
            metrics.ServingHandOff(name, "superseded", Stopwatch.GetElapsedTime(started));
            logger.LogInformation("Serving {Publisher}: stopped retrying {Version}, a newer announcement replaces it", name, version.ToString());
        }
        catch (ServingHandOffException e)
        {
            var result = e.Transient ? "failed" : "rejected";
            var why = e.Transient ? $"gave up after {options.MaxAttempts} attempt(s): {e.Message}" : $"refused: {e.Message}";
            lane.Failed(version, why, time.GetUtcNow());
            metrics.ServingHandOff(name, result, Stopwatch.GetElapsedTime(started));
            logger.LogError("Serving {Publisher}: {Version} not handed off ({Result}): {Reason}", name, version.ToString(), result, why);
        }
        catch (Exception e)
        {
            // A bug or an unforeseen error of one publisher must not end its lane (nor the worker): reported like a rejection.
            var why = $"{e.GetType().Name}: {e.Message}";
            lane.Failed(version, why, time.GetUtcNow());
            metrics.ServingHandOff(name, "rejected", Stopwatch.GetElapsedTime(started));
            logger.LogError(e, "Serving {Publisher}: {Version} not handed off: {Reason}", name, version.ToString(), why);
        }
    }

    private ResiliencePipeline RetryPipeline(Lane lane)
    {
        if (options.MaxAttempts <= 1) return ResiliencePipeline.Empty;
        return new ResiliencePipelineBuilder { TimeProvider = time }.AddRetry(new RetryStrategyOptions
        {
            Name = "serving-" + lane.Publisher.Name,
            ShouldHandle = new PredicateBuilder().Handle<ServingHandOffException>(e => e.Transient),
            MaxRetryAttempts = options.MaxAttempts - 1,
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = options.RetryBaseDelay,
            MaxDelay = options.RetryMaxDelay,
            OnRetry = arguments =>
            {
                var error = arguments.Outcome.Exception?.Message ?? "failed";
                lane.Retrying(arguments.AttemptNumber + 1, error);
                metrics.ServingHandOff(lane.Publisher.Name, "retry");
                logger.LogWarning("Serving {Publisher}: attempt {Attempt} of {Max} failed ({Error}); next in {DelayMs} ms",
                    lane.Publisher.Name, arguments.AttemptNumber + 1, options.MaxAttempts, error, (long)arguments.RetryDelay.TotalMilliseconds);
                return default;
            },
        }).Build();
    }

    /// <summary>One publisher's queue (newest announcement only), its in-flight hand-off and its /readyz state.</summary>
    private sealed class Lane(IServingPublisher publisher, bool failReadinessOnError) : IReadinessContributor
    {
        private readonly Lock gate = new();
        private ServedVersion? inFlight;
        private CancellationTokenSource? supersede;
        private ServedVersion? lastSuccess;
        private string? lastNote;
        private DateTimeOffset lastSuccessAt;
        private (ServedVersion Version, string Why, DateTimeOffset At)? lastError;
        private string? retrying;

        public IServingPublisher Publisher { get; } = publisher;

        /// <summary>Capacity 1, dropping the older: a hand-off always works on the newest announcement.</summary>
        public Channel<ServedVersion> Pending { get; } = Channel.CreateBounded<ServedVersion>(new BoundedChannelOptions(1)
        {
            FullMode = BoundedChannelFullMode.DropOldest,
            SingleReader = true,
        });

        public string Name => "serving-" + Publisher.Name;

        public ServedVersion? LastSuccess
        {
            get
            {
                lock (gate) return lastSuccess;
            }
        }

        public List<long> CheckpointsInUse()
        {
            var versions = new List<long>(2);
            lock (gate)
            {
                if (inFlight is { } f) versions.Add(f.Checkpoint);
            }
            if (Pending.Reader.TryPeek(out var pending)) versions.Add(pending.Checkpoint);
            return versions;
        }

        public void Announce(ServedVersion version)
        {
            lock (gate)
            {
                // A different version ends the retries of the one in flight; the same one again changes nothing.
                if (inFlight is not null && !version.SameAs(inFlight)) supersede?.Cancel();
            }
            Pending.Writer.TryWrite(version);
        }

        public void Started(ServedVersion version, CancellationTokenSource source)
        {
            lock (gate)
            {
                inFlight = version;
                supersede = source;
                retrying = null;
            }
            // An announcement that arrived between taking this one and now supersedes it as well.
            if (Pending.Reader.TryPeek(out var next) && !next.SameAs(version)) source.Cancel();
        }

        public void Retrying(int failedAttempt, string error)
        {
            lock (gate) retrying = string.Create(CultureInfo.InvariantCulture, $"attempt {failedAttempt} failed: {error}");
        }

        public void Succeeded(ServedVersion version, string note, DateTimeOffset at)
        {
            lock (gate)
            {
                lastSuccess = version;
                lastNote = note;
                lastSuccessAt = at;
                lastError = null;
                Clear();
            }
        }

        public void Failed(ServedVersion version, string why, DateTimeOffset at)
        {
            lock (gate)
            {
                lastError = (version, why, at);
                Clear();
            }
        }

        public void Finished()
        {
            lock (gate) Clear();
        }

        public Task<ProbeResult> CheckAsync(CancellationToken cancellationToken)
        {
            lock (gate)
            {
                var served = lastSuccess is { } s
                    ? string.Create(CultureInfo.InvariantCulture, $"v{s.Version} handed off at {lastSuccessAt:yyyy-MM-ddTHH:mm:ssZ} ({lastNote})")
                    : "nothing handed off yet";
                var progress = inFlight is { } f ? $"; handing off v{f.Version}{(retrying is null ? "" : $" ({retrying})")}" : "";
                if (lastError is { } e)
                {
                    var line = string.Create(CultureInfo.InvariantCulture, $"v{e.Version.Version} not handed off at {e.At:yyyy-MM-ddTHH:mm:ssZ}: {e.Why}; serving has {served}{progress}");
                    return Task.FromResult(failReadinessOnError ? ProbeResult.Fail(Name, line) : ProbeResult.Pass(Name, line));
                }
                return Task.FromResult(ProbeResult.Pass(Name, served + progress));
            }
        }

        private void Clear()
        {
            inFlight = null;
            supersede = null;
            retrying = null;
        }
    }
}
