using PrefOnline.Tensors;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace PrefOnline.Learning.Models;

// The Llama family (Touvron et al. 2023; Llama 3, Qwen2, Qwen3, Mistral and SmolLM share it) read top to bottom as
// Hugging Face's modeling_llama.py writes it: config, RMSNorm, rotary embeddings, attention, SwiGLU MLP,
// decoder layer, the trunk (LlamaModel) and the causal LM (LlamaForCausalLM). Field names are Hugging
// Face's parameter names, so the state dict reads model.layers.{i}.self_attn.q_proj.weight, … and a
// checkpoint loads by a dictionary walk. Shapes: B batch, T new positions, S key positions (T, or cached +
// T when decoding), C hidden size, H query heads, Hkv key/value heads (H is a multiple), D head dim.
// Projections run through call(), not forward(), so forward hooks apply: that is where LoRA adapters
// (Adapters/LoraAdapters.cs) add their low-rank update.

/// <summary>
/// The shape and math of a Llama-family decoder. Every field is one key of Hugging Face's config.json
/// (LlamaConfig, Qwen2Config, Qwen3Config, MistralConfig), named in its comment; what the family members
/// differ in is keyed by <see cref="ModelType"/> as transformers does (Qwen2: q/k/v biases; Qwen3: q/k
/// RMSNorm; Mistral: none, its sliding window only accepted where it never hides a key).
/// Saved with every checkpoint so a model can always be rebuilt from its files.
/// </summary>
public sealed record LlamaConfig : DecoderConfig
{
    /// <summary>The model types this record describes.</summary>
    public static readonly IReadOnlyList<string> ModelTypes = ["llama", "qwen2", "qwen3", "mistral"];

    /// <summary>model_type: llama (also SmolLM, Llama 2/3), qwen2, qwen3 or mistral.</summary>
    public override string ModelType => Family;

    /// <summary>model_type as stored (a record property of its own so <c>with</c> can change it).</summary>
    public string Family { get; init; } = "llama";

    /// <summary>vocab_size.</summary>
    public override int VocabularySize { get; init; } = 258;

    /// <summary>hidden_size: the residual stream's width C.</summary>
    public override int Width { get; init; } = 128;

    /// <summary>intermediate_size: the SwiGLU MLP's inner width.</summary>
    public int IntermediateSize { get; init; } = 344;

    /// <summary>num_hidden_layers.</summary>
    public override int Layers { get; init; } = 4;

    /// <summary>num_attention_heads: query heads H.</summary>
    public int Heads { get; init; } = 4;

    /// <summary>num_key_value_heads: Hkv, dividing H (H / Hkv query heads share one key/value head:
    /// grouped-query attention; Hkv = H is plain multi-head attention).</summary>
    public int KeyValueHeadCount { get; init; } = 2;

    /// <summary>head_dim: D (Hugging Face's default: hidden_size / num_attention_heads; Qwen3 sets it apart).</summary>
    public int? HeadDimension { get; init; }

    /// <summary>max_position_embeddings: the longest sequence this worker runs the model on.</summary>
    public override int ContextLength { get; init; } = 256;

    /// <summary>rms_norm_eps.</summary>
    public double RmsNormEpsilon { get; init; } = 1e-5;

    /// <summary>rope_theta: the rotary base (10000 in Llama 2, 500000 in Llama 3, 1000000 in Qwen).</summary>
    public double RopeTheta { get; init; } = 10_000;

    /// <summary>rope_scaling: null (plain RoPE), or linear / llama3 frequency scaling.</summary>
    public RopeScaling? RopeScaling { get; init; }

    /// <summary>tie_word_embeddings: the LM head is the token embedding (no lm_head.weight).</summary>
    public bool TieWordEmbeddings { get; init; } = true;

    /// <summary>attention_bias: biases on q, k, v and o projections (Llama, Qwen3). Qwen2 has no such key:
    /// its q, k and v projections always have biases and o never (see <see cref="QkvBias"/>).</summary>
    public bool AttentionBias { get; init; }

    /// <summary>mlp_bias: biases on gate, up and down projections.</summary>
    public bool MlpBias { get; init; }

    public override int KeyValueHeads => KeyValueHeadCount;

    public override int HeadDim => HeadDimension ?? (Heads > 0 ? Width / Heads : 0);

    /// <summary>q/k/v projections carry a bias: always in Qwen2, with attention_bias otherwise.</summary>
    public bool QkvBias => Family == "qwen2" || AttentionBias;

