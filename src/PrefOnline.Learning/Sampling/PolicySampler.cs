using System.Security.Cryptography;
using System.Text;
using PrefOnline.Kernels;
using PrefOnline.Learning.Models;
using PrefOnline.Learning.Tokenization;

namespace PrefOnline.Learning.Sampling;

/// <summary>
/// Samples completions from the policy: text (or token) prompts in, <see cref="SampledCompletion"/>s
/// out, K per prompt, through an <see cref="IPolicyDecoder"/> (KV cache; the backend chosen by
/// <see cref="PolicyDecoderFactory"/> when the sampler is created).
/// </summary>
/// <remarks>
/// <para>Prompts: text prompts start with the tokenizer's beginning-of-sequence token when it has one
/// (<see cref="PromptTokens.EncodePrompt"/>); otherwise an empty prompt is conditioned on the end-of-sequence token alone (GPT-2's
/// <c>&lt;|endoftext|&gt;</c> doubles as beginning of text). A prompt longer than
/// context − <see cref="SamplingOptions.MaxNewTokens"/> tokens keeps its last tokens (left
/// truncation: the most recent text matters most to a continuation; a leading beginning-of-sequence token stays first) and is flagged
/// <see cref="SampledCompletion.PromptTruncated"/>.</para>
/// <para>Stop strings: generation of a row stops at the first token whose bytes complete a stop
/// string (checked after every token). The completion is then cut so that
/// <see cref="SampledCompletion.Text"/> = decode(<see cref="SampledCompletion.Tokens"/>) ends before
/// the first occurrence: every token that holds any byte of the stop string is dropped with its
/// log-probs (a token straddling the boundary goes too, so the text may end slightly before the stop
/// string with BPE; never with the byte tokenizer).</para>
/// <para>Never sampled: the tokenizer's padding id, and model ids the tokenizer has no token for (a
/// vocabulary padded to a round size). Their probability still counts in the policy log-probs, as in
/// the learner's softmax; the sampler log-probs are renormalised without them.</para>
/// <para>Reproducibility: each completion has its own seed, derived from
/// <see cref="SamplingOptions.Seed"/>, its prompt index and its sample index, and its own random
/// stream. So the same seed, weights and options give the same completions whatever the batch size,
/// up to float rounding: a different batch (other prompts padded beside it) changes the order of float
/// sums in the layers, ~1e-7 relative, which can flip a sample only when a uniform draw lands within
/// that distance of a boundary.</para>
/// <para>Runs synchronously on the calling thread: call it from the tensor thread.</para>
/// </remarks>
public sealed class PolicySampler : IDisposable
{
    private readonly Func<long> policyVersion;
    private (TokenByteTable Table, int[] Suppressed)? tokenTable;

    /// <param name="decoder">The decoder over the policy's weights (owned: disposed with the sampler).</param>
    /// <param name="tokenizer">Turns prompts into ids and completions into text.</param>
    /// <param name="policyVersion">Read once per <see cref="Sample(IReadOnlyList{int[]}, SamplingOptions, CancellationToken)"/>
    /// call and stamped on every completion of it.</param>
    public PolicySampler(IPolicyDecoder decoder, ITokenizer tokenizer, Func<long> policyVersion)
    {
        ArgumentNullException.ThrowIfNull(decoder);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(policyVersion);
        if (tokenizer.VocabularySize > decoder.Config.VocabularySize)
            throw new ArgumentException(
                $"the tokenizer has {tokenizer.VocabularySize} ids but the model's vocabulary is {decoder.Config.VocabularySize}: they do not belong together");
        if (tokenizer.EndOfSequenceId < 0 || tokenizer.EndOfSequenceId >= decoder.Config.VocabularySize)
            throw new ArgumentException($"the tokenizer's end-of-sequence id {tokenizer.EndOfSequenceId} is outside the model's vocabulary");
        foreach (var id in tokenizer.StopIds)
            if (id < 0 || id >= decoder.Config.VocabularySize)
                throw new ArgumentException($"the tokenizer's stop id {id} is outside the model's vocabulary");
        Decoder = decoder;
        Tokenizer = tokenizer;
        this.policyVersion = policyVersion;
    }

    /// <summary>A sampler over <paramref name="model"/>'s own parameters (shared, not copied: every
    /// in-place training update is sampled from at once; always evaluated without dropout), with the
    /// first backend of <paramref name="decoders"/> (default: <see cref="PolicyDecoderFactory.Default"/>) that supports it.</summary>
    public static PolicySampler Create(PolicyModel model, ITokenizer tokenizer, Func<long>? policyVersion = null, PolicyDecoderFactory? decoders = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        var decoder = (decoders ?? PolicyDecoderFactory.Default).Create(model, tokenizer.StopIds.Count);
        try
        {
            return new PolicySampler(decoder, tokenizer, policyVersion ?? (() => 0));
        }
        catch
        {
            decoder.Dispose();
            throw;
        }
    }

