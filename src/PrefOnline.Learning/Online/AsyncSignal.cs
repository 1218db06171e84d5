namespace PrefOnline.Learning.Online;

/// <summary>A level-free wake-up: <see cref="Pulse"/> completes every current <see cref="WaitAsync"/>. Waiters re-check their condition after waking.</summary>
public sealed class AsyncSignal
{
    private TaskCompletionSource current = New();

    public void Pulse() => Interlocked.Exchange(ref current, New()).TrySetResult();

    /// <summary>Completes at the next <see cref="Pulse"/>, after <paramref name="timeout"/>, or throws when cancelled.</summary>
    public async Task WaitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var task = Volatile.Read(ref current).Task;
        using var timeoutSource = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeoutSource.CancelAfter(timeout);
        try
        {
            await task.WaitAsync(timeoutSource.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // timed out: the caller re-checks its condition
        }
    }

    private static TaskCompletionSource New() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
