namespace PrefOnline.Kernels;

/// <summary>
/// The bytes each token id decodes to (empty for special tokens), flattened into one array so a decoder
/// (managed, or a native kernel given these arrays) can watch for stop sequences after every token. Valid
/// for byte-level tokenizers (GPT-2 BPE, byte tokenizer), where a sequence decodes to the
/// concatenation of its tokens' bytes.
/// </summary>
public sealed class TokenByteTable
{
    private TokenByteTable(byte[] bytes, long[] offsets)
    {
        Bytes = bytes;
        Offsets = offsets;
    }

    /// <summary>Number of token ids covered (ids at or above it have no bytes).</summary>
    public int Count => Offsets.Length - 1;

    public byte[] Bytes { get; }

    /// <summary>Count + 1 offsets into <see cref="Bytes"/>: token i is Bytes[Offsets[i]..Offsets[i+1]).</summary>
    public long[] Offsets { get; }

    public ReadOnlySpan<byte> this[int id] =>
        id >= 0 && id < Count ? Bytes.AsSpan((int)Offsets[id], (int)(Offsets[id + 1] - Offsets[id])) : ReadOnlySpan<byte>.Empty;

    /// <summary>Builds the table from a function giving the bytes of one token id.</summary>
    public static TokenByteTable Build(int count, Func<int, byte[]> bytesOf)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentNullException.ThrowIfNull(bytesOf);
        var offsets = new long[count + 1];
        using var all = new MemoryStream();
        for (var id = 0; id < count; id++)
        {
            all.Write(bytesOf(id));
            offsets[id + 1] = all.Length;
        }
        return new TokenByteTable(all.ToArray(), offsets);
    }
}
