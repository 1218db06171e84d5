using PrefOnline.Learning.Models;
using PrefOnline.Learning.Sampling;
using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Tests.Sampling;

[Collection(NativeMemoryCollection.Name)]
public class PolicySamplerTests
{
    private static readonly Gpt2Config Config = new() { VocabularySize = 54, Layers = 2, Heads = 2, Width = 32, ContextLength = 64 };

    private static PolicySampler Sampler(RandomPolicyWeights weights, Func<long>? version = null) =>
        PolicySampler.Create(weights.Model, new LetterTokenizer(), version);

    [Fact]
    public void Returns_k_completions_per_prompt_in_order_with_consistent_fields()
    {
        using var weights = new RandomPolicyWeights(Config, 1);
        using var sampler = Sampler(weights, () => 42);
        string[] prompts = ["hello", "", "abcdefghijklmnop"];
        var options = new SamplingOptions { SamplesPerPrompt = 3, MaxNewTokens = 20, Seed = 5 };
        var completions = sampler.Sample(prompts, options);

        Assert.Equal(9, completions.Count);
        var tokenizer = new LetterTokenizer();
        for (var i = 0; i < completions.Count; i++)
        {
            var c = completions[i];
            Assert.Equal((i / 3, i % 3), (c.PromptIndex, c.SampleIndex));
            Assert.Equal(42, c.PolicyVersion);
            Assert.Equal(tokenizer.Decode(c.Tokens), c.Text);
            Assert.Equal(c.Tokens.Length, c.PolicyLogProbs.Length);
            Assert.Equal(c.Tokens.Length, c.SamplerLogProbs.Length);
            Assert.Equal(c.PolicyLogProbs.Sum(v => (double)v), c.LogProb, 1e-9);
            Assert.All(c.PolicyLogProbs, v => Assert.True(v <= 0 && float.IsFinite(v)));
            Assert.InRange(c.Tokens.Length, 1, 20);
            Assert.Equal(PolicySampler.CompletionSeed(5, c.PromptIndex, c.SampleIndex), c.Seed);
            switch (c.FinishReason)
            {
                case FinishReason.Length: Assert.Equal(20, c.Tokens.Length); break;
                case FinishReason.EndOfSequence: Assert.Equal(LetterTokenizer.Eos, c.Tokens[^1]); break;
                default: Assert.Fail($"no stop strings were given, yet finish is {c.FinishReason}"); break;
            }
            Assert.False(c.PromptTruncated);
        }
        Assert.Equal(tokenizer.Encode("hello"), completions[0].PromptTokens);
        Assert.Equal([LetterTokenizer.Eos], completions[3].PromptTokens); // an empty prompt starts from <eos>
        Assert.NotEqual(completions[0].Tokens, completions[1].Tokens);   // K samples are independent draws
    }

    [Fact]
    public void The_same_seed_gives_the_same_completions_whatever_the_batch_size()
    {
        using var weights = new RandomPolicyWeights(Config, 2);
        using var sampler = Sampler(weights);
        string[] prompts = ["a", "bb", "ccc", "dddd", "eeeee"];
        var options = new SamplingOptions { SamplesPerPrompt = 3, MaxNewTokens = 24, Temperature = 0.8, TopP = 0.9, Seed = 77 };
        var reference = sampler.Sample(prompts, options with { BatchSize = 16 });
        foreach (var batch in new[] { 1, 2, 3, 7, 64 })
        {
            var other = sampler.Sample(prompts, options with { BatchSize = batch });
            Assert.Equal(reference.Select(c => c.Tokens), other.Select(c => c.Tokens));
            // Other batches pad the prompts differently and change the GEMM shapes: the same values up to float rounding.
            foreach (var (a, b) in reference.Zip(other))
                for (var i = 0; i < a.PolicyLogProbs.Length; i++) Assert.Equal(a.PolicyLogProbs[i], b.PolicyLogProbs[i], 1e-4f);
            Assert.Equal(reference.Select(c => (c.PromptIndex, c.SampleIndex, c.Seed)), other.Select(c => (c.PromptIndex, c.SampleIndex, c.Seed)));
        }
        var reseeded = sampler.Sample(prompts, options with { Seed = 78 });
        Assert.NotEqual(reference.Select(c => c.Tokens), reseeded.Select(c => c.Tokens));
        var unseeded1 = sampler.Sample(prompts, options with { Seed = null });
        var unseeded2 = sampler.Sample(prompts, options with { Seed = null });
        Assert.NotEqual(unseeded1.Select(c => c.Tokens), unseeded2.Select(c => c.Tokens));
    }

