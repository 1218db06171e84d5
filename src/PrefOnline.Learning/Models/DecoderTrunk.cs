using PrefOnline.Tensors;
using TorchSharp.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Models;

/// <summary>How one forward attends: causal over the positions given, or through an explicit mask, and
/// whether keys and values go through a <see cref="KvCache"/>.</summary>
/// <param name="Mask">Additive, in the model's dtype: 0 where query i may look at key j, the dtype's most
/// negative finite value where it may not; broadcastable to (B, H, T, S). Null with <paramref name="Causal"/>
/// (plain causal attention) or for a single new position that may see every key.</param>
/// <param name="Causal">No mask: query i sees keys 0..i (training and scoring, right padding).</param>
internal sealed record AttentionSpec(Tensor? Mask, bool Causal, KvCache? Cache);

/// <summary>
/// A decoder-only transformer's trunk: int64 tokens (B, T) → final hidden states (B, T, C), causal,
/// optionally with a padding mask, explicit positions and a <see cref="KvCache"/>. The checks, the
/// attention masks and the cache bookkeeping are the same for every family and live here; a family
/// (<see cref="Gpt2Model"/>, <see cref="LlamaModel"/>) supplies <see cref="Run"/>: embeddings, blocks,
/// final norm. Shapes: B batch, T new positions, S key positions (T, or cached + T when decoding).
/// </summary>
/// <remarks>
/// Built on the CPU in float32 (so a seed gives the same initial weights everywhere), then placed with
/// <see cref="Place"/>; build optimizers after placing, because moving a TorchSharp module replaces its
/// parameter objects.
/// </remarks>
public abstract class DecoderTrunk : nn.Module<Tensor, Tensor>
{
    private readonly SeededDropout dropoutSource;

    /// <param name="dropoutSeed">Seeds the generator dropout masks are drawn from (only used by families
    /// with dropout, in training mode).</param>
    protected DecoderTrunk(string name, ulong dropoutSeed) : base(name)
    {
        dropoutSource = new SeededDropout(dropoutSeed);
    }

    /// <summary>The shape this trunk was built from (its family's record; families narrow the type).</summary>
    public abstract DecoderConfig Config { get; }

    /// <summary>Where the parameters live and their dtype (CPU float32 until <see cref="Place"/>).</summary>
    public TensorPlacement Placement { get; private set; } = TensorPlacement.Cpu;

    /// <summary>The generator dropout draws from (its state belongs in a training checkpoint).</summary>
    public Generator DropoutGenerator => Dropout.Generator;

    /// <summary>Token embedding [V, C] (the LM head's weight when the head is tied).</summary>
    public abstract Parameter TokenEmbedding { get; }

    /// <summary>Dropout masks of this trunk's family (a policy wrapping a trunk shares the trunk's).</summary>
    internal virtual SeededDropout Dropout => dropoutSource;

    /// <summary>
    /// Moves every parameter to <paramref name="placement"/>'s device and converts it to its dtype (an
    /// unavailable device throws first, naming itself). Parameter objects are replaced: build optimizers
    /// and samplers after this.
    /// </summary>
    public DecoderTrunk Place(TensorPlacement placement)
    {
        placement.EnsureAvailable();
        if (placement == Placement) return this;
        this.to(placement.Device, placement.Dtype);
        PlacedAt(placement);
        return this;
    }

    /// <summary>Records a placement the parameters have already been moved to (a wrapping module moved them).</summary>
    internal virtual void PlacedAt(TensorPlacement placement) => Placement = placement;

    /// <summary>Final hidden states of int64 tokens (B, T) → (B, T, C), causal, no padding mask.</summary>
    public override Tensor forward(Tensor tokens) => Hidden(tokens);

    /// <summary>
    /// Final hidden states (after the final norm) of int64 <paramref name="tokens"/> (B, T) → (B, T, C).
    /// </summary>
    /// <param name="attentionMask">(B, T), nonzero/true for real tokens, 0/false for padding. Padding
    /// keys are hidden from every other query. Not needed for right padding (causality already hides it).</param>
    /// <param name="positionIds">(B, T) int64 positions; default 0..T−1 for every row. With left padding
    /// pass each row's own count (cumsum(mask) − 1) so a prompt's first real token is at position 0.</param>
    public Tensor Hidden(Tensor tokens, Tensor? attentionMask = null, Tensor? positionIds = null) =>
        Hidden(tokens, attentionMask, positionIds, cache: null);

