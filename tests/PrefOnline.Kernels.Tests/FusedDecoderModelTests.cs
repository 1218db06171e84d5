using static PrefOnline.Kernels.Tests.KernelTestSupport;

namespace PrefOnline.Kernels.Tests;

/// <summary>
/// The fused decoder against the source of truth, the product's GPT-2 (<see cref="SpreadPolicy"/>: a TorchSharp <see cref="PrefOnline.Learning.Models.PolicyModel"/>):
/// same logits, the model's log-probs for the tokens it samples, the model's argmax path when greedy,
/// for every compiled kernel set, every thread count and ragged batches.
/// </summary>
public class FusedDecoderModelTests
{
    private const double Tolerance = 1e-4;

    public static TheoryData<string, KernelLevel> ShapesAndLevels()
    {
        var data = new TheoryData<string, KernelLevel>();
        foreach (var shape in new[] { "tiny", "odd" })
        foreach (var level in AllLevels)
            data.Add(shape, level);
        return data;
    }

    public static TheoryData<KernelLevel> Levels() => new(AllLevels);

    [Theory]
    [MemberData(nameof(ShapesAndLevels))]
    public void Logits_and_log_probs_equal_the_models_at_every_position(string shapeName, KernelLevel level)
    {
        var shape = ShapeNamed(shapeName);
        using var model = SpreadPolicy.Create(shape, seed: 1);
        using var decoder = new FusedGpt2Decoder(shape, model.Weights);
        var v = shape.VocabularySize;
        int[][] sequences = [Sequence(1, 1, v), Sequence(2, 5, v), Sequence(3, 17, v), Sequence(4, shape.ContextLength - 3, v)];

        using var forced = new LevelScope(level);
        var logits = decoder.Logits(sequences); // one ragged batch
        for (var i = 0; i < sequences.Length; i++)
        {
            var expected = model.Logits(sequences[i]);
            Assert.Equal(expected.Length, logits[i].Length);
            var logitDiff = expected.Zip(logits[i], (a, b) => Math.Abs(a - b)).Max();
            Assert.True(logitDiff < Tolerance, $"{forced.Effective}, sequence {i} (length {sequences[i].Length}): max |logit diff| {logitDiff:E2}");
            for (var t = 0; t < sequences[i].Length; t++)
            {
                var ours = LogSoftmax(logits[i].AsSpan(t * v, v));
                var theirs = LogSoftmax(expected.AsSpan(t * v, v));
                var diff = ours.Zip(theirs, (a, b) => Math.Abs(a - b)).Max();
                Assert.True(diff < Tolerance, $"{forced.Effective}, sequence {i} position {t}: max |log-prob diff| {diff:E2}");
            }
        }
    }

    /// <summary>Ragged prompts, several samples each, sampling as the product does (temperature,
    /// top-k, top-p, suppressed ids, end of sequence): every sampled token's recorded policy log-prob is
    /// the model's log-prob of that token after the same prefix.</summary>
    [Theory]
    [MemberData(nameof(Levels))]
    public void Sampled_tokens_carry_the_models_log_probs(KernelLevel level)
    {
        var shape = ShapeNamed("tiny");
        using var model = SpreadPolicy.Create(shape, seed: 2);
        using var decoder = new FusedGpt2Decoder(shape, model.Weights);
        var v = shape.VocabularySize;
        int[][] prompts = [Sequence(11, 1, v), Sequence(12, 9, v), Sequence(13, 3, v), Sequence(14, 16, v)];
        const int k = 3;
        var requests = new[]
        {
            new FusedDecodeRequest { Prompts = prompts, SamplesPerPrompt = k, MaxNewTokens = 24, RowSeeds = Seeds(prompts.Length * k, 100) },
            new FusedDecodeRequest
            {
                Prompts = prompts, SamplesPerPrompt = k, MaxNewTokens = 24, Temperature = 0.7, TopK = 20, TopP = 0.9, SuppressedTokens = [0, 257],
                EndOfSequenceId = 1, RowSeeds = Seeds(prompts.Length * k, 200),
            },
        };

        using var forced = new LevelScope(level);
        foreach (var request in requests)
        {
            var rows = decoder.Generate(request);
            Assert.Equal(prompts.Length * k, rows.Count);
            foreach (var row in rows)
            {
                var prompt = prompts[row.PromptIndex];
                Assert.NotEmpty(row.Tokens);
                var expected = model.Logits([.. prompt, .. row.Tokens]);
                for (var t = 0; t < row.Tokens.Length; t++)
                {
                    var logProbs = LogSoftmax(expected.AsSpan((prompt.Length - 1 + t) * v, v));
                    var diff = Math.Abs(logProbs[row.Tokens[t]] - row.PolicyLogProbs[t]);
                    Assert.True(diff < Tolerance,
                        $"{forced.Effective}, prompt {row.PromptIndex} sample {row.SampleIndex} token {t}: log-prob {row.PolicyLogProbs[t]} vs the model's {logProbs[row.Tokens[t]]}");
                    if (request.Temperature == 1 && request.TopK == 0 && request.TopP == 1)
                        Assert.Equal(row.PolicyLogProbs[t], row.SamplerLogProbs[t], 1e-4);
                    Assert.DoesNotContain(row.Tokens[t], request.SuppressedTokens);
                }
                if (row.Finish == FusedDecodeFinish.EndOfSequence) Assert.Equal(request.EndOfSequenceId, row.Tokens[^1]);
            }
        }
    }

