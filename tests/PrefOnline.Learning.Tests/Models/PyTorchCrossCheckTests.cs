using PrefOnline.Learning.Tokenization;
using System.Text.Json.Nodes;
using PrefOnline.Learning.Models;
using PrefOnline.Learning.Models.Checkpoints;
using PrefOnline.Learning.Models.LogProbs;
using PrefOnline.Learning.Models.Reward;
using PrefOnline.Learning.Tests.Models.Reference;
using TorchSharp;
using static TorchSharp.torch;
using static PrefOnline.Learning.Tests.Models.ModelTestSupport;
using F = PrefOnline.Learning.Tests.Models.Reference.PyTorchReferenceFixture;

namespace PrefOnline.Learning.Tests.Models;

/// <summary>
/// The C# GPT-2 against a plain-PyTorch GPT-2 on the same random weights, loaded from the Hugging Face
/// layout the Python side wrote by hand: logits (max abs diff &lt; 1e-4 in float32), summed
/// completion log-probs, greedy continuations token for token, gradients, and reward-model outputs.
/// </summary>
public sealed class PyTorchCrossCheckTests(PyTorchReferenceFixture reference) : IClassFixture<PyTorchReferenceFixture>
{
    private const double LogitTolerance = 1e-4;

    private JsonObject Answers(string model) => reference.Expected[model]!.AsObject();

    [Fact]
    public void Logits_match_pytorch_at_the_tiny_preset_shape()
    {
        using var model = PolicyCheckpoint.LoadModel(reference.PathOf("tiny"));
        Assert.Equal(Gpt2Config.Tiny(), model.Config);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var logits = model.Forward(Tokens(F.LogitRows));
        Assert.Equal([3L, 40, 258], logits.shape);
        var expected = PythonReference.Flatten(Answers("tiny")["logits"]![0]!);
        var diff = MaxAbsDiff(expected, logits.data<float>().ToArray());
        Assert.True(diff < LogitTolerance, $"max |Δlogit| = {diff}");
        // The comparison must be able to fail: logits are far from constant.
        Assert.True(expected.Max() - expected.Min() > 5, "reference logits are degenerate");
    }

    [Fact]
    public void Logits_match_pytorch_with_left_padding_attention_mask_and_position_ids()
    {
        using var model = PolicyCheckpoint.LoadModel(reference.PathOf("tiny"));
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var logits = model.Forward(Tokens(F.LeftPaddedRows), Tokens(F.LeftPaddedMask), Tokens(F.LeftPaddedPositions));
        var expected = PythonReference.Flatten(Answers("tiny")["logits"]![1]!);
        var actual = logits.data<float>().ToArray();
        Assert.All(actual, v => Assert.True(float.IsFinite(v)));
        Assert.True(MaxAbsDiff(expected, actual) < LogitTolerance, $"max |Δlogit| = {MaxAbsDiff(expected, actual)}");

        // The padded row's real tokens see exactly what an unpadded run of them sees.
        var alone = model.Forward(Tokens([[10, 20, 30, 40, 50]])).data<float>().ToArray();
        var paddedRowReal = logits.select(0, 0).slice(0, 3, 8, 1).contiguous().data<float>().ToArray();
        Assert.True(MaxAbsDiff(alone, paddedRowReal) < 1e-4);
    }

    [Fact]
    public void Summed_completion_logprobs_match_pytorch()
    {
        using var model = PolicyCheckpoint.LoadModel(reference.PathOf("tiny"));
        using var batch = SequenceBatch.FromTokens(F.LogProbPairs.Select(p => (p.Prompt, p.Completion)).ToList(), model.Config.ContextLength, paddingId: 257);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var result = SequenceLogProbs.Compute(model, batch, LogProbReduction.Sum);
        var sums = result.Values.data<float>().ToArray();
        var expectedSums = Answers("tiny")["logprobs"]!.AsArray().Select(n => n!.GetValue<double>()).ToArray();
        for (var i = 0; i < sums.Length; i++)
            Assert.True(Math.Abs(sums[i] - expectedSums[i]) < 1e-3, $"row {i}: {sums[i]} vs {expectedSums[i]}");

        var perToken = result.TokenLogProbs.data<float>().ToArray();
        var tc = (int)result.TokenLogProbs.size(1);
        var expectedTokens = Answers("tiny")["token_logprobs"]!.AsArray();
        for (var i = 0; i < sums.Length; i++)
        {
            var want = PythonReference.Flatten(expectedTokens[i]!);
            for (var j = 0; j < tc; j++)
            {
                var got = perToken[i * tc + j];
                if (j < want.Length) Assert.True(Math.Abs(got - want[j]) < 1e-4, $"row {i} token {j}: {got} vs {want[j]}");
                else Assert.Equal(0f, got);
            }
        }

        var means = SequenceLogProbs.Compute(model, batch, LogProbReduction.Mean).Values.data<float>().ToArray();
        for (var i = 0; i < sums.Length; i++)
            Assert.Equal(expectedSums[i] / F.LogProbPairs[i].Completion.Length, means[i], 3);
    }