    /// <summary>o_proj carries a bias: with attention_bias, never in Qwen2.</summary>
    public bool OutputBias => Family != "qwen2" && AttentionBias;

    /// <summary>Qwen3 normalises each query and key head (q_norm, k_norm: RMSNorm over D) before RoPE.</summary>
    public bool QkNorm => Family == "qwen3";

    internal override string TrunkModuleName => "model";

    /// <summary>Hugging Face's initializer_range: weights start N(0, 0.02²).</summary>
    public const double InitStd = 0.02;

    /// <summary>4 layers, width 128, 4 query / 2 key-value heads, MLP 344, context 256, tied head: ≈0.8M
    /// parameters with the 258-token byte vocabulary. Tests and quick runs.</summary>
    public static LlamaConfig Tiny(int vocabularySize = 258) => new() { VocabularySize = vocabularySize };

    /// <summary>6 layers, width 384, 6 query / 2 key-value heads, MLP 1024, context 256, tied head: ≈9.5M
    /// parameters with the byte vocabulary.</summary>
    public static LlamaConfig Small(int vocabularySize = 258) => new()
    {
        VocabularySize = vocabularySize, Width = 384, IntermediateSize = 1024, Layers = 6, Heads = 6, KeyValueHeadCount = 2,
    };

    /// <summary>The presets of <c>prefonline init --arch llama</c> (the GPT-2 presets' sizes and context).</summary>
    public static LlamaConfig Preset(string name) => name switch
    {
        "tiny" => Tiny(),
        "small" => Small(),
        _ => throw new ArgumentException($"unknown llama preset '{name}' (known: tiny, small)"),
    };

    public override IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (!ModelTypes.Contains(Family)) problems.Add($"model_type '{Family}' is not one of {string.Join(", ", ModelTypes)}");
        if (VocabularySize < 2) problems.Add($"vocab_size {VocabularySize} must be at least 2");
        if (ContextLength < 2) problems.Add($"max_position_embeddings {ContextLength} must be at least 2");
        if (Layers < 1) problems.Add($"num_hidden_layers {Layers} must be at least 1");
        if (Width < 1) problems.Add($"hidden_size {Width} must be at least 1");
        if (IntermediateSize < 1) problems.Add($"intermediate_size {IntermediateSize} must be at least 1");
        if (Heads < 1) problems.Add($"num_attention_heads {Heads} must be at least 1");
        if (KeyValueHeadCount < 1 || (Heads >= 1 && Heads % KeyValueHeadCount != 0))
            problems.Add($"num_key_value_heads {KeyValueHeadCount} must be at least 1 and divide num_attention_heads {Heads}");
        if (HeadDimension is { } d && d < 2) problems.Add($"head_dim {d} must be at least 2");
        if (HeadDimension is null && Heads >= 1 && Width % Heads != 0)
            problems.Add($"hidden_size {Width} must be a multiple of num_attention_heads {Heads} (or set head_dim)");
        if (HeadDim % 2 != 0) problems.Add($"head_dim {HeadDim} must be even (rotary embeddings rotate pairs)");
        if (!(RmsNormEpsilon > 0)) problems.Add($"rms_norm_eps {RmsNormEpsilon} must be positive");
        if (!(RopeTheta > 0) || !double.IsFinite(RopeTheta)) problems.Add($"rope_theta {RopeTheta} must be positive");
        if (RopeScaling is { } scaling) problems.AddRange(scaling.Problems());
        return problems;
    }

    public LlamaConfig Validated()
    {
        var problems = Problems();
        return problems.Count == 0 ? this : throw new ArgumentException($"invalid {Family} config: {string.Join("; ", problems)}");
    }

    /// <summary>
    /// RoPE's inverse frequencies θ^(−2i/D), i = 0 … D/2 − 1, with <see cref="RopeScaling"/> applied, as
    /// Hugging Face's rope initialisation functions compute them (base in float32, then the scaling).
    /// </summary>
    public float[] InverseFrequencies()
    {
        var d = HeadDim;
        var inverse = new float[d / 2];
        for (var i = 0; i < inverse.Length; i++)
        {
            // 1 / base^(float32(2i) / D) in float32, like torch's `1.0 / (base ** (arange(0, D, 2).float() / D))`.
            var exponent = (float)(2 * i) / d;
            inverse[i] = 1f / MathF.Pow((float)RopeTheta, exponent);
        }
        return RopeScaling is { } scaling ? scaling.Apply(inverse) : inverse;
    }

    internal override PolicyModel CreatePolicy(Generator? init, ulong? dropoutSeed = null) => new LlamaForCausalLM(this, init, dropoutSeed);

    internal override DecoderTrunk CreateTrunk(Generator? init) => new LlamaModel(this, init);
}

