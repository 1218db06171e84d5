using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Tensors.Serialization;

/// <summary>
/// The safetensors format (https://github.com/huggingface/safetensors), read and written by hand:
/// an 8-byte little-endian header length N, N bytes of UTF-8 JSON mapping each tensor name to
/// {dtype, shape, data_offsets: [begin, end)} (offsets relative to the byte buffer after the header),
/// an optional "__metadata__" map of strings, then the raw little-endian tensor bytes.
/// </summary>
/// <remarks>
/// The reader trusts nothing in the file: the header size is bounded before anything is allocated,
/// the JSON depth is limited, every shape is checked for overflow and against its byte range, and
/// the ranges must tile the buffer exactly (no overlap, no hole, nothing past the end), as the
/// reference implementation requires. Any violation is a <see cref="SafeTensorsFormatException"/>.
/// </remarks>
public static class SafeTensorsFile
{
    /// <summary>Headers above this are refused before allocation (the reference library uses 100 MB).</summary>
    public const long MaxHeaderBytes = 100L * 1024 * 1024;

    /// <summary>Tensors of higher rank are refused (libtorch's kernels handle at most 25 dimensions).</summary>
    public const int MaxRank = 64;

    // JSON nesting a valid header needs: root object → entry object → shape array.
    private const int MaxJsonDepth = 4;

    private const string MetadataKey = "__metadata__";

    private static readonly Dictionary<string, ScalarType> DtypeByName = new(StringComparer.Ordinal)
    {
        ["F64"] = ScalarType.Float64,
        ["F32"] = ScalarType.Float32,
        ["F16"] = ScalarType.Float16,
        ["BF16"] = ScalarType.BFloat16,
        ["I64"] = ScalarType.Int64,
        ["I32"] = ScalarType.Int32,
        ["I16"] = ScalarType.Int16,
        ["I8"] = ScalarType.Int8,
        ["U8"] = ScalarType.Byte,
        ["BOOL"] = ScalarType.Bool,
    };

    private static string NameOf(ScalarType dtype)
    {
        foreach (var (name, type) in DtypeByName)
            if (type == dtype) return name;
        throw new ArgumentException($"dtype {dtype} cannot be stored in safetensors by this writer (supported: {string.Join(", ", DtypeByName.Values)})");
    }

    /// <summary>Reads the header only: names, dtypes, shapes and metadata, without loading tensor data.</summary>
    public static SafeTensorsHeader ReadHeader(string path)
    {
        using var stream = OpenForRead(path);
        return ReadHeader(stream, path);
    }

    /// <summary>Loads every tensor (on <paramref name="device"/>, CPU by default). The caller owns the
    /// returned tensors: they belong to no dispose scope.</summary>
    public static SafeTensorsContent Read(string path, Device? device = null)
    {
        SafeTensorsHeader header;
        using (var stream = OpenForRead(path)) header = ReadHeader(stream, path);

        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        if (header.Entries.Count == 0) return new SafeTensorsContent(tensors, header.Metadata);
        try
        {
            using var map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
            using var view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            unsafe
            {
                byte* basePtr = null;
                view.SafeMemoryMappedViewHandle.AcquirePointer(ref basePtr);
                try
                {
                    // The file may have changed since the header was read: never read past the mapping.
                    var needed = header.DataStart + (header.Entries.Count == 0 ? 0 : header.Entries.Max(e => e.End));
                    if (view.Capacity < needed)
                        throw new SafeTensorsFormatException(path, $"file shrank to {view.Capacity} bytes while being read ({needed} needed)");
                    var data = basePtr + view.PointerOffset + header.DataStart;
                    foreach (var entry in header.Entries)
                    {
                        tensors[entry.Name] = Load(new ReadOnlySpan<byte>(data + entry.Begin, checked((int)(entry.End - entry.Begin))), entry, device);
                    }
                }
                finally
                {
                    view.SafeMemoryMappedViewHandle.ReleasePointer();
                }
            }
        }
        catch
        {
            foreach (var t in tensors.Values) t.Dispose();
            throw;
        }
        return new SafeTensorsContent(tensors, header.Metadata);
    }

    /// <summary>
    /// Writes tensors (any device, any layout) in the given order, with optional string metadata. The
    /// file is written beside the target and renamed into place, so a crash never leaves half a file.
    /// The metadata always holds <c>"format": "pt"</c> unless the caller sets another format: Hugging
    /// Face transformers refuses a safetensors file whose metadata lacks it.
    /// </summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var list = tensors.ToList();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, _) in list)
        {
            if (name == MetadataKey || string.IsNullOrEmpty(name)) throw new ArgumentException($"'{name}' cannot be a tensor name");
            if (!names.Add(name)) throw new ArgumentException($"tensor name '{name}' appears twice");
        }

        foreach (var (name, t) in list)
        {
            ArgumentNullException.ThrowIfNull(t, name);
            NameOf(t.dtype);  // unsupported dtypes fail before anything is written
            if (ByteSize(t) > int.MaxValue)
                throw new ArgumentException($"tensor '{name}' holds {ByteSize(t)} bytes; this writer stores tensors up to 2 GiB each");
        }