    [Fact]
    public void Greedy_continuation_matches_pytorch_token_for_token()
    {
        using var model = PolicyCheckpoint.LoadModel(reference.PathOf("tiny"));
        var expected = Answers("tiny")["greedy"]!.AsArray();
        for (var i = 0; i < F.GreedyPrompts.Length; i++)
        {
            var want = expected[i]!.AsArray().Select(n => n!.GetValue<int>()).ToArray();
            Assert.Equal(want, Greedy(model, F.GreedyPrompts[i], F.GreedySteps));
            Assert.True(want.Distinct().Count() > 1, "a constant continuation would prove little");
        }
    }

    [Theory]
    [InlineData("fp16")]
    [InlineData("bf16")]
    public void Half_precision_checkpoints_with_hf_extras_load_as_float32_and_match(string name)
    {
        // fp16 also carries the transformer. prefix, h.{i}.attn.bias / masked_bias buffers and a tied lm_head.weight.
        using var model = PolicyCheckpoint.LoadModel(reference.PathOf(name));
        Assert.All(model.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var logits = model.Forward(Tokens(F.LogitRows.Select(r => r[..32]).ToArray())).data<float>().ToArray();
        var expected = PythonReference.Flatten(Answers(name)["logits"]![0]!);
        Assert.True(MaxAbsDiff(expected, logits) < LogitTolerance, $"max |Δlogit| = {MaxAbsDiff(expected, logits)}");
    }

    [Fact]
    public void Gradients_of_summed_logprobs_match_pytorch()
    {
        var weightsDir = reference.PathOf("grad");
        using var model = PolicyCheckpoint.LoadModel(weightsDir);
        using var batch = SequenceBatch.FromTokens(F.LogProbPairs.Select(p => (p.Prompt, p.Completion)).ToList(), model.Config.ContextLength, 257);
        using var scope = NewDisposeScope();
        var objective = SequenceLogProbs.Compute(model, batch, LogProbReduction.Sum).Values.sum();
        Assert.Equal(Answers("grad")["grad_objective"]!.GetValue<double>(), objective.ToDouble(), 3);
        objective.backward();
        var parameters = model.state_dict();
        foreach (var name in F.GradParameters)
        {
            var want = PythonReference.Flatten(Answers("grad")["grad"]![name]!);
            var got = parameters[name].grad!.data<float>().ToArray();
            var scale = want.Max(Math.Abs);
            Assert.True(scale > 1e-3, $"{name}: reference gradient is ~0");
            var diff = MaxAbsDiff(want, got);
            Assert.True(diff < 1e-4 * Math.Max(1, scale), $"{name}: max |Δgrad| = {diff} (scale {scale})");
        }
    }

    [Theory]
    [InlineData("reward")]
    [InlineData("reward_hf")]
    public void Reward_model_forward_matches_pytorch(string name)
    {
        // reward_hf has no score.bias (Hugging Face's head) and carries the attention buffers.
        using var model = RewardCheckpoint.Load(reference.PathOf(name + ".safetensors"));
        var rows = F.RewardRows.Select(r => (new[] { r[0] }, r[1..])).ToList();
        using var batch = SequenceBatch.FromTokens(rows, model.Config.ContextLength, 257);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var rewards = model.Forward(batch).data<float>().ToArray();
        var expected = Answers(name)["rewards"]!.AsArray().Select(n => n!.GetValue<float>()).ToArray();
        Assert.True(MaxAbsDiff(expected, rewards) < 1e-4, $"rewards {string.Join(", ", rewards)} vs {string.Join(", ", expected)}");
        Assert.True(expected.Max() - expected.Min() > 1e-2, "reference rewards are degenerate");
    }

    [Fact]
    public void A_checkpoint_saved_here_is_read_by_pytorch_with_the_same_logits()
    {
        var dir = TempDirectory("saved-for-torch");
        try
        {
            using var model = PolicyModel.Create(Micro(), seed: 11);
            PolicyCheckpoint.Save(Path.Combine(dir, "policy"), model, ByteTokenizer.Instance);
            using var reward = RewardModel.Create(Micro(), seed: 12);
            RewardCheckpoint.Save(Path.Combine(dir, "reward.safetensors"), reward);

            var rows = F.LogitRows.Select(r => r[..20]).ToArray();
            var spec = new JsonObject
            {
                ["models"] = new JsonArray(
                    new JsonObject { ["name"] = "policy", ["load"] = Path.Combine(dir, "policy"), ["queries"] = new JsonObject { ["logits"] = new JsonArray(new JsonObject { ["tokens"] = PythonReference.Rows(rows) }) } },
                    new JsonObject { ["name"] = "reward", ["kind"] = "reward", ["load"] = Path.Combine(dir, "reward.safetensors"), ["queries"] = new JsonObject { ["rewards"] = PythonReference.Rows(F.RewardRows) } }),
            };
            var answers = PythonReference.Run(spec, Path.Combine(dir, "torch"));

            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var logits = model.Forward(Tokens(rows)).data<float>().ToArray();
            Assert.True(MaxAbsDiff(PythonReference.Flatten(answers["policy"]!["logits"]![0]!), logits) < 1e-5);

            using var batch = SequenceBatch.FromTokens(F.RewardRows.Select(r => (new[] { r[0] }, r[1..])).ToList(), 64, 257);
            var rewards = reward.Forward(batch).data<float>().ToArray();
            Assert.True(MaxAbsDiff(PythonReference.Flatten(answers["reward"]!["rewards"]!), rewards) < 1e-5);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