/// <summary>
/// rope_scaling: how the rotary frequencies are stretched for contexts longer than pre-training's.
/// <c>linear</c>: every frequency divided by <see cref="Factor"/>. <c>llama3</c> (Llama 3.1+): wavelengths
/// shorter than original/high_freq_factor are kept, longer than original/low_freq_factor are divided by the
/// factor, and those in between are interpolated smoothly. Other types (dynamic, yarn, longrope) are refused
/// at load: they change the math in ways this implementation does not compute.
/// </summary>
/// <param name="Type">rope_type (or the older key "type"): linear or llama3.</param>
/// <param name="Factor">factor.</param>
/// <param name="LowFrequencyFactor">low_freq_factor (llama3).</param>
/// <param name="HighFrequencyFactor">high_freq_factor (llama3).</param>
/// <param name="OriginalContextLength">original_max_position_embeddings (llama3).</param>
public sealed record RopeScaling(string Type, double Factor, double LowFrequencyFactor = 1, double HighFrequencyFactor = 4, int OriginalContextLength = 8192)
{
    public static readonly IReadOnlyList<string> Types = ["linear", "llama3"];

    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (!Types.Contains(Type)) problems.Add($"rope_scaling.rope_type '{Type}' is not supported (supported: {string.Join(", ", Types)}, or no rope_scaling)");
        if (!(Factor >= 1) || !double.IsFinite(Factor)) problems.Add($"rope_scaling.factor {Factor} must be a finite number >= 1");
        if (Type == "llama3")
        {
            if (!(LowFrequencyFactor > 0)) problems.Add($"rope_scaling.low_freq_factor {LowFrequencyFactor} must be positive");
            if (!(HighFrequencyFactor > LowFrequencyFactor)) problems.Add($"rope_scaling.high_freq_factor {HighFrequencyFactor} must exceed low_freq_factor {LowFrequencyFactor}");
            if (OriginalContextLength < 1) problems.Add($"rope_scaling.original_max_position_embeddings {OriginalContextLength} must be at least 1");
        }
        return problems;
    }

    /// <summary>The scaled inverse frequencies (Hugging Face's _compute_linear_scaling_rope_parameters and
    /// _compute_llama3_parameters).</summary>
    public float[] Apply(float[] inverse)
    {
        if (Type == "linear") return inverse.Select(f => (float)(f / Factor)).ToArray();
        var lowWavelength = OriginalContextLength / LowFrequencyFactor;
        var highWavelength = OriginalContextLength / HighFrequencyFactor;
        var scaled = new float[inverse.Length];
        for (var i = 0; i < inverse.Length; i++)
        {
            var f = (double)inverse[i];
            var wavelength = 2 * Math.PI / f;
            if (wavelength < highWavelength) scaled[i] = inverse[i];                 // high frequency: kept
            else if (wavelength > lowWavelength) scaled[i] = (float)(f / Factor);    // low frequency: interpolated by the factor
            else
            {
                var smooth = (OriginalContextLength / wavelength - LowFrequencyFactor) / (HighFrequencyFactor - LowFrequencyFactor);
                scaled[i] = (float)((1 - smooth) * f / Factor + smooth * f);
            }
        }
        return scaled;
    }
}

/// <summary>Root-mean-square norm (Zhang &amp; Sennrich 2019) as LlamaRMSNorm: in float32, then back to
/// the input's dtype, then times the learned <c>weight</c> (starts at 1).</summary>
internal sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    private readonly double epsilon;
    private Parameter weight;

    public RmsNorm(long width, double epsilon) : base(nameof(RmsNorm))
    {
        this.epsilon = epsilon;
        weight = new Parameter(ones(width));
        RegisterComponents();
    }

    /// <summary>(..., C) → (..., C).</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var x32 = x.to(ScalarType.Float32);
        var variance = x32.pow(2).mean([-1], keepdim: true);                  // (..., 1)
        var normed = x32.mul(variance.add(epsilon).rsqrt()).to(x.dtype);      // (..., C)
        return weight.mul(normed).MoveToOuterDisposeScope();
    }
}

