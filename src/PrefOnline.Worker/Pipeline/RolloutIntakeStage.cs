using System.Threading.Channels;
using PrefOnline.Streaming.Intake;
using PrefOnline.Streaming.Transport;
using PrefOnline.Tensors;

namespace PrefOnline.Worker.Pipeline;

/// <summary>
/// Role learner: rollout records from the generators → the rollouts waiting for labels (one tensor-thread
/// work item per batch, which completes them in the rollouts offset tracker). Waits while
/// <see cref="ScoringOptions.MaxPendingRollouts"/> are waiting (scoring frees them when their wait ends),
/// so the rollouts consumer is held back rather than memory growing.
/// </summary>
public sealed class RolloutIntakeStage(ChannelReader<ValidatedRecord> rollouts, int maxBatch, int maxPending, TensorThread thread, LearningState state, OffsetTracker tracker)
{
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        try
        {
            var batch = new List<ValidatedRecord>(maxBatch);
            while (await rollouts.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                while (state.PendingSnapshot >= maxPending)
                    await state.Changed.WaitAsync(TimeSpan.FromMilliseconds(250), cancellationToken).ConfigureAwait(false);
                batch.Clear();
                var room = Math.Max(1, Math.Min(maxBatch, maxPending - state.PendingSnapshot));
                while (batch.Count < room && rollouts.TryRead(out var record)) batch.Add(record);
                if (batch.Count == 0) continue;
                var items = batch.ToArray();
                await thread.RunAsync(() => state.AdmitRolloutRecords(items, tracker), cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }
}
