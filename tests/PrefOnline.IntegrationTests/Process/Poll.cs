namespace PrefOnline.IntegrationTests.Process;

/// <summary>Synchronisation by polling a condition against a deadline (never a fixed sleep).</summary>
public static class Poll
{
    public static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(200);

    /// <summary>Polls until <paramref name="condition"/> holds; on timeout fails with the description and the diagnostics.</summary>
    public static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string description, Func<string>? diagnostics = null)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"timed out after {timeout.TotalSeconds:0} s waiting for: {description}" + (diagnostics is null ? "" : "\n" + diagnostics()));
            await Task.Delay(Interval);
        }
    }

    public static Task UntilAsync(Func<bool> condition, TimeSpan timeout, string description, Func<string>? diagnostics = null) =>
        UntilAsync(() => Task.FromResult(condition()), timeout, description, diagnostics);

    /// <summary>Polls <paramref name="probe"/> until it returns a value.</summary>
    public static async Task<T> ForAsync<T>(Func<Task<T?>> probe, TimeSpan timeout, string description, Func<string>? diagnostics = null) where T : class
    {
        T? value = null;
        await UntilAsync(async () => (value = await probe()) is not null, timeout, description, diagnostics);
        return value!;
    }
}
