using Microsoft.Extensions.Logging;
using PrefOnline.Learning.Models.Checkpoints;
using PrefOnline.Streaming.Contracts;
using PrefOnline.Streaming.DeadLetters;
using PrefOnline.Streaming.Intake;
using PrefOnline.Streaming.Metrics;
using PrefOnline.Streaming.Transport;
using PrefOnline.Streaming.Validation;
using PrefOnline.Tensors;
using TorchSharp;
using static TorchSharp.torch;
using PrefOnline.Worker.Checkpoints;
using PrefOnline.Worker.Models;
using PrefOnline.Worker.Observability;
using PrefOnline.Worker.PolicyDistribution;
using PrefOnline.Worker.Observability.Health;
using PrefOnline.Worker.Transport;

namespace PrefOnline.Worker.Pipeline;

/// <summary>
/// Role generator: prompts in, rollouts out, following the policy topic. Generators hold no learning
/// state, so their delivery is at-least-once on the rollouts topic: a prompt counts as absorbed once its K
/// rollouts are durable, and the prompt offsets are committed every <see cref="CommitInterval"/> and on
/// stop (a crash re-generates what was not committed; rollout ids differ per generation, labels carry their
/// text, so a duplicate is harmless). The first policy is the checkpoint store's latest (when the volume is
/// mounted), else <c>Model:InitialPolicy</c> (as version 0), else the first policy event; prompts are not
/// read before one is loaded.
/// </summary>
public sealed class GeneratorPipeline(
    GenerationOptions generation,
    CheckpointOptions checkpoints,
    ModelOptions model,
    ValidationLimits limits,
    KafkaOptions kafka,
    PolicyDistributionOptions distribution,
    string? policyBaseUrl,
    IStreamTransport transport,
    TensorThread thread,
    PrefOnlineMetrics metrics,
    StreamingMetrics streamingMetrics,
    ReadinessGate modelGate,
    PipelineStatus status,
    ILoggerFactory loggers,
    TimeProvider time)
{
    public static readonly TimeSpan CommitInterval = TimeSpan.FromSeconds(5);

    private readonly ILogger logger = loggers.CreateLogger<GeneratorPipeline>();

    public GeneratorStage? Generator { get; private set; }

    public async Task RunAsync(CancellationToken stopping, CancellationToken shutdown)
    {
        var policy = new FollowedPolicy(thread, time, model.Placement, model.Decoders);
        try
        {
            await RunWithAsync(policy, stopping, shutdown).ConfigureAwait(false);
        }
        finally
        {
            await thread.RunAsync(policy.Dispose, CancellationToken.None).ConfigureAwait(false);
        }
    }

    private async Task RunWithAsync(FollowedPolicy policy, CancellationToken stopping, CancellationToken shutdown)
    {
        var topics = transport.Topics;
        var deadLetters = new DeadLetterRouter(transport.Sink, topics.DeadLetter, streamingMetrics, loggers.CreateLogger<DeadLetterRouter>());
        var pipelineLogger = loggers.CreateLogger("PrefOnline.Worker.Pipeline");

        await LoadInitialPolicyAsync(policy, stopping).ConfigureAwait(false);

        var policyTracker = new OffsetTracker();
        await using var policySource = transport.Subscribe($"{kafka.ConsumerGroup}.policy.{Environment.MachineName}.{Environment.ProcessId}", [topics.Policy], policyTracker, SourceStart.Earliest);
        // Refused policy events are skipped and counted, not dead-lettered: every generator reads this topic from
        // its start at every start, so a dead letter per generator and restart would repeat without bound, while
        // the record itself stays readable at its position (docs/OPERATIONS.md, "Failure policy").
        var bufferBytes = kafka.BufferedBytesFor(limits.MaxRecordBytes);
        var policyIntake = new IntakeStage("policy", ValidatingIntake.SkippingRefused(policySource, new RecordValidator(limits, SchemaNames.PolicyTopic, time), policyTracker, streamingMetrics, pipelineLogger),
            1024, bufferBytes, pipelineLogger);
        // Every policy is fetched and verified into the download directory on the data volume (the chart's emptyDir with a
        // size limit), files on a mounted checkpoint volume included; only the newest is kept.
        using var fetcher = new PolicyFetcher(distribution, policyBaseUrl, checkpoints.Directory, loggers.CreateLogger<PolicyFetcher>());
        fetcher.Prepare();
        var follower = new PolicyFollowerStage(policyIntake.Records, policyTracker, policy, thread, metrics, streamingMetrics, status, pipelineLogger, fetcher);
        using var followStop = new CancellationTokenSource();
        var policyTasks = new[] { policyIntake.RunAsync(followStop.Token), follower.RunAsync(followStop.Token) };

        try
        {
            if (!policy.Loaded.IsCompleted) logger.LogWarning("No policy yet: waiting for the first event on {Topic} before reading prompts", topics.Policy);
            await policy.Loaded.WaitAsync(stopping).ConfigureAwait(false);
            modelGate.MarkReady(() => $"generating with policy v{policy.Version}");
            status.SetRunning(true);

            var promptTracker = new OffsetTracker();
            await using var promptSource = transport.Subscribe($"{kafka.ConsumerGroup}.generators", [topics.Prompts], promptTracker);
            var promptIntake = new IntakeStage("prompts", new ValidatingIntake(promptSource, new RecordValidator(limits, SchemaNames.PromptTopic, time), deadLetters, promptTracker, streamingMetrics, pipelineLogger),
                generation.QueueCapacity, bufferBytes, pipelineLogger);
            using var intakeStop = new CancellationTokenSource();
            using var generatorStop = new CancellationTokenSource();
            using var abort = CancellationTokenSource.CreateLinkedTokenSource(shutdown);
            Generator = new GeneratorStage(promptIntake.Records, generation, policy, transport.Sink, topics.Rollouts,
                (batch, _) =>
                {
                    foreach (var prompt in batch.Prompts) promptTracker.Complete(prompt.Work.Source);
                    return Task.CompletedTask;
                },
                (_, _) => Task.CompletedTask, metrics, pipelineLogger, time);
            var intakeTask = promptIntake.RunAsync(intakeStop.Token);
            var generatorTask = Generator.RunAsync(generatorStop.Token, abort.Token);

            using (var timer = new PeriodicTimer(CommitInterval, time))
            {
                try
                {
                    while (await timer.WaitForNextTickAsync(stopping).ConfigureAwait(false))
                    {
                        if (generatorTask.IsFaulted || intakeTask.IsFaulted || policyTasks.Any(t => t.IsFaulted)) break;
                        await CommitAsync(promptSource, promptTracker, stopping).ConfigureAwait(false);
                    }
                }
                catch (OperationCanceledException) when (stopping.IsCancellationRequested)
                {
                }
            }

            // Stop: intake first, then the batch in flight is finished and published; then the last commit.
            await intakeStop.CancelAsync().ConfigureAwait(false);
            await generatorStop.CancelAsync().ConfigureAwait(false);
            await intakeTask.ConfigureAwait(false);
            await generatorTask.ConfigureAwait(false);
            foreach (var task in policyTasks.Where(t => t.IsFaulted)) await task.ConfigureAwait(false);
            await CommitAsync(promptSource, promptTracker, shutdown).ConfigureAwait(false);
            await promptSource.CloseAsync(shutdown).ConfigureAwait(false);
            logger.LogInformation("Generator stopped after {Batches} batches; prompt offsets committed", Generator.Batches);
        }
        finally
        {
            status.SetRunning(false);
            await followStop.CancelAsync().ConfigureAwait(false);
            foreach (var task in policyTasks)
            {
                try
                {
                    await task.ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                }
            }
        }
    }

    private async Task CommitAsync(IRecordSource source, OffsetTracker tracker, CancellationToken cancellationToken)
    {
        var offsets = tracker.Snapshot();
        if (offsets.Count == 0) return;
        try
        {
            await source.CommitAsync(offsets, cancellationToken).ConfigureAwait(false);
        }
        catch (StreamingException e)
        {
            logger.LogWarning("Could not commit prompt offsets ({Error}); trying again in {Interval}", e.Message, CommitInterval);
        }
    }

    private async Task LoadInitialPolicyAsync(FollowedPolicy policy, CancellationToken cancellationToken)
    {
        if (Directory.Exists(checkpoints.Directory))
        {
            var result = await new CheckpointReader(checkpoints.Directory, logger: logger).LoadLatestValidAsync(cancellationToken).ConfigureAwait(false);
            if (result.Checkpoint is { } checkpoint && checkpoint.Contains(PolicyFiles.WeightsNameOf(checkpoint.Contains)) && checkpoint.Contains(StateFiles.Worker))
            {
                var version = CheckpointCoordinator.PolicyVersionOf(checkpoint);
                var sha = checkpoint.Manifest.Files[PolicyFiles.WeightsNameOf(checkpoint.Contains)].Sha256;
                await thread.RunAsync(() => policy.Adopt(StoredPolicy.LoadWeights(checkpoint.DirectoryPath), Learning.Tokenization.TokenizerLoader.FromDirectory(checkpoint.DirectoryPath), version, sha), cancellationToken).ConfigureAwait(false);
                metrics.SetPolicyVersion(version);
                status.SetPolicyVersion(version);
                logger.LogInformation("Generating with policy v{Version} from checkpoint {Checkpoint} in {Root}", version, checkpoint.ToString(), checkpoints.Directory);
                return;
            }
        }
        if (!string.IsNullOrWhiteSpace(model.InitialPolicy))
        {
            await thread.RunAsync(() =>
            {
                var loaded = PolicyCheckpoint.Load(model.InitialPolicy);
                policy.Adopt(loaded.Model, loaded.Tokenizer, 0, null);
            }, cancellationToken).ConfigureAwait(false);
            metrics.SetPolicyVersion(0);
            logger.LogInformation("Generating with the initial policy {Directory} (version 0) until the learner publishes one", model.InitialPolicy);
        }
    }
}
