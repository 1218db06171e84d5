using PrefOnline.Learning.Models;
using PrefOnline.Learning.Sampling;
using PrefOnline.Learning.Tokenization;
using PrefOnline.Tensors;
using static PrefOnline.Kernels.Tests.KernelTestSupport;

namespace PrefOnline.Kernels.Tests;

/// <summary>
/// The product's two decoders side by side on the same TorchSharp policy: the fused one
/// (<see cref="FusedPolicyDecoder"/>, what <see cref="PolicyDecoderFactory.Default"/> picks for float32
/// GPT-2 on the CPU) and the managed <see cref="TorchSharpDecoder"/> (every other model). Same request,
/// same seeds: the same rows — tokens, finish reasons, and log-probs within float tolerance — for ragged
/// prompts, several samples each, temperature / top-k / top-p, suppressed ids, end of sequence and stop
/// strings.
/// </summary>
public class FusedPolicyDecoderTests
{
    private const double Tolerance = 1e-4;

    public static TheoryData<string, double, int, double> Rules => new()
    {
        { "tiny", 0, 0, 1.0 },
        { "odd", 0, 0, 1.0 },
        { "tiny", 1.0, 0, 1.0 },
        { "odd", 1.0, 0, 1.0 },
        { "tiny", 0.7, 20, 0.9 },
        { "odd", 1.3, 0, 0.8 },
        { "tiny", 0.9, 5, 1.0 },
    };

    [Theory]
    [MemberData(nameof(Rules))]
    public void The_fused_decoder_gives_the_torchsharp_decoders_rows_from_the_same_seeds(string shapeName, double temperature, int topK, double topP)
    {
        var shape = ShapeNamed(shapeName);
        using var policy = SpreadPolicy.Create(shape, seed: 31);
        var v = shape.VocabularySize;
        var request = new DecodeRequest
        {
            Prompts = [Sequence(1, 1, v), Sequence(2, 9, v), Sequence(3, 4, v), Sequence(4, 17, v)], SamplesPerPrompt = 3, MaxNewTokens = 24,
            Temperature = temperature, TopK = topK, TopP = topP, SuppressedTokens = [0], StopIds = [5],
            RowSeeds = Enumerable.Range(0, 12).Select(i => 0x9E3779B97F4A7C15UL * (ulong)(i + 1)).ToArray(),
        };
        using var fused = new FusedPolicyDecoder(policy.Model);
        using var managed = new TorchSharpDecoder(policy.Model);
        var ours = fused.Generate(request);
        var theirs = managed.Generate(request);

        Assert.Equal(theirs.Count, ours.Count);
        var finishes = new HashSet<DecodeFinish>();
        for (var r = 0; r < ours.Count; r++)
        {
            Assert.Equal((theirs[r].PromptIndex, theirs[r].SampleIndex), (ours[r].PromptIndex, ours[r].SampleIndex));
            Assert.True(theirs[r].Tokens.SequenceEqual(ours[r].Tokens),
                $"row {r}: torchsharp sampled [{string.Join(",", theirs[r].Tokens)}], fused [{string.Join(",", ours[r].Tokens)}]");
            Assert.Equal(theirs[r].Finish, ours[r].Finish);
            finishes.Add(ours[r].Finish);
            for (var t = 0; t < ours[r].Tokens.Length; t++)
            {
                Assert.Equal(theirs[r].PolicyLogProbs[t], ours[r].PolicyLogProbs[t], Tolerance);
                Assert.Equal(theirs[r].SamplerLogProbs[t], ours[r].SamplerLogProbs[t], Tolerance);
            }
            Assert.DoesNotContain(0, ours[r].Tokens);
        }
        if (temperature > 0) Assert.True(ours.Select(r => string.Join(",", r.Tokens)).Distinct().Count() > 6, "samples of one prompt should differ");
    }

