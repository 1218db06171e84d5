using PrefOnline.Torch;
using PrefOnline.Torch.Modules;

namespace PrefOnline.Learning.Models;

// GPT-2 (Radford et al. 2019) read top to bottom: attention, MLP, block, then the model that stacks
// them. Names of every parameter are Hugging Face's (h.{i}.attn.c_attn.weight, …) so checkpoints in
// that layout load by name. Shapes: B batch, T time, C width (n_embd), H heads, D = C / H.

/// <summary>Causal multi-head self-attention written from matmul + masked softmax (libtorch 1.13 has
/// no public scaled_dot_product_attention).</summary>
internal sealed class CausalSelfAttention : Module
{
    private readonly int heads;
    private readonly double dropout;
    private readonly Generator? dropoutGenerator;

    public CausalSelfAttention(Gpt2Config config, Generator? init, Generator? dropoutGenerator)
    {
        heads = config.Heads;
        dropout = config.Dropout;
        this.dropoutGenerator = dropoutGenerator;
        // q, k and v in one GEMM: c_attn maps C → 3C, laid out [q | k | v].
        CAttn = RegisterModule("c_attn", new Conv1D(config.Width, 3L * config.Width, Gpt2Model.InitStd, init));
        CProj = RegisterModule("c_proj", new Conv1D(config.Width, config.Width, Gpt2Model.ResidualInitStd(config), init));
    }

    public Conv1D CAttn { get; }

    public Conv1D CProj { get; }

    /// <param name="x">(B, T, C)</param>
    /// <param name="mask">Additive attention mask, 0 where a query may look at a key and
    /// <see cref="float.MinValue"/> where it may not (the future, padding): (T, T), or (B·H, T, T) with padding.</param>
    /// <returns>(B, T, C)</returns>
    public Tensor Forward(Tensor x, Tensor mask)
    {
        using var scope = DisposeScope.Enter();
        var (b, t, c) = (x.Size(0), x.Size(1), x.Size(2));
        var d = c / heads;

        var qkv = CAttn.Forward(x);                                                 // (B, T, 3C)
        var parts = qkv.Split(c, dim: 2);                                           // 3 × (B, T, C)
        var q = parts[0].View(b, t, heads, d).Transpose(1, 2).Reshape(b * heads, t, d); // (B·H, T, D)
        var k = parts[1].View(b, t, heads, d).Transpose(1, 2).Reshape(b * heads, t, d); // (B·H, T, D)
        var v = parts[2].View(b, t, heads, d).Transpose(1, 2).Reshape(b * heads, t, d); // (B·H, T, D)

        // mask + (q @ kᵀ)/√D in ONE GEMM: scale and mask never take their own pass over (B·H, T, T).
        // The hidden entries sit at the most negative float rather than −∞, so a query whose every key
        // is hidden (a padding position under left padding) gets a uniform row instead of NaN, as
        // Hugging Face does; its output is never read.
        var scores = mask.BAddBmm(q, k.Transpose(1, 2), beta: 1, alpha: 1.0 / Math.Sqrt(d)); // (B·H, T, T)
        var weights = scores.Softmax(-1);                                           // (B·H, T, T)
        weights = Functional.Dropout(weights, dropout, Training, dropoutGenerator);

        var y = weights.Bmm(v);                                                     // (B·H, T, D)
        y = y.View(b, heads, t, d).Transpose(1, 2).Reshape(b, t, c);                // (B, T, C): heads side by side again
        y = CProj.Forward(y);                                                       // (B, T, C)
        return Functional.Dropout(y, dropout, Training, dropoutGenerator).MoveToOuterScope();
    }
}

/// <summary>The position-wise feed-forward network: C → 4C → GELU (tanh approximation, GPT-2's
/// "gelu_new") → C.</summary>
internal sealed class Mlp : Module
{
    private readonly double dropout;
    private readonly Generator? dropoutGenerator;

    public Mlp(Gpt2Config config, Generator? init, Generator? dropoutGenerator)
    {
        dropout = config.Dropout;
        this.dropoutGenerator = dropoutGenerator;
        CFc = RegisterModule("c_fc", new Conv1D(config.Width, 4L * config.Width, Gpt2Model.InitStd, init));
        CProj = RegisterModule("c_proj", new Conv1D(4L * config.Width, config.Width, Gpt2Model.ResidualInitStd(config), init));
    }

    public Conv1D CFc { get; }

