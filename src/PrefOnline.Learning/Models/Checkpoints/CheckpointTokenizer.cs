using PrefOnline.Learning.Tokenization;

namespace PrefOnline.Learning.Models.Checkpoints;

/// <summary>
/// The one place checkpoints read and write tokenizer files, through <see cref="TokenizerLoader"/>
/// (its rule: vocab.json + merges.txt → GPT-2 BPE; a byte tokenizer_config.json, or no tokenizer file
/// at all → the byte tokenizer). A tokenizer problem becomes an <see cref="InvalidCheckpointException"/>
/// like every other checkpoint problem.
/// </summary>
internal static class CheckpointTokenizer
{
    public static ITokenizer Load(string directory)
    {
        try
        {
            return TokenizerLoader.FromDirectory(directory);
        }
        catch (TokenizerFormatException e)
        {
            throw new InvalidCheckpointException(directory, $"tokenizer: {e.Message}");
        }
    }

    public static void Save(ITokenizer tokenizer, string directory) => TokenizerLoader.Save(tokenizer, directory);
}
