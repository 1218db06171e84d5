// One process per mode, so peak RSS (VmHWM) is the mode's own: `full` trains every weight of a random
// ~125M-parameter Llama-shaped policy against a separate frozen reference copy (what the worker does without an
// adapter); `lora` trains rank-r adapters on the same base, whose reference is the base with the adapters off
// (no copy, no optimizer state for frozen weights). A step: reference log-probs (no grad), policy log-probs,
// loss = −mean log π + 0.05·mean(log π − log π_ref)², backward, AdamW. Then one checkpoint of what each mode
// must store per version (full: policy weights + optimizer moments; lora: the PEFT adapter + its moments).
// Then two versions through the worker's real CheckpointStore, in the layout before issue 14 item 6 (format 1: each
// version copies the frozen reference; a LoRA version also holds the merged weights) and after it (format 2: the
// reference / LoRA base is a shared blob written once; a LoRA version holds the adapter, not the model). The second
// version is the steady state: its own bytes and its write time (staging + store write, as CheckpointCoordinator does).
// The reward model, its optimizer and the replay buffer, per version in both layouts, are not part of this benchmark.
using System.Diagnostics;
using PrefOnline.Learning.Models;
using PrefOnline.Learning.Models.Adapters;
using PrefOnline.Learning.Models.Checkpoints;
using PrefOnline.Learning.Models.LogProbs;
using PrefOnline.Learning.Optimization;
using PrefOnline.Tensors.Serialization;
using PrefOnline.Worker.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

var mode = args.Length > 0 ? args[0] : "lora";
var steps = args.Length > 1 ? int.Parse(args[1]) : 3;
const int Batch = 4, Sequence = 256, Rank = 8;
torch.set_num_threads(Environment.ProcessorCount);
var config = new LlamaConfig
{
    VocabularySize = 32_000, Width = 768, IntermediateSize = 2048, Layers = 12, Heads = 12, KeyValueHeadCount = 4,
    ContextLength = 512, TieWordEmbeddings = false,
};