    public Conv1D CProj { get; }

    /// <summary>(B, T, C) → (B, T, C).</summary>
    public Tensor Forward(Tensor x)
    {
        using var scope = DisposeScope.Enter();
        var h = CFc.Forward(x).Gelu(tanhApproximation: true);           // (B, T, 4C)
        var y = CProj.Forward(h);                                        // (B, T, C)
        return Functional.Dropout(y, dropout, Training, dropoutGenerator).MoveToOuterScope();
    }
}

/// <summary>One pre-LayerNorm transformer block: x + attn(ln_1(x)), then + mlp(ln_2(·)).</summary>
internal sealed class Block : Module
{
    public Block(Gpt2Config config, Generator? init, Generator? dropoutGenerator)
    {
        Ln1 = RegisterModule("ln_1", new LayerNorm(config.Width, config.LayerNormEpsilon));
        Attn = RegisterModule("attn", new CausalSelfAttention(config, init, dropoutGenerator));
        Ln2 = RegisterModule("ln_2", new LayerNorm(config.Width, config.LayerNormEpsilon));
        Mlp = RegisterModule("mlp", new Mlp(config, init, dropoutGenerator));
    }

    public LayerNorm Ln1 { get; }

    public CausalSelfAttention Attn { get; }

    public LayerNorm Ln2 { get; }

    public Mlp Mlp { get; }

    /// <summary>(B, T, C) → (B, T, C); <paramref name="mask"/> as <see cref="CausalSelfAttention.Forward"/>.</summary>
    public Tensor Forward(Tensor x, Tensor mask)
    {
        using var scope = DisposeScope.Enter();
        x = x + Attn.Forward(Ln1.Forward(x), mask);                     // (B, T, C)
        x = x + Mlp.Forward(Ln2.Forward(x));                            // (B, T, C)
        return x.MoveToOuterScope();
    }
}

/// <summary>
/// The GPT-2 trunk (Hugging Face's GPT2Model): token + learned position embeddings, <c>n_layer</c>
/// pre-LayerNorm blocks and a final LayerNorm, giving one hidden state per position. The
/// <see cref="PolicyModel"/> adds the language-model head tied to <c>wte</c>; the
/// <see cref="Reward.RewardModel"/> adds a scalar head. Parameters: <c>wte.weight</c> [V, C],
/// <c>wpe.weight</c> [n_positions, C], <c>h.{i}.*</c>, <c>ln_f.*</c>.
/// </summary>
public class Gpt2Model : Module
{
    /// <summary>GPT-2's initializer_range: every weight starts N(0, 0.02²).</summary>
    public const double InitStd = 0.02;

    private readonly Generator? ownedDropoutGenerator;

    /// <param name="config">The shape (validated here).</param>
    /// <param name="init">Draws the GPT-2 init; null leaves weights uninitialised because a checkpoint
    /// is about to be copied in (only the checkpoint readers do that).</param>
    /// <param name="dropoutGenerator">Draws dropout masks (only used when <see cref="Gpt2Config.Dropout"/> &gt; 0
    /// and in training mode). Null: the model owns a generator seeded from <paramref name="init"/>
    /// (or 0 without one), so a seeded model also drops out reproducibly.</param>
    public Gpt2Model(Gpt2Config config, Generator? init, Generator? dropoutGenerator = null)
    {
        Config = config.Validated();
        if (dropoutGenerator is null)
        {
            ownedDropoutGenerator = new Generator(init is null ? 0UL : DrawSeed(init));
            dropoutGenerator = ownedDropoutGenerator;
        }
        DropoutGenerator = dropoutGenerator;

        Wte = RegisterModule("wte", new Embedding(config.VocabularySize, config.Width, InitStd, init));
        Wpe = RegisterModule("wpe", new Embedding(config.ContextLength, config.Width, InitStd, init));
        H = RegisterModule("h", new ModuleList<Block>(
            Enumerable.Range(0, config.Layers).Select(_ => new Block(config, init, dropoutGenerator))));
        LnF = RegisterModule("ln_f", new LayerNorm(config.Width, config.LayerNormEpsilon));
    }

    public Gpt2Config Config { get; }

    /// <summary>The generator dropout draws from (its state belongs in a training checkpoint).</summary>
    public Generator DropoutGenerator { get; }

    /// <summary>Token embedding [V, C]; also the LM head's weight in the tied <see cref="PolicyModel"/>.</summary>
    public Embedding Wte { get; }

