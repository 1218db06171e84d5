namespace PrefOnline.Learning.Sampling;

/// <summary>
/// The per-row bookkeeping of one decode call, shared by every <see cref="IPolicyDecoder"/> backend:
/// each row's tokens and log-probs so far, and whether it has stopped — at any of the stop ids
/// (<see cref="DecodeRequest.StopIds"/>, kept as its last token), at the first token whose bytes complete a stop sequence, or at
/// <see cref="DecodeRequest.MaxNewTokens"/>.
/// </summary>
public sealed class DecodeRows
{
    private readonly DecodeRequest request;
    private readonly List<int>[] tokens;
    private readonly List<float>[] policyLogProbs;
    private readonly List<float>[] samplerLogProbs;
    private readonly DecodeFinish[] finish;
    private readonly bool[] done;
    private readonly List<byte>[]? text;
    private readonly byte[][] stops;
    private readonly int longestStop;
    private readonly int[] stopIds;

    public DecodeRows(DecodeRequest request)
    {
        this.request = request;
        var rows = request.Rows;
        tokens = NewLists<int>(rows);
        policyLogProbs = NewLists<float>(rows);
        samplerLogProbs = NewLists<float>(rows);
        finish = new DecodeFinish[rows];
        done = new bool[rows];
        stops = (request.StopSequences ?? []).ToArray();
        stopIds = (request.StopIds ?? []).ToArray();
        longestStop = stops.Length == 0 ? 0 : stops.Max(s => s.Length);
        text = stops.Length > 0 ? NewLists<byte>(rows) : null;
    }

    public int Count => done.Length;

    public bool IsDone(int row) => done[row];

    /// <summary>The last token of a row (the next step's input); a row has one after its first <see cref="Accept"/>.</summary>
    public int LastToken(int row) => tokens[row][^1];

    /// <summary>Records a sampled token for <paramref name="row"/>; returns whether the row goes on.</summary>
    public bool Accept(int row, SampledToken sampled)
    {
        if (done[row]) throw new InvalidOperationException($"row {row} has already stopped");
        tokens[row].Add(sampled.Token);
        policyLogProbs[row].Add(sampled.PolicyLogProb);
        samplerLogProbs[row].Add(sampled.SamplerLogProb);
        if (stopIds.Contains(sampled.Token)) return Stop(row, DecodeFinish.EndOfSequence);
        if (text is not null && request.TokenBytes is { } table && CompletesStop(text[row], table[sampled.Token])) return Stop(row, DecodeFinish.StopSequence);
        if (tokens[row].Count >= request.MaxNewTokens) return Stop(row, DecodeFinish.Length);
        return true;
    }

    /// <summary>The rows in row order (prompt-major): prompt = row / K, sample = row % K.</summary>
    public IReadOnlyList<DecodedSequence> Results()
    {
        var k = request.SamplesPerPrompt;
        var result = new DecodedSequence[Count];
        for (var r = 0; r < Count; r++)
            result[r] = new DecodedSequence(r / k, r % k, tokens[r].ToArray(), policyLogProbs[r].ToArray(), samplerLogProbs[r].ToArray(), finish[r]);
        return result;
    }

    private bool Stop(int row, DecodeFinish reason)
    {
        finish[row] = reason;
        done[row] = true;
        return false;
    }

    /// <summary>Appends a token's bytes; true when a stop sequence now ends inside the new bytes.</summary>
    private bool CompletesStop(List<byte> bytes, ReadOnlySpan<byte> added)
    {
        if (added.IsEmpty) return false;
        var before = bytes.Count;
        foreach (var b in added) bytes.Add(b);
        // Only occurrences that end in the new bytes are new.
        var from = Math.Max(0, before - longestStop + 1);
        var window = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes)[from..];
        foreach (var stop in stops)
            if (window.IndexOf(stop) >= 0) return true;
        return false;
    }

    private static List<T>[] NewLists<T>(int count) => Enumerable.Range(0, count).Select(_ => new List<T>()).ToArray();
}
