namespace PrefOnline.Learning.Tokenization;

/// <summary>
/// GPT-2's reversible byte ↔ character map (bytes_to_unicode in OpenAI's encoder.py): printable
/// Latin-1 bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves, the other 68 bytes map in order
/// to U+0100.. so a token string never holds whitespace or control characters (the space byte is 'Ġ').
/// Every symbol is a single UTF-16 char.
/// </summary>
internal static class Gpt2ByteSymbols
{
    /// <summary>Symbol of each byte value.</summary>
    public static readonly char[] OfByte = Build();

    /// <summary>Byte of each symbol char, or -1 for a char that is not a byte symbol. Indexed by char (&lt; 0x144).</summary>
    public static readonly short[] ByteOfSymbol = Invert(OfByte);

    public static bool TryGetByte(char symbol, out byte value)
    {
        if (symbol < ByteOfSymbol.Length && ByteOfSymbol[symbol] >= 0)
        {
            value = (byte)ByteOfSymbol[symbol];
            return true;
        }
        value = 0;
        return false;
    }

    /// <summary>The bytes a token string stands for, or null when some char is not a byte symbol.</summary>
    public static byte[]? BytesOf(string token)
    {
        var bytes = new byte[token.Length];
        for (var i = 0; i < token.Length; i++)
        {
            if (!TryGetByte(token[i], out bytes[i])) return null;
        }
        return bytes;
    }

    public static string SymbolsOf(ReadOnlySpan<byte> bytes)
    {
        var chars = new char[bytes.Length];
        for (var i = 0; i < bytes.Length; i++) chars[i] = OfByte[bytes[i]];
        return new string(chars);
    }

    private static char[] Build()
    {
        var map = new char[256];
        var next = 256;
        for (var b = 0; b < 256; b++)
        {
            var printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[b] = printable ? (char)b : (char)next++;
        }
        return map;
    }

    private static short[] Invert(char[] ofByte)
    {
        var inverse = new short[ofByte.Max() + 1];
        Array.Fill(inverse, (short)-1);
        for (var b = 0; b < 256; b++) inverse[ofByte[b]] = (short)b;
        return inverse;
    }
}
