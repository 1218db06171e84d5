using System.Runtime.InteropServices;
using PrefOnline.Learning.Models;
using PrefOnline.Learning.Randomness;
using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Sampling;

/// <summary>
/// Decodes with the policy's own TorchSharp modules (any device, any dtype): one prefill forward over
/// the left-padded prompts writes their keys and values into a preallocated <see cref="KvCache"/>, the
/// LM head reads only the last prompt position, and every step runs one position per row, written into
/// the cache in place. The cache is shared by a prompt's samples (prefilled once, then repeated), and is
/// compacted to the rows still running once at most half of them are. Runs in inference mode and eval
/// mode (no dropout); the model's mode is restored afterwards.
/// </summary>
public sealed class TorchSharpDecoder(PolicyModel model) : IPolicyDecoder
{
    public const string BackendName = "torchsharp";

    private readonly PolicyModel model = model ?? throw new ArgumentNullException(nameof(model));

    public string Backend => BackendName;

    public DecoderConfig Config => model.Config;

    public IReadOnlyList<DecodedSequence> Generate(DecodeRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        cancellationToken.ThrowIfCancellationRequested();
        var config = model.Config;
        request.ThrowIfInvalidFor(config);

        var rows = new DecodeRows(request);
        var random = request.Seeds().Select(seed => new Xoshiro256StarStar(seed)).ToArray();
        var settings = SamplingSettings.Of(request);
        var scratch = new SamplingRule.Scratch(config.VocabularySize);
        scratch.Suppress(request.SuppressedTokens ?? []);
        var k = request.SamplesPerPrompt;
        var prompts = request.Prompts;
        var longest = prompts.Max(p => p.Length);
        var capacity = longest + request.MaxNewTokens - 1;
        var padding = Enumerable.Range(0, rows.Count).Select(r => longest - prompts[r / k].Length).ToArray();

        var wasTraining = model.training;
        model.eval();
        try
        {
            using var inference = inference_mode();
            using var scope = NewDisposeScope();
            var device = model.TokenEmbedding.device;
            using var cache = new KvCache(config, prompts.Count, capacity, model.TokenEmbedding.dtype, device);

            // Prefill: prompts left-padded to the longest, (P, L); keyMask (P, capacity) marks every real key slot.
            var (tokens, positions, keys) = (new long[prompts.Count * longest], new long[prompts.Count * longest], new bool[prompts.Count * capacity]);
            for (var p = 0; p < prompts.Count; p++)
            {
                var pad = longest - prompts[p].Length;
                for (var j = 0; j < prompts[p].Length; j++)
                {
                    tokens[p * longest + pad + j] = prompts[p][j];
                    positions[p * longest + pad + j] = j;
                }
                for (var j = pad; j < capacity; j++) keys[p * capacity + j] = true;
            }
            var keyMask = tensor(keys, [prompts.Count, capacity]).to(device);                            // (P, capacity)
            var hidden = model.Hidden(tensor(tokens, [prompts.Count, longest]).to(device), keyMask.narrow(1, 0, longest),
                tensor(positions, [prompts.Count, longest]).to(device), cache);                           // (P, L, C)
            var active = new List<int>();
            using (var logits = ToHost(model.Logits(hidden.select(1, longest - 1))))                    // (P, V)
            {
                var host = Floats(logits);
                for (var r = 0; r < rows.Count; r++)
                    if (rows.Accept(r, Sample(host, r / k, r, settings, random, scratch))) active.Add(r);
            }
            cache.RepeatRows(k);
            keyMask = keyMask.repeat_interleave(k, dim: 0);                                               // (N, capacity)
            var held = Enumerable.Range(0, rows.Count).ToArray();  // the rows the cache holds, in its order

            while (active.Count > 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
                using var stepScope = NewDisposeScope();
                if (active.Count * 2 <= held.Length)
                {
                    // Most rows have stopped: stop computing them.
                    var index = Enumerable.Range(0, held.Length).Where(i => !rows.IsDone(held[i])).Select(i => (long)i).ToArray();
                    var keep = tensor(index).to(device);
                    cache.KeepRows(keep);
                    keyMask = keyMask.index_select(0, keep).MoveToOuterDisposeScope();
                    held = index.Select(i => held[(int)i]).ToArray();
                }
                var at = cache.Length;  // the new position's slot in every row
                var stepTokens = held.Select(r => (long)rows.LastToken(r)).ToArray();
                var stepPositions = held.Select(r => at - padding[r]).ToArray();
                var h = model.Hidden(tensor(stepTokens, [held.Length, 1]).to(device), keyMask.narrow(1, 0, at + 1),
                    tensor(stepPositions, [held.Length, 1]).to(device), cache);                          // (N, 1, C)
                using var logits = ToHost(model.Logits(h.squeeze(1)));                                   // (N, V)
                var host = Floats(logits);
                active.Clear();
                for (var i = 0; i < held.Length; i++)
                {
                    var r = held[i];
                    if (!rows.IsDone(r) && rows.Accept(r, Sample(host, i, r, settings, random, scratch))) active.Add(r);
                }
            }
        }
        finally
        {
            model.train(wasTraining);
        }
        return rows.Results();
    }

    public void Dispose()
    {
        // The model is not owned; nothing else outlives a call.
    }

    private static Tensor ToHost(Tensor logits) => logits.to(ScalarType.Float32).cpu().contiguous().DetachFromDisposeScope();

    private static ReadOnlySpan<float> Floats(Tensor host) => MemoryMarshal.Cast<byte, float>(host.bytes);

    private static SampledToken Sample(ReadOnlySpan<float> logits, int index, int row, SamplingSettings settings, Xoshiro256StarStar[] random,
        SamplingRule.Scratch scratch)
    {
        var vocabulary = scratch.Suppressed.Length;
        return SamplingRule.Sample(logits.Slice(index * vocabulary, vocabulary), settings, random[row], scratch)
               ?? throw new InvalidOperationException($"the policy produced non-finite logits for row {row} (diverged weights?)");
    }
}

/// <summary>The TorchSharp backend: supports every model (any device, any dtype).</summary>
public sealed class TorchSharpDecoderBackend : IPolicyDecoderBackend
{
    public string Name => TorchSharpDecoder.BackendName;

    public string? Unsupported(PolicyModel model, int stopIdCount) => null;

    public IPolicyDecoder Create(PolicyModel model) => new TorchSharpDecoder(model);
}
