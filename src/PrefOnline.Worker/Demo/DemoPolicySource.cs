using PrefOnline.Experiments.Length;
using PrefOnline.Learning.Models;
using PrefOnline.Learning.Tokenization;
using PrefOnline.Worker.Models;

namespace PrefOnline.Worker.Demo;

/// <summary>The embedded demo's initial policy: the length experiment's corpus and SFT fit (see <see cref="DemoPolicyOptions"/>).</summary>
public sealed class DemoPolicySource(DemoPolicyOptions options) : IInitialPolicySource
{
    public string Description => $"a tiny GPT-2 fitted ({options.FitSteps} SFT steps) on the synthetic length corpus (answers of ~{options.MeanLength:0} letters)";

    public (PolicyModel Policy, ITokenizer Tokenizer) Create(CancellationToken cancellationToken)
    {
        var corpus = options.Corpus();
        var policy = LengthExperiment.Pretrain(options.FitOptions(), corpus, options.Seed, cancellationToken);
        return (policy, LengthExperiment.Tokenizer);
    }

    /// <summary>The prompts the corpus answers (the simulated users ask these unless Demo:Users:Prompts says otherwise).</summary>
    public static IReadOnlyList<string> Prompts(DemoPolicyOptions options) => options.Corpus().Prompts;
}