    public IPolicyDecoder Decoder { get; }

    public ITokenizer Tokenizer { get; }

    /// <summary>Samples from text prompts, encoded by <see cref="PromptTokens.EncodePrompt"/> (the tokenizer's
    /// beginning-of-sequence token first when it declares one).</summary>
    public IReadOnlyList<SampledCompletion> Sample(IReadOnlyList<string> prompts, SamplingOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        var encoded = new int[prompts.Count][];
        for (var i = 0; i < prompts.Count; i++)
            encoded[i] = Tokenizer.EncodePrompt(prompts[i] ?? throw new ArgumentException($"prompt {i} is null"));
        return Sample(encoded, options, cancellationToken);
    }

    /// <summary>
    /// Samples <see cref="SamplingOptions.SamplesPerPrompt"/> completions per prompt. Results are in
    /// prompt order, then sample order (completion i·K + s is sample s of prompt i).
    /// </summary>
    public IReadOnlyList<SampledCompletion> Sample(IReadOnlyList<int[]> prompts, SamplingOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentNullException.ThrowIfNull(options);
        var shape = Decoder.Config;
        options.Validated(shape.ContextLength);
        if (prompts.Count == 0) return [];

        var version = policyVersion();
        var baseSeed = options.Seed ?? RandomSeed();
        var maxPrompt = shape.ContextLength - options.MaxNewTokens;
        var prepared = new int[prompts.Count][];
        var truncated = new bool[prompts.Count];
        for (var i = 0; i < prompts.Count; i++)
        {
            var p = prompts[i] ?? throw new ArgumentException($"prompt {i} is null");
            foreach (var id in p)
                if (id < 0 || id >= shape.VocabularySize)
                    throw new ArgumentException($"prompt {i} holds token id {id}, outside the model's vocabulary of {shape.VocabularySize}");
            if (p.Length == 0) p = [Tokenizer.EndOfSequenceId];
            truncated[i] = p.Length > maxPrompt;
            // A prompt that starts with the beginning-of-sequence token keeps it: the model never saw text without it.
            prepared[i] = !truncated[i] ? p
                : Tokenizer.BeginningOfSequenceId is { } bos && p[0] == bos ? [bos, .. p[^(maxPrompt - 1)..]]
                : p[^maxPrompt..];
        }

        var stops = options.StopStrings.Select(s => Encoding.UTF8.GetBytes(s)).ToArray();
        var (table, suppressed) = TokenTable();
        var k = options.SamplesPerPrompt;
        var results = new SampledCompletion[prompts.Count * k];
        foreach (var (firstPrompt, promptCount, firstSample, sampleCount) in Batches(prompts.Count, k, options.BatchSize))
        {
            var seeds = new ulong[promptCount * sampleCount];
            for (var p = 0; p < promptCount; p++)
            for (var s = 0; s < sampleCount; s++)
                seeds[p * sampleCount + s] = CompletionSeed(baseSeed, firstPrompt + p, firstSample + s);
            var request = new DecodeRequest
            {
                Prompts = new ArraySegment<int[]>(prepared, firstPrompt, promptCount),
                SamplesPerPrompt = sampleCount,
                Temperature = options.Temperature,
                TopK = options.TopK,
                TopP = options.TopP,
                MaxNewTokens = options.MaxNewTokens,
                StopIds = Tokenizer.StopIds,
                SuppressedTokens = suppressed,
                RowSeeds = seeds,
                StopSequences = stops,
                TokenBytes = stops.Length > 0 ? table : null,
            };
            var rows = Decoder.Generate(request, cancellationToken);
            for (var r = 0; r < rows.Count; r++)
            {
                var row = rows[r];
                var promptIndex = firstPrompt + row.PromptIndex;
                var sampleIndex = firstSample + row.SampleIndex;
                results[promptIndex * k + sampleIndex] = Complete(row, promptIndex, sampleIndex, prepared[promptIndex], truncated[promptIndex], stops, table,
                    version, seeds[r]);
            }
        }
        return results;
    }

    public void Dispose() => Decoder.Dispose();

    /// <summary>Splits P×K rows into native calls of at most batchSize rows: whole prompts (all K samples)
    /// when K fits, else one prompt per call with a slice of its samples.</summary>
    private static IEnumerable<(int FirstPrompt, int PromptCount, int FirstSample, int SampleCount)> Batches(int prompts, int k, int batchSize)
    {
        if (k <= batchSize)
        {
            var perCall = batchSize / k;
            for (var p = 0; p < prompts; p += perCall) yield return (p, Math.Min(perCall, prompts - p), 0, k);
            yield break;
        }
        for (var p = 0; p < prompts; p++)
        for (var s = 0; s < k; s += batchSize)
            yield return (p, 1, s, Math.Min(batchSize, k - s));
    }