    [Fact]
    public void A_stop_string_cuts_text_tokens_and_log_probs_at_its_first_occurrence()
    {
        using var weights = new RandomPolicyWeights(Config, 3);
        using var sampler = Sampler(weights);
        var options = new SamplingOptions { MaxNewTokens = 40, Seed = 11, SamplesPerPrompt = 8 };
        var free = sampler.Sample(["start"], options);
        Assert.All(free, f => Assert.DoesNotContain(53, f.Tokens)); // padding is never sampled

        // Two cases from the free completions: a stop string whose first occurrence starts at a token
        // boundary, and one starting inside a two-letter token (the BPE-like straddle).
        (int Sample, string Stop)? boundary = null, straddle = null;
        for (var s = 0; s < free.Count && (boundary is null || straddle is null); s++)
        {
            var f = free[s];
            var offset = 0;
            foreach (var token in f.Tokens)
            {
                var width = token < 26 ? 1 : token < 52 ? 2 : 0;
                if (offset >= 3 && offset + 3 <= f.Text.Length)
                {
                    var atBoundary = f.Text.Substring(offset, 2);
                    if (boundary is null && f.Text.IndexOf(atBoundary, StringComparison.Ordinal) == offset) boundary = (s, atBoundary);
                    var inside = f.Text.Substring(offset + 1, 2);
                    if (width == 2 && straddle is null && f.Text.IndexOf(inside, StringComparison.Ordinal) == offset + 1) straddle = (s, inside);
                }
                offset += width;
            }
        }
        Assert.True(boundary is not null && straddle is not null, "the random policy's completions offered no test case");

        foreach (var (sample, stop, straddles) in new[] { (boundary!.Value.Sample, boundary.Value.Stop, false), (straddle!.Value.Sample, straddle.Value.Stop, true) })
        {
            var f = free[sample];
            var start = f.Text.IndexOf(stop, StringComparison.Ordinal);
            var cut = sampler.Sample(["start"], options with { StopStrings = ["qqqqqqqq", stop] })[sample];

            Assert.Equal(FinishReason.StopString, cut.FinishReason);
            Assert.Equal(new LetterTokenizer().Decode(cut.Tokens), cut.Text);
            Assert.Equal(f.Tokens[..cut.Tokens.Length], cut.Tokens);
            Assert.Equal(f.PolicyLogProbs[..cut.Tokens.Length], cut.PolicyLogProbs);
            Assert.Equal(f.SamplerLogProbs[..cut.Tokens.Length], cut.SamplerLogProbs);
            // The text ends where the stop string starts; a two-letter token straddling that point goes too.
            Assert.Equal(f.Text[..(straddles ? start - 1 : start)], cut.Text);
        }
    }

    [Fact]
    public void The_earliest_of_several_stop_strings_wins()
    {
        using var weights = new RandomPolicyWeights(Config, 4);
        using var sampler = Sampler(weights);
        var options = new SamplingOptions { MaxNewTokens = 40, Temperature = 0, Seed = 1 };
        var free = sampler.Sample(["x"], options)[0];
        Assert.True(free.Text.Length >= 20, $"greedy text too short: '{free.Text}'");
        var late = free.Text.Substring(15, 2);
        var early = free.Text.Substring(5, 2);
        var cut = sampler.Sample(["x"], options with { StopStrings = [late, early] })[0];
        Assert.Equal(FinishReason.StopString, cut.FinishReason);
        Assert.True(cut.Text.Length <= free.Text.IndexOf(early, StringComparison.Ordinal));
    }

