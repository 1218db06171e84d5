using PrefOnline.Torch.Interop;

namespace PrefOnline.Torch.Decoding;

/// <summary>
/// A fused native GPT-2 decoder (native/gpt2_decoder.cpp) for fast sampling and no-grad logits: the
/// prefill and the whole decode loop, with a KV cache, temperature / top-k / top-p sampling, per-token
/// log-probs, end-of-sequence and stop sequences, run in one native call.
/// </summary>
/// <remarks>
/// <para>Weights: it is built over the model's own parameter tensors, in the Hugging Face GPT-2 layout
/// (<c>wte.weight</c>, <c>wpe.weight</c>, <c>h.{i}.ln_1.*</c>, <c>h.{i}.attn.c_attn.*</c> as Conv1D
/// [in, out], …, <c>ln_f.*</c>; a <c>transformer.</c> prefix is accepted; LM head tied to
/// <c>wte</c>). Nothing is copied: the native side holds references to the same tensors and re-reads
/// their data at every call, so in-place optimizer updates are used by the next call and nothing can
/// go stale. Disposing the model's tensors does not break the decoder (it keeps the storage alive);
/// replacing a parameter with a new tensor does not reach it — <see cref="Holds"/> tells whether a
/// decoder is built over a given state dict.</para>
/// <para>Threads: calls run their loops on the calling thread, split over libtorch's intra-op threads
/// for large layers; call it from the <see cref="TensorThread"/> so the configured thread count
/// applies. One call at a time per decoder (a concurrent call fails loudly).</para>
/// <para>Scope: GPT-2 architecture only (learned positions, pre-LayerNorm, GELU-tanh MLP, tied head),
/// float32 CPU weights, inference only (no autograd).</para>
/// </remarks>
public sealed class Gpt2Decoder : IDisposable
{
    private readonly DecoderHandle handle;