    /// <summary>Learned position embedding [n_positions, C].</summary>
    public Embedding Wpe { get; }

    internal ModuleList<Block> H { get; }

    public LayerNorm LnF { get; }

    /// <summary>GPT-2 scales the init of the projections that write into the residual stream by
    /// 1/√(2·n_layer): two such writes per block, so the stream's variance does not grow with depth.</summary>
    public static double ResidualInitStd(Gpt2Config config) => InitStd / Math.Sqrt(2.0 * config.Layers);

    /// <summary>
    /// Final hidden states (after ln_f) of int64 <paramref name="tokens"/> (B, T) → (B, T, C).
    /// </summary>
    /// <param name="attentionMask">(B, T), nonzero/true for real tokens, 0/false for padding. Padding
    /// keys are hidden from every query. Not needed for right padding (causality already hides it).</param>
    /// <param name="positionIds">(B, T) int64 positions; default 0..T−1 for every row. With left padding
    /// pass each row's own count (cumsum(mask) − 1) so a prompt's first real token is at position 0.</param>
    public Tensor Hidden(Tensor tokens, Tensor? attentionMask = null, Tensor? positionIds = null)
    {
        if (tokens.Dim != 2) throw new ArgumentException($"tokens must be (batch, time), got [{string.Join(", ", tokens.Shape)}]");
        if (tokens.Dtype != ScalarType.Int64) throw new ArgumentException($"tokens must be int64, got {tokens.Dtype}");
        var (b, t) = (tokens.Size(0), tokens.Size(1));
        if (t < 1) throw new ArgumentException("tokens must hold at least one position");
        if (t > Config.ContextLength)
            throw new ArgumentException($"sequence of {t} tokens exceeds the model's context of {Config.ContextLength} (n_positions)");
        CheckCompanion(attentionMask, "attentionMask", b, t);
        CheckCompanion(positionIds, "positionIds", b, t);

        using var scope = DisposeScope.Enter();
        var mask = AttentionMask(b, t, attentionMask);                     // (T, T) or (B·H, T, T)
        var positions = positionIds ?? Tensor.Arange(0, t).Unsqueeze(0);  // (B or 1, T)
        var x = Wte.Forward(tokens) + Wpe.Forward(positions);              // (B, T, C)
        x = Functional.Dropout(x, Config.Dropout, Training, DropoutGenerator);
        foreach (var block in H) x = block.Forward(x, mask);               // (B, T, C)
        return LnF.Forward(x).MoveToOuterScope();                          // (B, T, C)
    }

    /// <summary>The additive mask every block adds to its attention scores: 0 where query i may see
    /// key j, <see cref="float.MinValue"/> for the future (j &gt; i) and for padding keys.</summary>
    private Tensor AttentionMask(long b, long t, Tensor? attentionMask)
    {
        using var scope = DisposeScope.Enter();
        if (attentionMask is null)
            return Tensor.Full([t, t], float.MinValue).Triu(1).MoveToOuterScope();   // (T, T), broadcast over B·H
        var future = Functional.CausalMask(t).View(1, 1, t, t);                      // (1, 1, T, T) bool
        var padding = attentionMask.Eq(0).View(b, 1, 1, t);                          // (B, 1, 1, T) bool
        var hidden = future.LogicalOr(padding);                                        // (B, 1, T, T) bool
        var additive = Tensor.Zeros([b, 1, t, t]).MaskedFill(hidden, float.MinValue);  // (B, 1, T, T)
        var heads = Config.Heads;
        return additive.Expand(b, heads, t, t).Reshape(b * heads, t, t).MoveToOuterScope(); // (B·H, T, T)
    }

    private static void CheckCompanion(Tensor? companion, string name, long b, long t)
    {
        if (companion is null) return;
        var shape = companion.Shape;
        if (shape.Length != 2 || shape[0] != b || shape[1] != t)
            throw new ArgumentException($"{name} must be ({b}, {t}) like the tokens, got [{string.Join(", ", shape)}]");
    }

    private static ulong DrawSeed(Generator init)
    {
        using var scope = DisposeScope.Enter();
        return (ulong)Tensor.RandInt(0, long.MaxValue, [1], init).ToInt64();
    }

    public override void Dispose()
    {
        base.Dispose();
        ownedDropoutGenerator?.Dispose();
    }
}
