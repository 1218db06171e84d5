using System.Text.Json;
using System.Text.RegularExpressions;
using TorchSharp;
using static TorchSharp.torch;
using TorchSharp.Modules;
using PrefOnline.Tensors.Serialization;

namespace PrefOnline.Learning.Models.Checkpoints;

/// <summary>
/// Reading Hugging Face-layout safetensors into a module: locating the files, mapping names (a <c>transformer.</c> prefix, the non-persistent attention
/// buffers, a tied <c>lm_head.weight</c>) and checking every name and shape before anything is
/// copied. All problems are collected and reported together.
/// </summary>
internal static partial class WeightFiles
{
    public const string SingleFile = "model.safetensors";
    public const string ShardIndex = "model.safetensors.index.json";

    /// <summary>Older transformers versions saved the causal mask as buffers h.{i}.attn.bias and
    /// h.{i}.attn.masked_bias; they carry no learned state.</summary>
    [GeneratedRegex(@"^h\.\d+\.attn\.(bias|masked_bias)$", RegexOptions.CultureInvariant)]
    private static partial Regex AttentionBuffer();

    /// <summary>The safetensors files of a checkpoint directory (one file, or the shards an index names).</summary>
    public static IReadOnlyList<string> Locate(string directory, List<string> problems)
    {
        var single = Path.Combine(directory, SingleFile);
        if (File.Exists(single)) return [single];
        var index = Path.Combine(directory, ShardIndex);
        if (File.Exists(index)) return ReadShardIndex(directory, index, problems);
        if (File.Exists(Path.Combine(directory, "pytorch_model.bin")))
            problems.Add($"no {SingleFile}, only pytorch_model.bin (a pickle, never loaded for safety): convert it to safetensors");
        else
            problems.Add($"missing {SingleFile}");
        return [];
    }

