namespace PrefOnline.Learning.Tokenization;

/// <summary>
/// Chooses a checkpoint directory's tokenizer by the files it holds, and writes a tokenizer's files
/// into a directory so a saved policy always carries its tokenizer.
/// </summary>
/// <remarks>
/// The rule, first match wins:
/// <list type="number">
/// <item>tokenizer.json → <see cref="HuggingFaceBpeTokenizer"/> (a Hugging Face fast tokenizer: Llama 3,
///   Qwen2/3, SmolLM, GPT-2; tokenizer_config.json, generation_config.json and config.json give its special
///   ids). It wins over vocab.json + merges.txt beside it, as in transformers. One that is not a byte-level
///   BPE (SentencePiece Unigram, WordPiece, a Metaspace BPE) is refused, not guessed.</item>
/// <item>vocab.json and merges.txt → <see cref="Gpt2BpeTokenizer"/> (a Hugging Face GPT-2 directory;
///   tokenizer_config.json and added_tokens.json are read when present).</item>
/// <item>only one of vocab.json / merges.txt → error naming the missing one.</item>
/// <item>tokenizer_config.json with "tokenizer_class": "PrefOnlineByteTokenizer" → <see cref="ByteTokenizer"/>
///   (what <see cref="ByteTokenizer.Save"/> writes; tokenizer_config.json rather than tokenizer.json,
///   because Hugging Face tools would try to parse a tokenizer.json as their own fast tokenizer).</item>
/// <item>any other tokenizer file (tokenizer_config.json of another class, a SentencePiece tokenizer.model, a WordPiece vocab.txt, ...) → error: not a tokenizer this
///   project implements, and guessing would train on the wrong ids.</item>
/// <item>no tokenizer file at all → <see cref="ByteTokenizer"/> (a bare model directory, e.g. written by
///   a plain PyTorch script for the built-in byte models), unless config.json declares a vocab_size
///   other than 258: that model was trained with some other tokenizer whose files are missing.</item>
/// </list>
/// Every refusal is a <see cref="TokenizerFormatException"/> (an <see cref="IOException"/>) with one clear line.
/// </remarks>
public static class TokenizerLoader
{
    /// <summary>Files that belong to tokenizers this project does not implement.</summary>
    private static readonly string[] ForeignTokenizerFiles = ["tokenizer.model", "spiece.model", "sentencepiece.bpe.model", "vocab.txt"];

    public static ITokenizer FromDirectory(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"checkpoint directory {directory} does not exist");

        string In(string name) => Path.Combine(directory, name);
        if (File.Exists(In(TokenizerFiles.FastTokenizer))) return HuggingFaceBpeTokenizer.FromDirectory(directory);
        var hasVocabulary = File.Exists(In(TokenizerFiles.Vocabulary));
        var hasMerges = File.Exists(In(TokenizerFiles.Merges));

        if (hasVocabulary && hasMerges) return Gpt2BpeTokenizer.FromDirectory(directory);
        if (hasVocabulary != hasMerges)
        {
            var (present, missing) = hasVocabulary ? (TokenizerFiles.Vocabulary, TokenizerFiles.Merges) : (TokenizerFiles.Merges, TokenizerFiles.Vocabulary);
            throw new TokenizerFormatException(In(missing), null, $"missing: the directory has {present} but a GPT-2 BPE tokenizer needs both vocab.json and merges.txt");
        }

        var configPath = In(TokenizerFiles.Config);
        if (File.Exists(configPath))
        {
            var config = TokenizerFiles.ReadConfig(configPath);
            if (config.TokenizerClass != ByteTokenizer.ConfigClassName)
            {
                var named = config.TokenizerClass is null ? "no tokenizer_class" : $"tokenizer_class {TokenizerFiles.Quote(config.TokenizerClass)}";
                throw new TokenizerFormatException(configPath, null, $"has {named} and the directory lacks tokenizer.json and vocab.json + merges.txt; supported: a byte-level BPE tokenizer.json, GPT-2 BPE (vocab.json + merges.txt) or {ByteTokenizer.ConfigClassName}");
            }
            CheckByteConfig(configPath, config);
            return ByteTokenizer.Instance;
        }

        foreach (var name in ForeignTokenizerFiles)
        {
            if (File.Exists(In(name)))
                throw new TokenizerFormatException(In(name), null, "is a tokenizer this project does not implement; supported: a byte-level BPE tokenizer.json, GPT-2 BPE (vocab.json + merges.txt) or the byte tokenizer (tokenizer_config.json written by prefonline)");
        }

        var modelConfigPath = In(TokenizerFiles.ModelConfig);
        if (File.Exists(modelConfigPath) && TokenizerFiles.ReadModelVocabularySize(modelConfigPath) is { } vocabularySize && vocabularySize != ByteTokenizer.Size)
            throw new TokenizerFormatException(modelConfigPath, null, $"declares vocab_size {vocabularySize} but the directory has no tokenizer files (the byte tokenizer has {ByteTokenizer.Size}); copy the model's tokenizer.json (or vocab.json and merges.txt) beside it");
        return ByteTokenizer.Instance;
    }

    /// <summary>Writes the tokenizer's files into <paramref name="directory"/> (created if needed).</summary>
    public static void Save(ITokenizer tokenizer, string directory)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        switch (tokenizer)
        {
            case ByteTokenizer bytes:
                bytes.Save(directory);
                break;
            case Gpt2BpeTokenizer bpe:
                bpe.Save(directory);
                break;
            case HuggingFaceBpeTokenizer huggingFace:
                huggingFace.Save(directory);
                break;
            default:
                throw new ArgumentException($"cannot save a {tokenizer.GetType().Name}: only {nameof(ByteTokenizer)}, {nameof(Gpt2BpeTokenizer)} and {nameof(HuggingFaceBpeTokenizer)} have a file format", nameof(tokenizer));
        }
    }

    /// <summary>A byte config written by a future, incompatible byte tokenizer must not load as this one.</summary>
    private static void CheckByteConfig(string path, TokenizerFiles.ConfigFile config)
    {
        if (config.VocabularySize is { } size && size != ByteTokenizer.Size)
            throw new TokenizerFormatException(path, null, $"vocab_size {size} differs from this byte tokenizer's {ByteTokenizer.Size}");
        if (config.EndOfSequenceId is { } eos && eos != ByteTokenizer.EndOfSequence)
            throw new TokenizerFormatException(path, null, $"eos_token_id {eos} differs from this byte tokenizer's {ByteTokenizer.EndOfSequence}");
        if (config.PaddingId is { } pad && pad != ByteTokenizer.Padding)
            throw new TokenizerFormatException(path, null, $"pad_token_id {pad} differs from this byte tokenizer's {ByteTokenizer.Padding}");
    }
}
