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
// Projections run through call(), not forward(), so forward hooks apply: that is where LoRA adapters
// (Adapters/LoraAdapters.cs) add their low-rank update.

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

        var qkv = c_attn.call(x);                                           // (B, T, 3C)
        var parts = qkv.split(c, dim: 2);                                   // 3 × (B, T, C)
        var q = parts[0].view(b, t, heads, d).transpose(1, 2);              // (B, H, T, D)
        var k = parts[1].view(b, t, heads, d).transpose(1, 2);              // (B, H, T, D)
        var v = parts[2].view(b, t, heads, d).transpose(1, 2);              // (B, H, T, D)
        if (spec.Cache is { } cache) (k, v) = cache.Append(layer, k, v);    // (B, H, S, D): every position so far

        var y = training && dropout > 0
            ? WrittenOut(q, k, v, spec)                                     // (B, H, T, D)
            : F.scaled_dot_product_attention(q, k, v, spec.Mask, is_casual: spec.Causal && spec.Mask is null);
        y = y.transpose(1, 2).reshape(b, t, c);                             // (B, T, C): heads side by side again
        y = c_proj.call(y);                                                 // (B, T, C)
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
        var h = F.gelu(c_fc.call(x), GELU.Approximate.tanh);               // (B, T, 4C)
        var y = c_proj.call(h);                                             // (B, T, C)
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
/// GPT-2 (Hugging Face's GPT2LMHeadModel without its <c>transformer.</c> prefix): token + learned
/// position embeddings, <c>n_layer</c> pre-LayerNorm blocks and a final LayerNorm, and a language-model
/// head whose weight IS the token embedding <c>wte</c> (tied, as in GPT-2). Because the head adds no
/// parameter, trunk and policy are this one module: the state dict holds exactly the trunk's Hugging
/// Face names (<c>wte.weight</c> [V, C], <c>wpe.weight</c> [n_positions, C], <c>h.{i}.*</c>,
/// <c>ln_f.*</c>), and the <see cref="Reward.RewardModel"/> uses it as its trunk (never its head).
/// </summary>
public sealed class Gpt2Model : PolicyModel
{
    /// <summary>GPT-2's initializer_range: every weight starts N(0, 0.02²).</summary>
    public const double InitStd = 0.02;

    private readonly Gpt2Config config;
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
    public Gpt2Model(Gpt2Config config, Generator? init, ulong? dropoutSeed = null)
        : base(nameof(Gpt2Model), dropoutSeed ?? DrawSeed(init))
    {
        this.config = config.Validated();
        using (no_grad())
        {
            wte = nn.Embedding(config.VocabularySize, config.Width);
            wpe = nn.Embedding(config.ContextLength, config.Width);
            if (init is not null)
            {
                wte.weight!.normal_(0, InitStd, init);
                wpe.weight!.normal_(0, InitStd, init);
            }
            h = nn.ModuleList(Enumerable.Range(0, config.Layers).Select(i => new Block(config, i, init, Dropout)).ToArray());
            ln_f = nn.LayerNorm(config.Width, config.LayerNormEpsilon);
        }
        RegisterComponents();
    }

    // Typed DecoderConfig, not Gpt2Config: TorchSharp's Module.to() indexes public properties by name, and a
    // covariant override would list Config twice (cast where the GPT-2 fields are needed).
    public override DecoderConfig Config => config;

    /// <summary>Token embedding [V, C]; also the LM head's weight (tied).</summary>
    public override Parameter TokenEmbedding => wte.weight!;

    /// <summary>GPT-2's trunk is the whole model (the head is tied to <c>wte</c>).</summary>
    public override DecoderTrunk Trunk => this;

    /// <summary>GPT-2 scales the init of the projections that write into the residual stream by
    /// 1/√(2·n_layer): two such writes per block, so the stream's variance does not grow with depth.</summary>
    public static double ResidualInitStd(Gpt2Config config) => InitStd / Math.Sqrt(2.0 * config.Layers);

    /// <summary>The tied LM head on hidden states (..., C) → (..., V): h @ wteᵀ, no bias.</summary>
    public override Tensor Logits(Tensor hidden) => F.linear(hidden, TokenEmbedding);

    internal override Tensor Run(Tensor tokens, Tensor positions, AttentionSpec spec)
    {
        using var scope = NewDisposeScope();
        var x = wte.forward(tokens) + wpe.forward(positions);              // (B, T, C)
        x = Dropout.Apply(x, config.Dropout, training);
        foreach (var block in h) x = block.forward(x, spec);                // (B, T, C)
        return ln_f.forward(x).MoveToOuterDisposeScope();                  // (B, T, C)
    }
}
