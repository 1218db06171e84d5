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

    /// <summary>Merges <paramref name="ids"/> (the byte tokens of one pre-token) in place and returns how
    /// many ids the result has (the first that many entries of <paramref name="ids"/>).</summary>
    public int Apply(Span<int> ids)
    {
        var n = ids.Length;
        if (n < 2) return n;

        // Most pieces of unusual text (and every piece of random bytes) have no ranked pair at all.
        var anyRanked = false;
        for (var i = 0; i + 1 < n && !anyRanked; i++) anyRanked = merges.ContainsKey(Key(ids[i], ids[i + 1]));
        if (!anyRanked) return n;

        var scratch = Scratch.For(n);
        var next = scratch.Next;
        var previous = scratch.Previous;
        var alive = scratch.Alive;
        for (var i = 0; i < n; i++)
        {
            next[i] = i + 1 < n ? i + 1 : -1;
            previous[i] = i - 1;
            alive[i] = true;
        }

        // Priority (rank << 32 | position of the pair's left symbol): lowest rank first, then leftmost.
        var queue = scratch.Queue;
        for (var i = 0; i + 1 < n; i++) Enqueue(queue, ids[i], ids[i + 1], i);

        var batch = scratch.Batch;
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
                if (right < 0 || !TryGet(ids[left], ids[right], out var merge) || merge.Rank != rank) continue;

                ids[left] = merge.Result;
                alive[right] = false;
                remaining--;
                next[left] = next[right];
                if (next[right] >= 0) previous[next[right]] = left;

                // The two pairs the merge created; a pair of this same rank cannot be among them
                // (the merged symbol differs from both parts), so the batch stays as encoder.py's pass.
                if (previous[left] >= 0) Enqueue(queue, ids[previous[left]], ids[left], previous[left]);
                if (next[left] >= 0) Enqueue(queue, ids[left], ids[next[left]], left);
            }
        }
        queue.Clear();

        // Compact the surviving symbols to the front, in order.
        var at = 0;
        for (var i = 0; i >= 0; i = next[i]) ids[at++] = ids[i];
        return remaining;
    }

    private void Enqueue(PriorityQueue<int, long> queue, int left, int right, int position)
    {
        if (TryGet(left, right, out var merge)) queue.Enqueue(position, ((long)merge.Rank << 32) | (uint)position);
    }

    /// <summary>Per-thread working arrays, so merging a piece allocates nothing once they have grown.</summary>
    private sealed class Scratch
    {
        [ThreadStatic]
        private static Scratch? current;

        public int[] Next = [];
        public int[] Previous = [];
        public bool[] Alive = [];
        public readonly PriorityQueue<int, long> Queue = new();
        public readonly List<int> Batch = [];

        public static Scratch For(int length)
        {
            var scratch = current ??= new Scratch();
            if (scratch.Next.Length < length)
            {
                var size = Math.Max(length, 64);
                scratch.Next = new int[size];
                scratch.Previous = new int[size];
                scratch.Alive = new bool[size];
            }
            return scratch;
        }
    }
}
