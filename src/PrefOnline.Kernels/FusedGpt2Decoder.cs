using PrefOnline.Kernels.Interop;

namespace PrefOnline.Kernels;

/// <summary>
/// The fused native GPT-2 decoder (native/gpt2_decoder.cpp): prefill and the whole decode loop, with
/// a KV cache, temperature / top-k / top-p sampling, per-token log-probs, end-of-sequence and stop
/// sequences, in one native call; also a no-grad forward pass (<see cref="Logits"/>).
/// </summary>
/// <remarks>
/// <para>Weights: read in place from <see cref="IGpt2WeightSource"/> at every call (the policy's
/// TorchSharp parameters' storage data pointers, see PrefOnline.Learning's FusedPolicyDecoder), so
/// in-place optimizer updates are used by the next call and nothing is copied or can go stale. The decoder itself holds
/// only its shape and reusable scratch (KV cache, activations: they grow to the largest batch seen).</para>
/// <para>Threads: the loops are split over the kernels' own pool (<see cref="FusedKernels.Threads"/>),
/// the calling thread included; results are identical whatever the thread count. One call at a time
/// per decoder (a concurrent call fails loudly); use one decoder per thread.</para>
/// <para>Scope: GPT-2 architecture only (learned positions, pre-LayerNorm, GELU-tanh MLP, LM head tied
/// to <c>wte</c>), float32 CPU weights, inference only.</para>
/// </remarks>
public sealed class FusedGpt2Decoder : IDisposable
{
    private readonly DecoderHandle handle;
    private readonly IGpt2WeightSource weights;
    private readonly IReadOnlyList<string> names;