        var meta = new Dictionary<string, string>(StringComparer.Ordinal) { ["format"] = "pt" };
        if (metadata is not null)
            foreach (var (k, v) in metadata) meta[k] = v ?? throw new ArgumentException($"metadata '{k}' is null; values must be strings");

        using var headerJson = new MemoryStream();
        long offset = 0;
        // Relaxed escaping keeps non-ASCII names readable; the header is never embedded in HTML.
        using (var w = new Utf8JsonWriter(headerJson, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteStartObject(MetadataKey);
            foreach (var (k, v) in meta) w.WriteString(k, v);
            w.WriteEndObject();
            foreach (var (name, t) in list)
            {
                var bytes = ByteSize(t);
                w.WriteStartObject(name);
                w.WriteString("dtype", NameOf(t.dtype));
                w.WriteStartArray("shape");
                foreach (var d in t.shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + bytes);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += bytes;
            }
            w.WriteEndObject();
        }
        // Pad the header with spaces to a multiple of 8 so the data is aligned, as the reference writer does.
        var headerBytes = headerJson.ToArray();
        var padded = (headerBytes.Length + 7) / 8 * 8;

        var temp = path + ".tmp-" + Environment.ProcessId;
        try
        {
            using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
            {
                Span<byte> prefix = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)padded);
                file.Write(prefix);
                file.Write(headerBytes);
                for (var i = headerBytes.Length; i < padded; i++) file.WriteByte((byte)' ');
                foreach (var (_, t) in list)
                {
                    // The bytes of a contiguous CPU copy (the tensor itself when it already is one), read in place.
                    using var scope = NewDisposeScope();
                    var host = t.detach().cpu().contiguous();
                    if (host.numel() > 0) file.Write(host.bytes);
                }
                file.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    /// <summary>A new tensor holding a copy of <paramref name="data"/> (little-endian, row-major), moved to
    /// <paramref name="device"/>; outside every dispose scope.</summary>
    private static Tensor Load(ReadOnlySpan<byte> data, SafeTensorsEntry entry, Device? device)
    {
        using var scope = NewDisposeScope();
        var tensor = empty(entry.Shape, entry.Dtype);
        if (data.Length > 0) data.CopyTo(tensor.bytes);
        if (device is not null && device.type != DeviceType.CPU) tensor = tensor.to(device);
        return tensor.DetachFromDisposeScope();
    }

    /// <summary>Bytes per element of the dtypes safetensors stores.</summary>
    public static int ElementSize(ScalarType dtype) => dtype switch
    {
        ScalarType.Byte or ScalarType.Int8 or ScalarType.Bool => 1,
        ScalarType.Int16 or ScalarType.Float16 or ScalarType.BFloat16 => 2,
        ScalarType.Int32 or ScalarType.Float32 => 4,
        ScalarType.Int64 or ScalarType.Float64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "not a dtype safetensors stores here"),
    };

    private static long ByteSize(Tensor t) => t.numel() * ElementSize(t.dtype);