/// <summary>Rotary position embedding (Su et al. 2021): cos and sin of position × inverse frequency,
/// computed in float32 per forward from the positions given (any context, no table), as LlamaRotaryEmbedding.</summary>
internal static class Rotary
{
    /// <param name="positions">(B or 1, T) int64.</param>
    /// <param name="inverseFrequencies">(D/2) float32 on the model's device.</param>
    /// <returns>cos and sin, (B or 1, 1, T, D) in <paramref name="dtype"/>, ready to broadcast over heads.</returns>
    public static (Tensor Cos, Tensor Sin) Angles(Tensor positions, Tensor inverseFrequencies, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var freqs = positions.to(ScalarType.Float32).unsqueeze(-1).mul(inverseFrequencies);  // (B, T, D/2)
        var emb = cat([freqs, freqs], dim: -1);                                               // (B, T, D)
        var cos = emb.cos().to(dtype).unsqueeze(1);                                           // (B, 1, T, D)
        var sin = emb.sin().to(dtype).unsqueeze(1);                                           // (B, 1, T, D)
        return (cos.MoveToOuterDisposeScope(), sin.MoveToOuterDisposeScope());
    }

    /// <summary>x·cos + rotate_half(x)·sin, where rotate_half(x) = [−x₂, x₁] over the two halves of D.</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        using var scope = NewDisposeScope();
        var half = x.size(-1) / 2;
        var rotated = cat([x.narrow(-1, half, half).neg(), x.narrow(-1, 0, half)], dim: -1); // (B, H, T, D)
        return (x * cos + rotated * sin).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// Grouped-query self-attention (Ainslie et al. 2023) as LlamaAttention: q, k, v projections (Qwen2: with
/// biases; Qwen3: q/k RMSNorm per head), RoPE on q and k, the cache holds the Hkv key/value heads, each
/// shared by H/Hkv query heads (repeat_kv), then libtorch's scaled_dot_product_attention with scale 1/√D.
/// </summary>
internal sealed class LlamaAttention : nn.Module<Tensor, Tensor>
{
    private readonly int heads;
    private readonly int keyValueHeads;
    private readonly int headDim;
    private readonly int layer;
    private Linear q_proj;
    private Linear k_proj;
    private Linear v_proj;
    private Linear o_proj;
    private RmsNorm? q_norm;
    private RmsNorm? k_norm;

    public LlamaAttention(LlamaConfig config, int layer, Generator? init) : base(nameof(LlamaAttention))
    {
        heads = config.Heads;
        keyValueHeads = config.KeyValueHeads;
        headDim = config.HeadDim;
        this.layer = layer;
        q_proj = LlamaModel.Projection(config.Width, heads * headDim, config.QkvBias, init);
        k_proj = LlamaModel.Projection(config.Width, keyValueHeads * headDim, config.QkvBias, init);
        v_proj = LlamaModel.Projection(config.Width, keyValueHeads * headDim, config.QkvBias, init);
        o_proj = LlamaModel.Projection(heads * headDim, config.Width, config.OutputBias, init);
        if (config.QkNorm)
        {
            q_norm = new RmsNorm(headDim, config.RmsNormEpsilon);
            k_norm = new RmsNorm(headDim, config.RmsNormEpsilon);
        }
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) =>
        throw new NotSupportedException("attention needs positions: call forward(x, cos, sin, spec)");

    /// <param name="x">(B, T, C)</param>
    /// <param name="cos">(B or 1, 1, T, D)</param>
    /// <param name="sin">(B or 1, 1, T, D)</param>
    /// <returns>(B, T, C)</returns>
    public Tensor forward(Tensor x, Tensor cos, Tensor sin, AttentionSpec spec)
    {
        using var scope = NewDisposeScope();
        var (b, t) = (x.size(0), x.size(1));
        var q = q_proj.call(x).view(b, t, heads, headDim);                 // (B, T, H, D)
        var k = k_proj.call(x).view(b, t, keyValueHeads, headDim);         // (B, T, Hkv, D)
        var v = v_proj.call(x).view(b, t, keyValueHeads, headDim);         // (B, T, Hkv, D)
        if (q_norm is not null) q = q_norm.forward(q);                     // Qwen3: RMSNorm over each head's D
        if (k_norm is not null) k = k_norm.forward(k);
        q = Rotary.Apply(q.transpose(1, 2), cos, sin);                     // (B, H, T, D)
        k = Rotary.Apply(k.transpose(1, 2), cos, sin);                     // (B, Hkv, T, D)
        v = v.transpose(1, 2);                                             // (B, Hkv, T, D)
        if (spec.Cache is { } cache) (k, v) = cache.Append(layer, k, v);    // (B, Hkv, S, D): every position so far
        k = RepeatKv(k);                                                   // (B, H, S, D)
        v = RepeatKv(v);                                                   // (B, H, S, D)
        var y = F.scaled_dot_product_attention(q, k, v, spec.Mask, is_casual: spec.Causal && spec.Mask is null); // (B, H, T, D)
        y = y.transpose(1, 2).reshape(b, t, heads * headDim);              // (B, T, H·D)
        return o_proj.call(y).MoveToOuterDisposeScope();                   // (B, T, C)
    }

