using System.Text;
using System.Text.Json;
using PrefOnline.Learning.Tokenization;

namespace PrefOnline.Learning.Models.Checkpoints;

/// <summary>
/// The one place checkpoints read and write tokenizer files.
/// TODO(#3): switch both methods to TokenizerLoader.FromDirectory / TokenizerLoader.Save and delete
/// <see cref="InterimByteTokenizer"/> once the tokenizers land in main; the files written here are
/// the ones that loader reads (tokenizer_config.json with tokenizer_class PrefOnlineByteTokenizer).
/// </summary>
internal static class CheckpointTokenizer
{
    public const string ConfigFile = "tokenizer_config.json";

    /// <summary>The tokenizer of the built-in byte-level models.</summary>
    public static ITokenizer Default => InterimByteTokenizer.Instance;

    public static ITokenizer Load(string directory)
    {
        var path = Path.Combine(directory, ConfigFile);
        if (File.Exists(Path.Combine(directory, "vocab.json")) || File.Exists(Path.Combine(directory, "merges.txt")))
            throw new InvalidCheckpointException(directory, "GPT-2 BPE tokenizer files are not readable yet (issue #3: tokenizers)");
        if (File.Exists(path))
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            var cls = doc.RootElement.TryGetProperty("tokenizer_class", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString() : null;
            if (cls != InterimByteTokenizer.ClassName)
                throw new InvalidCheckpointException(directory, $"{ConfigFile}: tokenizer_class '{cls}' is not supported");
        }
        return InterimByteTokenizer.Instance;
    }

    public static void Save(ITokenizer tokenizer, string directory)
    {
        if (tokenizer is not InterimByteTokenizer)
            throw new ArgumentException($"cannot save a {tokenizer.GetType().Name} yet (issue #3: tokenizers)");
        var json = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["tokenizer_class"] = InterimByteTokenizer.ClassName,
            ["vocab_size"] = 258,
            ["eos_token"] = "<|endoftext|>",
            ["eos_token_id"] = 256,
            ["pad_token"] = "<|pad|>",
            ["pad_token_id"] = 257,
        }, new JsonSerializerOptions { WriteIndented = true });
        AtomicDirectory.WriteDurableText(Path.Combine(directory, ConfigFile), json);
    }
}

/// <summary>Token id = byte value, 256 = end of sequence, 257 = padding (the tokenizers' ByteTokenizer
/// replaces it, see <see cref="CheckpointTokenizer"/>).</summary>
internal sealed class InterimByteTokenizer : ITokenizer
{
    public const string ClassName = "PrefOnlineByteTokenizer";

    public static InterimByteTokenizer Instance { get; } = new();

    public int VocabularySize => 258;

    public int EndOfSequenceId => 256;

    public int PaddingId => 257;

    public int[] Encode(string text) => EncodeBytes(Encoding.UTF8.GetBytes(text));

    public int[] EncodeBytes(ReadOnlySpan<byte> utf8)
    {
        var ids = new int[utf8.Length];
        for (var i = 0; i < ids.Length; i++) ids[i] = utf8[i];
        return ids;
    }

    public string Decode(ReadOnlySpan<int> ids) => Encoding.UTF8.GetString(DecodeBytes(ids));

    public byte[] DecodeBytes(ReadOnlySpan<int> ids)
    {
        var bytes = new List<byte>(ids.Length);
        foreach (var id in ids)
        {
            if (id is < 0 or >= 258) throw new ArgumentOutOfRangeException(nameof(ids), id, "token id outside the byte vocabulary");
            if (id < 256) bytes.Add((byte)id);
        }
        return bytes.ToArray();
    }
}
