using PrefOnline.Learning.Randomness;

namespace PrefOnline.Learning.Sampling;

/// <summary>The settings of <see cref="SamplingRule"/> for one decode call.</summary>
/// <param name="Temperature">Logits are divided by it; 0 = greedy.</param>
/// <param name="TopK">Keep the k most likely tokens; 0 = off, 1 = greedy.</param>
/// <param name="TopP">Keep the smallest most-likely set whose probability reaches it; 1 = off.</param>
public readonly record struct SamplingSettings(double Temperature, int TopK, double TopP)
{
    public static SamplingSettings Of(DecodeRequest request) => new(request.Temperature, request.TopK, request.TopP);

    public bool IsGreedy => Temperature == 0 || TopK == 1;
}

/// <summary>One sampled token and its two log-probabilities (see <see cref="DecodedSequence"/>).</summary>
public readonly record struct SampledToken(int Token, float PolicyLogProb, float SamplerLogProb);

/// <summary>
/// The sampling rule every decoder backend applies to one row's next-token logits, in Hugging Face's
/// order: temperature, then top-k, then top-p (nucleus: the smallest set of most likely tokens whose
/// probability reaches top_p, renormalised). One uniform draw per token from the row's own
/// <see cref="Xoshiro256StarStar"/>, so a row's tokens depend only on its seed and its logits.
/// </summary>
/// <remarks>
/// Log-probabilities: the policy's is log softmax(logits)[token] — untempered, untruncated, suppressed
/// ids included, as a learner's forward pass computes it; the sampler's is log q(token) under the
/// distribution actually sampled from (0 for greedy, where q is a point mass). Ties between equal
/// logits go to the lower id. Works in double precision over float logits; allocation-free given a
/// <see cref="Scratch"/> per thread.
/// </remarks>
public static class SamplingRule
{
    /// <summary>Reusable buffers for one vocabulary size (one per thread that samples).</summary>
    public sealed class Scratch(int vocabulary)
    {
        internal double[] Weights { get; } = new double[vocabulary];
        internal int[] Indices { get; } = new int[vocabulary];
        internal bool[] Suppressed { get; } = new bool[vocabulary];

        /// <summary>Marks the ids that are never sampled (and clears earlier marks).</summary>
        public void Suppress(IEnumerable<int> ids)
        {
            Array.Clear(Suppressed);
            foreach (var id in ids) Suppressed[id] = true;
        }
    }

    /// <summary>
    /// The <paramref name="count"/> most likely unsuppressed ids into order[0, n), most likely first
    /// (ties: lower id first); returns n (fewer when fewer ids are unsuppressed). O(V log count): a heap
    /// of the best so far whose root is the worst of them.
    /// </summary>
    private static int MostLikely(ReadOnlySpan<float> logits, bool[] suppressed, int count, int[] order)
    {
        var n = 0;
        for (var id = 0; id < logits.Length; id++)
        {
            if (suppressed[id]) continue;
            if (n < count)
            {
                order[n] = id;
                SiftUp(logits, order, n++);
            }
            else if (Better(logits, id, order[0]))
            {
                order[0] = id;
                SiftDown(logits, order, n);
            }
        }
        // Heap sort: move the worst to the end, one at a time, leaving the best first.
        for (var end = n - 1; end > 0; end--)
        {
            (order[0], order[end]) = (order[end], order[0]);
            SiftDown(logits, order, end);
        }
        return n;
    }

    private static bool Better(ReadOnlySpan<float> logits, int a, int b) => logits[a] > logits[b] || (logits[a] == logits[b] && a < b);

    // Min-heap by "better": the root is the worst id kept.
    private static void SiftUp(ReadOnlySpan<float> logits, int[] heap, int i)
    {
        while (i > 0)
        {
            var parent = (i - 1) / 2;
            if (!Better(logits, heap[parent], heap[i])) break;
            (heap[parent], heap[i]) = (heap[i], heap[parent]);
            i = parent;
        }
    }