    /// <summary>
    /// <see cref="Hidden(Tensor, Tensor?, Tensor?)"/> for incremental decoding: the T new positions
    /// follow the <see cref="KvCache.Length"/> positions already in <paramref name="cache"/>, their keys
    /// and values are written into it, and <paramref name="attentionMask"/> (when given) covers every key
    /// position, (B, Length + T).
    /// </summary>
    internal Tensor Hidden(Tensor tokens, Tensor? attentionMask, Tensor? positionIds, KvCache? cache)
    {
        if (tokens.dim() != 2) throw new ArgumentException($"tokens must be (batch, time), got [{string.Join(", ", tokens.shape)}]");
        if (tokens.dtype != ScalarType.Int64) throw new ArgumentException($"tokens must be int64, got {tokens.dtype}");
        var (b, t) = (tokens.size(0), tokens.size(1));
        var past = cache?.Length ?? 0;
        if (t < 1) throw new ArgumentException("tokens must hold at least one position");
        if (past + t > Config.ContextLength)
            throw new ArgumentException($"sequence of {past + t} tokens exceeds the model's context of {Config.ContextLength}");
        if (cache is not null && cache.Rows != b) throw new ArgumentException($"the KV cache holds {cache.Rows} rows, the tokens {b}");
        CheckCompanion(attentionMask, "attentionMask", b, past + t);
        CheckCompanion(positionIds, "positionIds", b, t);

        using var scope = NewDisposeScope();
        var embedding = TokenEmbedding;
        var device = embedding.device;
        var spec = Spec(device, embedding.dtype, t, past, attentionMask, cache);
        var positions = positionIds ?? arange(past, past + t, dtype: ScalarType.Int64, device: device).unsqueeze(0); // (B or 1, T)
        var hidden = Run(tokens, positions, spec);                         // (B, T, C)
        cache?.Advance(t);
        return hidden.MoveToOuterDisposeScope();
    }

    /// <summary>The family's network: embeddings, blocks, final norm. (B, T) tokens and (B or 1, T)
    /// positions → (B, T, C); keys and values go through <c>spec.Cache</c> when it is set.</summary>
    internal abstract Tensor Run(Tensor tokens, Tensor positions, AttentionSpec spec);

    /// <summary>
    /// Which keys each query may see: the keys up to itself that are not padding, as an additive mask
    /// (0 visible, the dtype's most negative finite value hidden; Hugging Face's convention). A padding
    /// query sees nothing, so its softmax is uniform over every key rather than NaN; its output is never read.
    /// </summary>
    private static AttentionSpec Spec(Device device, ScalarType dtype, long t, long past, Tensor? attentionMask, KvCache? cache)
    {
        var s = past + t;
        Tensor? hidden = null;                                                                  // bool, true = hidden
        if (attentionMask is null)
        {
            if (cache is null) return new AttentionSpec(null, Causal: true, Cache: null);
            // One new position may see every key; several see the past and the new ones up to themselves.
            if (t > 1) hidden = ones(t, s, ScalarType.Bool, device).tril(past).logical_not();   // (T, S)
        }
        else
        {
            var b = attentionMask.size(0);
            var future = ones(t, s, ScalarType.Bool, device).tril(past).logical_not().view(1, 1, t, s); // (1, 1, T, S)
            var padding = attentionMask.to(ScalarType.Bool, device).logical_not().view(b, 1, 1, s); // (B, 1, 1, S)
            hidden = future.logical_or(padding);                                                // (B, 1, T, S)
        }
        var additive = hidden is null ? null : zeros(hidden.shape, dtype, device).masked_fill(hidden, MostNegative(dtype));
        return new AttentionSpec(additive, Causal: false, Cache: cache);
    }

    /// <summary>The most negative finite value of a floating dtype (torch.finfo(dtype).min).</summary>
    private static double MostNegative(ScalarType dtype) => dtype switch
    {
        ScalarType.BFloat16 => -3.3895313892515355e38,
        ScalarType.Float16 => -65504.0,
        ScalarType.Float64 => double.MinValue,
        _ => float.MinValue,
    };

    private static void CheckCompanion(Tensor? companion, string name, long b, long t)
    {
        if (companion is null) return;
        var shape = companion.shape;
        if (shape.Length != 2 || shape[0] != b || shape[1] != t)
            throw new ArgumentException($"{name} must be ({b}, {t}), got [{string.Join(", ", shape)}]");
    }

    /// <summary>A dropout seed drawn from the init generator, so a seeded model also drops out reproducibly.</summary>
    protected static ulong DrawSeed(Generator? init)
    {
        if (init is null) return 0;
        using var scope = NewDisposeScope();
        return (ulong)randint(0, long.MaxValue, [1], generator: init).ToInt64();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) dropoutSource.Dispose();
        base.Dispose(disposing);
    }
}

/// <summary>
/// Inverted dropout (scaled by 1/(1−p)) whose masks come from one seeded generator per model, so a
/// seeded run drops the same units and a training checkpoint can carry the generator's state. The
/// generator lives on the CPU; masks move to the activations' device.
/// </summary>
internal sealed class SeededDropout(ulong seed) : IDisposable
{
    public Generator Generator { get; } = new(seed);

    /// <summary>x unchanged (a new handle) when not training or p = 0.</summary>
    public Tensor Apply(Tensor x, double p, bool training)
    {
        if (!training || p == 0) return x.alias();
        using var scope = NewDisposeScope();
        var keep = rand(x.shape, generator: Generator).ge(p).to(x.device);   // the shape of x, bool
        return (x * keep / (1 - p)).MoveToOuterDisposeScope();
    }

    public void Dispose() => Generator.Dispose();
}
