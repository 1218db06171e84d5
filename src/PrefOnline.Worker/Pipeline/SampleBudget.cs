using PrefOnline.Learning.Training;
namespace PrefOnline.Worker.Pipeline;

/// <summary>
/// Backpressure of generation (role all): a batch of n samples may start only while the rollouts generated
/// but not yet trained on (waiting for labels + fresh in replay) plus n stay within
/// <see cref="LearnerOptions.MaxSamplesAhead"/>, and the waiting ones within
/// <see cref="ScoringOptions.MaxPendingRollouts"/>. A slow learner thus stops generation, which stops the
/// prompt consumer: memory stays bounded and samples stay on-policy. While the guardrail pauses updates
/// only the waiting rollouts count (generation continues; the replay buffer evicts its oldest).
/// </summary>
public sealed class SampleBudget(LearningState state, int maxAhead, int maxPending, Func<bool> updatesPaused)
{
    /// <summary>Times generation had to wait for room.</summary>
    public long Waits { get; private set; }

    public bool HasRoom(int samples)
    {
        var pending = state.PendingSnapshot;
        var ahead = updatesPaused() ? pending : pending + state.FreshSnapshot;
        var fits = ahead + samples <= maxAhead && pending + samples <= maxPending;
        return fits || ahead == 0; // one batch larger than the budget still runs when nothing is ahead
    }

    public async Task WaitForRoomAsync(int samples, CancellationToken cancellationToken)
    {
        var waited = false;
        while (!HasRoom(samples))
        {
            waited = true;
            await state.Changed.WaitAsync(TimeSpan.FromMilliseconds(250), cancellationToken).ConfigureAwait(false);
        }
        if (waited) Waits++;
    }
}
