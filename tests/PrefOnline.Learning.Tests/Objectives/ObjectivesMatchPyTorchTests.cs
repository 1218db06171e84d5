using System.Text.Json.Nodes;
using PrefOnline.Learning.Objectives;
using PrefOnline.Learning.Randomness;
using PrefOnline.Learning.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Tests.Objectives;

/// <summary>
/// Every objective (and the KL penalty with each estimator) against an independent PyTorch
/// implementation on the same float64 tensors: the loss, its gradient with respect to the per-token
/// log-probs, and the main diagnostics. One Python process computes all cases (the fixture).
/// </summary>
public sealed class ObjectivesMatchPyTorchTests : IClassFixture<ObjectivesMatchPyTorchTests.Reference>
{
    private const int B = 8, T = 5;

    /// <summary>(name, options, KL coefficient, token-level PPO?): every case the script also knows.</summary>
    public static readonly (string Case, ObjectiveOptions Options, double Kl, bool TokenLevel)[] Cases =
    [
        ("sft_all", new() { Name = ObjectiveNames.Sft }, 0, false),
        ("sft_pairs", new() { Name = ObjectiveNames.Sft }, 0, false),
        ("best_of_n", new() { Name = ObjectiveNames.BestOfN }, 0, false),
        ("negative_gradient_sft", new() { Name = ObjectiveNames.NegativeGradientSft, NegativeWeight = 0.3 }, 0, false),
        ("rwr", new() { Name = ObjectiveNames.Rwr, RwrTemperature = 0.5, RwrMaxWeight = 3.0 }, 0, false),
        ("reinforce", new() { Name = ObjectiveNames.Reinforce }, 0, false),
        ("ppo_tokens", new() { Name = ObjectiveNames.Ppo, PpoClipRange = 0.2 }, 0, true),
        ("ppo_sequences", new() { Name = ObjectiveNames.Ppo, PpoClipRange = 0.2 }, 0, false),
        ("dpo", new() { Name = ObjectiveNames.Dpo, Beta = 0.1 }, 0, false),
        ("cdpo", new() { Name = ObjectiveNames.ConservativeDpo, Beta = 0.2, LabelSmoothing = 0.1 }, 0, false),
        ("ipo", new() { Name = ObjectiveNames.Ipo, Beta = 0.25 }, 0, false),
        ("dpo_kl_k1", new() { Name = ObjectiveNames.Dpo, Beta = 0.1, KlEstimator = KlEstimator.LogRatio }, 0.05, true),
        ("dpo_kl_k2", new() { Name = ObjectiveNames.Dpo, Beta = 0.1, KlEstimator = KlEstimator.Squared }, 0.05, true),
        ("reinforce_kl_k3", new() { Name = ObjectiveNames.Reinforce, KlEstimator = KlEstimator.LowVariance }, 0.3, true),
    ];

    private static readonly long[,] PairRows = { { 0, 1 }, { 2, 3 }, { 4, 5 }, { 6, 7 }, { 0, 7 }, { 3, 2 } };

    private readonly Reference reference;

    public ObjectivesMatchPyTorchTests(Reference reference) => this.reference = reference;

    /// <summary>The shared random inputs (seeded), as plain arrays.</summary>
    public sealed class Data
    {
        public double[,] Policy = new double[B, T], ReferenceTokens = new double[B, T], Behaviour = new double[B, T], Mask = new double[B, T];
        public double[] Rewards = new double[B], Advantages = new double[B];

        public static Data Create()
        {
            var rng = new Xoshiro256StarStar(2024);
            var d = new Data();
            int[] lengths = [5, 3, 4, 1, 5, 2, 4, 3];
            for (var b = 0; b < B; b++)
            {
                for (var t = 0; t < T; t++)
                {
                    d.Policy[b, t] = -0.1 - 3 * rng.NextDouble();
                    d.ReferenceTokens[b, t] = d.Policy[b, t] + (rng.NextDouble() - 0.5) * 1.5;
                    d.Behaviour[b, t] = d.Policy[b, t] + (rng.NextDouble() - 0.5);                   // ratios in ~[0.6, 1.65]: some clipped
                    d.Mask[b, t] = t < lengths[b] ? 1 : 0;
                }
                d.Rewards[b] = rng.NextDouble() * 2;
                d.Advantages[b] = (rng.NextDouble() - 0.5) * 3;
            }
            return d;
        }
    }

