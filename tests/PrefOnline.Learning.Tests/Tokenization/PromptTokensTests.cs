using PrefOnline.Learning.Models;
using PrefOnline.Learning.Models.LogProbs;
using PrefOnline.Learning.Sampling;
using PrefOnline.Learning.Tokenization;

namespace PrefOnline.Learning.Tests.Tokenization;

/// <summary>A tokenizer that declares a beginning-of-sequence token (Llama 3's &lt;|begin_of_text|&gt;) gets it before
/// every text prompt, the same way for sampling, log-probs and the learner; one without (GPT-2, the byte
/// tokenizer) gets the prompt's own ids, and [end of sequence] for an empty prompt, as before.</summary>
public sealed class PromptTokensTests : IDisposable
{
    private const string Corpus = "Q: How are you today?\nA: I am well, thank you.\nQ: What is a good book?\nA: One you read twice.\n";
    private readonly TempDirectory root = new();

    public void Dispose() => root.Dispose();

    private HuggingFaceBpeTokenizer Write(string name, string? beginningOfSequence) =>
        ByteLevelBpeTokenizerWriter.Write(Path.Combine(root.Path, name), 300, new("<|end_of_text|>", beginningOfSequence), Corpus);

    [Fact]
    public void Prompts_start_with_the_beginning_of_sequence_token_only_when_the_tokenizer_declares_one()
    {
        var llama = Write("llama", "<|begin_of_text|>");
        var bos = Assert.IsType<int>(llama.BeginningOfSequenceId);
        Assert.Equal([bos, .. llama.Encode("Q: How are you?")], llama.EncodePrompt("Q: How are you?"));
        Assert.Equal([bos], llama.EncodePrompt(""));
        // Text that spells the token stays text: only the real id starts the prompt.
        Assert.Equal([bos, .. llama.Encode("<|begin_of_text|>")], llama.EncodePrompt("<|begin_of_text|>"));
        Assert.DoesNotContain(bos, llama.EncodePrompt("<|begin_of_text|>")[1..]);

        var plain = Write("plain", null);
        Assert.Null(plain.BeginningOfSequenceId);
        Assert.Equal(plain.Encode("Q: How are you?"), plain.EncodePrompt("Q: How are you?"));
        Assert.Equal([plain.EndOfSequenceId], plain.EncodePrompt(""));
        Assert.Equal(ByteTokenizer.Instance.Encode("Hi"), ByteTokenizer.Instance.EncodePrompt("Hi"));
        Assert.Equal([ByteTokenizer.EndOfSequence], ByteTokenizer.Instance.EncodePrompt(""));
    }

    [Fact]
    public void Sampling_log_probs_and_the_learner_see_the_same_prompt_ids_and_the_completions_exact_ids()
    {
        var tokenizer = Write("llama", "<|begin_of_text|>");
        var bos = tokenizer.BeginningOfSequenceId!.Value;
        using var model = PolicyModel.Create(LlamaConfig.Tiny(tokenizer.VocabularySize), seed: 7);
        using var sampler = PolicySampler.Create(model, tokenizer);
        const string Prompt = "Q: What is a good book?\nA:";
        var sampled = sampler.Sample([Prompt], new SamplingOptions { MaxNewTokens = 6, Seed = 3 })[0];
        Assert.Equal(tokenizer.EncodePrompt(Prompt), sampled.PromptTokens);
        Assert.Equal(bos, sampled.PromptTokens[0]);
        Assert.DoesNotContain(bos, sampled.Tokens);

        // Log-probs (and the reward model, which lays out its rows the same way) of the text pair: BOS + prompt, then
        // the completion's own ids with the end of sequence; no BOS before the completion.
        var completion = " One you read twice.";
        using var batch = SequenceBatch.FromText(tokenizer, [(Prompt, completion)], model.Config.ContextLength);
        Assert.Equal(sampled.PromptTokens.Length, batch.PromptLengths[0]);
        var ids = batch.Tokens.data<long>().Select(v => (int)v).ToArray();
        Assert.Equal([.. sampled.PromptTokens, .. tokenizer.Encode(completion), tokenizer.EndOfSequenceId], ids[..(batch.PromptLengths[0] + batch.CompletionLengths[0])]);
        Assert.Equal(SequenceBatch.EncodePrompt(tokenizer, Prompt), sampled.PromptTokens);
    }
}
