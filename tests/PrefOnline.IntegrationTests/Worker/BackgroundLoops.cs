namespace PrefOnline.IntegrationTests.Worker;

/// <summary>
/// The loops a test runs beside the worker (users asking prompts, users labelling rollouts, commit samplers) and the
/// token that stops them. Declared with <c>await using</c> after the cluster, the worker and the topic tails, it is
/// disposed before them: a test that fails half-way stops and awaits its loops first, instead of leaving them running
/// against a disposed cluster into the next test (clean-clone CI: a test host crash followed such a failure).
/// </summary>
public sealed class BackgroundLoops : IAsyncDisposable
{
    private readonly CancellationTokenSource stop = new();
    private readonly List<Task> loops = [];

    public CancellationToken Token => stop.Token;

    /// <summary>Starts <paramref name="loop"/> with this token; the caller may await the returned task itself.</summary>
    public Task Start(Func<CancellationToken, Task> loop)
    {
        var task = loop(stop.Token);
        lock (loops) loops.Add(task);
        return task;
    }

    public Task CancelAsync() => stop.CancelAsync();

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync();
        Task[] running;
        lock (loops) running = [.. loops];
        try
        {
            await Task.WhenAll(running);
        }
        catch (Exception) when (running.Any(t => t.IsFaulted || t.IsCanceled))
        {
            // A loop that failed or was cancelled mid-step has already failed its test where it was awaited; on the
            // failure path nobody awaits it, and the test's own exception is the one to report.
        }
        stop.Dispose();
    }
}
