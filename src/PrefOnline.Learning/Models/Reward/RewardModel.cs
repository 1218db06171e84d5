using PrefOnline.Learning.Models.LogProbs;
using PrefOnline.Learning.Tokenization;
using PrefOnline.Torch;
using PrefOnline.Torch.Modules;

namespace PrefOnline.Learning.Models.Reward;

/// <summary>
/// A scalar reward r(x, y): a GPT-2 trunk (same blocks as the policy, no LM head) and a linear head
/// reading the hidden state of the sequence's last real token, as Hugging Face's
/// GPT2ForSequenceClassification with one label does. Parameter names match it:
/// <c>transformer.*</c> and <c>score.weight</c> [1, C], plus <c>score.bias</c> [1] (which the
/// Hugging Face head lacks: a Bradley–Terry loss cannot see it, but rating regression needs an offset).
/// </summary>
public sealed class RewardModel : Module
{
    /// <param name="config">The trunk's shape.</param>
    /// <param name="init">Draws the GPT-2 init of trunk and head; null only when weights are about to be loaded.</param>
    public RewardModel(Gpt2Config config, Generator? init)
    {
        Transformer = RegisterModule("transformer", new Gpt2Model(config, init));
        Head = RegisterModule("score", new Linear(config.Width, 1, bias: true, init));
        if (init is not null) Head.Weight.NormalInPlace(0, Gpt2Model.InitStd, init);
        Head.Bias!.Fill(0);
    }

    public static RewardModel Create(Gpt2Config config, ulong seed)
    {
        using var init = new Generator(seed);
        return new RewardModel(config, init);
    }

    /// <summary>A reward model whose trunk starts as a copy of <paramref name="policy"/>'s (the usual
    /// start: the policy already reads the domain) and whose head is freshly initialised.</summary>
    public static RewardModel FromPolicy(PolicyModel policy, ulong seed)
    {
        var model = Create(policy.Config, seed);
        try
        {
            model.Transformer.LoadStateDict(policy.StateDict());
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    public Gpt2Model Transformer { get; }

    /// <summary>The scalar head, named <c>score</c> in the state dict: weight [1, C], bias [1].</summary>
    public Linear Head { get; }

    public Gpt2Config Config => Transformer.Config;

    /// <summary>Rewards (B) of the batch's sequences, read at each row's last real token. Carries the
    /// gradient in grad mode.</summary>
    public Tensor Forward(SequenceBatch batch)
    {
        if (batch.MaxTokenId >= Config.VocabularySize)
            throw new ArgumentException($"token id {batch.MaxTokenId} is outside the model's vocabulary of {Config.VocabularySize}");
        using var scope = DisposeScope.Enter();
        var hidden = Transformer.Hidden(batch.Tokens);                             // (B, T, C)
        var (b, c) = (hidden.Size(0), hidden.Size(2));
        var index = batch.LastTokenPositions.View(b, 1, 1).Expand(b, 1, c);        // (B, 1, C)
        var last = hidden.Gather(1, index).Squeeze(1);                             // (B, C)
        return Head.Forward(last).Squeeze(-1).MoveToOuterScope();                 // (B)
    }

    /// <summary>
    /// Rewards of preference pairs from ONE forward over 2B rows (chosen rows first): (chosen (B),
    /// rejected (B)), with gradient in grad mode — what <see cref="RewardLoss.BradleyTerry"/> takes.
    /// </summary>
    public (Tensor Chosen, Tensor Rejected) PairRewards(ITokenizer tokenizer, IReadOnlyList<PreferencePair> pairs)
    {
        if (pairs.Count == 0) throw new ArgumentException("no preference pairs");
        var rows = pairs.Select(p => (p.Prompt, p.Chosen)).Concat(pairs.Select(p => (p.Prompt, p.Rejected))).ToList();
        using var batch = SequenceBatch.FromText(tokenizer, rows, Config.ContextLength);
        using var scope = DisposeScope.Enter();
        var rewards = Forward(batch);                                              // (2B)
        var chosen = rewards.Slice(0, 0, pairs.Count);                             // (B)
        var rejected = rewards.Slice(0, pairs.Count, 2L * pairs.Count);           // (B)
        return (chosen.MoveToOuterScope(), rejected.MoveToOuterScope());
    }

    /// <summary>Scores (prompt, completion) pairs in batches of <paramref name="batchSize"/>, without
    /// gradient and without dropout (eval mode for the call; the previous mode is restored).</summary>
    public float[] Score(ITokenizer tokenizer, IReadOnlyList<(string Prompt, string Completion)> items, int batchSize = 32)
    {
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "must be at least 1");
        var scores = new float[items.Count];
        var wasTraining = Training;
        Eval();
        try
        {
            using var noGrad = NoGradScope.Enter();
            for (var start = 0; start < items.Count; start += batchSize)
            {
                var chunk = items.Skip(start).Take(batchSize).ToList();
                using var batch = SequenceBatch.FromText(tokenizer, chunk, Config.ContextLength);
                using var scope = DisposeScope.Enter();
                Forward(batch).ToArray<float>().CopyTo(scores, start);
            }
        }
        finally
        {
            Train(wasTraining);
        }
        return scores;
    }

    /// <summary>Accuracy and mean margin on held-out pairs (no gradient, eval mode).</summary>
    public RewardEvaluation Evaluate(ITokenizer tokenizer, IReadOnlyList<PreferencePair> pairs, int batchSize = 32)
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
