using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace PrefOnline.Learning.Tests.Models.Reference;

/// <summary>
/// Runs gpt2_reference.py (a plain-PyTorch GPT-2) or llama_reference.py (a plain-PyTorch Llama family)
/// with Debian's /usr/bin/python3 and returns its answers. A machine without python3-torch fails the test with the install command; it never skips.
/// </summary>
public static class PythonReference
{
    public const string Python = "/usr/bin/python3";

    public const string Gpt2Script = "gpt2_reference.py";

    public const string LlamaScript = "llama_reference.py";

    public static string ScriptPath(string script) => Path.Combine(AppContext.BaseDirectory, "Models", "Reference", script);

    /// <summary>Runs <paramref name="script"/> on <paramref name="spec"/>, writing checkpoints under <paramref name="outDir"/>; returns expected.json.</summary>
    public static JsonObject Run(JsonObject spec, string outDir, string script = Gpt2Script)
    {
        Directory.CreateDirectory(outDir);
        var specPath = Path.Combine(outDir, "spec.json");
        File.WriteAllText(specPath, spec.ToJsonString());
        var (code, stdout, stderr) = Execute(ScriptPath(script), specPath, outDir);
        if (code != 0)
        {
            if (stderr.Contains("No module named 'torch'", StringComparison.Ordinal))
                throw new InvalidOperationException($"{Python} has no torch: apt-get install -y python3-torch");
            throw new InvalidOperationException($"{script} failed ({code}):\n{stdout}\n{stderr}");
        }
        return JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "expected.json")))!.AsObject();
    }

    private static (int Code, string Stdout, string Stderr) Execute(params string[] args)
    {
        if (!File.Exists(Python))
            throw new InvalidOperationException($"{Python} not found: apt-get install -y python3 python3-torch");
        var info = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment["OMP_NUM_THREADS"] = "1";
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(3)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{args[0]} did not finish within 3 minutes");
        }
        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    public static JsonArray Ints(params int[] values) => new(values.Select(v => (JsonNode)v).ToArray());

    public static JsonArray Rows(params int[][] rows) => new(rows.Select(r => (JsonNode)Ints(r)).ToArray());

    public static float[] Flatten(JsonNode node)
    {
        var result = new List<float>();
        void Walk(JsonNode n)
        {
            if (n is JsonArray a) foreach (var x in a) Walk(x!);
            else result.Add(n.GetValue<float>());
        }
        Walk(node);
        return result.ToArray();
    }

    public static JsonObject HfConfig(int vocab, int positions, int width, int layers, int heads) => new()
    {
        ["model_type"] = "gpt2",
        ["vocab_size"] = vocab,
        ["n_positions"] = positions,
        ["n_embd"] = width,
        ["n_layer"] = layers,
        ["n_head"] = heads,
        ["layer_norm_epsilon"] = 1e-5,
        ["resid_pdrop"] = 0.0,
        ["embd_pdrop"] = 0.0,
        ["attn_pdrop"] = 0.0,
        ["activation_function"] = "gelu_new",
    };

    public static string Serialize(JsonNode node) => node.ToJsonString(new JsonSerializerOptions { WriteIndented = false });
}