    public sealed class Reference
    {
        public Reference()
        {
            Data = Data.Create();
            var cases = new JsonArray();
            foreach (var (name, o, kl, tokenLevel) in Cases)
            {
                cases.Add(new JsonObject
                {
                    ["case"] = name, ["beta"] = o.Beta, ["label_smoothing"] = o.LabelSmoothing, ["tau"] = o.RwrTemperature,
                    ["max_weight"] = o.RwrMaxWeight, ["clip"] = o.PpoClipRange, ["negative_weight"] = o.NegativeWeight,
                    ["kl"] = kl, ["estimator"] = o.KlEstimator.ToString(), ["token_level"] = tokenLevel,
                });
            }
            var pairs = new JsonArray();
            for (var p = 0; p < PairRows.GetLength(0); p++) pairs.Add(new JsonArray(PairRows[p, 0], PairRows[p, 1]));
            var input = new JsonObject
            {
                ["policy"] = PythonReference.ToJson(Data.Policy),
                ["reference"] = PythonReference.ToJson(Data.ReferenceTokens),
                ["behaviour"] = PythonReference.ToJson(Data.Behaviour),
                ["mask"] = PythonReference.ToJson(Data.Mask),
                ["rewards"] = PythonReference.ToJson(Data.Rewards),
                ["advantages"] = PythonReference.ToJson(Data.Advantages),
                ["pairs"] = pairs,
                ["cases"] = cases,
            };
            Answers = PythonReference.Run(Script, input).AsObject();
        }

        public Data Data { get; }

        public JsonObject Answers { get; }

        // An independent implementation of every formula, written from the papers / TRL, not from our C#.
        private const string Script = """
            import torch.nn.functional as F
            torch.set_default_dtype(torch.float64)
            d = json.load(sys.stdin)
            T = lambda k: torch.tensor(d[k], dtype=torch.float64)
            mask, ref_tok, beh_tok = T("mask"), T("reference"), T("behaviour")
            rewards, adv = T("rewards"), T("advantages")
            pairs = torch.tensor(d["pairs"], dtype=torch.long)
            out = {}
            for c in d["cases"]:
                tok = T("policy").requires_grad_(True)
                seq = (tok * mask).sum(1)
                ref_seq, beh_seq = (ref_tok * mask).sum(1), (beh_tok * mask).sum(1)
                w, l = pairs[:, 0], pairs[:, 1]
                logits = (seq[w] - ref_seq[w]) - (seq[l] - ref_seq[l])
                diag = {}
                name = c["case"]
                if name == "sft_all":
                    loss = -seq.mean()
                elif name in ("sft_pairs", "best_of_n"):
                    loss = -seq[w].mean()
                elif name == "negative_gradient_sft":
                    loss = (-seq[w] + c["negative_weight"] * seq[l]).mean()
                elif name == "rwr":
                    weights = torch.clamp(torch.exp(rewards / c["tau"]), max=c["max_weight"])
                    diag["rwr_weight_mean"] = weights.mean().item()
                    loss = -(weights * seq).mean()
                elif name.startswith("reinforce"):
                    loss = -(adv * seq).mean()
                elif name.startswith("ppo"):
                    if c["token_level"]:
                        lp, old, m = tok, beh_tok, mask
                    else:
                        lp, old, m = seq.unsqueeze(1), beh_seq.unsqueeze(1), torch.ones(seq.shape[0], 1)
                    ratio = torch.exp(lp - old)
                    pg1 = -adv.unsqueeze(1) * ratio
                    pg2 = -adv.unsqueeze(1) * torch.clamp(ratio, 1 - c["clip"], 1 + c["clip"])
                    loss = (torch.max(pg1, pg2) * m).sum(1).mean()
                    r = ratio.detach()
                    diag["clip_fraction"] = (((pg2 > pg1).double() * m).sum() / m.sum()).item()
                    diag["approx_kl"] = ((((r - 1) - torch.log(r)) * m).sum(1)).mean().item()
                elif name.startswith("dpo"):
                    loss = -F.logsigmoid(c["beta"] * logits).mean()
                    cr = c["beta"] * (seq[w] - ref_seq[w]).detach()
                    rr = c["beta"] * (seq[l] - ref_seq[l]).detach()
                    diag["reward_margin"] = (cr - rr).mean().item()
                    diag["reward_accuracy"] = (cr > rr).double().mean().item()
                elif name == "cdpo":
                    e = c["label_smoothing"]
                    loss = (-(1 - e) * F.logsigmoid(c["beta"] * logits) - e * F.logsigmoid(-c["beta"] * logits)).mean()
                elif name == "ipo":
                    loss = ((logits - 1 / (2 * c["beta"])) ** 2).mean()
                else:
                    raise ValueError(name)
                if c["kl"] > 0:
                    dd = tok - ref_tok
                    k = {"LogRatio": dd, "Squared": 0.5 * dd ** 2, "LowVariance": torch.exp(-dd) - 1 + dd}[c["estimator"]]
                    penalty = (k * mask).sum(1).mean()
                    diag["kl_penalty"] = penalty.item()
                    loss = loss + c["kl"] * penalty
                loss.backward()
                out[name] = {"loss": loss.item(), "grad": tok.grad.reshape(-1).tolist(), "diag": diag}
            print(json.dumps(out))
            """;
    }

