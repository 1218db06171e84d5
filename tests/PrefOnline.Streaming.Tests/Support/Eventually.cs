namespace PrefOnline.Streaming.Tests.Support;

/// <summary>Polls a condition with a deadline (never a fixed sleep): fails with the description when time runs out.</summary>
public static class Eventually
{
    public static async Task TrueAsync(Func<bool> condition, TimeSpan timeout, string description)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"timed out after {timeout} waiting for: {description}");
            await Task.Delay(20);
        }
    }

    /// <summary>Reads exactly <paramref name="count"/> items from a channel or fails after <paramref name="timeout"/>.</summary>
    public static async Task<List<T>> ReadAsync<T>(System.Threading.Channels.ChannelReader<T> reader, int count, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var items = new List<T>(count);
        try
        {
            while (items.Count < count) items.Add(await reader.ReadAsync(cts.Token));
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"timed out after {timeout}: read {items.Count} of {count} items");
        }
        return items;
    }
}