    private static FileStream OpenForRead(string path)
    {
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        }
        catch (FileNotFoundException)
        {
            throw new SafeTensorsFormatException(path, "file not found");
        }
    }

    internal static SafeTensorsHeader ReadHeader(Stream stream, string path)
    {
        var fileLength = stream.Length;
        if (fileLength < 8) throw new SafeTensorsFormatException(path, $"file is {fileLength} bytes, shorter than the 8-byte header length");
        Span<byte> prefix = stackalloc byte[8];
        stream.ReadExactly(prefix);
        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (headerLength > (ulong)MaxHeaderBytes)
            throw new SafeTensorsFormatException(path, $"header length {headerLength} exceeds the {MaxHeaderBytes}-byte limit");
        if ((long)headerLength > fileLength - 8)
            throw new SafeTensorsFormatException(path, $"header length {headerLength} runs past the end of the {fileLength}-byte file (truncated?)");
        if (headerLength < 2) throw new SafeTensorsFormatException(path, "header is too short to be a JSON object");

        var headerBytes = new byte[headerLength];
        stream.ReadExactly(headerBytes);
        var dataStart = 8 + (long)headerLength;
        var dataLength = fileLength - dataStart;
        return ParseHeader(headerBytes, dataStart, dataLength, path);
    }

    private static SafeTensorsHeader ParseHeader(byte[] headerBytes, long dataStart, long dataLength, string path)
    {
        string json;
        try
        {
            json = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(headerBytes);
        }
        catch (DecoderFallbackException)
        {
            throw new SafeTensorsFormatException(path, "header is not valid UTF-8");
        }

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = MaxJsonDepth });
        }
        catch (JsonException e)
        {
            throw new SafeTensorsFormatException(path, $"header is not valid JSON ({e.Message})");
        }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new SafeTensorsFormatException(path, "header must be a JSON object");
            var entries = new List<SafeTensorsEntry>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(property.Name)) throw new SafeTensorsFormatException(path, $"name '{property.Name}' appears twice in the header");
                if (property.Name == MetadataKey)
                {
                    ParseMetadata(property.Value, metadata, path);
                    continue;
                }
                entries.Add(ParseEntry(property.Name, property.Value, path));
            }
            CheckTiling(entries, dataLength, path);
            return new SafeTensorsHeader(entries, metadata, dataStart);
        }
    }

    private static void ParseMetadata(JsonElement value, Dictionary<string, string> metadata, string path)
    {
        if (value.ValueKind != JsonValueKind.Object) throw new SafeTensorsFormatException(path, "__metadata__ must be an object of strings");
        foreach (var m in value.EnumerateObject())
        {
            if (m.Value.ValueKind != JsonValueKind.String)
                throw new SafeTensorsFormatException(path, $"__metadata__ value of '{m.Name}' is not a string");
            metadata[m.Name] = m.Value.GetString()!;
        }
    }

    private static SafeTensorsEntry ParseEntry(string name, JsonElement value, string path)
    {
        if (value.ValueKind != JsonValueKind.Object) throw new SafeTensorsFormatException(path, $"entry '{name}' is not an object");
        // Unknown fields are ignored, as the reference reader does; a known field given twice is ambiguous.
        var fields = new HashSet<string>(StringComparer.Ordinal);
        foreach (var field in value.EnumerateObject())
            if (!fields.Add(field.Name))
                throw new SafeTensorsFormatException(path, $"entry '{name}' has field '{field.Name}' twice");
        if (!value.TryGetProperty("dtype", out var dtypeEl) || dtypeEl.ValueKind != JsonValueKind.String)
            throw new SafeTensorsFormatException(path, $"entry '{name}' has no string dtype");
        var dtypeName = dtypeEl.GetString()!;
        if (!DtypeByName.TryGetValue(dtypeName, out var dtype))
            throw new SafeTensorsFormatException(path, $"entry '{name}' has unsupported dtype '{dtypeName}' (supported: {string.Join(", ", DtypeByName.Keys)})");

        if (!value.TryGetProperty("shape", out var shapeEl) || shapeEl.ValueKind != JsonValueKind.Array)
            throw new SafeTensorsFormatException(path, $"entry '{name}' has no shape array");
        if (shapeEl.GetArrayLength() > MaxRank)
            throw new SafeTensorsFormatException(path, $"entry '{name}' has rank {shapeEl.GetArrayLength()}, above the limit of {MaxRank}");
        var shape = new long[shapeEl.GetArrayLength()];
        long elements = 1;
        var i = 0;
        foreach (var d in shapeEl.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out var size) || size < 0)
                throw new SafeTensorsFormatException(path, $"entry '{name}' has a shape entry that is not a non-negative integer");
            shape[i++] = size;
            try
            {
                elements = checked(elements * size);
            }
            catch (OverflowException)
            {
                throw new SafeTensorsFormatException(path, $"entry '{name}' has a shape whose element count overflows");
            }
        }

        if (!value.TryGetProperty("data_offsets", out var offEl) || offEl.ValueKind != JsonValueKind.Array || offEl.GetArrayLength() != 2)
            throw new SafeTensorsFormatException(path, $"entry '{name}' needs data_offsets [begin, end]");
        var begin = ReadOffset(offEl[0], name, path);
        var end = ReadOffset(offEl[1], name, path);
        if (end < begin) throw new SafeTensorsFormatException(path, $"entry '{name}' has data_offsets end {end} before begin {begin}");

        long expectedBytes;
        try
        {
            expectedBytes = checked(elements * ElementSize(dtype));
        }
        catch (OverflowException)
        {
            throw new SafeTensorsFormatException(path, $"entry '{name}' is too large");
        }
        if (end - begin != expectedBytes)
            throw new SafeTensorsFormatException(path,
                $"entry '{name}' spans {end - begin} bytes but {dtypeName}[{string.Join(", ", shape)}] needs {expectedBytes}");
        return new SafeTensorsEntry(name, dtype, shape, begin, end);
    }

    private static long ReadOffset(JsonElement e, string name, string path)
    {
        if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out var v) || v < 0)
            throw new SafeTensorsFormatException(path, $"entry '{name}' has a data offset that is not a non-negative integer");
        return v;
    }

    /// <summary>The byte ranges must cover [0, dataLength) exactly, in some order.</summary>
    private static void CheckTiling(List<SafeTensorsEntry> entries, long dataLength, string path)
    {
        long cursor = 0;
        foreach (var e in entries.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            if (e.Begin < cursor) throw new SafeTensorsFormatException(path, $"entry '{e.Name}' overlaps the previous tensor's bytes");
            if (e.Begin > cursor) throw new SafeTensorsFormatException(path, $"bytes [{cursor}, {e.Begin}) before '{e.Name}' belong to no tensor");
            cursor = e.End;
        }
        if (cursor > dataLength)
            throw new SafeTensorsFormatException(path, $"tensor data needs {cursor} bytes but the file holds {dataLength} after the header (truncated?)");
        if (cursor < dataLength)
            throw new SafeTensorsFormatException(path, $"{dataLength - cursor} bytes after the last tensor belong to no tensor");
    }
}
