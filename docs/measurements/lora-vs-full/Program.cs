// One process per mode, so peak RSS (VmHWM) is the mode's own: `full` trains every weight of a random
// ~125M-parameter Llama-shaped policy against a separate frozen reference copy (what the worker does without an
// adapter); `lora` trains rank-r adapters on the same base, whose reference is the base with the adapters off
// (no copy, no optimizer state for frozen weights). A step: reference log-probs (no grad), policy log-probs,
// loss = −mean log π + 0.05·mean(log π − log π_ref)², backward, AdamW. Then one checkpoint of what each mode
// must store per version (full: policy weights + optimizer moments; lora: the PEFT adapter + its moments).
using System.Diagnostics;
using PrefOnline.Learning.Models;
using PrefOnline.Learning.Models.Adapters;
using PrefOnline.Learning.Models.Checkpoints;
using PrefOnline.Learning.Models.LogProbs;
using PrefOnline.Learning.Optimization;
using PrefOnline.Tensors.Serialization;
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

var directory = Path.Combine(Path.GetTempPath(), $"lora-vs-full-{mode}-{Environment.ProcessId}");
Directory.CreateDirectory(directory);
var write = Stopwatch.StartNew();
if (mode == "full") PolicyCheckpoint.SaveWeightsFile(Path.Combine(directory, "model.safetensors"), policy);
else PeftAdapter.Save(directory, adapters!);
SafeTensorsFile.Write(Path.Combine(directory, "optimizer.safetensors"), optimizer.StateDict());
var writeSeconds = write.Elapsed.TotalSeconds;
var bytes = Directory.GetFiles(directory).Sum(f => new FileInfo(f).Length);
Directory.Delete(directory, recursive: true);

var median = seconds.Order().ElementAt(seconds.Count / 2);
Console.WriteLine($"mode={mode} parameters={parameterCount:N0} trainable={trainable.Sum(p => p.numel()):N0} steps={steps} " +
                  $"step_median_s={median:F2} tokens_per_s={Batch * Sequence / median:F0} rss_after_build_mib={afterBuild / 1024} peak_rss_mib={PeakRssKiB() / 1024} " +
                  $"checkpoint_mib={bytes / 1048576.0:F1} checkpoint_write_s={writeSeconds:F2} threads={torch.get_num_threads()} load={File.ReadAllText("/proc/loadavg").Split(' ')[0]}");
