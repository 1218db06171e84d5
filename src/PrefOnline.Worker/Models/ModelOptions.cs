using PrefOnline.Worker.Hosting;

namespace PrefOnline.Worker.Models;

/// <summary>
/// Configuration section <c>Model</c>: where the first policy comes from when the checkpoint store is
/// empty. Once a checkpoint exists, the worker always resumes from it and these settings are not read.
/// </summary>
public sealed class ModelOptions : IValidatedOptions
{
    public const string SectionName = "Model";

    /// <summary>
    /// A policy checkpoint directory in the Hugging Face GPT-2 layout (config.json, model.safetensors,
    /// tokenizer files), e.g. from <c>prefonline init</c> or a GPT-2 download. It is also the frozen
    /// reference of the KL leash. Empty: the embedded demo fits its own small policy (Demo:Policy); with
    /// Kafka an empty store then is an error.
    /// </summary>
    public string? InitialPolicy { get; set; }

    /// <summary>A reward model safetensors file (GPT2ForSequenceClassification layout) to start from. Empty: trunk copied from the policy, fresh head.</summary>
    public string? InitialRewardModel { get; set; }

    /// <summary>Seed of the reward head's initialisation.</summary>
    public ulong Seed { get; set; } = 1;

    public IReadOnlyList<string> Problems()
    {
        var p = new ProblemList(SectionName);
        if (!string.IsNullOrWhiteSpace(InitialPolicy) && !Directory.Exists(InitialPolicy))
            p.Add(nameof(InitialPolicy), $"{InitialPolicy} is not a directory (expected a Hugging Face GPT-2 checkpoint directory)");
        if (!string.IsNullOrWhiteSpace(InitialRewardModel) && !File.Exists(InitialRewardModel))
            p.Add(nameof(InitialRewardModel), $"{InitialRewardModel} does not exist (expected a safetensors file)");
        return p.Items;
    }
}