    /// <summary>Through the product's <see cref="PolicySampler"/>: stop strings cut the text at the same
    /// place, and every completion (text, tokens, log-probs, finish reason, seed) is the same.</summary>
    [Fact]
    public void The_policy_sampler_gives_the_same_completions_with_either_decoder()
    {
        using var policy = SpreadPolicy.Create(ShapeNamed("tiny"), seed: 32);
        using var fused = PolicySampler.Create(policy.Model, ByteTokenizer.Instance, () => 7, PolicyDecoderFactory.FusedOnly);
        using var managed = PolicySampler.Create(policy.Model, ByteTokenizer.Instance, () => 7, PolicyDecoderFactory.TorchSharpOnly);
        Assert.Equal(FusedPolicyDecoder.BackendName, fused.Decoder.Backend);
        Assert.Equal(TorchSharpDecoder.BackendName, managed.Decoder.Backend);
        string[] prompts = ["The cat", "", "a much longer prompt than the others, to make the batch ragged"];
        // A stop string these rows really meet: the commonest printable character of a free run.
        var free = managed.Sample(prompts, new SamplingOptions { SamplesPerPrompt = 2, MaxNewTokens = 40, Seed = 5, Temperature = 0.8, TopP = 0.95 });
        var stop = free.SelectMany(c => c.Text).Where(c => c is > ' ' and < '\x7f').GroupBy(c => c).OrderByDescending(g => g.Count()).First().Key.ToString();
        foreach (var options in new[]
                 {
                     new SamplingOptions { SamplesPerPrompt = 2, MaxNewTokens = 40, Seed = 5, Temperature = 0.8, TopP = 0.95, StopStrings = [stop, "\u00e9t\u00e9"] },
                     new SamplingOptions { SamplesPerPrompt = 3, MaxNewTokens = 30, Seed = 6, TopK = 30, BatchSize = 4 },
                     new SamplingOptions { MaxNewTokens = 30, Temperature = 0, Seed = 7, StopStrings = ["zz"] },
                 })
        {
            var ours = fused.Sample(prompts, options);
            var theirs = managed.Sample(prompts, options);
            Assert.Equal(theirs.Count, ours.Count);
            for (var i = 0; i < ours.Count; i++)
            {
                Assert.Equal(theirs[i].Text, ours[i].Text);
                Assert.Equal(theirs[i].Tokens, ours[i].Tokens);
                Assert.Equal(theirs[i].FinishReason, ours[i].FinishReason);
                Assert.Equal(theirs[i].Seed, ours[i].Seed);
                Assert.Equal(7, ours[i].PolicyVersion);
                for (var t = 0; t < ours[i].Tokens.Length; t++) Assert.Equal(theirs[i].PolicyLogProbs[t], ours[i].PolicyLogProbs[t], Tolerance);
            }
            if (options.StopStrings.Count > 0 && options.Temperature > 0)
                Assert.Contains(ours, c => c.FinishReason == FinishReason.StopString);
        }
    }

    /// <summary>The fused decoder reads the parameters in place: a training step's in-place update is
    /// what the very next call decodes from.</summary>
    [Fact]
    public void An_in_place_update_of_the_policy_is_decoded_from_by_the_next_call()
    {
        using var policy = SpreadPolicy.Create(ShapeNamed("tiny"), seed: 33);
        using var fused = new FusedPolicyDecoder(policy.Model);
        using var managed = new TorchSharpDecoder(policy.Model);
        var request = new DecodeRequest { Prompts = [Sequence(5, 8, 258)], Temperature = 0, MaxNewTokens = 30, RowSeeds = [1] };
        var before = fused.Generate(request)[0];
        policy.UpdateInPlace(seed: 34);
        var after = fused.Generate(request)[0];
        Assert.NotEqual(before.Tokens, after.Tokens);
        Assert.Equal(managed.Generate(request)[0].Tokens, after.Tokens);
    }