    public FusedGpt2Decoder(FusedGpt2Shape shape, IGpt2WeightSource weights)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(weights);
        var problems = shape.Problems();
        if (problems.Count > 0) throw new ArgumentException($"invalid GPT-2 shape: {string.Join("; ", problems)}", nameof(shape));
        Shape = shape;
        this.weights = weights;
        names = shape.WeightNames();
        var native = new PkGpt2Shape
        {
            Layers = shape.Layers, Heads = shape.Heads, Width = shape.Width, Vocab = shape.VocabularySize, Context = shape.ContextLength,
            Eps = shape.LayerNormEpsilon,
        };
        IntPtr created;
        unsafe
        {
            created = NativeMethods.pk_gpt2_new(&native);
        }
        if (created == IntPtr.Zero) throw KernelException.FromLastError("gpt2 decoder");
        handle = new DecoderHandle(created);
        // Fail here, not at the first call, when the source lacks a weight or has a wrong shape.
        CheckWeights();
    }

    public FusedGpt2Shape Shape { get; }

    /// <summary>
    /// Logits at every position of each sequence (a plain forward pass): element [t·V + v] of
    /// result[i] is the logit of token v after sequences[i][0..t].
    /// </summary>
    public float[][] Logits(IReadOnlyList<int[]> sequences)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        var (tokens, lengths) = Pack(sequences);
        var vocabulary = Shape.VocabularySize;
        var output = new float[checked(tokens.Length * vocabulary)];
        var table = WeightTable();
        int status;
        unsafe
        {
            fixed (PkTensor* w = table)
            fixed (int* t = tokens)
            fixed (int* l = lengths)
            fixed (float* o = output)
            {
                status = NativeMethods.pk_gpt2_logits(handle, w, table.Length, t, l, lengths.Length, o);
            }
        }
        GC.KeepAlive(weights);
        if (status != 0) throw KernelException.FromLastError("gpt2 logits");
        var result = new float[sequences.Count][];
        var offset = 0;
        for (var i = 0; i < result.Length; i++)
        {
            result[i] = output.AsSpan(offset * vocabulary, lengths[i] * vocabulary).ToArray();
            offset += lengths[i];
        }
        return result;
    }

    /// <summary>Samples <see cref="FusedDecodeRequest.SamplesPerPrompt"/> continuations of every prompt;
    /// results in row order (prompt-major).</summary>
    /// <exception cref="OperationCanceledException">When <paramref name="cancellationToken"/> fires; the
    /// native loop checks it between decode steps.</exception>
    public IReadOnlyList<FusedDecodedRow> Generate(FusedDecodeRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        cancellationToken.ThrowIfCancellationRequested();
        if (request.SamplesPerPrompt < 1)
            throw new ArgumentOutOfRangeException(nameof(request), request.SamplesPerPrompt, "samples per prompt must be at least 1");
        if (request.MaxNewTokens < 1)
            throw new ArgumentOutOfRangeException(nameof(request), request.MaxNewTokens, "max new tokens must be at least 1");
        var (tokens, lengths) = Pack(request.Prompts);
        var rows = checked(lengths.Length * request.SamplesPerPrompt);
        var maxNew = request.MaxNewTokens;
        if (request.RowSeeds is null || request.RowSeeds.Count != rows)
            throw new ArgumentException(
                $"{request.RowSeeds?.Count ?? 0} row seeds given for {rows} rows ({lengths.Length} prompts × {request.SamplesPerPrompt} samples)",
                nameof(request));
        var seeds = request.RowSeeds.ToArray();

        var stops = request.StopSequences ?? [];
        if (stops.Count > 0 && request.TokenBytes is null) throw new ArgumentException("stop sequences need a TokenByteTable", nameof(request));
        var stopOffsets = new int[stops.Count + 1];
        for (var i = 0; i < stops.Count; i++)
        {
            if (stops[i] is null || stops[i].Length == 0) throw new ArgumentException($"stop sequence {i} is empty", nameof(request));
            stopOffsets[i + 1] = checked(stopOffsets[i] + stops[i].Length);
        }
        var stopBytes = new byte[stopOffsets[^1]];
        for (var i = 0; i < stops.Count; i++) stops[i].CopyTo(stopBytes, stopOffsets[i]);
        var byteTable = stops.Count > 0 ? request.TokenBytes : null;
        var suppressed = (request.SuppressedTokens ?? []).ToArray();

        var outTokens = new int[checked(rows * maxNew)];
        var outPolicy = new float[outTokens.Length];
        var outSampler = new float[outTokens.Length];
        var outLengths = new int[rows];
        var outFinish = new int[rows];
        var table = WeightTable();
        // The native loop polls this flag between steps; a pinned array so it never moves under it.
        var cancel = GC.AllocateArray<int>(1, pinned: true);
        int status;
        using (cancellationToken.Register(static state => Volatile.Write(ref ((int[])state!)[0], 1), cancel))
        {
            unsafe
            {
                fixed (PkTensor* w = table)
                fixed (int* t = tokens)
                fixed (int* l = lengths)
                fixed (ulong* s = seeds)
                fixed (int* sup = suppressed)
                fixed (byte* tb = byteTable?.Bytes)
                fixed (long* to = byteTable?.Offsets)
                fixed (byte* sb = stopBytes)
                fixed (int* so = stopOffsets)
                fixed (int* c = cancel)
                fixed (int* ot = outTokens)
                fixed (float* op = outPolicy)
                fixed (float* os = outSampler)
                fixed (int* ol = outLengths)
                fixed (int* of = outFinish)
                {
                    var native = new PkDecodeRequest
                    {
                        Tokens = t, Lengths = l, Seeds = s, Suppressed = sup, TokenBytes = tb, TokenOffsets = to, StopBytes = sb, StopOffsets = so,
                        Cancel = c, Temperature = request.Temperature, TopP = request.TopP, TokenCount = byteTable?.Count ?? 0,
                        PromptCount = lengths.Length, SamplesPerPrompt = request.SamplesPerPrompt, MaxNewTokens = maxNew, TopK = request.TopK,
                        EosId = request.EndOfSequenceId, SuppressedCount = suppressed.Length, StopCount = stops.Count,
                    };
                    var output = new PkDecodeOutput { Tokens = ot, PolicyLogProbs = op, SamplerLogProbs = os, Lengths = ol, Finish = of };
                    status = NativeMethods.pk_gpt2_generate(handle, w, table.Length, &native, &output);
                }
            }
        }
        GC.KeepAlive(weights);
        if (status == 2) throw new OperationCanceledException("generation was cancelled", cancellationToken);
        if (status != 0) throw KernelException.FromLastError("gpt2 generate");

        var result = new FusedDecodedRow[rows];
        for (var r = 0; r < rows; r++)
        {
            var n = outLengths[r];
            result[r] = new FusedDecodedRow(
                r / request.SamplesPerPrompt,
                r % request.SamplesPerPrompt,
                outTokens.AsSpan(r * maxNew, n).ToArray(),
                outPolicy.AsSpan(r * maxNew, n).ToArray(),
                outSampler.AsSpan(r * maxNew, n).ToArray(),
                (FusedDecodeFinish)outFinish[r]);
        }
        return result;
    }

    /// <summary>Asks the source for every weight and checks count, shapes and pointers without
    /// computing anything; throws <see cref="KernelException"/> naming the first bad weight.</summary>
    public void CheckWeights()
    {
        var table = WeightTable();
        int status;
        unsafe
        {
            fixed (PkTensor* w = table) status = NativeMethods.pk_gpt2_check_weights(handle, w, table.Length);
        }
        GC.KeepAlive(weights);
        if (status != 0) throw KernelException.FromLastError("gpt2 weights");
    }

    public void Dispose() => handle.Dispose();

    /// <summary>This call's weight table, in native order (shapes are checked natively, by name).</summary>
    private unsafe PkTensor[] WeightTable()
    {
        ObjectDisposedException.ThrowIf(handle.IsClosed, this);
        var table = new PkTensor[names.Count];
        for (var i = 0; i < table.Length; i++)
        {
            var weight = weights.Weight(names[i]);
            var shape = weight.Shape ?? throw new ArgumentException($"the weight source gave {names[i]} without a shape");
            if (shape.Length > 4) throw new ArgumentException($"{names[i]} has {shape.Length} dimensions; GPT-2 weights have 1 or 2");
            table[i].Data = (float*)weight.Data;
            table[i].Ndim = shape.Length;
            for (var d = 0; d < shape.Length; d++) table[i].Shape[d] = shape[d];
        }
        return table;
    }

    private static (int[] Tokens, int[] Lengths) Pack(IReadOnlyList<int[]> sequences)
    {
        if (sequences.Count == 0) throw new ArgumentException("at least one sequence is needed");
        var lengths = new int[sequences.Count];
        long total = 0;
        for (var i = 0; i < sequences.Count; i++)
        {
            if (sequences[i] is null) throw new ArgumentException($"sequence {i} is null");
            lengths[i] = sequences[i].Length;
            total += lengths[i];
        }
        var tokens = new int[checked((int)total)];
        var offset = 0;
        foreach (var s in sequences)
        {
            s.CopyTo(tokens, offset);
            offset += s.Length;
        }
        return (tokens, lengths);
    }
}
