using System.Diagnostics;
using PrefOnline.Learning.Objectives;
using PrefOnline.Learning.Pairs;
using TorchSharp;
using static TorchSharp.torch;
using PrefOnline.Learning.Optimization;

namespace PrefOnline.Experiments.Bandit;

/// <summary>
/// Runs the didactic bandit: per seed, build the environment and one initial policy, fit it onto the
/// reference (per mode, on that mode's training states), then train every method from that same
/// starting point, offline and on-policy, recording the exact expected held-out reward after every step.
/// </summary>
/// <remarks>
/// Call on the tensor thread: all work is synchronous tensor work. The reported reward is the exact
/// expectation Σ_a π(a|s)·r(a) averaged over the held-out states (the official code estimates it from 1
/// or 4 samples per state: same quantity, no sampling noise here).
/// </remarks>
public static class BanditExperiment
{
    public static BanditResults Run(BanditOptions options, Action<BanditRunResult>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var clock = Stopwatch.StartNew();
        var runs = new List<BanditRunResult>();
        var referenceRewards = new List<double>();
        var pretrained = options.Modes.ToDictionary(m => m, _ => new List<double>());

        for (var seed = 1; seed <= options.Seeds; seed++)
        {
            using var environment = BanditEnvironment.Create(options, seed);
            referenceRewards.Add(environment.ReferenceReward);
            using var initGenerator = new Generator(DeriveSeed(seed, "init"));
            using var initial = new BanditPolicy(options.ContextDimension, options.Bins, initGenerator);

            foreach (var mode in options.Modes)
            {
                using var fitted = initial.Copy();
                Pretrain(fitted, environment.TrainStates(mode), environment, options);
                pretrained[mode].Add(Evaluate(fitted, environment));
                foreach (var method in options.Methods)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var result = RunOne(options, environment, fitted, method, mode, seed, cancellationToken);
                    runs.Add(result);
                    progress?.Invoke(result);
                }
            }
        }

