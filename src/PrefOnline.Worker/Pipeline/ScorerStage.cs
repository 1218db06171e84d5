using Microsoft.Extensions.Logging;
using PrefOnline.Tensors;

namespace PrefOnline.Worker.Pipeline;

/// <summary>
/// Every <see cref="ScoringOptions.Tick"/>, the groups whose label wait is over are scored (human labels
/// where joined, the reward model elsewhere) and move into the replay buffer, in one tensor-thread work item.
/// </summary>
public sealed class ScorerStage(ScoringOptions options, TensorThread thread, LearningState state, PipelineStatus status, ILogger logger, TimeProvider time)
{
    public long Scored { get; private set; }

    public long HumanScored { get; private set; }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        try
        {
            using var timer = new PeriodicTimer(options.Tick, time);
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                if (state.PendingSnapshot == 0) continue;
                var result = await thread.RunAsync(() => state.ScoreDue(), cancellationToken).ConfigureAwait(false);
                Scored += result.Rollouts;
                HumanScored += result.HumanScored;
                status.AddScored(result.Rollouts);
                if (result.Rollouts > 0)
                    logger.LogDebug("Scored {Groups} groups ({Rollouts} rollouts, {Human} by human labels)", result.Groups, result.Rollouts, result.HumanScored);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }
}
