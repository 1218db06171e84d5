using PrefOnline.Learning.Models.Adapters;
using PrefOnline.Learning.Tokenization;
using PrefOnline.Worker.Pipeline;

namespace PrefOnline.Worker.PolicyDistribution;

/// <summary>
/// The files of a checkpoint that make up a servable policy: the weights and whatever tokenizer files the
/// checkpoint holds. Only these are ever served over HTTP — never the optimizer, replay or reward state — and a
/// policy event lists the SHA-256 of each one the version has (<see cref="FileListProblem"/>).
/// </summary>
public static class PolicyFiles
{
    /// <summary>URL path of one file: <c>/policy/{version}/{name}</c>.</summary>
    public const string RoutePrefix = "/policy";

    public static IReadOnlyList<string> Names { get; } =
    [
        StateFiles.Policy,
        TokenizerFiles.FastTokenizer,
        TokenizerFiles.Config,
        TokenizerFiles.SpecialTokensMap,
        TokenizerFiles.GenerationConfig,
        TokenizerFiles.Vocabulary,
        TokenizerFiles.Merges,
        TokenizerFiles.AddedTokens,
        TokenizerFiles.ModelConfig,
        PeftAdapter.ConfigFile,
        PeftAdapter.WeightsFile,
        StateFiles.Reference,
    ];

    /// <summary>
    /// The file a version's policy event names as its weights (its uri and sha256): <c>policy.safetensors</c>, or — for a
    /// LoRA version, which holds no merged weights — the adapter's <c>adapter_model.safetensors</c>, whose base
    /// (<c>reference.safetensors</c>) and <c>adapter_config.json</c> the event lists beside it.
    /// </summary>
    public static string WeightsNameOf(Func<string, bool> contains) =>
        contains(StateFiles.Policy) || !contains(PeftAdapter.WeightsFile) ? StateFiles.Policy : PeftAdapter.WeightsFile;

    /// <summary>
    /// The policy files a consumer of a version whose weights file is <paramref name="weightsName"/> needs: all but the
    /// base (reference.safetensors), which only a LoRA version's adapter needs — a full fine-tune's consumers would
    /// download a second model for nothing.
    /// </summary>
    public static bool IsNeeded(string weightsName, string name) =>
        IsServed(name) && (name != StateFiles.Reference || weightsName == PeftAdapter.WeightsFile);

    /// <summary>True for the two file names a policy event's uri may end in (<see cref="WeightsNameOf"/>).</summary>
    public static bool IsWeightsName(string name) => name is StateFiles.Policy or PeftAdapter.WeightsFile;

    /// <summary>The tokenizer files (everything but the weights, a LoRA version's PEFT adapter and its base), fetched when present.</summary>
    public static IEnumerable<string> TokenizerNames => Names.Where(n => n is not (StateFiles.Policy or PeftAdapter.ConfigFile or PeftAdapter.WeightsFile or StateFiles.Reference));

    public static bool IsServed(string name) => Names.Contains(name, StringComparer.Ordinal);

    /// <summary>
    /// Null when <paramref name="files"/> (a policy event's name → SHA-256) covers a whole policy whose weights have
    /// <paramref name="weightsSha256"/>, else what is missing or wrong: every name must be a policy file, the weights must be
    /// listed with the event's hash, and the tokenizer must be complete (tokenizer.json, tokenizer_config.json, or vocab.json and merges.txt),
    /// so that nothing a generator loads goes unverified and no file can be left out to change the tokenizer.
    /// </summary>
    public static string? FileListProblem(IReadOnlyDictionary<string, string> files, string weightsSha256)
    {
        if (files.Count == 0) return "the event lists no file hashes ('files'), so its tokenizer files cannot be verified (an event from a learner older than this generator? it publishes them at its next start)";
        if (files.Keys.FirstOrDefault(n => !IsServed(n)) is { } foreign) return $"the event lists '{foreign}', which is not a policy file (policy files: {string.Join(", ", Names)})";
        var weightsName = WeightsNameOf(files.ContainsKey);
        if (!files.TryGetValue(weightsName, out var weights)) return $"the event lists no hash for {StateFiles.Policy}";
        if (!string.Equals(weights, weightsSha256, StringComparison.OrdinalIgnoreCase)) return $"files[{weightsName}] differs from the event's sha256";
        if (weightsName == PeftAdapter.WeightsFile && (!files.ContainsKey(PeftAdapter.ConfigFile) || !files.ContainsKey(StateFiles.Reference)))
            return $"the event names a LoRA adapter ({PeftAdapter.WeightsFile}) but lists no {(files.ContainsKey(PeftAdapter.ConfigFile) ? StateFiles.Reference + " (its base)" : PeftAdapter.ConfigFile)}";
        var bpe = files.ContainsKey(TokenizerFiles.Vocabulary) || files.ContainsKey(TokenizerFiles.Merges);
        if (bpe && !(files.ContainsKey(TokenizerFiles.Vocabulary) && files.ContainsKey(TokenizerFiles.Merges)))
            return $"the event lists only one of {TokenizerFiles.Vocabulary} and {TokenizerFiles.Merges}";
        if (!bpe && !files.ContainsKey(TokenizerFiles.Config) && !files.ContainsKey(TokenizerFiles.FastTokenizer))
            return $"the event lists no tokenizer ({TokenizerFiles.FastTokenizer}, {TokenizerFiles.Config}, or {TokenizerFiles.Vocabulary} and {TokenizerFiles.Merges})";
        return null;
    }

    public static string PathOf(long version, string name) => $"{RoutePrefix}/{version}/{name}";
}