    [Fact]
    public void The_factory_picks_the_fused_decoder_for_float32_cpu_policies_and_torchsharp_otherwise()
    {
        var config = Gpt2Config.Tiny();
        using var float32 = PolicyModel.Create(config, seed: 1);
        using var bfloat16 = PolicyModel.Create(config, seed: 1, new TensorPlacement("cpu", "bfloat16"));
        using (var chosen = PolicyDecoderFactory.Default.Create(float32)) Assert.Equal(FusedPolicyDecoder.BackendName, chosen.Backend);
        using (var chosen = PolicyDecoderFactory.Default.Create(bfloat16)) Assert.Equal(TorchSharpDecoder.BackendName, chosen.Backend);
        using (var chosen = PolicyDecoderFactory.Named("torchsharp").Create(float32)) Assert.Equal(TorchSharpDecoder.BackendName, chosen.Backend);
        Assert.Same(PolicyDecoderFactory.Default, PolicyDecoderFactory.Named("auto"));

        var refused = Assert.Throws<NotSupportedException>(() => PolicyDecoderFactory.Named("fused").Create(bfloat16));
        Assert.Contains("fused: it reads float32 weights only (the model is bfloat16)", refused.Message);
        Assert.Contains("unknown decoder 'fast' (known: auto, fused, torchsharp)", Assert.Throws<ArgumentException>(() => PolicyDecoderFactory.Named("fast")).Message);
    }

    /// <summary>The fused kernels stop on one id: a tokenizer with several stop ids (Llama 3 Instruct's) decodes
    /// with TorchSharp under auto, is refused under fused, and a request with several is refused by the fused decoder.</summary>
    [Fact]
    public void Several_stop_ids_route_auto_to_torchsharp_and_are_refused_by_the_fused_decoder()
    {
        var config = Gpt2Config.Tiny();
        using var float32 = PolicyModel.Create(config, seed: 1);
        using (var chosen = PolicyDecoderFactory.Default.Create(float32, stopIdCount: 1)) Assert.Equal(FusedPolicyDecoder.BackendName, chosen.Backend);
        using (var chosen = PolicyDecoderFactory.Default.Create(float32, stopIdCount: 2)) Assert.Equal(TorchSharpDecoder.BackendName, chosen.Backend);
        var refused = Assert.Throws<NotSupportedException>(() => PolicyDecoderFactory.FusedOnly.Create(float32, stopIdCount: 3));
        Assert.Contains("fused: it stops on one token id, and the tokenizer has 3 stop ids", refused.Message);

        using var fused = new FusedPolicyDecoder(float32);
        var request = new DecodeRequest { Prompts = [[1, 2, 3]], Temperature = 0, MaxNewTokens = 4, RowSeeds = [1], StopIds = [256, 7] };
        Assert.Contains("the fused decoder stops on one id, but the request has 2 stop ids (256, 7)", Assert.Throws<ArgumentException>(() => fused.Generate(request)).Message);
    }

    /// <summary>Requests are checked as the TorchSharp decoder checks them, every problem named.</summary>
    [Fact]
    public void Invalid_requests_fail_as_they_do_in_the_torchsharp_decoder()
    {
        using var policy = SpreadPolicy.Create(ShapeNamed("toy"), seed: 35);
        using var fused = new FusedPolicyDecoder(policy.Model);
        using var managed = new TorchSharpDecoder(policy.Model);
        var bad = new DecodeRequest { Prompts = [[1, 9], [1, 2]], TopP = 0, MaxNewTokens = 7, RowSeeds = [1, 2] };
        var expected = Assert.Throws<ArgumentException>(() => managed.Generate(bad)).Message;
        Assert.Equal(expected, Assert.Throws<ArgumentException>(() => fused.Generate(bad)).Message);
        Assert.Contains("top_p 0", expected);
        Assert.Contains("prompt 0 holds a token id outside the vocabulary of 6", expected);
        Assert.Contains("prompt 1 has 2 tokens; with max_new_tokens 7 it exceeds the context of 8", expected);
    }
}
