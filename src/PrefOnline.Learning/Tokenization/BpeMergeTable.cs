namespace PrefOnline.Learning.Tokenization;

/// <summary>
/// Merge ranks over token ids and the merge loop of OpenAI's encoder.py <c>bpe()</c>: repeatedly take
/// the adjacent pair with the lowest rank and merge every occurrence of it, left to right without
/// overlap, until no adjacent pair has a rank.
/// </summary>
/// <remarks>
/// encoder.py rescans the word for each merge (quadratic); this keeps the pairs in a priority queue
/// keyed by (rank, position), which is O(n log n) on a long pre-token (a 1 MB run of spaces) and gives
/// the same result for any merge list, consistent or not: all queued occurrences of the lowest rank
/// are taken as one batch in position order before any pair that batch creates is considered, exactly
/// like encoder.py's one pass per chosen pair. Stale queue entries are skipped by re-checking the pair.
/// </remarks>
internal sealed class BpeMergeTable
{
    private readonly Dictionary<long, Merge> merges;

    public BpeMergeTable(Dictionary<long, Merge> merges) => this.merges = merges;

    public readonly record struct Merge(int Rank, int Result);

    public static long Key(int left, int right) => ((long)left << 32) | (uint)right;

    public bool TryGet(int left, int right, out Merge merge) => merges.TryGetValue(Key(left, right), out merge);

    /// <summary>Merges <paramref name="ids"/> (the byte tokens of one pre-token) and returns the final ids.</summary>
    public int[] Apply(ReadOnlySpan<int> ids)
    {
        var n = ids.Length;
        if (n < 2) return ids.ToArray();

        var symbol = ids.ToArray();
        var next = new int[n];
        var previous = new int[n];
        var alive = new bool[n];
        for (var i = 0; i < n; i++)
        {
            next[i] = i + 1 < n ? i + 1 : -1;
            previous[i] = i - 1;
            alive[i] = true;
        }

        // Priority (rank << 32 | position of the pair's left symbol): lowest rank first, then leftmost.
        var queue = new PriorityQueue<int, long>();
        for (var i = 0; i + 1 < n; i++) Enqueue(queue, symbol[i], symbol[i + 1], i);

        var batch = new List<int>();
        var remaining = n;
        while (remaining > 1 && queue.TryDequeue(out var position, out var priority))
        {
            var rank = (int)(priority >> 32);
            batch.Clear();
            batch.Add(position);
            while (queue.TryPeek(out var other, out var otherPriority) && (int)(otherPriority >> 32) == rank)
            {
                queue.Dequeue();
                batch.Add(other);
            }

            foreach (var left in batch)
            {
                if (!alive[left]) continue;
                var right = next[left];
                if (right < 0 || !TryGet(symbol[left], symbol[right], out var merge) || merge.Rank != rank) continue;

                symbol[left] = merge.Result;
                alive[right] = false;
                remaining--;
                next[left] = next[right];
                if (next[right] >= 0) previous[next[right]] = left;

                // The two pairs the merge created; a pair of this same rank cannot be among them
                // (the merged symbol differs from both parts), so the batch stays as encoder.py's pass.
                if (previous[left] >= 0) Enqueue(queue, symbol[previous[left]], symbol[left], previous[left]);
                if (next[left] >= 0) Enqueue(queue, symbol[left], symbol[next[left]], left);
            }
        }

        var result = new int[remaining];
        var at = 0;
        for (var i = 0; i >= 0; i = next[i]) result[at++] = symbol[i];
        return result;
    }

    private void Enqueue(PriorityQueue<int, long> queue, int left, int right, int position)
    {
        if (TryGet(left, right, out var merge)) queue.Enqueue(position, ((long)merge.Rank << 32) | (uint)position);
    }
}
