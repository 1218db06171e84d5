using System.Collections.Immutable;
using PrefOnline.Learning.Models;
using PrefOnline.Learning.Models.LogProbs;
using PrefOnline.Learning.Tests.Models;
using PrefOnline.Learning.Tokenization;
using PrefOnline.Learning.TrainingData;
using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Tests.Training;

/// <summary>Tiny policies, scored rollouts and human pairs for the learner's tests.</summary>
internal static class LearnerFixtures
{
    public static readonly DateTimeOffset Time = new(2024, 5, 1, 12, 0, 0, TimeSpan.Zero);

    public static ITokenizer Tokenizer => ByteTokenizer.Instance;

    public static PolicyModel Policy(ulong seed = 3, double dropout = 0) => PolicyModel.Create(ModelTestSupport.Micro(dropout), seed);

    /// <summary>K rollouts for each of <paramref name="prompts"/> prompts: random lowercase completions
    /// (2–7 letters, then end-of-sequence), behaviour log-probs from <paramref name="policy"/> itself
    /// (so PPO's ratio starts at exactly 1), reward by <paramref name="reward"/>(prompt index, sample index, text).</summary>
    public static List<Rollout> Rollouts(PolicyModel policy, int prompts, int k, Func<int, int, string, double> reward, int seed, long version = 0)
    {
        var random = new Random(seed);
        var items = new List<(string PromptId, string Prompt, string Completion, int P, int S)>();
        for (var p = 0; p < prompts; p++)
        {
            var seen = new HashSet<string>();
            for (var s = 0; s < k; s++)
            {
                string text;
                do text = new string(Enumerable.Range(0, random.Next(2, 8)).Select(_ => (char)('a' + random.Next(26))).ToArray());
                while (!seen.Add(text));
                items.Add(($"p{seed}-{p}", $"q{p}:", text, p, s));
            }
        }
        var rows = items.Select(i => (Encode(i.Prompt), Completion(i.Completion))).ToList();
        var behaviour = TokenLogProbs(policy, rows);
        return items.Select((i, n) => new Rollout
        {
            Id = $"r{seed}-{i.P}-{i.S}",
            PromptId = i.PromptId,
            Prompt = i.Prompt,
            Completion = i.Completion,
            PromptTokens = [.. rows[n].Item1],
            CompletionTokens = [.. rows[n].Item2],
            BehaviourLogProbs = [.. behaviour[n]],
            Reward = reward(i.P, i.S, i.Completion),
            RewardSource = RewardSource.Programmatic,
            UpdateCount = version,
            GeneratedAt = Time,
            ScoredAt = Time,
        }).ToList();
    }

    public static PreferencePair HumanPair(string id, string prompt, string chosen, string rejected, bool withTokens, long version = 0) => new()
    {
        Id = id,
        Prompt = prompt,
        Chosen = chosen,
        Rejected = rejected,
        PromptTokens = withTokens ? [.. Encode(prompt)] : ImmutableArray<int>.Empty,
        ChosenTokens = withTokens ? [.. Completion(chosen)] : ImmutableArray<int>.Empty,
        RejectedTokens = withTokens ? [.. Completion(rejected)] : ImmutableArray<int>.Empty,
        Source = PairSource.Human,
        UpdateCount = version,
        ReceivedAt = Time,
    };

    public static int[] Encode(string text) => Tokenizer.Encode(text);

    public static int[] Completion(string text) => [.. Tokenizer.Encode(text), Tokenizer.EndOfSequenceId];

    /// <summary>Per-token log π of each row's completion (no grad, eval mode).</summary>
    public static float[][] TokenLogProbs(PolicyModel policy, IReadOnlyList<(int[] Prompt, int[] Completion)> rows)
    {
        var wasTraining = policy.training;
        policy.eval();
        try
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            using var batch = SequenceBatch.FromTokens(rows, policy.Config.ContextLength, Tokenizer.PaddingId);
            var lp = SequenceLogProbs.Compute(policy, batch, LogProbReduction.Sum);
            var flat = lp.TokenLogProbs.data<float>().ToArray();
            var tc = (int)lp.TokenLogProbs.size(1);
            return rows.Select((r, i) => flat.AsSpan(i * tc, batch.CompletionLengths[i]).ToArray()).ToArray();
        }
        finally
        {
            policy.train(wasTraining);
        }
    }

    /// <summary>log π(completion | prompt) of each rollout under the policy (no grad, eval mode).</summary>
    public static double[] LogProbs(PolicyModel policy, IEnumerable<Rollout> rollouts) =>
        TokenLogProbs(policy, rollouts.Select(r => (r.PromptTokens.ToArray(), r.CompletionTokens.ToArray())).ToList())
            .Select(t => t.Sum(v => (double)v)).ToArray();

    public static double[] LogProbs(PolicyModel policy, IEnumerable<(string Prompt, string Completion)> texts) =>
        TokenLogProbs(policy, texts.Select(t => (Encode(t.Prompt), Completion(t.Completion))).ToList())
            .Select(t => t.Sum(v => (double)v)).ToArray();

    /// <summary>Every weight's bytes in name order: equal arrays ⇔ bit-identical models.</summary>
    public static byte[] WeightBytes(PolicyModel policy) => TensorBytes(policy.state_dict());

    public static byte[] TensorBytes(IReadOnlyDictionary<string, Tensor> tensors)
    {
        using var scope = NewDisposeScope();
        using var buffer = new MemoryStream();
        foreach (var (name, tensor) in tensors.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            buffer.Write(System.Text.Encoding.UTF8.GetBytes(name));
            var bytes = tensor.numel() == 0 ? [] : tensor.cpu().contiguous().bytes.ToArray();
            buffer.Write(bytes);
        }
        return buffer.ToArray();
    }
}
