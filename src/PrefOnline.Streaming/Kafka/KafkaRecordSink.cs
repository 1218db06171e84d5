using Confluent.Kafka;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;
using PrefOnline.Streaming.Transport;

namespace PrefOnline.Streaming.Kafka;

/// <summary>
/// The process's idempotent Kafka producer (enable.idempotence=true, acks=all) behind
/// <see cref="IRecordSink"/>, with a Polly 8 retry (exponential back-off, jitter) and circuit breaker
/// around each delivery. One instance serves every output topic (rollouts, policy events, dead letters).
/// </summary>
/// <remarks>
/// Failure policy: librdkafka retries transient errors by itself for up to
/// <see cref="KafkaSinkOptions.DeliveryTimeout"/>; a record that still fails with a transient error is
/// retried by Polly; after repeated failures the circuit opens and calls fail at once (transient
/// <see cref="StreamingException"/>) until a trial succeeds. Permanent errors (record too large,
/// authorization, invalid topic) fail at once and are not retried. A fatal producer error (the
/// idempotence state is broken) makes the next call build a fresh producer: the sink never dies.
/// </remarks>
public sealed class KafkaRecordSink : IRecordSink
{
    private static readonly HashSet<ErrorCode> PermanentErrors =
    [
        ErrorCode.MsgSizeTooLarge, ErrorCode.TopicAuthorizationFailed,
        ErrorCode.ClusterAuthorizationFailed, ErrorCode.TopicException, ErrorCode.InvalidRecord, ErrorCode.Local_InvalidArg,
        ErrorCode.RecordListTooLarge, ErrorCode.Local_BadMsg, ErrorCode.UnsupportedForMessageFormat, ErrorCode.InvalidRequiredAcks,
        ErrorCode.SaslAuthenticationFailed, ErrorCode.Local_Authentication,
    ];

    private readonly KafkaSinkOptions options;
    private readonly IReadOnlyDictionary<string, string> clientSettings;
    private readonly ILogger logger;
    private readonly ResiliencePipeline pipeline;
    private readonly Lock gate = new();
    private IProducer<byte[], byte[]>? producer;
    private volatile bool producerBroken;
    private readonly BrokerReachabilityTracker reachability;
    private int disposed;

    private KafkaRecordSink(KafkaSinkOptions options, ILogger logger)
    {
        this.options = options;
        this.logger = logger;
        reachability = new BrokerReachabilityTracker(logger, "Kafka sink");
        clientSettings = options.BuildClientSettings();
        pipeline = BuildPipeline(options.Resilience);
        producer = BuildProducer();
    }

    /// <summary>Validates the options, loads librdkafka and creates the producer (connecting happens in the background).</summary>
    /// <exception cref="ArgumentException">The options are invalid (every problem is listed).</exception>
    public static KafkaRecordSink Create(KafkaSinkOptions options, ILogger<KafkaRecordSink>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var problems = options.Problems();
        if (problems.Count > 0) throw new ArgumentException("invalid Kafka sink options: " + string.Join("; ", problems), nameof(options));
        KafkaNative.EnsureLoaded();
        var sink = new KafkaRecordSink(options, (ILogger?)logger ?? NullLogger.Instance);
        sink.logger.LogInformation("Kafka sink starting with {Settings}", KafkaSettings.Describe(sink.clientSettings));
        return sink;
    }

    public BrokerReachability Reachability => reachability.Current;

    /// <summary>Times the producer was rebuilt after a fatal error.</summary>
    public int ProducerRebuilds { get; private set; }

    /// <summary>The librdkafka configuration in force, secrets redacted.</summary>
    public IReadOnlyDictionary<string, string> EffectiveSettings => KafkaSettings.Redact(clientSettings);

