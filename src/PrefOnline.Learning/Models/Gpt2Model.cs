using PrefOnline.Tensors;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace PrefOnline.Learning.Models;

// GPT-2 (Radford et al. 2019) read top to bottom: attention, MLP, block, then the model that stacks
// them. Field names are Hugging Face's parameter names (TorchSharp's RegisterComponents names each
// submodule and parameter after its field), so the state dict reads h.{i}.attn.c_attn.weight, … and
// checkpoints in that layout load by name. Shapes: B batch, T new positions, S key positions (T, or
// cached + T when decoding), C width (n_embd), H heads, D = C / H.

/// <summary>How one forward attends: causal over the positions given, or through an explicit mask, and
/// whether keys and values go through a <see cref="KvCache"/>.</summary>
/// <param name="Mask">Additive, in the model's dtype: 0 where query i may look at key j, the dtype's most
/// negative finite value where it may not; broadcastable to (B, H, T, S). Null with <paramref name="Causal"/>
/// (plain causal attention) or for a single new position that may see every key.</param>
/// <param name="Causal">No mask: query i sees keys 0..i (training and scoring, right padding).</param>
internal sealed record AttentionSpec(Tensor? Mask, bool Causal, KvCache? Cache);

/// <summary>Causal multi-head self-attention through libtorch's scaled_dot_product_attention (its fused
/// CPU/CUDA kernels), or written out when attention dropout must draw from the model's own generator.</summary>
internal sealed class CausalSelfAttention : nn.Module<Tensor, Tensor>
{
    private readonly int heads;
    private readonly double dropout;
    private readonly int layer;
    private readonly SeededDropout dropoutSource;
    private Conv1D c_attn;
    private Conv1D c_proj;

    public CausalSelfAttention(Gpt2Config config, int layer, Generator? init, SeededDropout dropoutSource) : base(nameof(CausalSelfAttention))
    {
        heads = config.Heads;
        dropout = config.Dropout;
        this.layer = layer;
        this.dropoutSource = dropoutSource;
        // q, k and v in one GEMM: c_attn maps C → 3C, laid out [q | k | v].
        c_attn = new Conv1D(config.Width, 3L * config.Width, Gpt2Model.InitStd, init);
        c_proj = new Conv1D(config.Width, config.Width, Gpt2Model.ResidualInitStd(config), init);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => forward(x, new AttentionSpec(null, Causal: true, Cache: null));

    /// <param name="x">(B, T, C)</param>
    /// <returns>(B, T, C)</returns>
    public Tensor forward(Tensor x, AttentionSpec spec)
    {
        using var scope = NewDisposeScope();
        var (b, t, c) = (x.size(0), x.size(1), x.size(2));
        var d = c / heads;

        var qkv = c_attn.forward(x);                                        // (B, T, 3C)
        var parts = qkv.split(c, dim: 2);                                   // 3 × (B, T, C)
        var q = parts[0].view(b, t, heads, d).transpose(1, 2);              // (B, H, T, D)
        var k = parts[1].view(b, t, heads, d).transpose(1, 2);              // (B, H, T, D)
        var v = parts[2].view(b, t, heads, d).transpose(1, 2);              // (B, H, T, D)
        if (spec.Cache is { } cache) (k, v) = cache.Append(layer, k, v);    // (B, H, S, D): every position so far

        var y = training && dropout > 0
            ? WrittenOut(q, k, v, spec)                                     // (B, H, T, D)
            : F.scaled_dot_product_attention(q, k, v, spec.Mask, is_casual: spec.Causal && spec.Mask is null);
        y = y.transpose(1, 2).reshape(b, t, c);                             // (B, T, C): heads side by side again
        y = c_proj.forward(y);                                              // (B, T, C)
        return dropoutSource.Apply(y, dropout, training).MoveToOuterDisposeScope();
    }

    /// <summary>softmax(q kᵀ / √D, masked) v with dropout on the weights from the model's generator (the
    /// fused kernel's dropout would draw from libtorch's global one).</summary>
    private Tensor WrittenOut(Tensor q, Tensor k, Tensor v, AttentionSpec spec)
    {
        var (t, s) = (q.size(2), k.size(2));
        var scores = q.matmul(k.transpose(-2, -1)) / Math.Sqrt(q.size(3));  // (B, H, T, S)
        if (spec.Mask is { } mask) scores = scores + mask;
        else if (spec.Causal) scores = scores.masked_fill(ones(t, s, ScalarType.Bool, q.device).tril(s - t).logical_not(), double.NegativeInfinity);
        var weights = dropoutSource.Apply(scores.softmax(-1), dropout, training: true);
        return weights.matmul(v);                                           // (B, H, T, D)
    }
}

/// <summary>The position-wise feed-forward network: C → 4C → GELU (tanh approximation, GPT-2's
/// "gelu_new") → C.</summary>
internal sealed class Mlp : nn.Module<Tensor, Tensor>
{
    private readonly double dropout;
    private readonly SeededDropout dropoutSource;
    private Conv1D c_fc;
    private Conv1D c_proj;