    private SampledCompletion Complete(DecodedSequence row, int promptIndex, int sampleIndex, int[] prompt, bool truncated, byte[][] stops,
        TokenByteTable table, long version, ulong seed)
    {
        var tokens = row.Tokens;
        var kept = tokens.Length;
        var finish = row.Finish switch
        {
            DecodeFinish.EndOfSequence => FinishReason.EndOfSequence,
            DecodeFinish.StopSequence => FinishReason.StopString,
            _ => FinishReason.Length,
        };
        if (stops.Length > 0 && StopStart(tokens, stops, table) is { } stopStart)
        {
            // Keep the tokens that end at or before the stop string's first byte.
            long end = 0;
            kept = 0;
            while (kept < tokens.Length && end + table[tokens[kept]].Length <= stopStart)
            {
                end += table[tokens[kept]].Length;
                kept++;
            }
            finish = FinishReason.StopString;
        }
        var completion = kept == tokens.Length ? tokens : tokens[..kept];
        return new SampledCompletion
        {
            PromptIndex = promptIndex,
            SampleIndex = sampleIndex,
            PromptTokens = prompt,
            PromptTruncated = truncated,
            Tokens = completion,
            // The stop token is not text, special or not (a checkpoint may list an ordinary token among its eos ids).
            Text = Tokenizer.Decode(finish == FinishReason.EndOfSequence ? completion.AsSpan(0, completion.Length - 1) : completion),
            PolicyLogProbs = row.PolicyLogProbs[..kept],
            SamplerLogProbs = row.SamplerLogProbs[..kept],
            FinishReason = finish,
            PolicyVersion = version,
            Seed = seed,
        };
    }

    /// <summary>Byte offset of the earliest occurrence of any stop string in the tokens' bytes, or null.</summary>
    private static long? StopStart(int[] tokens, byte[][] stops, TokenByteTable table)
    {
        using var buffer = new MemoryStream();
        foreach (var t in tokens) buffer.Write(table[t]);
        var bytes = buffer.GetBuffer().AsSpan(0, (int)buffer.Length);
        long? first = null;
        foreach (var stop in stops)
        {
            var at = bytes.IndexOf(stop);
            if (at >= 0 && (first is null || at < first)) first = at;
        }
        return first;
    }

    /// <summary>
    /// The bytes of every model id, and the ids that must never be sampled: the padding token (never a
    /// prediction, per <see cref="ITokenizer"/>), ids beyond the tokenizer's vocabulary (a model
    /// vocabulary padded to a round size) and ids the tokenizer has no token for. Built once.
    /// </summary>
    private (TokenByteTable Table, int[] Suppressed) TokenTable()
    {
        if (tokenTable is { } built) return built;
        var suppressed = new List<int>();
        var table = TokenByteTable.Build(Decoder.Config.VocabularySize, id =>
        {
            if (id >= Tokenizer.VocabularySize)
            {
                suppressed.Add(id);
                return [];
            }
            try
            {
                return Tokenizer.DecodeBytes([id]);
            }
            catch (ArgumentOutOfRangeException)
            {
                suppressed.Add(id); // a hole in the vocabulary
                return [];
            }
        });
        if (!Tokenizer.StopIds.Contains(Tokenizer.PaddingId) && Tokenizer.PaddingId >= 0 && Tokenizer.PaddingId < Decoder.Config.VocabularySize)
            suppressed.Add(Tokenizer.PaddingId);
        foreach (var stop in Tokenizer.StopIds)
            if (suppressed.Contains(stop))
                throw new ArgumentException($"the tokenizer cannot decode its own stop id {stop}");
        tokenTable = (table, suppressed.Distinct().Order().ToArray());
        return tokenTable.Value;
    }

    /// <summary>The seed of sample <paramref name="sampleIndex"/> of prompt <paramref name="promptIndex"/> in a call seeded with <paramref name="seed"/>.</summary>
    public static ulong CompletionSeed(ulong seed, int promptIndex, int sampleIndex) =>
        SplitMix64(SplitMix64(SplitMix64(seed) ^ (ulong)promptIndex) ^ (ulong)sampleIndex);

    // SplitMix64's finaliser (Steele et al. 2014): neighbouring inputs give unrelated outputs.
    private static ulong SplitMix64(ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        return x ^ (x >> 31);
    }

    private static ulong RandomSeed()
    {
        Span<byte> bytes = stackalloc byte[8];
        RandomNumberGenerator.Fill(bytes);
        return BitConverter.ToUInt64(bytes);
    }
}
