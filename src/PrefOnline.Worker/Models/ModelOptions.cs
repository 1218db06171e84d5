using PrefOnline.Learning.Models;
using PrefOnline.Learning.Models.Checkpoints;
using PrefOnline.Learning.Configuration;
using PrefOnline.Learning.Sampling;
using PrefOnline.Tensors;
using PrefOnline.Worker.Hosting;

namespace PrefOnline.Worker.Models;

/// <summary>
/// Configuration section <c>Model</c>: where the first policy comes from when the checkpoint store is
/// empty (once a checkpoint exists, the worker resumes from it and InitialPolicy, InitialRewardModel and
/// Seed are not read), and where every model's tensors live (Device, Dtype: always read).
/// </summary>
public sealed class ModelOptions : IValidatedOptions
{
    public const string SectionName = "Model";

    /// <summary>
    /// A policy checkpoint directory in the Hugging Face layout (config.json, model.safetensors or shards with
    /// model.safetensors.index.json, tokenizer files), e.g. from <c>prefonline init</c> or a download: GPT-2
    /// (model_type gpt2) or the Llama family (llama, qwen2, qwen3, mistral; README "Bring your own model"). It is also the frozen
    /// reference of the KL leash. Empty: the embedded demo fits its own small policy (Demo:Policy); with
    /// Kafka an empty store then is an error.
    /// </summary>
    public string? InitialPolicy { get; set; }

    /// <summary>A reward model safetensors file (*ForSequenceClassification layout of the policy's family) to start from. Empty: trunk copied from the policy, fresh head.</summary>
    public string? InitialRewardModel { get; set; }

    /// <summary>Seed of the reward head's initialisation.</summary>
    public ulong Seed { get; set; } = 1;

    /// <summary>
    /// Where the policy, the reference, the reward model, the optimizer state and sampling run: cpu, cuda
    /// (the first GPU) or cuda:N. CUDA needs the GPU build (TorchBackend=cuda, the GPU image) and a visible
    /// device; asking for it elsewhere stops the worker at start with the reason.
    /// </summary>
    public string Device { get; set; } = "cpu";

    /// <summary>
    /// The models' floating-point precision: float32 or bfloat16 (half the memory; on CPUs without bfloat16
    /// arithmetic it is slower). Checkpoints are written in this dtype; any floating dtype loads and converts.
    /// Log-probabilities, losses and rewards are computed in float32 either way.
    /// </summary>
    public string Dtype { get; set; } = "float32";

    /// <summary>
    /// How the policy samples: auto (the fused native CPU decoder of src/PrefOnline.Kernels for float32 on the
    /// CPU, several times faster at the project's sizes; the TorchSharp decoder otherwise), fused (always the
    /// fused one: a start-up error unless Device is cpu, Dtype float32 and the policy GPT-2 — the kernels implement
    /// GPT-2 only, so auto decodes the Llama family with TorchSharp) or torchsharp (always TorchSharp's
    /// modules with a KV cache). Tokens and log-probs agree up to float rounding either way.
    /// </summary>
    public string Decoder { get; set; } = "auto";

    /// <summary>Device and dtype as one value (valid once <see cref="Problems"/> is empty).</summary>
    public TensorPlacement Placement => new(Device, Dtype);

    /// <summary>The decoder backends <see cref="Decoder"/> allows (valid once <see cref="Problems"/> is empty).</summary>
    public PolicyDecoderFactory Decoders => PolicyDecoderFactory.Named(Decoder);

    public IReadOnlyList<string> Problems()
    {
        var p = new ProblemList(SectionName);
        if (!string.IsNullOrWhiteSpace(InitialPolicy) && !Directory.Exists(InitialPolicy))
            p.Add(nameof(InitialPolicy), $"{InitialPolicy} is not a directory (expected a Hugging Face checkpoint directory)");
        if (!string.IsNullOrWhiteSpace(InitialRewardModel) && !File.Exists(InitialRewardModel))
            p.Add(nameof(InitialRewardModel), $"{InitialRewardModel} does not exist (expected a safetensors file)");
        string? device = null;
        try
        {
            device = TensorPlacement.CanonicalDevice(Device ?? "");
        }
        catch (FormatException e)
        {
            p.Add(nameof(Device), $"{e.Message}");
        }
        try
        {
            TensorPlacement.ParseDtype(Dtype ?? "");
        }
        catch (FormatException e)
        {
            p.Add(nameof(Dtype), $"{e.Message}");
        }
        if (device is not null && new TensorPlacement(device, "float32").Problem() is { } unavailable)
            p.Add(nameof(Device), $"{unavailable}");
        if (!PolicyDecoderFactory.Choices.Contains(Decoder ?? ""))
            p.Add(nameof(Decoder), $"unknown decoder '{Decoder}': use {string.Join(", ", PolicyDecoderFactory.Choices)}");
        else if (Decoder == FusedPolicyDecoder.BackendName && (device != "cpu" || !string.Equals((Dtype ?? "").Trim(), "float32", StringComparison.OrdinalIgnoreCase)))
            p.Add(nameof(Decoder), $"the fused decoder runs float32 models on the CPU only, not Device {Device} with Dtype {Dtype}: use auto or torchsharp");
        else if (Decoder == FusedPolicyDecoder.BackendName && InitialPolicyArchitecture() is { } modelType and not "gpt2")
            p.Add(nameof(Decoder), $"the fused decoder runs GPT-2 only, but InitialPolicy is a {modelType} model: use auto or torchsharp");
        return p.Items;
    }

    /// <summary>InitialPolicy's model_type, or null when there is none or its config.json does not read (the
    /// load at start then reports why).</summary>
    private string? InitialPolicyArchitecture()
    {
        if (string.IsNullOrWhiteSpace(InitialPolicy) || !Directory.Exists(InitialPolicy)) return null;
        try
        {
            return PolicyCheckpoint.ReadConfig(InitialPolicy).ModelType;
        }
        catch (InvalidCheckpointException)
        {
            return null;
        }
    }
}