    private static void SiftDown(ReadOnlySpan<float> logits, int[] heap, int n)
    {
        var i = 0;
        while (true)
        {
            var (left, right, worst) = (2 * i + 1, 2 * i + 2, i);
            if (left < n && Better(logits, heap[worst], heap[left])) worst = left;
            if (right < n && Better(logits, heap[worst], heap[right])) worst = right;
            if (worst == i) return;
            (heap[worst], heap[i]) = (heap[i], heap[worst]);
            i = worst;
        }
    }

    /// <summary>Samples one token from <paramref name="logits"/> (one row, V entries), or returns null
    /// when they hold NaN or ±∞ (diverged weights).</summary>
    public static SampledToken? Sample(ReadOnlySpan<float> logits, SamplingSettings settings, Xoshiro256StarStar random, Scratch scratch)
    {
        var v = logits.Length;
        var suppressed = scratch.Suppressed;
        // The policy's log-partition over every id (suppressed ones count: the learner's softmax has them).
        double policyMax = double.NegativeInfinity;
        foreach (var x in logits)
        {
            if (!float.IsFinite(x)) return null;
            if (x > policyMax) policyMax = x;
        }
        double policySum = 0;
        foreach (var x in logits) policySum += Math.Exp(x - policyMax);
        var logPartition = policyMax + Math.Log(policySum);

        // The candidates' maximum (suppressed ids never win) and, for greedy, the argmax.
        var best = -1;
        for (var i = 0; i < v; i++)
            if (!suppressed[i] && (best < 0 || logits[i] > logits[best])) best = i;
        if (best < 0) return null;
        if (settings.IsGreedy) return new SampledToken(best, (float)(logits[best] - logPartition), 0f);

        // w[i] = e^((x_i − x_max)/T) for candidates, 0 for suppressed ids.
        var w = scratch.Weights;
        var inverseTemperature = 1.0 / settings.Temperature;
        double total = 0;
        for (var i = 0; i < v; i++)
        {
            w[i] = suppressed[i] ? 0 : Math.Exp((logits[i] - (double)logits[best]) * inverseTemperature);
            total += w[i];
        }
        if (!(total > 0) || !double.IsFinite(total)) return null;

        var order = scratch.Indices;
        var candidates = v;  // order[0, candidates) when listed, else every id in id order
        var listed = false;
        if (settings.TopK > 0 && settings.TopK < v)
        {
            candidates = MostLikely(logits, suppressed, settings.TopK, order);
            listed = true;
            total = 0;
            for (var i = 0; i < candidates; i++) total += w[order[i]];
        }
        var kept = total;
        if (settings.TopP < 1)
        {
            // Sort only as much of the head as the nucleus needs: it is usually far smaller than V.
            var target = settings.TopP * total;
            var limit = candidates;
            var sorted = listed ? limit : Math.Min(limit, 64);
            var ready = listed;  // order[0, sorted) already holds the most likely ids, best first
            while (true)
            {
                var requested = sorted;
                if (!ready) sorted = MostLikely(logits, suppressed, requested, order);
                var exhausted = sorted < requested || sorted >= limit;
                double cumulative = 0;
                var i = 0;
                for (; i < sorted; i++)
                {
                    cumulative += w[order[i]];
                    if (cumulative >= target) break;
                }
                if (i < sorted)
                {
                    candidates = i + 1;
                    kept = cumulative;
                    break;
                }
                if (exhausted)
                {
                    candidates = sorted;
                    kept = cumulative;  // rounding left the target a hair out of reach: keep everything
                    break;
                }
                sorted = Math.Min(limit, sorted * 4);
                ready = false;
            }
            listed = true;
        }

        var u = random.NextDouble() * kept;  // uniform on [0, kept)
        double sum = 0;
        var token = -1;
        for (var i = 0; i < candidates; i++)
        {
            var id = listed ? order[i] : i;
            sum += w[id];
            if (u < sum)
            {
                token = id;
                break;
            }
        }
        if (token < 0)
        {
            // u landed in the rounding gap at the very end: the last candidate with mass.
            for (var i = candidates - 1; i >= 0 && token < 0; i--)
            {
                var id = listed ? order[i] : i;
                if (w[id] > 0) token = id;
            }
        }
        return new SampledToken(token, (float)(logits[token] - logPartition), (float)(Math.Log(w[token]) - Math.Log(kept)));
    }
}
