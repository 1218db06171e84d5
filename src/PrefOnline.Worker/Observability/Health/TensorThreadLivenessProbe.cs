using PrefOnline.Tensors;

namespace PrefOnline.Worker.Observability.Health;

/// <summary>
/// Is the tensor thread still turning? The probe queues a no-op on it and waits briefly for the answer.
/// A long update legitimately keeps the thread busy for longer than a probe may wait, so an unanswered
/// ping is kept (not re-queued) and the thread counts as alive until that one ping has waited longer
/// than the stall timeout: only then is a work item considered stuck and the process restarted.
/// </summary>
public sealed class TensorThreadLivenessProbe : ILivenessProbe
{
    private readonly Func<Task> ping;
    private readonly Func<int> queueLength;
    private readonly TimeSpan answerWait;
    private readonly TimeSpan stallTimeout;
    private readonly TimeProvider time;
    private readonly object gate = new();
    private Task? pending;
    private DateTimeOffset pendingSince;

    public TensorThreadLivenessProbe(TensorThread thread, TimeSpan answerWait, TimeSpan stallTimeout, TimeProvider? time = null)
        : this(() => thread.RunAsync(() => { }, CancellationToken.None), () => thread.QueueLength, answerWait, stallTimeout, time)
    {
    }

    /// <param name="ping">Queues a no-op on the thread; the task completes when it ran.</param>
    /// <param name="queueLength">Work items waiting (for the reason text).</param>
    /// <param name="answerWait">How long one probe waits for the ping before reporting "busy".</param>
    /// <param name="stallTimeout">How long one ping may stay unanswered before the thread counts as stuck.</param>
    /// <param name="time">Clock for the stall timeout.</param>
    public TensorThreadLivenessProbe(Func<Task> ping, Func<int> queueLength, TimeSpan answerWait, TimeSpan stallTimeout, TimeProvider? time = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(answerWait, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(stallTimeout, answerWait);
        this.ping = ping;
        this.queueLength = queueLength;
        this.answerWait = answerWait;
        this.stallTimeout = stallTimeout;
        this.time = time ?? TimeProvider.System;
    }

    public string Name => "tensor_thread";

    public async Task<ProbeResult> CheckAsync(CancellationToken cancellationToken)
    {
        Task current;
        DateTimeOffset since;
        lock (gate)
        {
            if (pending is null || pending.IsCompleted)
            {
                pendingSince = time.GetUtcNow();
                pending = ping();
            }
            current = pending;
            since = pendingSince;
        }

        var answered = await Task.WhenAny(current, Task.Delay(answerWait, cancellationToken)) == current;
        if (answered)
        {
            return current.IsCompletedSuccessfully
                ? ProbeResult.Pass(Name, "answered a ping")
                : ProbeResult.Fail(Name, "the tensor thread failed a ping: " + (current.Exception?.GetBaseException().Message ?? "cancelled"));
        }
        var waited = time.GetUtcNow() - since;
        if (waited >= stallTimeout)
            return ProbeResult.Fail(Name, $"no answer to a ping for {waited.TotalSeconds:0} s (stall timeout {stallTimeout.TotalSeconds:0} s, {queueLength()} items queued): a work item is stuck");
        return ProbeResult.Pass(Name, $"busy: a ping has waited {waited.TotalSeconds:0} s behind {queueLength()} queued items (stall timeout {stallTimeout.TotalSeconds:0} s)");
    }
}