    [Fact]
    public void End_of_sequence_is_kept_as_the_last_token_and_left_out_of_the_text()
    {
        using var weights = new RandomPolicyWeights(Config, 5);
        var options = new SamplingOptions { MaxNewTokens = 10, Temperature = 0, Seed = 1 };
        int first;
        using (var sampler = Sampler(weights)) first = sampler.Sample(["abc"], options)[0].Tokens[0];
        Assert.NotEqual(LetterTokenizer.Eos, first);
        Assert.DoesNotContain(first, new[] { 0, 1, 2 });
        // Swap the embedding rows of the greedy first token and <eos>: the prompt's hidden state is
        // unchanged, so <eos> now has the top logit.
        using (var scope = NewDisposeScope())
        {
            var wte = weights.Weights["wte.weight"];
            var a = wte[first].clone();
            var b = wte[LetterTokenizer.Eos].clone();
            using var noGrad = no_grad();
            wte[first].copy_(b);
            wte[LetterTokenizer.Eos].copy_(a);
        }
        using var swapped = Sampler(weights);
        var c = swapped.Sample(["abc"], options)[0];
        Assert.Equal(FinishReason.EndOfSequence, c.FinishReason);
        Assert.Equal([LetterTokenizer.Eos], c.Tokens);
        Assert.Equal("", c.Text);
        Assert.Single(c.PolicyLogProbs);
    }

    [Fact]
    public void Any_of_the_tokenizers_stop_ids_ends_a_completion_kept_last_and_left_out_of_the_text()
    {
        using var weights = new RandomPolicyWeights(Config, 5);
        var options = new SamplingOptions { MaxNewTokens = 10, Temperature = 0, Seed = 1 };
        int[] greedy;
        using (var sampler = Sampler(weights)) greedy = sampler.Sample(["abc"], options)[0].Tokens;
        // The first greedy token after the first that did not come before (an ordinary token) becomes a second stop id,
        // as generation_config.json's eos_token_id list declares Llama 3 Instruct's <|eot_id|>: the same greedy run ends there.
        var at = Enumerable.Range(1, greedy.Length - 1).First(i => !greedy[..i].Contains(greedy[i]));
        Assert.DoesNotContain(LetterTokenizer.Eos, greedy[..(at + 1)]);
        var second = greedy[at];
        var tokenizer = new LetterTokenizer { StopIds = [LetterTokenizer.Eos, second] };
        using var stopping = PolicySampler.Create(weights.Model, tokenizer);
        Assert.Equal(TorchSharpDecoder.BackendName, stopping.Decoder.Backend);
        var c = stopping.Sample(["abc"], options)[0];
        Assert.Equal(FinishReason.EndOfSequence, c.FinishReason);
        Assert.Equal(greedy[..(at + 1)], c.Tokens);
        Assert.Equal(tokenizer.Decode(greedy[..at]), c.Text);
        Assert.Equal(at + 1, c.PolicyLogProbs.Length);

        // The decoder alone: the row stops on the second id of DecodeRequest.StopIds.
        using var decoder = new TorchSharpDecoder(weights.Model);
        var row = decoder.Generate(new DecodeRequest { Prompts = [tokenizer.Encode("abc")], Temperature = 0, MaxNewTokens = 10, RowSeeds = [1], StopIds = [LetterTokenizer.Eos, second] })[0];
        Assert.Equal(DecodeFinish.EndOfSequence, row.Finish);
        Assert.Equal(greedy[..(at + 1)], row.Tokens);
        Assert.Contains("stop id 60 is outside the vocabulary of 54",
            Assert.Throws<ArgumentException>(() => decoder.Generate(new DecodeRequest { Prompts = [[1]], RowSeeds = [1], StopIds = [60] })).Message);
    }

    [Fact]
    public void A_prompt_longer_than_context_minus_max_new_keeps_its_last_tokens()
    {
        using var weights = new RandomPolicyWeights(Config, 6);
        using var sampler = Sampler(weights);
        var options = new SamplingOptions { MaxNewTokens = 20, Seed = 3 };
        var longPrompt = string.Concat(Enumerable.Range(0, 100).Select(i => (char)('a' + i % 26)));
        var c = sampler.Sample([longPrompt], options)[0];
        Assert.True(c.PromptTruncated);
        Assert.Equal(new LetterTokenizer().Encode(longPrompt[^44..]), c.PromptTokens);
        var same = sampler.Sample([longPrompt[^44..]], options)[0];
        Assert.False(same.PromptTruncated);
        Assert.Equal(same.Tokens, c.Tokens);

        // With a beginning-of-sequence token (here "aa", id 26) the prompt starts with it, and keeps it when cut.
        var withBos = new LetterTokenizer { BeginningOfSequenceId = 26 };
        using var bosSampler = PolicySampler.Create(weights.Model, withBos);
        Assert.Equal([26, .. withBos.Encode("abc")], bosSampler.Sample(["abc"], options)[0].PromptTokens);
        var cut = bosSampler.Sample([longPrompt], options)[0];
        Assert.True(cut.PromptTruncated);
        Assert.Equal([26, .. withBos.Encode(longPrompt[^43..])], cut.PromptTokens);
    }