    public static IEnumerable<object[]> CaseNames() => Cases.Select(c => new object[] { c.Case });

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Loss_gradient_and_diagnostics_match_pytorch(string caseName)
    {
        var (_, options, kl, tokenLevel) = Cases.Single(c => c.Case == caseName);
        var expected = reference.Answers[caseName]!.AsObject();
        var d = reference.Data;

        using var scope = NewDisposeScope();
        var tokens = tensor(Flatten(d.Policy), [B, T]);
        tokens.requires_grad = true;
        var mask = tensor(Flatten(d.Mask), [B, T]);
        var referenceTokens = tensor(Flatten(d.ReferenceTokens), [B, T]);
        var behaviourTokens = tensor(Flatten(d.Behaviour), [B, T]);
        var sequence = (tokens * mask).sum(1);
        var pairs = tensor(Flatten(PairRows), [PairRows.GetLength(0), 2]);

        var inputs = new ObjectiveInputs
        {
            PolicyLogProbs = sequence,
            ReferenceLogProbs = (referenceTokens * mask).sum(1),
            BehaviourLogProbs = (behaviourTokens * mask).sum(1),
            Rewards = tensor(d.Rewards),
            Advantages = tensor(d.Advantages),
            Pairs = caseName == "sft_all" ? null : pairs,
            Tokens = tokenLevel ? new TokenLogProbs { Policy = tokens, Reference = referenceTokens, Behaviour = behaviourTokens, Mask = mask } : null,
        };
        var result = new TrainingObjective(options).Compute(inputs, kl);
        result.Loss.backward();

        Assert.Equal(expected["loss"]!.GetValue<double>(), result.Loss.ToDouble(), 10);
        Assert.Equal(expected["loss"]!.GetValue<double>(), result.Diagnostics[DiagnosticNames.Loss], 10);
        var grad = tokens.grad!.data<double>().ToArray();
        var expectedGrad = PythonReference.Doubles(expected["grad"]);
        Assert.Equal(expectedGrad.Length, grad.Length);
        for (var i = 0; i < grad.Length; i++) Assert.Equal(expectedGrad[i], grad[i], 10);
        Assert.Contains(grad, g => g != 0);   // the case exercises the gradient at all

        foreach (var (name, value) in expected["diag"]!.AsObject())
            Assert.Equal(value!.GetValue<double>(), result.Diagnostics[name], 10);
    }

    [Fact]
    public void Ppo_case_really_clips_some_tokens()
    {
        // Guards the data: if nothing were clipped, the PPO comparison would not test the clip.
        var clipFraction = reference.Answers["ppo_tokens"]!["diag"]!["clip_fraction"]!.GetValue<double>();
        Assert.InRange(clipFraction, 0.05, 0.95);
    }

    private static double[] Flatten(double[,] a) => a.Cast<double>().ToArray();

    private static long[] Flatten(long[,] a) => a.Cast<long>().ToArray();
}
