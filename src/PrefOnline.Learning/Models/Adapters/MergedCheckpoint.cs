using PrefOnline.Learning.Models.Checkpoints;

namespace PrefOnline.Learning.Models.Adapters;

/// <summary>What <see cref="MergedCheckpoint.Write"/> merged.</summary>
/// <param name="ModelType">The base's model_type.</param>
/// <param name="Projections">Adapted projections folded into the weights.</param>
/// <param name="Parameters">Parameters of the merged model.</param>
public sealed record MergeSummary(string ModelType, int Projections, long Parameters);

/// <summary>
/// Base checkpoint + PEFT LoRA adapter → a full Hugging Face checkpoint of the merged weights
/// W' = W + (α/r)·B·A (transposed for GPT-2's Conv1D), which <c>prefonline generate</c>, transformers,
/// vLLM and SGLang load like any other model: config.json and model.safetensors (float32) written by
/// <see cref="PolicyCheckpoint.Save"/> with the base's tokenizer, then the base's other tokenizer and
/// generation files (tokenizer.json, tokenizer_config.json, special_tokens_map.json, generation_config.json,
/// …) copied as they are.
/// </summary>
public static class MergedCheckpoint
{
    /// <summary>Files beside a Hugging Face model that describe its tokenizer or generation defaults.</summary>
    public static readonly IReadOnlyList<string> CompanionFiles =
    [
        "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.json", "merges.txt",
        "tokenizer.model", "generation_config.json", "chat_template.jinja",
    ];

    public static MergeSummary Write(string baseDirectory, string adapterDirectory, string outDirectory)
    {
        using var loaded = PolicyCheckpoint.Load(baseDirectory);
        var model = loaded.Model;
        var adapters = PeftAdapter.Load(adapterDirectory, model);
        var projections = adapters.Paths.Count;
        adapters.MergeAndDetach();
        PolicyCheckpoint.Save(outDirectory, model, loaded.Tokenizer);
        foreach (var name in CompanionFiles)
        {
            var source = Path.Combine(baseDirectory, name);
            var target = Path.Combine(outDirectory, name);
            if (File.Exists(source) && !File.Exists(target)) File.Copy(source, target);
        }
        return new MergeSummary(model.Config.ModelType, projections, StateDicts.ParameterCount(model));
    }
}
