using PrefOnline.Kernels;
using PrefOnline.Learning.Models;
using PrefOnline.Tensors;
using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Sampling;

/// <summary>
/// Decodes with the fused native GPT-2 decoder of PrefOnline.Kernels (prefill and the whole decode loop
/// in one native call; src/PrefOnline.Kernels/native/gpt2_decoder.cpp says why it exists and how fast it
/// is) over the policy's own TorchSharp parameters: the kernels read each parameter's storage in place
/// at every call (<see cref="PolicyWeightSource"/>), so nothing is copied and in-place training updates are
/// used by the next call. Same request checks, seeds and row bookkeeping as <see cref="TorchSharpDecoder"/>;
/// the sampling rule is <see cref="SamplingRule"/>'s, evaluated natively with float32 weights of the
/// kept tokens, so the same seeds give the same tokens except where a draw lands within float rounding
/// of a boundary. Without dropout, always (the model's training flag is neither read nor changed).
/// </summary>
public sealed class FusedPolicyDecoder : IPolicyDecoder
{
    public const string BackendName = "fused";

    private readonly PolicyModel model;
    private readonly FusedGpt2Decoder decoder;

    /// <exception cref="NotSupportedException">The model is not float32 on the CPU, or the native library
    /// does not load (<see cref="FusedPolicyDecoderBackend.Unsupported"/> gives the reason).</exception>
    public FusedPolicyDecoder(PolicyModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (FusedPolicyDecoderBackend.Why(model) is { } reason) throw new NotSupportedException($"the fused decoder cannot run this model: {reason}");
        this.model = model;
        decoder = new FusedGpt2Decoder(ShapeOf((Gpt2Config)model.Config), new PolicyWeightSource(model));
    }

    internal const string AdaptersAttached = "it reads the base weights only and would ignore the model's LoRA adapters (merge them, or decode with TorchSharp)";

    public string Backend => BackendName;

    public DecoderConfig Config => model.Config;

    public IReadOnlyList<DecodedSequence> Generate(DecodeRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        cancellationToken.ThrowIfCancellationRequested();
        // The kernels read the base weights alone: adapters attached after this decoder was made would be ignored.
        if (model.Adapters is { Enabled: true }) throw new InvalidOperationException($"the fused decoder cannot run this model: {AdaptersAttached}");
        var config = model.Config;
        request.ThrowIfInvalidFor(config);
        var stopIds = request.StopIds ?? [];
        if (stopIds.Count > 1)
            throw new ArgumentException($"the fused decoder stops on one id, but the request has {stopIds.Count} stop ids ({string.Join(", ", stopIds)}); use the torchsharp decoder");
        // The kernels split their loops over as many threads as the tensor engine uses, so both stay on the same cores.
        var threads = Math.Clamp(torch.get_num_threads(), 1, FusedKernels.MaxThreads);
        if (FusedKernels.Threads != threads) FusedKernels.Threads = threads;

        var rows = decoder.Generate(new FusedDecodeRequest
        {
            Prompts = request.Prompts,
            SamplesPerPrompt = request.SamplesPerPrompt,
            Temperature = request.Temperature,
            TopK = request.TopK,
            TopP = request.TopP,
            MaxNewTokens = request.MaxNewTokens,
            EndOfSequenceId = stopIds.Count == 0 ? -1 : stopIds[0],
            RowSeeds = request.Seeds(),
            SuppressedTokens = request.SuppressedTokens ?? [],
            StopSequences = request.StopSequences ?? [],
            TokenBytes = request.TokenBytes,
        }, cancellationToken);
        var result = new DecodedSequence[rows.Count];
        for (var r = 0; r < result.Length; r++)
        {
            var row = rows[r];
            result[r] = new DecodedSequence(row.PromptIndex, row.SampleIndex, row.Tokens, row.PolicyLogProbs, row.SamplerLogProbs, (DecodeFinish)(int)row.Finish);
        }
        return result;
    }

    public void Dispose() => decoder.Dispose();

    /// <summary>The numbers of <paramref name="config"/> the kernels need.</summary>
    public static FusedGpt2Shape ShapeOf(Gpt2Config config) =>
        new(config.Layers, config.Heads, config.Width, config.VocabularySize, config.ContextLength, config.LayerNormEpsilon);
}

/// <summary>The fused CPU backend: float32 GPT-2 policies on the CPU, when libprefonline_kernels.so loads
/// (the kernels implement GPT-2's blocks only; the Llama family decodes with TorchSharp).</summary>
public sealed class FusedPolicyDecoderBackend : IPolicyDecoderBackend
{
    public string Name => FusedPolicyDecoder.BackendName;

    public string? Unsupported(PolicyModel model, int stopIdCount) =>
        Why(model) ?? (stopIdCount > 1 ? $"it stops on one token id, and the tokenizer has {stopIdCount} stop ids" : null);

    public IPolicyDecoder Create(PolicyModel model) => new FusedPolicyDecoder(model);

    internal static string? Why(PolicyModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (model.Config is not Gpt2Config) return $"it runs GPT-2 only (the model is {model.Config.ModelType})";
        if (model.Adapters is not null) return FusedPolicyDecoder.AdaptersAttached;
        var placement = model.Placement;
        if (!placement.IsCpu) return $"it runs on the CPU only (the model is on {placement.DeviceName})";
        if (placement.Dtype != ScalarType.Float32) return $"it reads float32 weights only (the model is {placement.DtypeName})";
        try
        {
            _ = FusedKernels.Level;  // loads the native library
        }
        catch (Exception e) when (e is DllNotFoundException or BadImageFormatException or EntryPointNotFoundException or KernelException)
        {
            return $"the native kernels do not load ({e.Message})";
        }
        return null;
    }
}

/// <summary>
/// The policy's parameters as the kernels read them: each one's storage data pointer (plus its storage
/// offset) and shape, looked up by its Hugging Face name at every call, so a parameter the model
/// replaced (a new placement) is found as well as one updated in place. Parameters must be float32,
/// contiguous and on the CPU; anything else is an error naming the parameter, never a silent copy.
/// </summary>
public sealed class PolicyWeightSource(PolicyModel model) : IGpt2WeightSource
{
    private Dictionary<string, TorchSharp.Modules.Parameter> parameters = Parameters(model);
    private TensorPlacement placement = model.Placement;

    public KernelTensor Weight(string name)
    {
        if (model.Placement != placement || !parameters.TryGetValue(name, out var parameter) || parameter.IsInvalid)
        {
            // Placing the model replaces its parameter objects: look them up afresh.
            placement = model.Placement;
            parameters = Parameters(model);
            parameter = parameters.TryGetValue(name, out var found) ? found : throw new KeyNotFoundException($"the policy has no parameter '{name}'");
        }
        if (parameter.dtype != ScalarType.Float32 || parameter.device_type != DeviceType.CPU)
            throw new InvalidOperationException($"{name} is {parameter.dtype} on {parameter.device}; the fused decoder reads float32 CPU tensors only");
        if (!parameter.is_contiguous()) throw new InvalidOperationException($"{name} is not contiguous; the fused decoder reads row-major tensors only");
        // storage<float>() wraps the parameter in an alias handle: dispose it here, not at some later GC.
        using var scope = NewDisposeScope();
        var data = parameter.storage<float>().data_ptr() + checked((nint)(parameter.storage_offset() * sizeof(float)));
        return new KernelTensor(data, parameter.shape);
    }

    private static Dictionary<string, TorchSharp.Modules.Parameter> Parameters(PolicyModel model) =>
        model.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
}