    [Theory]
    [MemberData(nameof(ShapesAndLevels))]
    public void Greedy_continuations_follow_the_models_argmax_path(string shapeName, KernelLevel level)
    {
        var shape = ShapeNamed(shapeName);
        using var model = SpreadPolicy.Create(shape, seed: 3);
        using var decoder = new FusedGpt2Decoder(shape, model.Weights);
        var v = shape.VocabularySize;
        int[][] prompts = [Sequence(21, 1, v), Sequence(22, 9, v), Sequence(23, 3, v)];
        const int maxNew = 20;

        using var forced = new LevelScope(level);
        var batched = decoder.Generate(new FusedDecodeRequest { Prompts = prompts, Temperature = 0, MaxNewTokens = maxNew, RowSeeds = [1, 2, 3] });
        var alone = decoder.Generate(new FusedDecodeRequest { Prompts = [prompts[0]], Temperature = 0, MaxNewTokens = maxNew, RowSeeds = [1] })[0];
        Assert.Equal(batched[0].Tokens, alone.Tokens);
        Assert.Equal(batched[0].PolicyLogProbs, alone.PolicyLogProbs);

        for (var p = 0; p < prompts.Length; p++)
        {
            var row = batched[p];
            Assert.Equal(FusedDecodeFinish.Length, row.Finish);
            var sequence = prompts[p].ToList();
            for (var t = 0; t < maxNew; t++)
            {
                var logits = model.Logits([.. sequence]).AsSpan((sequence.Count - 1) * v, v);
                var next = ArgMax(logits);
                Assert.True(next == row.Tokens[t], $"{forced.Effective}, prompt {p} step {t}: the model's argmax is {next}, the decoder chose {row.Tokens[t]}");
                Assert.True(Math.Abs(LogSoftmax(logits)[next] - row.PolicyLogProbs[t]) < Tolerance,
                    $"{forced.Effective}, prompt {p} step {t}: log-prob {row.PolicyLogProbs[t]} vs the model's {LogSoftmax(logits)[next]}");
                Assert.Equal(0f, row.SamplerLogProbs[t]); // greedy samples from a point mass
                sequence.Add(next);
            }
        }
    }

    [Fact]
    public void The_small_preset_matches_the_model()
    {
        var shape = ShapeNamed("small");
        using var model = SpreadPolicy.Create(shape, seed: 4);
        using var decoder = new FusedGpt2Decoder(shape, model.Weights);
        var v = shape.VocabularySize;
        var prompt = Sequence(31, 16, v);
        var row = decoder.Generate(new FusedDecodeRequest { Prompts = [prompt], Temperature = 0, MaxNewTokens = 16, RowSeeds = [0] })[0];
        var expected = model.Logits([.. prompt, .. row.Tokens]);
        var actual = decoder.Logits([[.. prompt, .. row.Tokens]])[0];
        var diff = expected.Zip(actual, (a, b) => Math.Abs(a - b)).Max();
        var scale = expected.Max(Math.Abs);
        Assert.True(diff < Tolerance * Math.Max(1, scale), $"max |logit diff| {diff:E2} at logits up to {scale:F1}");
        for (var t = 0; t < row.Tokens.Length; t++)
            Assert.Equal(ArgMax(expected.AsSpan((prompt.Length - 1 + t) * v, v)), row.Tokens[t]);
    }