    [Fact]
    public void Policy_version_is_read_once_per_call()
    {
        using var weights = new RandomPolicyWeights(Config, 7);
        var version = 0L;
        using var sampler = Sampler(weights, () => ++version);
        var options = new SamplingOptions { SamplesPerPrompt = 2, MaxNewTokens = 4, BatchSize = 1, Seed = 1 };
        Assert.All(sampler.Sample(["ab", "cd"], options), c => Assert.Equal(1, c.PolicyVersion));
        Assert.All(sampler.Sample(["ab"], options), c => Assert.Equal(2, c.PolicyVersion));
    }

    [Fact]
    public void Training_updates_in_place_reach_the_next_sample_call()
    {
        using var weights = new RandomPolicyWeights(Config, 8);
        using var sampler = Sampler(weights);
        var options = new SamplingOptions { MaxNewTokens = 30, Temperature = 0, Seed = 1 };
        var before = sampler.Sample(["abc"], options)[0];
        using (no_grad()) weights.Weights["h.0.mlp.c_fc.weight"].mul_(3.0);
        var after = sampler.Sample(["abc"], options)[0];
        Assert.NotEqual(before.PolicyLogProbs, after.PolicyLogProbs);
    }

    [Fact]
    public void Ids_without_a_token_and_padding_are_never_sampled()
    {
        var padded = Config with { VocabularySize = 64 }; // a model vocabulary rounded up past the tokenizer's 54
        using var weights = new RandomPolicyWeights(padded, 10);
        using var sampler = PolicySampler.Create(weights.Model, new LetterTokenizer());
        var completions = sampler.Sample(["abc", "xyz"], new SamplingOptions { SamplesPerPrompt = 50, MaxNewTokens = 30, Temperature = 5, Seed = 2 });
        var seen = completions.SelectMany(c => c.Tokens).ToHashSet();
        Assert.DoesNotContain(seen, id => id > LetterTokenizer.Eos);
        Assert.True(seen.Count > 40, $"only {seen.Count} distinct ids at temperature 5: the test would not notice a leak");
    }

    [Fact]
    public void Invalid_options_and_inputs_fail_before_any_work()
    {
        using var weights = new RandomPolicyWeights(Config, 9);
        using var sampler = Sampler(weights);
        void Fails(SamplingOptions o, string expected) =>
            Assert.Contains(expected, Assert.Throws<ArgumentException>(() => sampler.Sample(["a"], o)).Message);

        Fails(new SamplingOptions { MaxNewTokens = 64 }, "below the model's context length 64");
        Fails(new SamplingOptions { Temperature = -0.5 }, "temperature -0.5");
        Fails(new SamplingOptions { TopP = 0 }, "top-p 0");
        Fails(new SamplingOptions { TopK = -1 }, "top-k -1");
        Fails(new SamplingOptions { SamplesPerPrompt = 0 }, "samples per prompt 0");
        Fails(new SamplingOptions { BatchSize = 0 }, "batch size 0");
        Fails(new SamplingOptions { StopStrings = [""] }, "stop string 0 is empty");
        Fails(new SamplingOptions { StopStrings = Enumerable.Repeat("x", 17).ToArray() }, "at most 16");
        // Several problems are reported together.
        var all = Assert.Throws<ArgumentException>(() => sampler.Sample(["a"], new SamplingOptions { TopK = -1, TopP = 2 })).Message;
        Assert.Contains("top-k", all);
        Assert.Contains("top-p", all);

        Assert.Contains("outside the model's vocabulary",
            Assert.Throws<ArgumentException>(() => sampler.Sample([new[] { 1, 54 }], new SamplingOptions { MaxNewTokens = 8 })).Message);
        Assert.Empty(sampler.Sample(Array.Empty<string>(), new SamplingOptions { MaxNewTokens = 8 }));
        using var smaller = new RandomPolicyWeights(Config with { VocabularySize = 40 }, 1);
        Assert.Contains("do not belong together",
            Assert.Throws<ArgumentException>(() => PolicySampler.Create(smaller.Model, new LetterTokenizer())).Message);
    }
}
