using System.Text;
using System.Text.Json.Nodes;
using PrefOnline.Learning.Models;
using PrefOnline.Learning.Models.Adapters;
using PrefOnline.Learning.Models.Checkpoints;
using PrefOnline.Learning.Models.LogProbs;
using PrefOnline.Learning.Sampling;
using PrefOnline.Learning.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Worker.Tests.ModelVerbs;

/// <summary><c>prefonline merge</c> end to end: an adapter trained (here: set) on an <c>init</c> checkpoint,
/// merged by the real binary, gives a checkpoint that <c>generate</c> and <c>logprobs</c> read and that
/// computes what the adapted model computes; an adapter of another base is refused in one line.</summary>
public sealed class MergeCommandTests : IDisposable
{
    private readonly string root = CliProcess.TempDirectory("merge");

    public void Dispose() => Directory.Delete(root, recursive: true);

    private string Init(string name, string seed)
    {
        var dir = Path.Combine(root, name);
        var init = CliProcess.Run("init", "--preset", "tiny", "--seed", seed, "--out", dir);
        Assert.True(init.Code == 0, init.Stderr);
        return dir;
    }

    [Fact]
    public void Merged_checkpoint_generates_and_scores_like_the_adapted_model()
    {
        var baseDir = Init("base", "5");
        var adapterDir = Path.Combine(root, "adapter");
        var outDir = Path.Combine(root, "merged");
        const string prompt = "Once upon a time";
        int[] expectedTokens;
        double adaptedSum;
        using (var loaded = PolicyCheckpoint.Load(baseDir))
        {
            var policy = loaded.Model;
            policy.eval();
            var adapters = LoraAdapters.Attach(policy, new LoraOptions { Rank = 4, Alpha = 8 }, seed: 1);
            using (var generator = new Generator(2))
            using (no_grad())
                foreach (var (_, _, b) in adapters.Pairs()) b.normal_(0, 0.2, generator);
            PeftAdapter.Save(adapterDir, adapters, baseDir);
            using var decoder = new TorchSharpDecoder(policy);
            var promptTokens = Encoding.UTF8.GetBytes(prompt).Select(b => (int)b).ToArray();
            expectedTokens = decoder.Generate(new DecodeRequest { Prompts = [promptTokens], Temperature = 0, MaxNewTokens = 12, RowSeeds = [1] })[0].Tokens;
            using (var batch = SequenceBatch.FromText(loaded.Tokenizer, [(prompt, " there lived")], policy.Config.ContextLength, appendEndOfSequence: false))
            using (var scope = NewDisposeScope())
            using (no_grad())
                adaptedSum = SequenceLogProbs.Compute(policy, batch, LogProbReduction.Sum).Values.ToDouble();
            using (policy.WithoutAdapters())
                Assert.NotEqual(expectedTokens, decoder.Generate(new DecodeRequest { Prompts = [promptTokens], Temperature = 0, MaxNewTokens = 12, RowSeeds = [1] })[0].Tokens);
        }

        var merge = CliProcess.Run("merge", "--base", baseDir, "--adapter", adapterDir, "--out", outDir);
        Assert.True(merge.Code == 0, merge.Stderr);
        Assert.Contains("merged 16 adapted projections into the gpt2 base", merge.Stdout);
        Assert.True(File.Exists(Path.Combine(outDir, "config.json")));
        Assert.True(File.Exists(Path.Combine(outDir, "model.safetensors")));

        var generate = CliProcess.Run("generate", "--checkpoint", outDir, "--prompt", prompt, "--max-new-tokens", "12", "--temperature", "0", "--json");
        Assert.True(generate.Code == 0, generate.Stderr);
        var generated = JsonNode.Parse(generate.Stdout)!["samples"]![0]!["tokens"]!.AsArray().Select(t => t!["id"]!.GetValue<int>()).ToArray();
        Assert.Equal(expectedTokens, generated);

        // The merged model scores a completion as the adapted model does (which the base does not: the greedy continuations differ).
        var merged = CliProcess.Run("logprobs", "--checkpoint", outDir, "--prompt", prompt, "--completion", " there lived");
        Assert.True(merged.Code == 0, merged.Stderr);
        var mergedSum = JsonNode.Parse(merged.Stdout)!["sum_logprob"]!.GetValue<double>();
        Assert.Equal(adaptedSum, mergedSum, 1e-4);

        // Refusals: an existing --out without --force, an adapter of other base weights.
        var again = CliProcess.Run("merge", "--base", baseDir, "--adapter", adapterDir, "--out", outDir);
        Assert.Equal(2, again.Code);
        Assert.Contains("already holds files; pass --force", again.Stderr);
        var otherBase = Path.Combine(root, "other");
        using (var other = PolicyModel.Create(Gpt2Config.Tiny(), seed: 6)) PolicyCheckpoint.Save(otherBase, other, ByteTokenizer.Instance);
        var refused = CliProcess.Run("merge", "--base", otherBase, "--adapter", adapterDir, "--out", Path.Combine(root, "never"));
        Assert.Equal(1, refused.Code);
        Assert.Single(refused.Stderr.Trim().Split('\n'));
        Assert.Contains("the adapter was trained on base weights sha256", refused.Stderr);
        Assert.False(Directory.Exists(Path.Combine(root, "never")));
    }
}