    public Gpt2Decoder(Gpt2DecoderShape shape, IReadOnlyDictionary<string, Tensor> weights)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(weights);
        var problems = shape.Problems();
        if (problems.Count > 0) throw new ArgumentException($"invalid GPT-2 shape: {string.Join("; ", problems)}", nameof(shape));
        Shape = shape;
        var ordered = Resolve(weights, shape.Layers);
        handle = Tensor.WithHandles(ordered, raw =>
        {
            unsafe
            {
                fixed (IntPtr* p = raw)
                {
                    var created = NativeMethods.pt_gpt2_decoder_new(shape.Layers, shape.Heads, shape.Width, shape.VocabularySize, shape.ContextLength,
                        shape.LayerNormEpsilon, p, raw.Length);
                    if (created == IntPtr.Zero) throw TorchException.FromLastError("gpt2 decoder");
                    return new DecoderHandle(created);
                }
            }
        });
    }

    public Gpt2DecoderShape Shape { get; }

    /// <summary>The kernel set every decoder in the process uses: by default the widest the CPU supports.</summary>
    public static Gpt2KernelLevel Kernels => (Gpt2KernelLevel)NativeMethods.pt_gpt2_decoder_kernels(-1);

    /// <summary>
    /// Switches every decoder in the process to the highest supported kernel set not above
    /// <paramref name="level"/> and returns the one now in effect. For tests (each compiled copy can be
    /// checked on one machine) and A/B measurements; production leaves the default.
    /// </summary>
    public static Gpt2KernelLevel SelectKernels(Gpt2KernelLevel level) => (Gpt2KernelLevel)NativeMethods.pt_gpt2_decoder_kernels((int)level);

    /// <summary>The weight names the decoder reads, in its native order.</summary>
    public static IReadOnlyList<string> WeightNames(int layers)
    {
        var names = new List<string>(4 + 12 * layers) { "wte.weight", "wpe.weight" };
        for (var i = 0; i < layers; i++)
        {
            foreach (var part in (string[])["ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight", "attn.c_proj.bias",
                         "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias"])
                names.Add($"h.{i}.{part}");
        }
        names.Add("ln_f.weight");
        names.Add("ln_f.bias");
        return names;
    }

    /// <summary>True when this decoder reads exactly these tensors (the same objects, not equal copies).</summary>
    public bool Holds(IReadOnlyDictionary<string, Tensor> weights)
    {
        List<Tensor> ordered;
        try
        {
            ordered = Resolve(weights, Shape.Layers);
        }
        catch (ArgumentException)
        {
            return false;
        }
        var result = Tensor.WithHandles(ordered, raw =>
        {
            unsafe
            {
                fixed (IntPtr* p = raw) return NativeMethods.pt_gpt2_decoder_holds(handle, p, raw.Length);
            }
        });
        if (result < 0) throw TorchException.FromLastError("gpt2 decoder holds");
        return result == 1;
    }

    /// <summary>
    /// Logits at every position of each sequence (a plain forward pass, no gradient): element
    /// [t·V + v] of result[i] is the logit of token v after sequences[i][0..t].
    /// </summary>
    public float[][] Logits(IReadOnlyList<int[]> sequences)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        var (tokens, lengths) = Pack(sequences);
        var vocabulary = Shape.VocabularySize;
        var output = new float[checked(tokens.Length * vocabulary)];
        unsafe
        {
            fixed (int* t = tokens)
            fixed (int* l = lengths)
            fixed (float* o = output)
            {
                Tensor.Check(NativeMethods.pt_gpt2_decoder_logits(handle, t, l, lengths.Length, o), "gpt2 decoder logits");
            }
        }
        var result = new float[sequences.Count][];
        var offset = 0;
        for (var i = 0; i < result.Length; i++)
        {
            result[i] = output.AsSpan(offset * vocabulary, lengths[i] * vocabulary).ToArray();
            offset += lengths[i];
        }
        return result;
    }

    /// <summary>Samples <see cref="DecodeRequest.SamplesPerPrompt"/> continuations of every prompt;
    /// results in row order (prompt-major).</summary>
    /// <exception cref="OperationCanceledException">When <paramref name="cancellationToken"/> fires; the
    /// native loop checks it between decode steps.</exception>
    public IReadOnlyList<DecodedSequence> Generate(DecodeRequest request, CancellationToken cancellationToken = default)
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

        ulong[]? seeds = null;
        if (request.RowSeeds is not null)
        {
            if (request.RowSeeds.Count != rows)
                throw new ArgumentException($"{request.RowSeeds.Count} row seeds given for {rows} rows ({lengths.Length} prompts × {request.SamplesPerPrompt} samples)");
            seeds = request.RowSeeds.ToArray();
        }
        else if (request.Generator is null)
        {
            throw new ArgumentException("a decode request needs RowSeeds or a Generator");
        }

        var stops = request.StopSequences ?? [];
        if (stops.Count > 0 && request.TokenBytes is null) throw new ArgumentException("stop sequences need a TokenByteTable");
        var stopOffsets = new int[stops.Count + 1];
        for (var i = 0; i < stops.Count; i++)
        {
            if (stops[i] is null || stops[i].Length == 0) throw new ArgumentException($"stop sequence {i} is empty");
            stopOffsets[i + 1] = checked(stopOffsets[i] + stops[i].Length);
        }
        var stopBytes = new byte[stopOffsets[^1]];
        for (var i = 0; i < stops.Count; i++) stops[i].CopyTo(stopBytes, stopOffsets[i]);
        var table = stops.Count > 0 ? request.TokenBytes : null;
        var suppressed = (request.SuppressedTokens ?? []).ToArray();

        var parameters = new Gpt2SamplingParameters
        {
            Temperature = request.Temperature,
            TopP = request.TopP,
            TopK = request.TopK,
            MaxNewTokens = maxNew,
            SamplesPerPrompt = request.SamplesPerPrompt,
            EndOfSequenceId = request.EndOfSequenceId,
        };
        var outTokens = new int[checked(rows * maxNew)];
        var outPolicy = new float[outTokens.Length];
        var outSampler = new float[outTokens.Length];
        var outLengths = new int[rows];
        var outFinish = new int[rows];
        // The native loop polls this flag between steps; a pinned array so it never moves under it.
        var cancel = GC.AllocateArray<int>(1, pinned: true);
        int status;
        using (cancellationToken.Register(static state => Volatile.Write(ref ((int[])state!)[0], 1), cancel))
        {
            unsafe
            {
                fixed (int* t = tokens)
                fixed (int* l = lengths)
                fixed (ulong* s = seeds)
                fixed (int* sup = suppressed)
                fixed (byte* tb = table?.Bytes)
                fixed (long* to = table?.Offsets)
                fixed (byte* sb = stopBytes)
                fixed (int* so = stopOffsets)
                fixed (int* c = cancel)
                fixed (int* ot = outTokens)
                fixed (float* op = outPolicy)
                fixed (float* os = outSampler)
                fixed (int* ol = outLengths)
                fixed (int* of = outFinish)
                {
                    status = NativeMethods.pt_gpt2_decoder_generate(handle, t, l, lengths.Length, &parameters, s, Generator.Raw(request.Generator),
                        sup, suppressed.Length, tb, to, table?.Count ?? 0, sb, so, stops.Count, c, ot, op, os, ol, of);
                    GC.KeepAlive(request.Generator);
                }
            }
        }
        if (status == 2) throw new OperationCanceledException("generation was cancelled", cancellationToken);
        Tensor.Check(status, "gpt2 decoder generate");

        var result = new DecodedSequence[rows];
        for (var r = 0; r < rows; r++)
        {
            var n = outLengths[r];
            result[r] = new DecodedSequence(
                r / request.SamplesPerPrompt,
                r % request.SamplesPerPrompt,
                outTokens.AsSpan(r * maxNew, n).ToArray(),
                outPolicy.AsSpan(r * maxNew, n).ToArray(),
                outSampler.AsSpan(r * maxNew, n).ToArray(),
                (DecodeFinish)outFinish[r]);
        }
        return result;
    }

    public void Dispose() => handle.Dispose();

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

    private static List<Tensor> Resolve(IReadOnlyDictionary<string, Tensor> weights, int layers)
    {
        var names = WeightNames(layers);
        var ordered = new List<Tensor>(names.Count);
        var missing = new List<string>();
        foreach (var name in names)
        {
            if (weights.TryGetValue(name, out var t) || weights.TryGetValue("transformer." + name, out t)) ordered.Add(t);
            else missing.Add(name);
        }
        if (missing.Count > 0)
            throw new ArgumentException($"GPT-2 weights missing: {string.Join(", ", missing.Take(8))}{(missing.Count > 8 ? $", … ({missing.Count} in all)" : "")}");
        return ordered;
    }
}
