using System.Text.Json;
using System.Text.Json.Nodes;
using PrefOnline.Torch.Decoding;
using PrefOnline.Torch.Serialization;

namespace PrefOnline.Torch.Tests.Decoding;

/// <summary>The fused decoder against a plain, cache-free PyTorch GPT-2 (Decoding/Python/gpt2_reference.py)
/// on the same random weights, written by PyTorch as safetensors in the Hugging Face layout.</summary>
[Collection(NativeMemoryCollection.Name)]
public class Gpt2DecoderCrossCheckTests
{
    public static TheoryData<int, int, int, int, int> Shapes => new()
    {
        { 4, 4, 128, 258, 256 }, // the `tiny` preset
        { 2, 3, 60, 101, 48 },   // head dim 20, widths and vocabulary off every vector multiple: the kernels' tail paths
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Logits_and_greedy_continuations_match_plain_pytorch(int layers, int heads, int width, int vocab, int context)
    {
        var shape = new Gpt2DecoderShape(layers, heads, width, vocab, context);
        var random = new Random(7);
        int[] Sequence(int n) => Enumerable.Range(0, n).Select(_ => random.Next(vocab)).ToArray();
        int[][] sequences = [Sequence(1), Sequence(5), Sequence(17), Sequence(context - 3)];
        int[][] prompts = [Sequence(1), Sequence(9), Sequence(3)];
        const int maxNew = 20;

        var work = Directory.CreateTempSubdirectory("gpt2-reference-").FullName;
        try
        {
            var request = new JsonObject
            {
                ["layers"] = layers, ["heads"] = heads, ["width"] = width, ["vocab"] = vocab, ["context"] = context, ["eps"] = 1e-5, ["seed"] = 1234,
                ["sequences"] = JsonSerializer.SerializeToNode(sequences),
                ["greedy"] = new JsonObject { ["prompts"] = JsonSerializer.SerializeToNode(prompts), ["max_new"] = maxNew },
            };
            File.WriteAllText(Path.Combine(work, "request.json"), request.ToJsonString());
            PythonReference.Run("gpt2_reference.py", work);
            var reference = JsonNode.Parse(File.ReadAllText(Path.Combine(work, "reference.json")))!;

            var baseline = TorchRuntime.LiveTensors;
            var best = Gpt2Decoder.Kernels;
            using (var content = SafeTensorsFile.Read(Path.Combine(work, "weights.safetensors")))
            using (var decoder = new Gpt2Decoder(shape, content.Tensors))
            {
                // Every compiled kernel set this CPU can run (AVX-512, AVX2, SSE2 on an AVX-512 machine).
                try
                {
                    for (var level = best; level >= Gpt2KernelLevel.Baseline; level--)
                    {
                        Assert.Equal(level, Gpt2Decoder.SelectKernels(level));
                        Check(decoder, level);
                    }
                }
                finally
                {
                    Gpt2Decoder.SelectKernels(best);
                }
            }

            void Check(Gpt2Decoder decoder, Gpt2KernelLevel level)
            {
                var logits = decoder.Logits(sequences);
                for (var i = 0; i < sequences.Length; i++)
                {
                    var expected = reference["logits"]![i]!.AsArray().Select(v => v!.GetValue<float>()).ToArray();
                    Assert.Equal(expected.Length, logits[i].Length);
                    var diff = expected.Zip(logits[i], (a, b) => Math.Abs(a - b)).Max();
                    Assert.True(diff < 1e-4, $"{level}: sequence {i} (length {sequences[i].Length}): max |logit diff| {diff:E2} ≥ 1e-4");
                }

                // All prompts in one batch (different lengths), and the first alone (the batch-1 kernels),
                // against PyTorch's one-at-a-time greedy loop.
                var batched = decoder.Generate(new DecodeRequest
                {
                    Prompts = prompts, Temperature = 0, MaxNewTokens = maxNew, RowSeeds = [1, 2, 3],
                });
                var alone = decoder.Generate(new DecodeRequest { Prompts = [prompts[0]], Temperature = 0, MaxNewTokens = maxNew, RowSeeds = [1] });
                foreach (var (i, row) in batched.Select((r, i) => (i, r)).Append((0, alone[0])))
                {
                    var expectedTokens = reference["greedy_tokens"]![i]!.AsArray().Select(v => v!.GetValue<int>()).ToArray();
                    var expectedLogProbs = reference["greedy_logprobs"]![i]!.AsArray().Select(v => v!.GetValue<float>()).ToArray();
                    Assert.Equal(expectedTokens, row.Tokens);
                    Assert.Equal(DecodeFinish.Length, row.Finish);
                    for (var t = 0; t < maxNew; t++)
                    {
                        Assert.True(Math.Abs(expectedLogProbs[t] - row.PolicyLogProbs[t]) < 1e-4,
                            $"{level}: prompt {i} token {t}: log-prob {row.PolicyLogProbs[t]} vs PyTorch {expectedLogProbs[t]}");
                        Assert.Equal(0f, row.SamplerLogProbs[t]); // greedy samples from a point mass
                    }
                }
            }

            Assert.Equal(baseline, TorchRuntime.LiveTensors);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }
}
