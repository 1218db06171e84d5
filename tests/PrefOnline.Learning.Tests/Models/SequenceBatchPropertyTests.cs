using FsCheck;
using FsCheck.Fluent;
using PrefOnline.Learning.Models.LogProbs;
using PrefOnline.Learning.Tests.Tokenization;

namespace PrefOnline.Learning.Tests.Models;

/// <summary>The batch layout every log-prob and reward computation relies on, for random rows and contexts.</summary>
public sealed class SequenceBatchPropertyTests
{
    private const int Pad = 257;

    private static Arbitrary<(int Context, (int[] Prompt, int[] Completion)[] Rows)> Batches()
    {
        var ids = Gen.Choose(0, 256);
        var row = Gen.Choose(1, 40).SelectMany(p => Gen.Choose(0, 40).SelectMany(c =>
            Gen.ArrayOf(ids, p).SelectMany(prompt => Gen.ArrayOf(ids, c).Select(completion => (prompt, completion)))));
        return Gen.Choose(2, 48).SelectMany(context => Gen.Choose(1, 5).SelectMany(n => Gen.ArrayOf(row, n)).Select(rows => (context, rows)))
            .ToArbitrary();
    }

    [Fact]
    public void Layout_follows_the_truncation_policy_and_every_completion_token_is_predicted_from_the_position_before_it()
    {
        PropertyCheck.ForAll(Batches(), sample =>
        {
            var (context, rows) = sample;
            using var batch = SequenceBatch.FromTokens(rows, context, Pad);
            var tokens = batch.Tokens.data<long>().ToArray();
            var t = (int)batch.Tokens.size(1);
            var tc = (int)batch.CompletionTokens.size(1);
            var completionTokens = batch.CompletionTokens.data<long>().ToArray();
            var mask = batch.CompletionMask.data<float>().ToArray();
            var predictors = batch.PredictorPositions.data<long>().ToArray();
            var last = batch.LastTokenPositions.data<long>().ToArray();
            if (t > context) return false;
            for (var i = 0; i < rows.Length; i++)
            {
                var (prompt, completion) = rows[i];
                var (p, c) = (batch.PromptLengths[i], batch.CompletionLengths[i]);
                // The completion is kept whole when it fits beside one prompt token, else cut to its first context − 1 tokens.
                var expectedC = Math.Min(completion.Length, context - 1);
                if (c != expectedC || batch.CompletionTruncated[i] != (completion.Length > context - 1)) return false;
                // The prompt keeps its newest tokens: as many as fit, at least one.
                if (p != Math.Min(prompt.Length, context - c) || p < 1 || batch.PromptTokensDropped[i] != prompt.Length - p) return false;
                for (var j = 0; j < p; j++)
                    if (tokens[i * t + j] != prompt[prompt.Length - p + j]) return false;
                for (var j = 0; j < c; j++)
                {
                    if (tokens[i * t + p + j] != completion[j] || completionTokens[i * tc + j] != completion[j] || mask[i * tc + j] != 1) return false;
                    if (predictors[i * tc + j] != p + j - 1) return false;
                }
                for (var j = c; j < tc; j++)
                    if (mask[i * tc + j] != 0) return false;
                for (var j = p + c; j < t; j++)
                    if (tokens[i * t + j] != Pad) return false;
                if (last[i] != p + c - 1) return false;
            }
            return true;
        }, tests: 200);
    }
}