    public Mlp(Gpt2Config config, Generator? init, SeededDropout dropoutSource) : base(nameof(Mlp))
    {
        dropout = config.Dropout;
        this.dropoutSource = dropoutSource;
        c_fc = new Conv1D(config.Width, 4L * config.Width, Gpt2Model.InitStd, init);
        c_proj = new Conv1D(4L * config.Width, config.Width, Gpt2Model.ResidualInitStd(config), init);
        RegisterComponents();
    }

    /// <summary>(B, T, C) → (B, T, C).</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = F.gelu(c_fc.forward(x), GELU.Approximate.tanh);            // (B, T, 4C)
        var y = c_proj.forward(h);                                          // (B, T, C)
        return dropoutSource.Apply(y, dropout, training).MoveToOuterDisposeScope();
    }
}

/// <summary>One pre-LayerNorm transformer block: x + attn(ln_1(x)), then + mlp(ln_2(·)).</summary>
internal sealed class Block : nn.Module<Tensor, Tensor>
{
    private LayerNorm ln_1;
    private CausalSelfAttention attn;
    private LayerNorm ln_2;
    private Mlp mlp;

    public Block(Gpt2Config config, int layer, Generator? init, SeededDropout dropoutSource) : base(nameof(Block))
    {
        ln_1 = nn.LayerNorm(config.Width, config.LayerNormEpsilon);
        attn = new CausalSelfAttention(config, layer, init, dropoutSource);
        ln_2 = nn.LayerNorm(config.Width, config.LayerNormEpsilon);
        mlp = new Mlp(config, init, dropoutSource);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => forward(x, new AttentionSpec(null, Causal: true, Cache: null));

    /// <summary>(B, T, C) → (B, T, C).</summary>
    public Tensor forward(Tensor x, AttentionSpec spec)
    {
        using var scope = NewDisposeScope();
        x = x + attn.forward(ln_1.forward(x), spec);                        // (B, T, C)
        x = x + mlp.forward(ln_2.forward(x));                               // (B, T, C)
        return x.MoveToOuterDisposeScope();
    }
}

/// <summary>
/// The GPT-2 trunk (Hugging Face's GPT2Model): token + learned position embeddings, <c>n_layer</c>
/// pre-LayerNorm blocks and a final LayerNorm, giving one hidden state per position. The
/// <see cref="PolicyModel"/> adds the language-model head tied to <c>wte</c>; the
/// <see cref="Reward.RewardModel"/> adds a scalar head. Parameters: <c>wte.weight</c> [V, C],
/// <c>wpe.weight</c> [n_positions, C], <c>h.{i}.*</c>, <c>ln_f.*</c>.
/// </summary>
/// <remarks>
/// Built on the CPU in float32 (so a seed gives the same initial weights everywhere), then placed with
/// <see cref="Place"/>; build optimizers after placing, because moving a TorchSharp module replaces its
/// parameter objects.
/// </remarks>
public class Gpt2Model : nn.Module<Tensor, Tensor>
{
    /// <summary>GPT-2's initializer_range: every weight starts N(0, 0.02²).</summary>
    public const double InitStd = 0.02;

    private readonly SeededDropout dropoutSource;
    private Embedding wte;
    private Embedding wpe;
    private ModuleList<Block> h;
    private LayerNorm ln_f;

