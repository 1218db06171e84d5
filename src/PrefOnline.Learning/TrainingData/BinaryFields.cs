using System.Collections.Immutable;
using System.Text;

namespace PrefOnline.Learning.TrainingData;

/// <summary>
/// The field encodings the training-item serializers share: little-endian fixed-width numbers,
/// UTF-8 strings and arrays with an int32 length prefix (−1 = null string), timestamps as clock ticks
/// plus offset minutes (so a value and its offset round-trip exactly). Reads check every length against
/// what the stream can still hold, so a corrupt snapshot fails with <see cref="InvalidDataException"/>
/// instead of allocating gigabytes.
/// </summary>
internal static class BinaryFields
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public static void WriteString(BinaryWriter w, string value) => WriteNullableString(w, value ?? throw new ArgumentNullException(nameof(value)));

    public static void WriteNullableString(BinaryWriter w, string? value)
    {
        if (value is null)
        {
            w.Write(-1);
            return;
        }
        var bytes = StrictUtf8.GetBytes(value);
        w.Write(bytes.Length);
        w.Write(bytes);
    }

    public static string ReadString(BinaryReader r, string field) =>
        ReadNullableString(r, field) ?? throw new InvalidDataException($"{field} is null where a string is required");

    public static string? ReadNullableString(BinaryReader r, string field)
    {
        var length = r.ReadInt32();
        if (length == -1) return null;
        var bytes = r.ReadBytes(CheckLength(r, length, 1, field));
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            throw new InvalidDataException($"{field} is not valid UTF-8", e);
        }
    }

    public static void WriteInts(BinaryWriter w, ImmutableArray<int> values)
    {
        w.Write(values.Length);
        foreach (var v in values) w.Write(v);
    }

    public static ImmutableArray<int> ReadInts(BinaryReader r, string field)
    {
        var length = CheckLength(r, r.ReadInt32(), sizeof(int), field);
        var builder = ImmutableArray.CreateBuilder<int>(length);
        for (var i = 0; i < length; i++) builder.Add(r.ReadInt32());
        return builder.MoveToImmutable();
    }

    public static void WriteFloats(BinaryWriter w, ImmutableArray<float> values)
    {
        w.Write(values.Length);
        foreach (var v in values) w.Write(v);
    }

    public static ImmutableArray<float> ReadFloats(BinaryReader r, string field)
    {
        var length = CheckLength(r, r.ReadInt32(), sizeof(float), field);
        var builder = ImmutableArray.CreateBuilder<float>(length);
        for (var i = 0; i < length; i++) builder.Add(r.ReadSingle());
        return builder.MoveToImmutable();
    }

    public static void WriteTimestamp(BinaryWriter w, DateTimeOffset value)
    {
        w.Write(value.Ticks);
        w.Write((short)value.Offset.TotalMinutes);
    }

    public static DateTimeOffset ReadTimestamp(BinaryReader r, string field)
    {
        var ticks = r.ReadInt64();
        var offsetMinutes = r.ReadInt16();
        try
        {
            return new DateTimeOffset(ticks, TimeSpan.FromMinutes(offsetMinutes));
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"{field} is not a valid timestamp (ticks {ticks}, offset {offsetMinutes} min)", e);
        }
    }

    public static T ReadEnum<T>(BinaryReader r, string field) where T : struct, Enum
    {
        var raw = r.ReadByte();
        var value = (T)Enum.ToObject(typeof(T), raw);
        if (!Enum.IsDefined(value)) throw new InvalidDataException($"{field} has unknown value {raw}");
        return value;
    }

    /// <summary>A length read from the stream, checked against what the stream can still hold.</summary>
    public static int CheckLength(BinaryReader r, int length, int elementSize, string field)
    {
        if (length < 0) throw new InvalidDataException($"{field} has negative length {length}");
        var stream = r.BaseStream;
        if (stream.CanSeek && (long)length * elementSize > stream.Length - stream.Position)
            throw new InvalidDataException($"{field} claims {length} elements but only {stream.Length - stream.Position} bytes remain");
        return length;
    }
}
