using PrefOnline.Learning.Models.Adapters;
using PrefOnline.Learning.Models.LogProbs;
using PrefOnline.Learning.Tokenization;
using TorchSharp;
using static TorchSharp.torch;
using PrefOnline.Tensors;
using TorchSharp.Modules;

namespace PrefOnline.Learning.Models.Reward;

/// <summary>
/// A scalar reward r(x, y): a decoder trunk of the policy's family (same blocks, no LM head) and a
/// linear head reading the hidden state of the sequence's last real token, as Hugging Face's
/// *ForSequenceClassification with one label does. Parameter names match theirs: the trunk under its
/// Hugging Face name (<c>transformer.*</c> for GPT-2, <c>model.*</c> for the Llama family) and
/// <c>score.weight</c> [1, C], plus <c>score.bias</c> [1] (which the Hugging Face head lacks: a
/// Bradley–Terry loss cannot see it, but rating regression needs an offset).
/// </summary>
public sealed class RewardModel : nn.Module<SequenceBatch, Tensor>
{
    private readonly DecoderTrunk trunk;
    private readonly Linear score;

    /// <param name="config">The trunk's shape and family.</param>
    /// <param name="init">Draws the family's init of trunk and head; null only when weights are about to be loaded.</param>
    public RewardModel(DecoderConfig config, Generator? init) : base(nameof(RewardModel))
    {
        trunk = config.CreateTrunk(init);
        score = nn.Linear(config.Width, 1, hasBias: true);
        // Registered by hand: the trunk's name depends on the family (RegisterComponents would use the field's).
        register_module(config.TrunkModuleName, trunk);
        register_module(nameof(score), score);
        using var noGrad = no_grad();
        if (init is not null)
        {
            // torch.nn.Linear's own init draws (weight, then bias) from the seeded generator, then N(0, 0.02²) (both families' initializer_range).
            var bound = 1 / Math.Sqrt(config.Width);
            score.weight!.uniform_(-bound, bound, init);
            score.bias!.uniform_(-bound, bound, init);
            score.weight.normal_(0, Gpt2Model.InitStd, init);
        }
        score.bias!.fill_(0);
    }

