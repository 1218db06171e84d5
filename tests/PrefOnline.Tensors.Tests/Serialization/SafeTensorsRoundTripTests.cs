using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using PrefOnline.Tensors.Serialization;
using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Tensors.Tests.Serialization;

/// <summary>
/// safetensors written and read by us, written by PyTorch (by hand: the safetensors package is not
/// installed, so the Python side builds the header with json and the bytes with struct/numpy, exactly
/// as the format specifies) and read by us, and written by us and parsed by PyTorch.
/// </summary>
public sealed class SafeTensorsRoundTripTests : IDisposable
{
    private readonly DirectoryInfo dir = Directory.CreateTempSubdirectory("prefonline-safetensors-");

    public void Dispose() => dir.Delete(recursive: true);

    private string PathFor(string name) => Path.Combine(dir.FullName, name);

    /// <summary>Tensors of every supported dtype, with awkward shapes (scalar, empty, non-contiguous).</summary>
    private static Dictionary<string, Tensor> Sample()
    {
        using var generator = new Generator(3);
        var f32 = randn([3, 4], generator: generator);
        return new Dictionary<string, Tensor>
        {
            ["h.0.attn.c_attn.weight"] = f32,
            ["f16"] = randn([2, 3], generator: generator).to(ScalarType.Float16),
            ["bf16"] = randn([5], generator: generator).to(ScalarType.BFloat16),
            ["i64"] = tensor(new long[] { long.MinValue, -1, 0, 1, long.MaxValue }),
            ["bool"] = tensor(new[] { true, false, false, true }, [2, 2]),
            ["f64"] = tensor(new[] { Math.PI, double.Epsilon, double.MaxValue, -0.0 }),
            ["i32"] = tensor(new[] { int.MinValue, 7 }),
            ["u8"] = tensor(new byte[] { 0, 255 }),
            ["scalar"] = tensor(2.5f),
            ["empty"] = zeros([0, 3]),
            ["transposed"] = f32.transpose(0, 1),  // a non-contiguous view: written in logical (row-major) order
            ["naïve ünïcode name"] = ones([1]),
        };
    }

    private static byte[] Bytes(Tensor t) => t.numel() == 0 ? [] : t.contiguous().bytes.ToArray();

    /// <summary>Every element as a double, row-major (any dtype, any rank including 0).</summary>
    private static double[] Doubles(Tensor t) =>
        t.numel() == 0 ? [] : System.Runtime.InteropServices.MemoryMarshal.Cast<byte, double>(t.to(ScalarType.Float64).contiguous().bytes).ToArray();

    [Fact]
    public void Every_dtype_round_trips_with_shape_values_and_metadata()
    {
        using var scope = NewDisposeScope();
        var tensors = Sample();
        var path = PathFor("all.safetensors");
        SafeTensorsFile.Write(path, tensors, new Dictionary<string, string> { ["step"] = "12", ["note"] = "ünïcode" });

        using var content = SafeTensorsFile.Read(path);
        Assert.Equal(tensors.Keys.Order(), content.Tensors.Keys.Order());
        foreach (var (name, t) in tensors)
        {
            var read = content.Tensors[name];
            Assert.Equal(t.dtype, read.dtype);
            Assert.Equal(t.shape, read.shape);
            Assert.Equal(Bytes(t), Bytes(read));
        }
        Assert.Equal("12", content.Metadata["step"]);
        Assert.Equal("ünïcode", content.Metadata["note"]);
        Assert.Equal("pt", content.Metadata["format"]);  // Hugging Face refuses files without it

        var header = SafeTensorsFile.ReadHeader(path);
        Assert.Equal(0, header.DataStart % 8);  // data aligned, as the reference writer does
        Assert.Equal(tensors.Keys, header.Entries.Select(e => e.Name));  // written in the given order
    }

    [Fact]
    public void Loaded_tensors_belong_to_the_content_not_to_a_scope()
    {
        var path = PathFor("owned.safetensors");
        using (var scope = NewDisposeScope()) SafeTensorsFile.Write(path, Sample());
        SafeTensorsContent content;
        using (var scope = NewDisposeScope())
        {
            content = SafeTensorsFile.Read(path);
            Assert.Equal(0, scope.DisposablesCount);
        }
        Assert.All(content.Tensors.Values, t => Assert.False(t.IsInvalid));
        content.Dispose();
        Assert.All(content.Tensors.Values, t => Assert.True(t.IsInvalid));
    }

    [Fact]
    public void Writing_replaces_atomically_and_refuses_bad_input_before_touching_the_file()
    {
        using var scope = NewDisposeScope();
        var path = PathFor("atomic.safetensors");
        SafeTensorsFile.Write(path, new Dictionary<string, Tensor> { ["a"] = ones([2]) });
        var before = File.ReadAllBytes(path);

        Assert.Throws<ArgumentException>(() => SafeTensorsFile.Write(path, new Dictionary<string, Tensor> { ["__metadata__"] = ones([1]) }));
        Assert.Throws<ArgumentException>(() => SafeTensorsFile.Write(path, [new("x", ones([1])), new("x", ones([1]))]));
        Assert.Contains("cannot be stored", Assert.Throws<ArgumentException>(() =>
            SafeTensorsFile.Write(path, new Dictionary<string, Tensor> { ["i16"] = zeros([1], ScalarType.Int16), ["c"] = zeros([1], ScalarType.ComplexFloat32) })).Message);

        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal([Path.GetFileName(path)], dir.GetFiles().Select(f => f.Name));  // no temp file left behind
    }