    /// <summary>repeat_kv: (B, Hkv, S, D) → (B, H, S, D), each key/value head repeated for its H/Hkv query heads.</summary>
    private Tensor RepeatKv(Tensor kv)
    {
        var groups = heads / keyValueHeads;
        if (groups == 1) return kv.alias();
        var (b, s) = (kv.size(0), kv.size(2));
        return kv.unsqueeze(2).expand(b, keyValueHeads, groups, s, headDim).reshape(b, heads, s, headDim);
    }

}

/// <summary>SwiGLU feed-forward (Shazeer 2020) as LlamaMLP: down_proj(silu(gate_proj(x)) · up_proj(x)).</summary>
internal sealed class LlamaMlp : nn.Module<Tensor, Tensor>
{
    private Linear gate_proj;
    private Linear up_proj;
    private Linear down_proj;

    public LlamaMlp(LlamaConfig config, Generator? init) : base(nameof(LlamaMlp))
    {
        gate_proj = LlamaModel.Projection(config.Width, config.IntermediateSize, config.MlpBias, init);
        up_proj = LlamaModel.Projection(config.Width, config.IntermediateSize, config.MlpBias, init);
        down_proj = LlamaModel.Projection(config.IntermediateSize, config.Width, config.MlpBias, init);
        RegisterComponents();
    }

    /// <summary>(B, T, C) → (B, T, C).</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var gated = F.silu(gate_proj.call(x)).mul(up_proj.call(x));        // (B, T, intermediate)
        return down_proj.call(gated).MoveToOuterDisposeScope();            // (B, T, C)
    }

}

/// <summary>One pre-norm decoder layer: x + self_attn(input_layernorm(x)), then + mlp(post_attention_layernorm(·)).</summary>
internal sealed class LlamaDecoderLayer : nn.Module<Tensor, Tensor>
{
    private RmsNorm input_layernorm;
    private LlamaAttention self_attn;
    private RmsNorm post_attention_layernorm;
    private LlamaMlp mlp;

    public LlamaDecoderLayer(LlamaConfig config, int layer, Generator? init) : base(nameof(LlamaDecoderLayer))
    {
        input_layernorm = new RmsNorm(config.Width, config.RmsNormEpsilon);
        self_attn = new LlamaAttention(config, layer, init);
        post_attention_layernorm = new RmsNorm(config.Width, config.RmsNormEpsilon);
        mlp = new LlamaMlp(config, init);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) =>
        throw new NotSupportedException("a decoder layer needs positions: call forward(x, cos, sin, spec)");

    /// <summary>(B, T, C) → (B, T, C).</summary>
    public Tensor forward(Tensor x, Tensor cos, Tensor sin, AttentionSpec spec)
    {
        using var scope = NewDisposeScope();
        x = x + self_attn.forward(input_layernorm.forward(x), cos, sin, spec);      // (B, T, C)
        x = x + mlp.forward(post_attention_layernorm.forward(x));                  // (B, T, C)
        return x.MoveToOuterDisposeScope();
    }

}

/// <summary>
/// The Llama-family trunk (Hugging Face's LlamaModel / Qwen2Model / Qwen3Model): token embedding
/// <c>embed_tokens</c> [V, C], <c>num_hidden_layers</c> decoder layers <c>layers.{i}.*</c> and a final
/// RMSNorm <c>norm</c>. No learned positions: RoPE rotates q and k by each token's position inside attention.
/// </summary>
public sealed class LlamaModel : DecoderTrunk
{
    private Embedding embed_tokens;
    private ModuleList<LlamaDecoderLayer> layers;
    private RmsNorm norm;
    private readonly LlamaConfig config;
    private readonly float[] inverseFrequencies;