    /// <param name="config">The shape (validated here).</param>
    /// <param name="init">Draws the GPT-2 init; null leaves weights uninitialised because a checkpoint
    /// is about to be copied in (only the checkpoint readers do that).</param>
    /// <param name="dropoutSeed">Seeds the generator dropout masks are drawn from (only used when
    /// <see cref="Gpt2Config.Dropout"/> &gt; 0 and in training mode). Null: drawn from
    /// <paramref name="init"/> (or 0 without one), so a seeded model also drops out reproducibly.</param>
    public Gpt2Model(Gpt2Config config, Generator? init, ulong? dropoutSeed = null) : base(nameof(Gpt2Model))
    {
        Config = config.Validated();
        dropoutSource = new SeededDropout(dropoutSeed ?? (init is null ? 0UL : DrawSeed(init)));
        using (no_grad())
        {
            wte = nn.Embedding(config.VocabularySize, config.Width);
            wpe = nn.Embedding(config.ContextLength, config.Width);
            if (init is not null)
            {
                wte.weight!.normal_(0, InitStd, init);
                wpe.weight!.normal_(0, InitStd, init);
            }
            h = nn.ModuleList(Enumerable.Range(0, config.Layers).Select(i => new Block(config, i, init, dropoutSource)).ToArray());
            ln_f = nn.LayerNorm(config.Width, config.LayerNormEpsilon);
        }
        RegisterComponents();
    }

    public Gpt2Config Config { get; }

    /// <summary>Where the parameters live and their dtype (CPU float32 until <see cref="Place"/>).</summary>
    public TensorPlacement Placement { get; private set; } = TensorPlacement.Cpu;

    /// <summary>The generator dropout draws from (its state belongs in a training checkpoint).</summary>
    public Generator DropoutGenerator => dropoutSource.Generator;

    /// <summary>Token embedding [V, C]; also the LM head's weight in the tied <see cref="PolicyModel"/>.</summary>
    public Parameter TokenEmbedding => wte.weight!;

    /// <summary>GPT-2 scales the init of the projections that write into the residual stream by
    /// 1/√(2·n_layer): two such writes per block, so the stream's variance does not grow with depth.</summary>
    public static double ResidualInitStd(Gpt2Config config) => InitStd / Math.Sqrt(2.0 * config.Layers);

    /// <summary>
    /// Moves every parameter to <paramref name="placement"/>'s device and converts it to its dtype (an
    /// unavailable device throws first, naming itself). Parameter objects are replaced: build optimizers
    /// and samplers after this.
    /// </summary>
    public virtual Gpt2Model Place(TensorPlacement placement)
    {
        placement.EnsureAvailable();
        if (placement == Placement) return this;
        this.to(placement.Device, placement.Dtype);
        Placement = placement;
        return this;
    }

    /// <summary>Final hidden states of int64 tokens (B, T) → (B, T, C), causal, no padding mask.</summary>
    public override Tensor forward(Tensor tokens) => Hidden(tokens);

    /// <summary>
    /// Final hidden states (after ln_f) of int64 <paramref name="tokens"/> (B, T) → (B, T, C).
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
            throw new ArgumentException($"sequence of {past + t} tokens exceeds the model's context of {Config.ContextLength} (n_positions)");
        if (cache is not null && cache.Rows != b) throw new ArgumentException($"the KV cache holds {cache.Rows} rows, the tokens {b}");
        CheckCompanion(attentionMask, "attentionMask", b, past + t);
        CheckCompanion(positionIds, "positionIds", b, t);

        using var scope = NewDisposeScope();
        var embedding = TokenEmbedding;
        var device = embedding.device;
        var spec = Spec(device, embedding.dtype, t, past, attentionMask, cache);
        var positions = positionIds ?? arange(past, past + t, dtype: ScalarType.Int64, device: device).unsqueeze(0); // (B or 1, T)
        var x = wte.forward(tokens) + wpe.forward(positions);              // (B, T, C)
        x = dropoutSource.Apply(x, Config.Dropout, training);
        foreach (var block in h) x = block.forward(x, spec);                // (B, T, C)
        cache?.Advance(t);
        return ln_f.forward(x).MoveToOuterDisposeScope();                  // (B, T, C)
    }

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

    private static ulong DrawSeed(Generator init)
    {
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