        return new BanditResults(options, referenceRewards, runs, Summarise(options, runs),
            pretrained.ToDictionary(p => p.Key, p => (IReadOnlyList<double>)p.Value), clock.Elapsed.TotalSeconds);
    }

    /// <summary>Minimises KL(π‖π_ref) averaged over the states with Adam (BanditLearner.run_sft).</summary>
    public static void Pretrain(BanditPolicy policy, Tensor states, BanditEnvironment environment, BanditOptions options)
    {
        using var optimizer = new AdamWOptimizer(policy.parameters(), new AdamWOptions { LearningRate = options.PretrainLearningRate, WeightDecay = 0 });
        for (var step = 0; step < options.PretrainSteps; step++)
        {
            using var scope = NewDisposeScope();
            var kl = KlToReference(policy, states, environment);
            optimizer.ZeroGrad();
            kl.backward();
            optimizer.Step();
        }
    }

    /// <summary>Mean over states of KL(π(·|s)‖π_ref) = Σ_a π(a|s)(log π(a|s) − log π_ref(a)), exact.</summary>
    public static Tensor KlToReference(BanditPolicy policy, Tensor states, BanditEnvironment environment)
    {
        using var scope = NewDisposeScope();
        var logp = policy.forward(states).log_softmax(1);                                   // (S, A)
        return (logp.exp() * (logp - environment.ReferenceLogProbs)).sum(1).mean().MoveToOuterDisposeScope();
    }

    /// <summary>E_{s ∈ held-out} Σ_a π(a|s)·r(a).</summary>
    public static double Evaluate(BanditPolicy policy, BanditEnvironment environment)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var probs = policy.forward(environment.EvalStates).softmax(1);                     // (E, A)
        return probs.mv(environment.RewardVector).mean().ToDouble();                        // (E,) → scalar
    }

    /// <summary>One method × mode × seed from the fitted policy (which is left untouched).</summary>
    public static BanditRunResult RunOne(BanditOptions options, BanditEnvironment environment, BanditPolicy fitted, string method, BanditMode mode, int seed, CancellationToken cancellationToken = default)
    {
        var clock = Stopwatch.StartNew();
        var learningRate = options.LearningRateFor(method, mode);
        using var policy = fitted.Copy();
        using var optimizer = new AdamWOptimizer(policy.parameters(), new AdamWOptions { LearningRate = learningRate, WeightDecay = 0 });
        var objective = new TrainingObjective(ObjectiveFor(method, options));
        var pairBuilder = PairBuilderFor(method, mode, options);
        var baseline = new MovingAverageBaseline(decay: null, normalizeByStd: true);
        // Every method of a seed and mode draws from the same stream: identical offline data, identical
        // first on-policy batch (both from the reference), diverging only as the policies do.
        using var sampler = new Generator(DeriveSeed(seed, mode == BanditMode.Offline ? "offline-data" : "on-policy-data"));

        var states = environment.TrainStates(mode);
        var batches = mode == BanditMode.Offline ? 1 : options.Epochs;
        var stepsPerBatch = mode == BanditMode.Offline ? options.OfflineSteps : options.OnPolicyStepsPerEpoch;
        var curve = new List<double>(batches * stepsPerBatch + 1) { Evaluate(policy, environment) };
        long samples = 0, pairCount = 0;

        for (var b = 0; b < batches; b++)
        {
            using var batchScope = NewDisposeScope();
            var batch = SampleBatch(b == 0 ? null : policy, states, environment, options, sampler);
            samples += batch.Rewards.Length;
            var inputs = BuildInputs(objective, batch, environment, pairBuilder, baseline, out var pairs);
            pairCount += pairs;

            for (var t = 0; t < stepsPerBatch; t++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                using var stepScope = NewDisposeScope();
                var logp = policy.forward(states).log_softmax(1).gather(1, batch.Actions).reshape(-1);   // (S·N,)
                var result = objective.Compute(inputs(logp));
                optimizer.ZeroGrad();
                result.Loss.backward();
                optimizer.Step();
                curve.Add(Evaluate(policy, environment));
            }
        }

        return new BanditRunResult(method, mode, seed, learningRate, curve[^1], curve, batches * stepsPerBatch, samples, pairCount, clock.Elapsed.TotalSeconds);
    }

    /// <summary>One batch: N actions per training state from the reference (<paramref name="policy"/> null)
    /// or the current policy, with their behaviour log-probs and rewards.</summary>
    private sealed record Batch(Tensor Actions, Tensor BehaviourLogProbs, double[] Rewards, int[] Groups);

    private static Batch SampleBatch(BanditPolicy? policy, Tensor states, BanditEnvironment environment, BanditOptions options, Generator sampler)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var stateCount = states.size(0);
        var logp = policy is null
            ? environment.ReferenceLogProbs.unsqueeze(0).expand(stateCount, options.Bins)   // (S, A)
            : policy.forward(states).log_softmax(1);
        var actions = logp.exp().multinomial(options.SamplesPerState, replacement: true, generator: sampler);  // (S, N)
        var behaviour = logp.gather(1, actions).reshape(-1);                                         // (S·N,)
        var flat = actions.reshape(-1).data<long>().ToArray();
        var rewards = flat.Select(a => environment.Rewards[(int)a]).ToArray();
        var groups = Enumerable.Range(0, flat.Length).Select(i => i / options.SamplesPerState).ToArray();
        scope.MoveToOuter(actions, behaviour);
        return new Batch(actions, behaviour, rewards, groups);
    }

    /// <summary>Everything about a batch that does not change between its T steps, computed once;
    /// returns a function from this step's policy log-probs to the objective's inputs.</summary>
    private static Func<Tensor, ObjectiveInputs> BuildInputs(TrainingObjective objective, Batch batch, BanditEnvironment environment,
        PairBuilder? pairBuilder, MovingAverageBaseline baseline, out int pairCount)
    {
        var flatActions = batch.Actions.reshape(-1);
        var reference = environment.ReferenceLogProbs.index_select(0, flatActions);                 // (S·N,)
        var rewards = tensor(batch.Rewards.Select(r => (float)r).ToArray());
        Tensor? pairs = null;
        pairCount = 0;
        if (pairBuilder is not null)
        {
            var built = pairBuilder.Build(batch.Rewards, batch.Groups);
            pairCount = built.Count;
            pairs = PairBuilder.ToTensor(built);
        }
        Tensor? advantages = objective.NeedsAdvantages
            ? tensor(baseline.Advantages(batch.Rewards).Select(a => (float)a).ToArray())
            : null;
        return logp => new ObjectiveInputs
        {
            PolicyLogProbs = logp,
            ReferenceLogProbs = reference,
            BehaviourLogProbs = batch.BehaviourLogProbs,
            Rewards = rewards,
            Advantages = advantages,
            Pairs = pairs,
        };
    }

    public static ObjectiveOptions ObjectiveFor(string method, BanditOptions options) => method switch
    {
        BanditMethods.BestOfN => new ObjectiveOptions { Name = ObjectiveNames.BestOfN },
        BanditMethods.NegativeGradientSft => new ObjectiveOptions { Name = ObjectiveNames.NegativeGradientSft, NegativeWeight = options.NegativeWeight },
        BanditMethods.Rwr => new ObjectiveOptions { Name = ObjectiveNames.Rwr, RwrTemperature = options.RwrTemperature, RwrMaxWeight = options.RwrMaxWeight },
        BanditMethods.Reinforce => new ObjectiveOptions { Name = ObjectiveNames.Reinforce },
        BanditMethods.Ppo => new ObjectiveOptions { Name = ObjectiveNames.Ppo, PpoClipRange = options.PpoClipRange },
        BanditMethods.Dpo => new ObjectiveOptions { Name = ObjectiveNames.Dpo, Beta = options.DpoBeta },
        // The official bandit IPO is (ℓ − m)² with m its "beta"; ours is (ℓ − 1/(2β))², so β = 1/(2m).
        BanditMethods.Ipo => new ObjectiveOptions { Name = ObjectiveNames.Ipo, Beta = 1.0 / (2.0 * options.IpoMargin) },
        _ => throw new ArgumentException($"unknown bandit method '{method}'; valid methods: {string.Join(", ", BanditMethods.All)}", nameof(method)),
    };

    /// <summary>Best-vs-worst for the max-likelihood pair methods (dpo_utils picks argmax / argmin);
    /// all pairs above the mode's reward gap for DPO and IPO (dpo_utils.dpo_loss's i &lt; j loop).</summary>
    private static PairBuilder? PairBuilderFor(string method, BanditMode mode, BanditOptions options) => method switch
    {
        BanditMethods.BestOfN or BanditMethods.NegativeGradientSft => new PairBuilder(new PairingOptions { Mode = PairingMode.BestVsWorst }),
        BanditMethods.Dpo or BanditMethods.Ipo => new PairBuilder(new PairingOptions
        {
            Mode = PairingMode.AllPairs,
            MinRewardGap = mode == BanditMode.Offline ? options.OfflineMinRewardGap : options.OnPolicyMinRewardGap,
        }),
        _ => null,
    };

    private static IReadOnlyList<BanditSummary> Summarise(BanditOptions options, IReadOnlyList<BanditRunResult> runs)
    {
        var budget = (long)options.OfflineStates * options.SamplesPerState;
        var summaries = new List<BanditSummary>();
        foreach (var method in options.Methods)
        foreach (var mode in options.Modes)
        {
            var group = runs.Where(r => r.Method == method && r.Mode == mode).ToArray();
            if (group.Length == 0) continue;
            var (mean, std) = MeanAndStd(group.Select(r => r.FinalReward).ToArray());
            var (budgetMean, budgetStd) = MeanAndStd(group.Select(r => RewardAtSamples(r, budget, options)).ToArray());
            var (curveMean, curveStd) = MeanAndStd(group.Select(r => r.Curve.Average()).ToArray());
            summaries.Add(new BanditSummary(method, mode, mean, std, group.Length, budget, budgetMean, budgetStd, curveMean, curveStd));
        }
        return summaries;
    }

    /// <summary>The reward after the last gradient step on the batch that brought the run's sample count
    /// to at least <paramref name="samples"/> (the final reward if it never got there).</summary>
    public static double RewardAtSamples(BanditRunResult run, long samples, BanditOptions options)
    {
        if (run.Mode == BanditMode.Offline) return run.FinalReward;                           // one batch: all samples up front
        var perBatch = (long)options.OnPolicyStates * options.SamplesPerState;
        var batches = (samples + perBatch - 1) / perBatch;
        var step = Math.Min(batches * options.OnPolicyStepsPerEpoch, run.Curve.Count - 1);
        return run.Curve[(int)step];
    }

    /// <summary>Mean and sample standard deviation (n − 1; 0 for one value).</summary>
    public static (double Mean, double Std) MeanAndStd(IReadOnlyList<double> values)
    {
        if (values.Count == 0) return (double.NaN, double.NaN);
        var mean = values.Average();
        if (values.Count == 1) return (mean, 0);
        var sumSq = values.Sum(v => (v - mean) * (v - mean));
        return (mean, Math.Sqrt(sumSq / (values.Count - 1)));
    }

    /// <summary>A stable 64-bit seed from the run seed and a purpose tag (FNV-1a, then SplitMix64's finaliser):
    /// string.GetHashCode is randomised per process and would break reproducibility.</summary>
    public static ulong DeriveSeed(int seed, string purpose)
    {
        var h = 14695981039346656037UL;
        foreach (var c in purpose)
        {
            h ^= c;
            h *= 1099511628211UL;
        }
        var z = h ^ ((ulong)(uint)seed * 0x9E3779B97F4A7C15UL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