    /// <param name="config">The shape (validated here).</param>
    /// <param name="init">Draws Hugging Face's init (N(0, 0.02²) weights, zero biases, unit norms); null
    /// leaves weights uninitialised because a checkpoint is about to be copied in.</param>
    public LlamaModel(LlamaConfig config, Generator? init) : base(nameof(LlamaModel), DrawSeed(init))
    {
        this.config = config.Validated();
        inverseFrequencies = config.InverseFrequencies();
        using (no_grad())
        {
            embed_tokens = nn.Embedding(config.VocabularySize, config.Width);
            if (init is not null) embed_tokens.weight!.normal_(0, LlamaConfig.InitStd, init);
            layers = nn.ModuleList(Enumerable.Range(0, config.Layers).Select(i => new LlamaDecoderLayer(config, i, init)).ToArray());
            norm = new RmsNorm(config.Width, config.RmsNormEpsilon);
        }
        RegisterComponents();
    }

    // DecoderConfig, not LlamaConfig: a covariant override would list Config twice for TorchSharp's Module.to().
    public override DecoderConfig Config => config;

    public override Parameter TokenEmbedding => embed_tokens.weight!;

    internal override Tensor Run(Tensor tokens, Tensor positions, AttentionSpec spec)
    {
        using var scope = NewDisposeScope();
        var x = embed_tokens.forward(tokens);                                // (B, T, C)
        var inverse = tensor(inverseFrequencies, device: x.device);          // (D/2) float32
        var (cos, sin) = Rotary.Angles(positions, inverse, x.dtype);         // (B or 1, 1, T, D)
        foreach (var layer in layers) x = layer.forward(x, cos, sin, spec);  // (B, T, C)
        return norm.forward(x).MoveToOuterDisposeScope();                   // (B, T, C)
    }

    /// <summary>A Linear [out, in] (torch's layout) initialised N(0, 0.02²) from <paramref name="init"/>,
    /// bias zero; built from our own tensors so TorchSharp's default init never draws from the global generator.</summary>
    internal static Linear Projection(long inFeatures, long outFeatures, bool bias, Generator? init)
    {
        var weight = empty(outFeatures, inFeatures);
        if (init is not null) weight.normal_(0, LlamaConfig.InitStd, init);
        return nn.Linear(weight.AsParameter(), bias ? zeros(outFeatures).AsParameter() : null);
    }
}

/// <summary>
/// The Llama-family causal LM (LlamaForCausalLM / Qwen2ForCausalLM / Qwen3ForCausalLM): the trunk
/// <c>model</c> and an LM head — the token embedding itself with tie_word_embeddings (no
/// <c>lm_head.weight</c>, as Hugging Face saves tied models), else <c>lm_head</c> [V, C] without bias.
/// </summary>
public sealed class LlamaForCausalLM : PolicyModel
{
    private LlamaModel model;
    private Linear? lm_head;

    /// <param name="init">Draws Hugging Face's init; null when a checkpoint is about to be copied in.</param>
    /// <param name="dropoutSeed">Seeds the dropout generator (the family has no dropout in training; the
    /// generator exists so every policy's training state has the same parts).</param>
    public LlamaForCausalLM(LlamaConfig config, Generator? init, ulong? dropoutSeed = null)
        : base(nameof(LlamaForCausalLM), dropoutSeed ?? 0)
    {
        model = new LlamaModel(config, init);
        if (!config.Validated().TieWordEmbeddings) lm_head = LlamaModel.Projection(config.Width, config.VocabularySize, bias: false, init);
        RegisterComponents();
    }

    public override DecoderConfig Config => model.Config;

    public override Parameter TokenEmbedding => model.TokenEmbedding;

    public override DecoderTrunk Trunk => model;

    public override Tensor Logits(Tensor hidden) =>
        lm_head is null ? F.linear(hidden, model.TokenEmbedding) : lm_head.forward(hidden);

    internal override Tensor Run(Tensor tokens, Tensor positions, AttentionSpec spec) => model.Run(tokens, positions, spec);

    internal override void PlacedAt(TensorPlacement placement)
    {
        base.PlacedAt(placement);
        model.PlacedAt(placement);
    }
}
