using PrefOnline.Learning.Models;

namespace PrefOnline.Learning.Sampling;

/// <summary>
/// A decoding backend over one policy's current weights: prompts in, sampled rows out, with a KV
/// cache. Backends differ in speed only: each validates the request with
/// <see cref="DecodeRequest.Problems"/>, samples with <see cref="SamplingRule"/> from per-row seeds and
/// keeps its rows with <see cref="DecodeRows"/>, so the same seeds give the same tokens up to the float
/// rounding of their forward passes. Calls run on the calling thread (the tensor thread).
/// </summary>
public interface IPolicyDecoder : IDisposable
{
    /// <summary>Which backend this is (<c>torchsharp</c> or <c>fused</c>), for logs and benchmarks.</summary>
    string Backend { get; }

    DecoderConfig Config { get; }

    /// <summary>Samples <see cref="DecodeRequest.SamplesPerPrompt"/> continuations of every prompt; results
    /// in row order (prompt-major).</summary>
    /// <exception cref="ArgumentException">The request does not fit the model (every problem named).</exception>
    /// <exception cref="OperationCanceledException">Checked between decode steps.</exception>
    IReadOnlyList<DecodedSequence> Generate(DecodeRequest request, CancellationToken cancellationToken = default);
}

/// <summary>A way to build an <see cref="IPolicyDecoder"/> for models it supports.</summary>
public interface IPolicyDecoderBackend
{
    string Name { get; }

    /// <summary>Why this backend cannot decode <paramref name="model"/> (architecture, dtype, device, a
    /// missing native library) with a tokenizer of <paramref name="stopIdCount"/> stop ids, or null when it can.</summary>
    string? Unsupported(PolicyModel model, int stopIdCount);

    /// <summary>A decoder reading <paramref name="model"/>'s own parameters (not copies: in-place
    /// training updates are used by the next call). The model is not owned.</summary>
    IPolicyDecoder Create(PolicyModel model);
}

/// <summary>
/// Chooses the decoder backend at construction: the first of <see cref="Backends"/> that supports the
/// model. <see cref="Default"/> puts the fused CPU decoder (float32 GPT-2 on the CPU, several times
/// faster: README "Generation speed") in front of TorchSharp, which supports every model (any family,
/// any device, any dtype) and so always comes last: a Llama-family model always decodes with TorchSharp.
/// </summary>
public sealed class PolicyDecoderFactory(IReadOnlyList<IPolicyDecoderBackend> backends)
{
    /// <summary>The values of <see cref="Named"/> (configuration <c>Model:Decoder</c>).</summary>
    public static readonly IReadOnlyList<string> Choices = ["auto", FusedPolicyDecoder.BackendName, TorchSharpDecoder.BackendName];

    /// <summary>The backends of this build, fastest first.</summary>
    public static PolicyDecoderFactory Default { get; } = new([new FusedPolicyDecoderBackend(), new TorchSharpDecoderBackend()]);

    /// <summary>Only the TorchSharp backend.</summary>
    public static PolicyDecoderFactory TorchSharpOnly { get; } = new([new TorchSharpDecoderBackend()]);

    /// <summary>Only the fused backend: a model it cannot run is an error naming why.</summary>
    public static PolicyDecoderFactory FusedOnly { get; } = new([new FusedPolicyDecoderBackend()]);

    public IReadOnlyList<IPolicyDecoderBackend> Backends { get; } = backends.Count > 0 ? backends : throw new ArgumentException("no decoder backend given");

    /// <summary>The factory for a configured choice: <c>auto</c> (<see cref="Default"/>), <c>fused</c> or <c>torchsharp</c>.</summary>
    public static PolicyDecoderFactory Named(string choice) => choice switch
    {
        "auto" => Default,
        FusedPolicyDecoder.BackendName => FusedOnly,
        TorchSharpDecoder.BackendName => TorchSharpOnly,
        _ => throw new ArgumentException($"unknown decoder '{choice}' (known: {string.Join(", ", Choices)})", nameof(choice)),
    };

    /// <summary>A decoder from the first backend that supports <paramref name="model"/> and stopping on
    /// <paramref name="stopIdCount"/> token ids (<see cref="Tokenization.ITokenizer.StopIds"/>: the fused decoder
    /// stops on one, so a tokenizer with several, like Llama 3 Instruct's, decodes with TorchSharp).</summary>
    public IPolicyDecoder Create(PolicyModel model, int stopIdCount = 1)
    {
        ArgumentNullException.ThrowIfNull(model);
        var reasons = new List<string>();
        foreach (var backend in Backends)
        {
            if (backend.Unsupported(model, stopIdCount) is { } reason)
            {
                reasons.Add($"{backend.Name}: {reason}");
                continue;
            }
            return backend.Create(model);
        }
        throw new NotSupportedException($"no decoder backend supports this model ({string.Join("; ", reasons)})");
    }
}