static long PeakRssKiB() => long.Parse(File.ReadLines("/proc/self/status").First(l => l.StartsWith("VmHWM:")).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
static long RssKiB() => long.Parse(File.ReadLines("/proc/self/status").First(l => l.StartsWith("VmRSS:")).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);

using var policy = PolicyModel.Create(config, seed: 1);
var parameterCount = policy.parameters().Sum(p => p.numel());
var work = Path.Combine(Path.GetTempPath(), $"lora-vs-full-{mode}-{Environment.ProcessId}");
Directory.CreateDirectory(work);
var referenceFile = Path.Combine(work, "reference.safetensors"); // staged once per run by the worker, before training
PolicyCheckpoint.SaveWeightsFile(referenceFile, policy);
ReferenceModel reference;
IReadOnlyList<TorchSharp.Modules.Parameter> trainable;
LoraAdapters? adapters = null;
if (mode == "full")
{
    reference = new ReferenceModel(policy);                       // a second full copy, frozen
    trainable = policy.parameters().ToList();
}
else
{
    adapters = LoraAdapters.Attach(policy, new LoraOptions { Rank = Rank, Alpha = 2 * Rank }, seed: 2);
    reference = ReferenceModel.BaseOf(policy);                    // the same weights, adapters off
    trainable = adapters.TrainableParameters().ToList();
}
using var optimizer = new AdamWOptimizer(trainable, new AdamWOptions { LearningRate = 1e-5 });
var afterBuild = RssKiB();

var generator = new Generator(3);
using var tokens = randint(0, config.VocabularySize, [Batch, Sequence], generator: generator, dtype: ScalarType.Int64);
using var batch = SequenceBatch.FromTokens(Enumerable.Range(0, Batch).Select(b => (tokens[b, ..16].data<long>().ToArray().Select(t => (int)t).ToArray(), tokens[b, 16..].data<long>().ToArray().Select(t => (int)t).ToArray())).ToList(), Sequence, 0);
var seconds = new List<double>();
policy.train();
for (var step = 0; step < steps + 1; step++)                      // step 0 warms up (allocator, first-touch)
{
    var clock = Stopwatch.StartNew();
    using (NewDisposeScope())
    {
        var referenceLogProbs = reference.Compute(batch, LogProbReduction.Sum).TokenLogProbs;
        var logProbs = SequenceLogProbs.Compute(policy, batch, LogProbReduction.Sum).TokenLogProbs;
        var loss = -logProbs.mean() + 0.05 * (logProbs - referenceLogProbs).pow(2).mean();
        optimizer.ZeroGrad();
        loss.backward();
        optimizer.Step();
    }
    if (step > 0) seconds.Add(clock.Elapsed.TotalSeconds);
}

var directory = Path.Combine(work, "weights");
Directory.CreateDirectory(directory);
var write = Stopwatch.StartNew();
if (mode == "full") PolicyCheckpoint.SaveWeightsFile(Path.Combine(directory, "model.safetensors"), policy);
else PeftAdapter.Save(directory, adapters!);
SafeTensorsFile.Write(Path.Combine(directory, "optimizer.safetensors"), optimizer.StateDict());
var writeSeconds = write.Elapsed.TotalSeconds;
var bytes = Directory.GetFiles(directory).Sum(f => new FileInfo(f).Length);
Directory.Delete(directory, recursive: true);

var peakRssBeforeStore = PeakRssKiB(); // the training figure: the store phase below allocates its own buffers
var layouts = new List<string>();
foreach (var layout in new[] { "before", "after" })
{
    var root = Path.Combine(work, $"store-{layout}");
    await using var store = await CheckpointStore.OpenAsync(new CheckpointOptions { Directory = root, KeepLast = 5 });
    store.StartNewLineage();
    double versionSeconds = 0;
    long versionBytes = 0;
    for (var version = 1; version <= 2; version++)
    {
        var clock = Stopwatch.StartNew();
        var staging = Path.Combine(work, $"staging-{layout}-{version}");
        Directory.CreateDirectory(staging);
        var draft = new CheckpointDraft();
        if (adapters is null || layout == "before")
        {
            var policyFile = Path.Combine(staging, "policy.safetensors");
            if (adapters is null) PolicyCheckpoint.SaveWeightsFile(policyFile, policy);
            else
            {
                using var merged = policy.Copy();
                adapters.MergeInto(merged);
                PolicyCheckpoint.SaveWeightsFile(policyFile, merged);
            }
            draft.CopyFile("policy.safetensors", policyFile);
        }
        if (adapters is not null)
        {
            PeftAdapter.Save(Path.Combine(staging, "adapter"), adapters);
            draft.CopyFile(PeftAdapter.ConfigFile, Path.Combine(staging, "adapter", PeftAdapter.ConfigFile));
            draft.CopyFile(PeftAdapter.WeightsFile, Path.Combine(staging, "adapter", PeftAdapter.WeightsFile));
        }
        SafeTensorsFile.Write(Path.Combine(staging, "optimizer.safetensors"), optimizer.StateDict());
        draft.CopyFile("optimizer.safetensors", Path.Combine(staging, "optimizer.safetensors"));
        if (layout == "before") draft.CopyFile("reference.safetensors", referenceFile);
        else draft.ShareFile("reference.safetensors", referenceFile);
        var written = await store.WriteAsync(draft);
        versionSeconds = clock.Elapsed.TotalSeconds;
        versionBytes = written.Manifest.Files.Values.Where(f => !f.Shared || version == 1).Sum(f => f.Size);
        Directory.Delete(staging, recursive: true);
    }
    var diskBytes = UniqueBytes(root);
    layouts.Add($"{layout}_version_mib={versionBytes / 1048576.0:F1} {layout}_version_write_s={versionSeconds:F2} {layout}_store_after_2_versions_mib={diskBytes / 1048576.0:F1}");
}
Directory.Delete(work, recursive: true);

// Bytes on disk under a directory, each inode once (what `du -sb` reports; hard-linked blobs count once).
static long UniqueBytes(string root)
{
    var seen = new HashSet<(ulong, ulong)>();
    long total = 0;
    foreach (var file in Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories))
    {
        var stat = System.Diagnostics.Process.Start(new ProcessStartInfo("stat", ["-c", "%d %i %s", file]) { RedirectStandardOutput = true })!;
        var parts = stat.StandardOutput.ReadToEnd().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        stat.WaitForExit();
        if (seen.Add((ulong.Parse(parts[0]), ulong.Parse(parts[1])))) total += long.Parse(parts[2]);
    }
    return total;
}

var median = seconds.Order().ElementAt(seconds.Count / 2);
Console.WriteLine($"mode={mode} parameters={parameterCount:N0} trainable={trainable.Sum(p => p.numel()):N0} steps={steps} " +
                  $"step_median_s={median:F2} tokens_per_s={Batch * Sequence / median:F0} rss_after_build_mib={afterBuild / 1024} peak_rss_mib={peakRssBeforeStore / 1024} " +
                  $"checkpoint_mib={bytes / 1048576.0:F1} checkpoint_write_s={writeSeconds:F2} {string.Join(' ', layouts)} threads={torch.get_num_threads()} load={File.ReadAllText("/proc/loadavg").Split(' ')[0]}");
