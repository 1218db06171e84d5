using System.Buffers.Binary;
using System.Text;
using PrefOnline.Tensors.Serialization;
using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Tensors.Tests.Serialization;

/// <summary>
/// A corpus of broken safetensors files. Each must be refused with a <see cref="SafeTensorsFormatException"/>
/// whose message names the problem, without a crash, a hang or a large allocation (the files are tiny;
/// a reader that trusted a size field would allocate gigabytes).
/// </summary>
public class SafeTensorsMalformedTests
{
    private static byte[] Build(string header, int dataBytes = 0, ulong? headerLength = null)
    {
        var json = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + json.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, headerLength ?? (ulong)json.Length);
        json.CopyTo(bytes, 8);
        for (var i = 8 + json.Length; i < bytes.Length; i++) bytes[i] = (byte)i;
        return bytes;
    }

    private static string F32(string name, string shape, long begin, long end) =>
        $"\"{name}\":{{\"dtype\":\"F32\",\"shape\":{shape},\"data_offsets\":[{begin},{end}]}}";

    private static byte[] Truncated()
    {
        var whole = Build("{" + F32("w", "[2,2]", 0, 16) + "}", 16);
        return whole[..^3];
    }

    private static byte[] InvalidUtf8()
    {
        var bytes = Build("{\"a\":1}");
        bytes[9] = 0xff;  // inside the header, where '"' was
        bytes[10] = 0xfe;
        return bytes;
    }

    /// <summary>Name → (file bytes, a fragment the message must contain).</summary>
    private static readonly Dictionary<string, (Func<byte[]> Bytes, string Message)> Corpus = new()
    {
        ["empty file"] = (() => [], "shorter than the 8-byte header length"),
        ["five bytes"] = (() => [1, 2, 3, 4, 5], "shorter than the 8-byte header length"),
        ["absurd header length"] = (() => Build("{}", headerLength: 1UL << 60), "exceeds the 104857600-byte limit"),
        ["header length of 2^64-1"] = (() => Build("{}", headerLength: ulong.MaxValue), "exceeds the 104857600-byte limit"),
        ["header length past end of file"] = (() => Build("{}", headerLength: 1000), "runs past the end of the 10-byte file"),
        ["header length 1"] = (() => Build("{", headerLength: 1), "too short to be a JSON object"),
        ["bad JSON"] = (() => Build("{\"a\": "), "header is not valid JSON"),
        ["trailing comma"] = (() => Build("{\"__metadata__\":{\"a\":\"b\"},}"), "header is not valid JSON"),
        ["invalid UTF-8"] = (InvalidUtf8, "header is not valid UTF-8"),
        ["non-object header"] = (() => Build("[1, 2, 3]"), "header must be a JSON object"),
        ["string header"] = (() => Build("\"tensors\""), "header must be a JSON object"),
        ["deep nesting"] = (() => Build("{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":1}}}}}}"), "depth"),
        ["very deep nesting"] = (() => Build(new string('[', 100_000) + new string(']', 100_000)), "depth"),
        ["unknown dtype"] = (() => Build("{\"w\":{\"dtype\":\"Q7\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1), "unsupported dtype 'Q7'"),
        ["dtype not a string"] = (() => Build("{\"w\":{\"dtype\":6,\"shape\":[1],\"data_offsets\":[0,4]}}", 4), "has no string dtype"),
        ["negative dim"] = (() => Build("{" + F32("w", "[-1,4]", 0, 16) + "}", 16), "shape entry that is not a non-negative integer"),
        ["float dim"] = (() => Build("{" + F32("w", "[2.5]", 0, 10) + "}", 10), "shape entry that is not a non-negative integer"),
        ["string dim"] = (() => Build("{" + F32("w", "[\"4\"]", 0, 16) + "}", 16), "shape entry that is not a non-negative integer"),
        ["shape overflow"] = (() => Build("{" + F32("w", "[4611686018427387904,4611686018427387904]", 0, 16) + "}", 16), "element count overflows"),
        ["byte size overflow"] = (() => Build("{" + F32("w", "[4611686018427387904]", 0, 16) + "}", 16), "is too large"),
        ["rank above limit"] = (() => Build("{" + F32("w", "[" + string.Join(",", Enumerable.Repeat("1", 65)) + "]", 0, 4) + "}", 4), "rank 65, above the limit of 64"),
        ["shape missing"] = (() => Build("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4), "has no shape array"),
        ["wrong byte count for shape"] = (() => Build("{" + F32("w", "[2,2]", 0, 12) + "}", 12), "spans 12 bytes but F32[2, 2] needs 16"),
        ["offsets missing"] = (() => Build("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4), "needs data_offsets [begin, end]"),
        ["three offsets"] = (() => Build("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 4), "needs data_offsets [begin, end]"),
        ["negative offset"] = (() => Build("{" + F32("w", "[1]", -4, 0) + "}", 4), "data offset that is not a non-negative integer"),
        ["end before begin"] = (() => Build("{" + F32("w", "[1]", 8, 4) + "}", 8), "data_offsets end 4 before begin 8"),
        ["overlapping offsets"] = (() => Build("{" + F32("a", "[4]", 0, 16) + "," + F32("b", "[4]", 8, 24) + "}", 24), "overlaps the previous tensor's bytes"),
        ["same range twice"] = (() => Build("{" + F32("a", "[4]", 0, 16) + "," + F32("b", "[4]", 0, 16) + "}", 16), "overlaps the previous tensor's bytes"),
        ["out-of-range offsets"] = (() => Build("{" + F32("w", "[4]", 0, 16) + "}", 8), "needs 16 bytes but the file holds 8 after the header"),
        ["hole between tensors"] = (() => Build("{" + F32("a", "[2]", 0, 8) + "," + F32("b", "[2]", 16, 24) + "}", 24), "bytes [8, 16) before 'b' belong to no tensor"),
        ["bytes after the last tensor"] = (() => Build("{" + F32("a", "[2]", 0, 8) + "}", 12), "4 bytes after the last tensor belong to no tensor"),
        ["truncated data"] = (Truncated, "truncated?"),
        ["duplicate names"] = (() => Build("{" + F32("w", "[1]", 0, 4) + "," + F32("w", "[1]", 4, 8) + "}", 8), "name 'w' appears twice"),
        ["field given twice"] = (() => Build("{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4), "has field 'dtype' twice"),
        ["entry not an object"] = (() => Build("{\"w\":5}"), "entry 'w' is not an object"),
        ["metadata value not a string"] = (() => Build("{\"__metadata__\":{\"step\":5}}"), "__metadata__ value of 'step' is not a string"),
        ["metadata not an object"] = (() => Build("{\"__metadata__\":[\"a\"]}"), "__metadata__ must be an object of strings"),
    };

    public static TheoryData<string> Names => new(Corpus.Keys);

    [Theory]
    [MemberData(nameof(Names))]
    public void Malformed_file_is_refused_with_a_clear_message(string name)
    {
        var (bytes, fragment) = Corpus[name];
        var path = Path.Combine(Path.GetTempPath(), $"prefonline-malformed-{Guid.NewGuid():N}.safetensors");
        File.WriteAllBytes(path, bytes());
        try
        {
            using var scope = NewDisposeScope();
            var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
            var e = Assert.Throws<SafeTensorsFormatException>(() => SafeTensorsFile.Read(path));
            var allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
            Assert.Contains(fragment, e.Message);
            Assert.StartsWith($"{path}: not a valid safetensors file: ", e.Message);
            Assert.Equal(0, scope.DisposablesCount);
            // The largest file of the corpus is 200 kB (the deeply nested one); nothing may allocate much more.
            Assert.True(allocated < 4_000_000, $"reading a {bytes().Length}-byte file allocated {allocated} bytes");

            // The header-only reader refuses the same file with the same message.
            var header = Assert.Throws<SafeTensorsFormatException>(() => SafeTensorsFile.ReadHeader(path));
            Assert.Equal(e.Message, header.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void The_corpus_has_at_least_ten_files_and_a_valid_file_built_the_same_way_loads()
    {
        Assert.True(Corpus.Count >= 10);
        var path = Path.Combine(Path.GetTempPath(), $"prefonline-valid-{Guid.NewGuid():N}.safetensors");
        // The builder itself is sound: the same construction with consistent numbers is accepted.
        var bytes = Build("{\"__metadata__\":{\"k\":\"v\"}," + F32("a", "[2]", 0, 8) + "," + F32("b", "[1,1]", 8, 12) + "}", 12);
        File.WriteAllBytes(path, bytes);
        try
        {
            using var content = SafeTensorsFile.Read(path);
            Assert.Equal(["a", "b"], content.Tensors.Keys.Order());
            Assert.Equal([1L, 1L], content.Tensors["b"].shape);
            Assert.Equal("v", content.Metadata["k"]);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Missing_file_is_a_format_exception_naming_the_path()
    {
        var path = Path.Combine(Path.GetTempPath(), $"prefonline-missing-{Guid.NewGuid():N}.safetensors");
        var e = Assert.Throws<SafeTensorsFormatException>(() => SafeTensorsFile.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("file not found", e.Message);
    }
}
