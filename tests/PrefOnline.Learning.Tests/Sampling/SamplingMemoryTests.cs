using PrefOnline.Learning.Tests.Support;
using System.Diagnostics;
using PrefOnline.Learning.Models;
using PrefOnline.Learning.Sampling;
using PrefOnline.Learning.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Tests.Sampling;

[Collection(NativeMemoryCollection.Name)]
public class SamplingMemoryTests
{
    /// <summary>10,000 sequences from the tiny preset with the byte tokenizer (short outputs keep it to seconds): resident memory
    /// stays flat after warm-up and no native tensor is left behind.</summary>
    [Fact]
    public void Generating_ten_thousand_sequences_leaves_memory_flat()
    {
        var config = Gpt2Config.Tiny();
        using (var weights = new RandomPolicyWeights(config, 1))
        using (var sampler = PolicySampler.Create(weights.Model, ByteTokenizer.Instance))
        {
            // Counted once the model exists: TorchSharp counts a Parameter's construction twice (it moves the
            // handle of the tensor it wraps), so module construction itself is not what this test measures.
            var liveBefore = LiveTensors.Count;
            var prompts = Enumerable.Range(0, 250).Select(i => string.Concat(Enumerable.Range(0, 4 + i % 13).Select(j => (char)('a' + (i + j) % 26)))).ToArray();
            var options = new SamplingOptions { SamplesPerPrompt = 4, MaxNewTokens = 8, BatchSize = 64, StopStrings = ["zz"] };
            long Resident()
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
                GC.Collect();
                using var self = Process.GetCurrentProcess();
                return self.WorkingSet64;
            }

            var produced = 0;
            for (var round = 0; round < 2; round++) produced += sampler.Sample(prompts, options with { Seed = (ulong)round }).Count; // warm-up: buffers reach their high-water mark
            var warm = Resident();
            for (var round = 2; round < 10; round++) produced += sampler.Sample(prompts, options with { Seed = (ulong)round }).Count;
            var end = Resident();

            Assert.Equal(10_000, produced);
            var growth = (end - warm) / (1024.0 * 1024.0);
            Assert.True(growth < 16, $"resident memory grew by {growth:F1} MiB over 8,000 sequences");
            Assert.Equal(liveBefore, LiveTensors.Count);
        }
    }
}
