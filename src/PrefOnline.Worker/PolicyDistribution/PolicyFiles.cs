using PrefOnline.Learning.Tokenization;
using PrefOnline.Worker.Pipeline;

namespace PrefOnline.Worker.PolicyDistribution;

/// <summary>
/// The files of a checkpoint that make up a servable policy: the weights and whatever tokenizer files the
/// checkpoint holds. Only these are ever served over HTTP — never the optimizer, replay or reward state.
/// </summary>
public static class PolicyFiles
{
    /// <summary>URL path of one file: <c>/policy/{version}/{name}</c>.</summary>
    public const string RoutePrefix = "/policy";

    public static IReadOnlyList<string> Names { get; } =
    [
        StateFiles.Policy,
        TokenizerFiles.Config,
        TokenizerFiles.Vocabulary,
        TokenizerFiles.Merges,
        TokenizerFiles.AddedTokens,
        TokenizerFiles.ModelConfig,
    ];

    /// <summary>The tokenizer files (everything but the weights), fetched when present.</summary>
    public static IEnumerable<string> TokenizerNames => Names.Where(n => n != StateFiles.Policy);

    public static bool IsServed(string name) => Names.Contains(name, StringComparer.Ordinal);

    public static string PathOf(long version, string name) => $"{RoutePrefix}/{version}/{name}";
}