    /// <summary>Rows batched with other prompts of other lengths give bit-for-bit what each prompt gives
    /// alone (no padding, per-row caches and random streams).</summary>
    [Fact]
    public void Ragged_batches_give_each_row_exactly_its_result_alone()
    {
        var shape = ShapeNamed("tiny");
        using var model = SpreadPolicy.Create(shape, seed: 5);
        using var decoder = new FusedGpt2Decoder(shape, model.Weights);
        var v = shape.VocabularySize;
        int[][] prompts = [Sequence(1, 1, v), Sequence(2, 4, v), Sequence(3, 11, v), Sequence(4, 7, v), Sequence(5, 2, v)];
        const int k = 2;
        var seeds = Seeds(prompts.Length * k, 1000);
        FusedDecodeRequest Request(int[][] p, ulong[] s) => new()
        {
            Prompts = p, SamplesPerPrompt = k, Temperature = 0.9, TopP = 0.95, MaxNewTokens = 30, EndOfSequenceId = 7, RowSeeds = s,
        };
        var batched = decoder.Generate(Request(prompts, seeds));
        for (var p = 0; p < prompts.Length; p++)
        {
            var alone = decoder.Generate(Request([prompts[p]], seeds[(p * k)..((p + 1) * k)]));
            for (var s = 0; s < k; s++)
            {
                var row = batched[p * k + s];
                Assert.Equal((p, s), (row.PromptIndex, row.SampleIndex));
                Assert.Equal(alone[s].Tokens, row.Tokens);
                Assert.Equal(alone[s].PolicyLogProbs, row.PolicyLogProbs);
                Assert.Equal(alone[s].SamplerLogProbs, row.SamplerLogProbs);
                Assert.Equal(alone[s].Finish, row.Finish);
            }
        }
    }

    /// <summary>The decoder reads the model's weights at every call: an in-place update (what an
    /// optimizer step does) is used by the very next call, with no new decoder.</summary>
    [Fact]
    public void In_place_updates_of_the_model_are_seen_by_the_next_call()
    {
        var shape = ShapeNamed("tiny");
        using var model = SpreadPolicy.Create(shape, seed: 6);
        using var decoder = new FusedGpt2Decoder(shape, model.Weights);
        var sequence = Sequence(41, 12, shape.VocabularySize);
        var before = decoder.Logits([sequence])[0];

        model.UpdateInPlace(seed: 7);
        var after = decoder.Logits([sequence])[0];
        var expected = model.Logits(sequence);
        Assert.True(before.Zip(after, (a, b) => Math.Abs(a - b)).Max() > 0.01, "the update did not reach the decoder");
        Assert.True(expected.Zip(after, (a, b) => Math.Abs(a - b)).Max() < Tolerance);
    }

    /// <summary>Every output element is computed by one thread with a fixed order of additions, so any
    /// thread count gives identical bits (and the pool's hand-offs lose or repeat no part).</summary>
    [Fact]
    public void Every_thread_count_gives_identical_results()
    {
        var shape = ShapeNamed("tiny");
        using var model = SpreadPolicy.Create(shape, seed: 8);
        using var decoder = new FusedGpt2Decoder(shape, model.Weights);
        var v = shape.VocabularySize;
        var request = new FusedDecodeRequest
        {
            Prompts = Enumerable.Range(0, 8).Select(i => Sequence(i, 3 + 2 * i, v)).ToArray(), SamplesPerPrompt = 2, Temperature = 0.9, TopP = 0.95,
            MaxNewTokens = 20, RowSeeds = Seeds(16, 0),
        };
        var single = new FusedDecodeRequest { Prompts = [Sequence(51, 16, v)], MaxNewTokens = 40, RowSeeds = [3] };
        (IReadOnlyList<FusedDecodedRow> Batch, IReadOnlyList<FusedDecodedRow> Single, float[] Logits) Run(int threads)
        {
            using var scope = new ThreadsScope(threads);
            return (decoder.Generate(request), decoder.Generate(single), decoder.Logits(request.Prompts)[7]);
        }
        var one = Run(1);
        foreach (var threads in new[] { 2, 3, 4 })
        {
            var other = Run(threads);
            Assert.Equal(one.Logits, other.Logits);
            Assert.Equal(one.Batch.Select(r => r.Tokens), other.Batch.Select(r => r.Tokens));
            Assert.Equal(one.Batch.Select(r => r.PolicyLogProbs), other.Batch.Select(r => r.PolicyLogProbs));
            Assert.Equal(one.Single[0].Tokens, other.Single[0].Tokens);
            Assert.Equal(one.Single[0].PolicyLogProbs, other.Single[0].PolicyLogProbs);
        }
    }

    private static ulong[] Seeds(int count, ulong first) => Enumerable.Range(0, count).Select(i => first + (ulong)i).ToArray();
}