    /// <summary>A freshly initialised reward model on <paramref name="placement"/> (CPU float32 by default).</summary>
    public static RewardModel Create(DecoderConfig config, ulong seed, TensorPlacement? placement = null)
    {
        using var init = new Generator(seed);
        var model = new RewardModel(config, init);
        try
        {
            return model.Place(placement ?? TensorPlacement.Cpu);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>A reward model whose trunk starts as a copy of <paramref name="policy"/>'s (the usual
    /// start: the policy already reads the domain) and whose head is freshly initialised; on the policy's placement.</summary>
    public static RewardModel FromPolicy(PolicyModel policy, ulong seed)
    {
        var model = Create(policy.Config, seed, policy.Placement);
        try
        {
            StateDicts.Load(model.Trunk, policy.Trunk.state_dict());
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A reward model for a LoRA run: <see cref="FromPolicy"/> (the trunk the base weights of <paramref name="policy"/>,
    /// which must be frozen: a LoRA policy's base) with fresh LoRA adapters on the trunk, drawn from
    /// <paramref name="seed"/>: the trunk stays frozen at the base, sharing the policy's base tensors (no second copy
    /// in memory, see <see cref="ShareFrozenTrunk"/>); only the adapters and the score head train.
    /// </summary>
    public static RewardModel FromPolicyWithAdapters(PolicyModel policy, LoraOptions options, ulong seed)
    {
        var model = FromPolicy(policy, seed);
        try
        {
            // A's draws come from their own generator, so the head's init is what a full fine-tune would draw.
            using var init = new Generator(seed ^ 0x5DEECE66DUL);
            LoraAdapters.AttachToReward(model, options, init, dropoutSeed: seed ^ 0x9E3779B97F4A7C15UL);
            model.ShareFrozenTrunk(policy);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Points every trunk tensor at the storage of <paramref name="basePolicy"/>'s trunk tensor of the same name
    /// (Tensor.set_: same values, one copy in memory; this model's own copy is freed). Only for a frozen trunk under
    /// LoRA adapters, beside a policy whose base is frozen too: nothing writes into either in place (the optimizers hold
    /// adapters and heads only; placing either model elsewhere gives it its own tensors again).
    /// </summary>
    internal void ShareFrozenTrunk(PolicyModel basePolicy)
    {
        if (Adapters is null) throw new InvalidOperationException("only a frozen trunk (under LoRA adapters) may share the base's tensors");
        if (basePolicy.Placement != Placement) throw new ArgumentException("the base is on another placement", nameof(basePolicy));
        var source = basePolicy.Trunk.state_dict();
        var own = Trunk.state_dict();
        if (!own.Keys.ToHashSet(StringComparer.Ordinal).SetEquals(source.Keys))
            throw new ArgumentException("the base's trunk has other tensors than this reward model's", nameof(basePolicy));
        using var noGrad = no_grad();
        foreach (var (name, tensor) in own)
        {
            var shared = source[name];
            if (!tensor.shape.SequenceEqual(shared.shape) || tensor.dtype != shared.dtype)
                throw new ArgumentException($"{name}: the base's tensor is [{string.Join(", ", shared.shape)}] {shared.dtype}, this model's [{string.Join(", ", tensor.shape)}] {tensor.dtype}", nameof(basePolicy));
            tensor.set_(shared);
        }
    }

    /// <summary>The LoRA adapters on the trunk (null: every weight trains). The model owns them: placing it moves
    /// them, disposing it disposes them.</summary>
    public LoraAdapters? Adapters { get; internal set; }

    /// <summary>
    /// What an optimizer should update: with <see cref="Adapters"/>, the adapters' A and B then the head's weight and
    /// bias (the trunk is frozen); otherwise every parameter in state-dict order. Look them up again after placing
    /// the model (moving replaces parameter objects).
    /// </summary>
    public IReadOnlyList<Parameter> TrainableParameters() =>
        Adapters is { } adapters ? [.. adapters.TrainableParameters(), .. score.parameters()] : parameters().ToList();

    /// <summary>The trunk, named as in Hugging Face's *ForSequenceClassification (<c>transformer</c> or <c>model</c>).</summary>
    public DecoderTrunk Trunk => trunk;

    /// <summary>The scalar head, named <c>score</c> in the state dict: weight [1, C], bias [1].</summary>
    public Linear Head => score;

    public DecoderConfig Config => trunk.Config;

    public TensorPlacement Placement => trunk.Placement;

    /// <summary>Moves trunk and head to <paramref name="placement"/> (see <see cref="DecoderTrunk.Place"/>).</summary>
    public RewardModel Place(TensorPlacement placement)
    {
        placement.EnsureAvailable();
        if (placement == Placement) return this;
        trunk.Place(placement);
        score.to(placement.Device, placement.Dtype);
        Adapters?.PlacedAt(placement);
        return this;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && Adapters is { } adapters)
        {
            Adapters = null;   // detached first, so disposing them does not unfreeze a dying model
            adapters.Dispose();
        }
        base.Dispose(disposing);
    }

    public override Tensor forward(SequenceBatch batch) => Forward(batch);

    /// <summary>Rewards (B, float32) of the batch's sequences, read at each row's last real token.
    /// Carries the gradient in grad mode.</summary>
    public Tensor Forward(SequenceBatch batch)
    {
        if (batch.MaxTokenId >= Config.VocabularySize)
            throw new ArgumentException($"token id {batch.MaxTokenId} is outside the model's vocabulary of {Config.VocabularySize}");
        using var scope = NewDisposeScope();
        var device = Trunk.TokenEmbedding.device;
        var hidden = Trunk.Hidden(batch.Tokens.to(device));                  // (B, T, C)
        var (b, c) = (hidden.size(0), hidden.size(2));
        var index = batch.LastTokenPositions.to(device).view(b, 1, 1).expand(b, 1, c); // (B, 1, C)
        var last = hidden.gather(1, index).squeeze(1);                             // (B, C)
        return score.forward(last).squeeze(-1).to(ScalarType.Float32).MoveToOuterDisposeScope(); // (B), float32 whatever the model's dtype
    }

    /// <summary>
    /// Rewards of preference pairs (the texts of <see cref="TrainingData.PreferencePair"/>) from ONE forward over 2B rows (chosen rows first): (chosen (B),
    /// rejected (B)), with gradient in grad mode — what <see cref="RewardLoss.BradleyTerry"/> takes.
    /// </summary>
    public (Tensor Chosen, Tensor Rejected) PairRewards(ITokenizer tokenizer, IReadOnlyList<(string Prompt, string Chosen, string Rejected)> pairs)
    {
        if (pairs.Count == 0) throw new ArgumentException("no preference pairs");
        var rows = pairs.Select(p => (p.Prompt, p.Chosen)).Concat(pairs.Select(p => (p.Prompt, p.Rejected))).ToList();
        using var batch = SequenceBatch.FromText(tokenizer, rows, Config.ContextLength);
        using var scope = NewDisposeScope();
        var rewards = Forward(batch);                                              // (2B)
        var chosen = rewards.narrow(0, 0, pairs.Count);                            // (B)
        var rejected = rewards.narrow(0, pairs.Count, pairs.Count);                // (B)
        return (chosen.MoveToOuterDisposeScope(), rejected.MoveToOuterDisposeScope());
    }

    /// <summary>Scores (prompt, completion) pairs in batches of <paramref name="batchSize"/>, without
    /// gradient and without dropout (eval mode for the call; the previous mode is restored).</summary>
    public float[] Score(ITokenizer tokenizer, IReadOnlyList<(string Prompt, string Completion)> items, int batchSize = 32)
    {
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "must be at least 1");
        var scores = new float[items.Count];
        var wasTraining = training;
        eval();
        try
        {
            using var noGrad = no_grad();
            for (var start = 0; start < items.Count; start += batchSize)
            {
                var chunk = items.Skip(start).Take(batchSize).ToList();
                using var batch = SequenceBatch.FromText(tokenizer, chunk, Config.ContextLength);
                using var scope = NewDisposeScope();
                Forward(batch).to(ScalarType.Float32).cpu().data<float>().ToArray().CopyTo(scores, start);
            }
        }
        finally
        {
            train(wasTraining);
        }
        return scores;
    }

    /// <summary>Accuracy and mean margin on held-out pairs (no gradient, eval mode).</summary>
    public RewardEvaluation Evaluate(ITokenizer tokenizer, IReadOnlyList<(string Prompt, string Chosen, string Rejected)> pairs, int batchSize = 32)
    {
        if (pairs.Count == 0) throw new ArgumentException("no pairs to evaluate");
        var chosen = Score(tokenizer, pairs.Select(p => (p.Prompt, p.Chosen)).ToList(), batchSize);
        var rejected = Score(tokenizer, pairs.Select(p => (p.Prompt, p.Rejected)).ToList(), batchSize);
        double correct = 0, margin = 0;
        for (var i = 0; i < pairs.Count; i++)
        {
            var delta = (double)chosen[i] - rejected[i];
            correct += delta > 0 ? 1 : delta == 0 ? 0.5 : 0;
            margin += delta;
        }
        return new RewardEvaluation(correct / pairs.Count, margin / pairs.Count, pairs.Count);
    }
}