    public async Task<DeliveredRecord> ProduceAsync(OutgoingRecord record, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(record);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref disposed) == 1, this);
        var message = new Message<byte[], byte[]> { Key = record.Key!, Value = record.Value };
        if (record.Headers is { Count: > 0 } headers)
        {
            message.Headers = new Headers();
            foreach (var header in headers) message.Headers.Add(header.Name, header.Value);
        }
        try
        {
            return await pipeline.ExecuteAsync(static async (state, token) => await state.Sink.ProduceOnceAsync(state.Topic, state.Message, token).ConfigureAwait(false),
                (Sink: this, Topic: record.Topic, Message: message), cancellationToken).ConfigureAwait(false);
        }
        catch (BrokenCircuitException e)
        {
            throw new StreamingException($"producing to {record.Topic} is suspended after repeated failures (circuit open); retry later", isTransient: true, e);
        }
    }

    public async Task FlushAsync(CancellationToken cancellationToken)
    {
        var client = CurrentProducer();
        // Flush blocks: poll it in short slices on the pool so cancellation is honoured.
        await Task.Run(() =>
        {
            while (client.Flush(TimeSpan.FromMilliseconds(100)) > 0) cancellationToken.ThrowIfCancellationRequested();
        }, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) == 1) return;
        IProducer<byte[], byte[]>? client;
        lock (gate)
        {
            client = producer;
            producer = null;
        }
        if (client is null) return;
        await Task.Run(() =>
        {
            var remaining = client.Flush(options.DeliveryTimeout);
            if (remaining > 0) logger.LogWarning("Kafka sink disposed with {Count} records undelivered", remaining);
            client.Dispose();
        }).ConfigureAwait(false);
    }

    private async ValueTask<DeliveredRecord> ProduceOnceAsync(string topic, Message<byte[], byte[]> message, CancellationToken cancellationToken)
    {
        var client = CurrentProducer();
        try
        {
            var result = await client.ProduceAsync(topic, message, cancellationToken).ConfigureAwait(false);
            reachability.MarkReachable("a delivery succeeded");
            return new DeliveredRecord(new TopicPartitionId(result.Topic, result.Partition.Value), result.Offset.Value);
        }
        catch (ProduceException<byte[], byte[]> e)
        {
            throw Classify(topic, e.Error, e);
        }
        catch (KafkaException e)
        {
            throw Classify(topic, e.Error, e);
        }
    }

    private StreamingException Classify(string topic, Error error, Exception inner)
    {
        if (error.IsFatal)
        {
            producerBroken = true;
            logger.LogError("Fatal Kafka producer error {Code}: {Error}; the producer will be rebuilt", error.Code, error.Reason);
            return new StreamingException($"producing to {topic} failed: {error.Reason} (fatal; producer rebuilt on the next attempt)", isTransient: true, inner);
        }
        var permanent = PermanentErrors.Contains(error.Code);
        logger.LogWarning("Producing to {Topic} failed: {Code} {Error} ({Kind})", topic, error.Code, error.Reason, permanent ? "permanent" : "transient");
        return new StreamingException($"producing to {topic} failed: {error.Code} {error.Reason}", isTransient: !permanent, inner);
    }

    private IProducer<byte[], byte[]> CurrentProducer()
    {
        lock (gate)
        {
            ObjectDisposedException.ThrowIf(producer is null, this);
            if (producerBroken)
            {
                var broken = producer;
                producer = BuildProducer();
                producerBroken = false;
                ProducerRebuilds++;
                // Disposing flushes; a broken producer fails its queue fast, but keep it off the caller's path.
                _ = Task.Run(() => broken.Dispose());
            }
            return producer;
        }
    }

    private IProducer<byte[], byte[]> BuildProducer() =>
        new ProducerBuilder<byte[], byte[]>(clientSettings)
            .SetErrorHandler((_, error) => OnError(error))
            .SetStatisticsHandler((_, json) => reachability.OnStatistics(json))
            .SetLogHandler((_, message) => BrokerReachabilityTracker.ForwardLog(logger, message))
            .Build();

    private ResiliencePipeline BuildPipeline(ProduceResilienceOptions resilience)
    {
        var transient = new PredicateBuilder().Handle<StreamingException>(e => e.IsTransient);
        var builder = new ResiliencePipelineBuilder();
        if (resilience.MaxRetries > 0)
        {
            builder.AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = transient,
                MaxRetryAttempts = resilience.MaxRetries,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = resilience.RetryBaseDelay,
                MaxDelay = resilience.RetryMaxDelay,
                OnRetry = args =>
                {
                    logger.LogWarning("Retrying a Kafka produce (attempt {Attempt}) in {Delay}: {Error}", args.AttemptNumber + 1, args.RetryDelay, args.Outcome.Exception?.Message);
                    return default;
                },
            });
        }
        builder.AddCircuitBreaker(new CircuitBreakerStrategyOptions
        {
            ShouldHandle = transient,
            FailureRatio = resilience.FailureRatio,
            MinimumThroughput = resilience.MinimumThroughput,
            SamplingDuration = resilience.SamplingDuration,
            BreakDuration = resilience.BreakDuration,
            OnOpened = args =>
            {
                logger.LogError("Kafka produce circuit opened for {Duration}: {Error}", args.BreakDuration, args.Outcome.Exception?.Message);
                return default;
            },
            OnClosed = _ =>
            {
                logger.LogInformation("Kafka produce circuit closed: deliveries succeed again");
                return default;
            },
        });
        return builder.Build();
    }

    private void OnError(Error error)
    {
        reachability.OnError(error);
        if (error.IsFatal)
        {
            producerBroken = true;
            logger.LogError("Fatal Kafka producer error {Code}: {Error}", error.Code, error.Reason);
        }
        else
        {
            logger.LogDebug("Kafka producer error {Code}: {Error}", error.Code, error.Reason);
        }
    }
}