    [Fact]
    public async Task A_file_written_by_PyTorch_is_read_with_the_same_values()
    {
        var path = PathFor("from-torch.safetensors");
        var answer = await PythonTorch.RunAsync("""
            g = torch.Generator().manual_seed(5)
            tensors = {
                "wte.weight": torch.randn(4, 3, generator=g),
                "half": torch.randn(2, 2, generator=g).half(),
                "bfloat": torch.randn(3, generator=g).bfloat16(),
                "ids": torch.tensor([[1, -2], [3, 2**40]], dtype=torch.int64),
                "mask": torch.tensor([True, False, True]),
                "double": torch.randn(2, generator=g, dtype=torch.float64),
                "scalar": torch.tensor(1.25),
            }
            names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64", torch.bool: "BOOL", torch.float64: "F64"}
            header, blobs, offset = {"__metadata__": {"format": "pt", "source": "pytorch"}}, [], 0
            for name, t in tensors.items():
                raw = t.contiguous().view(torch.uint8).numpy().tobytes() if t.dim() > 0 else t.reshape(1).view(torch.uint8).numpy().tobytes()
                header[name] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
                blobs.append(raw)
                offset += len(raw)
            text = json.dumps(header).encode("utf-8")
            text += b" " * ((8 - len(text) % 8) % 8)
            with open(data["path"], "wb") as f:
                f.write(struct.pack("<Q", len(text)))
                f.write(text)
                for b in blobs:
                    f.write(b)
            print(json.dumps({name: {"dtype": names[t.dtype], "shape": list(t.shape), "values": t.double().flatten().tolist()} for name, t in tensors.items()}))
            """, new JsonObject { ["path"] = path });

        using var content = SafeTensorsFile.Read(path);
        Assert.Equal("pytorch", content.Metadata["source"]);
        foreach (var (name, expected) in answer.AsObject())
        {
            var t = content.Tensors[name];
            Assert.Equal(expected!["shape"]!.AsArray().Select(d => d!.GetValue<long>()), t.shape);
            using var scope = NewDisposeScope();
            Assert.Equal(PythonTorch.Doubles(expected["values"]), Doubles(t));
        }
        Assert.Equal(ScalarType.BFloat16, content.Tensors["bfloat"].dtype);
        Assert.Equal(ScalarType.Float16, content.Tensors["half"].dtype);
        Assert.Equal(ScalarType.Bool, content.Tensors["mask"].dtype);
        Assert.Equal(1L << 40, content.Tensors["ids"].data<long>()[1, 1]);
    }

    [Fact]
    public async Task A_file_we_write_is_parsed_by_PyTorch_to_the_same_values()
    {
        var path = PathFor("to-torch.safetensors");
        Dictionary<string, (long[] Shape, double[] Values, ScalarType Dtype)> expected;
        using (var scope = NewDisposeScope())
        {
            var tensors = Sample();
            tensors.Remove("u8");
            tensors.Remove("i32");
            SafeTensorsFile.Write(path, tensors, new Dictionary<string, string> { ["policy_version"] = "7" });
            expected = tensors.ToDictionary(kv => kv.Key, kv => (kv.Value.shape, Doubles(kv.Value), kv.Value.dtype));
        }

        var answer = await PythonTorch.RunAsync("""
            types = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64, "BOOL": torch.bool, "F64": torch.float64}
            with open(data["path"], "rb") as f:
                blob = f.read()
            (n,) = struct.unpack("<Q", blob[:8])
            header = json.loads(blob[8:8 + n].decode("utf-8"))
            meta = header.pop("__metadata__", {})
            buffer = blob[8 + n:]
            out = {}
            for name, info in header.items():
                begin, end = info["data_offsets"]
                raw = bytearray(buffer[begin:end])
                t = torch.frombuffer(raw, dtype=types[info["dtype"]]) if raw else torch.empty(0, dtype=types[info["dtype"]])
                t = t.reshape(info["shape"])
                out[name] = {"shape": list(t.shape), "values": t.double().flatten().tolist(), "dtype": info["dtype"]}
            print(json.dumps({"tensors": out, "metadata": meta, "aligned": (8 + n) % 8 == 0}))
            """, new JsonObject { ["path"] = path });

        Assert.True(answer["aligned"]!.GetValue<bool>());
        Assert.Equal("7", answer["metadata"]!["policy_version"]!.GetValue<string>());
        Assert.Equal("pt", answer["metadata"]!["format"]!.GetValue<string>());
        var read = answer["tensors"]!.AsObject();
        Assert.Equal(expected.Keys.Order(), read.Select(kv => kv.Key).Order());
        var dtypeNames = new Dictionary<ScalarType, string>
        {
            [ScalarType.Float32] = "F32", [ScalarType.Float16] = "F16", [ScalarType.BFloat16] = "BF16",
            [ScalarType.Int64] = "I64", [ScalarType.Bool] = "BOOL", [ScalarType.Float64] = "F64",
        };
        foreach (var (name, (shape, values, dtype)) in expected)
        {
            Assert.Equal(shape, read[name]!["shape"]!.AsArray().Select(d => d!.GetValue<long>()));
            Assert.Equal(values, PythonTorch.Doubles(read[name]!["values"]));
            Assert.Equal(dtypeNames[dtype], read[name]!["dtype"]!.GetValue<string>());
        }
    }
}
