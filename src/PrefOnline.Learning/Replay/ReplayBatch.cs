namespace PrefOnline.Learning.Replay;

/// <summary>One mixed batch: fresh entries first (newest first), then replayed ones (random order).</summary>
public sealed record ReplayBatch<T>(IReadOnlyList<ReplayEntry<T>> Entries, int Fresh, int Replayed)
{
    public int Count => Entries.Count;

    public IEnumerable<T> Items => Entries.Select(e => e.Item);
}
