using Microsoft.Extensions.Logging;
using PrefOnline.Learning.Guardrails;
using PrefOnline.Streaming.DeadLetters;
using PrefOnline.Streaming.Metrics;
using PrefOnline.Streaming.Validation;
using PrefOnline.Tensors;
using PrefOnline.Worker.Hosting;
using PrefOnline.Worker.Observability;
using PrefOnline.Worker.Transport;

namespace PrefOnline.Worker.Pipeline;

/// <summary>
/// What every epoch of the learner pipeline shares: configuration, the transport, the tensor thread, the
/// guardrail, metrics, and the validators and dead-letter router (kept across epochs, so the duplicate-id
/// window spans rollbacks: a record re-read at the same position is a redelivery, not a duplicate).
/// <see cref="IntakeBufferBytes"/> bounds the bytes of validated records each input's intake holds (Kafka:MaxBufferedBytes).
/// </summary>
public sealed record LearnerPipelineContext(
    WorkerRole Role,
    LearningStateSettings Settings,
    FeedbackOptions Feedback,
    string ConsumerGroup,
    IStreamTransport Transport,
    TensorThread Thread,
    CheckpointCoordinator Coordinator,
    Guardrail Guardrail,
    PrefOnlineMetrics Metrics,
    StreamingMetrics StreamingMetrics,
    RecordValidator PromptValidator,
    RecordValidator FeedbackValidator,
    RecordValidator RolloutValidator,
    DeadLetterRouter DeadLetters,
    PipelineStatus Status,
    CheckpointReadiness Checkpoints,
    ILogger Logger,
    TimeProvider Time,
    long IntakeBufferBytes);
