using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using PrefOnline.Streaming.Intake;
using PrefOnline.Streaming.Transport;
using PrefOnline.Tensors;

namespace PrefOnline.Worker.Pipeline;

/// <summary>
/// Validated labels → the learning state, up to <see cref="FeedbackOptions.MaxBatch"/> at a time, each batch
/// in one tensor-thread work item (<see cref="LearningState.AbsorbLabels"/>), which also completes them in the
/// feedback offset tracker. A batch that has not started when the stage is cancelled never runs: its labels
/// stay unabsorbed and are read again from the checkpoint's offsets.
/// </summary>
public sealed class FeedbackStage(ChannelReader<ValidatedRecord> labels, FeedbackOptions options, TensorThread thread, LearningState state, OffsetTracker tracker, PipelineStatus status, ILogger logger)
{
    public long Absorbed { get; private set; }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        try
        {
            var batch = new List<ValidatedRecord>(options.MaxBatch);
            while (await labels.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                batch.Clear();
                while (batch.Count < options.MaxBatch && labels.TryRead(out var label)) batch.Add(label);
                if (batch.Count == 0) continue;
                var items = batch.ToArray();
                var result = await thread.RunAsync(() => state.AbsorbLabels(items, tracker), cancellationToken).ConfigureAwait(false);
                Absorbed += items.Length;
                status.AddLabels(items.Length);
                if (result.RewardSteps > 0)
                    logger.LogDebug("Absorbed {Pairs} pairs and {Ratings} ratings ({Joined} joined to waiting rollouts); reward model trained {Steps} step(s), loss {Loss:0.###}",
                        result.Pairs, result.Ratings, result.Joined, result.RewardSteps, result.RewardLoss);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }
}