    private static IReadOnlyList<string> ReadShardIndex(string directory, string index, List<string> problems)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(index));
            if (!doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
            {
                problems.Add($"{ShardIndex} has no weight_map object");
                return [];
            }
            var files = new List<string>();
            foreach (var entry in map.EnumerateObject())
            {
                var file = entry.Value.ValueKind == JsonValueKind.String ? entry.Value.GetString()! : "";
                if (file.Length == 0 || file.Contains('/') || file.Contains('\\') || file.StartsWith('.'))
                {
                    problems.Add($"{ShardIndex} maps {entry.Name} to an invalid file name");
                    return [];
                }
                if (!files.Contains(file)) files.Add(file);
            }
            var missing = files.Where(f => !File.Exists(Path.Combine(directory, f))).ToList();
            if (missing.Count > 0) problems.Add($"{ShardIndex} names missing shard(s): {string.Join(", ", missing)}");
            return missing.Count > 0 ? [] : files.Select(f => Path.Combine(directory, f)).ToList();
        }
        catch (JsonException e)
        {
            problems.Add($"{ShardIndex} is not valid JSON ({e.Message})");
            return [];
        }
    }

    /// <summary>
    /// Every tensor of <paramref name="files"/> in its stored dtype (float16, bfloat16, float32 or
    /// float64; the copy into the model converts). Non-floating tensors are problems.
    /// <paramref name="content"/> must be disposed by the caller after the tensors have been copied (it
    /// owns the tensors).
    /// </summary>
    public static Dictionary<string, Tensor> ReadFloating(IReadOnlyList<string> files, List<SafeTensorsContent> content, List<string> problems)
    {
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var file in files)
        {
            SafeTensorsContent read;
            try
            {
                read = SafeTensorsFile.Read(file);
            }
            catch (SafeTensorsFormatException e)
            {
                problems.Add($"{Path.GetFileName(file)}: {e.Problem}");
                continue;
            }
            content.Add(read);
            foreach (var (name, tensor) in read.Tensors)
            {
                if (!is_floating_point(tensor.dtype))
                {
                    problems.Add($"{name} holds {tensor.dtype}, not a floating-point type");
                    continue;
                }
                if (!tensors.TryAdd(name, tensor.dtype == ScalarType.Float32 ? tensor : tensor.to(ScalarType.Float32)))
                    problems.Add($"{name} appears in more than one shard");
            }
        }
        return tensors;
    }

    /// <summary>
    /// Maps checkpoint names onto the GPT-2 trunk's own: strips <paramref name="prefix"/> where present
    /// (<c>transformer.</c> for a GPT2LMHeadModel), drops the attention buffers, and folds
    /// <c>lm_head.weight</c> into <c>wte.weight</c> when it is the same tensor (tied). Names outside
    /// the trunk are returned under <paramref name="extra"/> with their full name.
    /// </summary>
    public static Dictionary<string, Tensor> MapTrunk(
        IReadOnlyDictionary<string, Tensor> source, string prefix, bool prefixRequired, Dictionary<string, Tensor> extra, List<string> problems)
    {
        var trunk = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        Tensor? lmHead = null;
        foreach (var (name, tensor) in source)
        {
            string local;
            if (name.StartsWith(prefix, StringComparison.Ordinal)) local = name[prefix.Length..];
            else if (!prefixRequired && IsTrunkName(name)) local = name;
            else if (name == "lm_head.weight")
            {
                lmHead = tensor;
                continue;
            }
            else
            {
                extra[name] = tensor;
                continue;
            }
            if (AttentionBuffer().IsMatch(local)) continue;
            if (!trunk.TryAdd(local, tensor)) problems.Add($"{local} appears both with and without the '{prefix}' prefix");
        }
        if (lmHead is not null)
        {
            if (!trunk.TryGetValue("wte.weight", out var wte)) trunk["wte.weight"] = lmHead;
            else if (!lmHead.shape.SequenceEqual(wte.shape))
                problems.Add($"lm_head.weight [{Dims(lmHead)}] differs in shape from wte.weight [{Dims(wte)}]: only an LM head tied to the token embedding is supported");
            else if (!SameValues(lmHead, wte))
                problems.Add("lm_head.weight differs from wte.weight: only an LM head tied to the token embedding is supported");
        }
        return trunk;
    }

    private static bool IsTrunkName(string name) =>
        name.StartsWith("wte.", StringComparison.Ordinal) || name.StartsWith("wpe.", StringComparison.Ordinal)
        || name.StartsWith("h.", StringComparison.Ordinal) || name.StartsWith("ln_f.", StringComparison.Ordinal);

    /// <summary>Names missing, unexpected, of the wrong shape, or holding NaN/Inf — all at once.</summary>
    public static void Check(IReadOnlyDictionary<string, Tensor> expected, IReadOnlyDictionary<string, Tensor> found, List<string> problems)
    {
        var missing = expected.Keys.Where(k => !found.ContainsKey(k)).ToList();
        var unexpected = found.Keys.Where(k => !expected.ContainsKey(k)).ToList();
        if (missing.Count > 0) problems.Add($"missing tensors: {List(missing)}");
        if (unexpected.Count > 0) problems.Add($"unexpected tensors: {List(unexpected)}");
        var badShapes = new List<string>();
        var nonFinite = new List<string>();
        foreach (var (name, want) in expected)
        {
            if (!found.TryGetValue(name, out var got)) continue;
            if (!want.shape.SequenceEqual(got.shape)) badShapes.Add($"{name} is [{Dims(got)}], the config needs [{Dims(want)}]");
            else if (!AllFinite(got)) nonFinite.Add(name);
        }
        if (badShapes.Count > 0) problems.Add($"shape mismatches: {List(badShapes)}");
        if (nonFinite.Count > 0) problems.Add($"tensors holding NaN or Inf: {List(nonFinite)}");
    }

    /// <summary>Copies checked tensors into the module's parameters (names and shapes already verified),
    /// converting them to the module's dtype and device.</summary>
    public static void CopyInto(nn.Module module, IReadOnlyDictionary<string, Tensor> tensors) => StateDicts.Load(module, tensors, strict: true);

    private static bool AllFinite(Tensor t)
    {
        using var scope = NewDisposeScope();
        return t.isfinite().all().ToBoolean();
    }

    private static bool SameValues(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        return a.eq(b).all().ToBoolean();
    }

    public static string Dims(Tensor t) => string.Join(", ", t.shape);

    private static string List(List<string> items) =>
        items.Count <= 8 ? string.Join(", ", items) : $"{string.Join(", ", items.Take(8))} and {items.Count - 8} more";
}
