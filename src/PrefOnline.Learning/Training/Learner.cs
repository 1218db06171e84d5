using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using PrefOnline.Learning.Models;
using PrefOnline.Learning.Models.Adapters;
using PrefOnline.Learning.Models.LogProbs;
using PrefOnline.Learning.Objectives;
using PrefOnline.Learning.Pairs;
using PrefOnline.Learning.Replay;
using PrefOnline.Learning.Tokenization;
using PrefOnline.Learning.TrainingData;
using PrefOnline.Tensors;
using TorchSharp;
using static TorchSharp.torch;
using TorchSharp.Modules;
using PrefOnline.Learning.Optimization;

namespace PrefOnline.Learning.Training;

/// <summary>
/// Trains the policy. One <see cref="Update(LearnerBatch, CancellationToken)"/> = T inner gradient
/// steps on one mixed batch (replayed and fresh rollouts plus human pairs), read as numbered stages:
/// <code>
///   once per update     1 sample      the batch's rows: drawn rollouts, then each human pair's chosen and rejected
///                       2 score       rewards (set by the scorer before the buffer; human pairs ±HumanPairReward)
///                       3 pair        on-policy pairs (PairBuilder over each prompt's samples) + human pairs,
///                                     or advantages (RLOO / moving average) for REINFORCE and PPO
///                       4 layout      prompt ++ completion token rows (SequenceBatch)
///                       5 reference   log π_ref, no grad — once: the reference never changes, so T steps share it
///   T times             6 policy      log π_θ with grad
///                       7 loss        TrainingObjective (+ c·KL penalty)         → non-finite: skip, stop
///                       8 backward
///                       9 clip        global L2 norm ≤ MaxGradNorm               → non-finite: skip, stop
///                      10 step        AdamW
///   once                11 metrics    loss, grad norm, KL, entropy, reward, staleness; KL controller learns
/// </code>
/// The NaN/Inf guard skips a bad step before the optimizer sees it: weights and optimizer state stay
/// exactly as they were, the skip is counted, and the update stops there (another step on the same
/// weights and data would fail alike). A guarded step never calls <see cref="AdamWOptimizer.Step"/>.
/// </summary>
/// <remarks>
/// <para>Runs synchronously on the caller's thread; the worker calls it on its TensorThread. Every
/// tensor lives in a DisposeScope of the update (the learner's persistent tensors are the optimizer's
/// moments only). An update that has started runs to the end (cancellation is checked before stage 1),
/// so a cancelled update never leaves weights changed without a new version.</para>
/// <para>Deterministic: same weights, options, state and batch ⇒ bit-identical weights after the update
/// (all randomness is the policy's dropout generator, seeded by <see cref="LearnerOptions.Seed"/>, and
/// saved with the state) — with one intra-op thread, or with MKL in reproducible mode (MKL_CBWR=AUTO,STRICT)
/// at any thread count: libtorch 2.10's multi-threaded MKL GEMMs may otherwise differ in the last bit
/// (docs/OPERATIONS.md, "Reproducibility").</para>
/// <para>Does not own the policy, the reference or the tokenizer; owns its optimizer.</para>
/// </remarks>
public sealed class Learner : IDisposable
{
    /// <summary>File names the worker's checkpoint uses for <see cref="ExportState"/>.</summary>
    public const string StateTensorsFileName = "optimizer.safetensors";
    public const string StateJsonFileName = "learner.json";

    private const int StateFormatVersion = 1;
    private const string OptimizerPrefix = "optimizer.";
    private const string DropoutGeneratorKey = "rng.dropout";
    private const string AdapterDropoutGeneratorKey = "rng.adapter_dropout";

    private readonly PolicyModel policy;
    private readonly ReferenceModel? reference;
    private readonly ITokenizer tokenizer;
    private readonly TrainingObjective objective;
    private readonly PairBuilder pairBuilder;
    private readonly IKlController klController;
    private readonly MovingAverageBaseline? movingAverage;
    private readonly AdamWOptimizer optimizer;
    private readonly IReadOnlyList<Parameter> parameters;
    private readonly LoraAdapters? adapters;
    private LearnerCounters counters;
    private bool disposed;

    /// <param name="policy">The policy to train, in place (not owned).</param>
    /// <param name="reference">π_ref (not owned): required by DPO/IPO/cDPO and by a KL penalty; otherwise
    /// optional (without it no KL is reported).</param>
    /// <param name="tokenizer">Encodes human pairs that arrive as text only.</param>
    /// <param name="initialUpdateCount">Updates the policy's current weights already had (replay staleness counts from it).</param>
    public Learner(PolicyModel policy, ReferenceModel? reference, ITokenizer tokenizer, LearnerOptions options, long initialUpdateCount = 0)
    {
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfNegative(initialUpdateCount);
        options.Validate();
        var adapters = AdaptersToTrain(policy, options, ref reference);
        objective = new TrainingObjective(options.ObjectiveParameters());
        if (reference is null && objective.NeedsReference)
            throw new ArgumentException($"objective '{objective.Name}' compares against the reference policy: pass a ReferenceModel", nameof(reference));
        if (reference is null && options.KlPenaltyEnabled)
            throw new ArgumentException("a KL penalty needs a reference model (set KlCoefficient = 0 and no TargetKl to train without one)", nameof(reference));
        if (reference is not null && reference.Config.VocabularySize != policy.Config.VocabularySize)
            throw new ArgumentException($"the reference's vocabulary ({reference.Config.VocabularySize}) differs from the policy's ({policy.Config.VocabularySize})", nameof(reference));
        if (tokenizer.VocabularySize > policy.Config.VocabularySize)
            throw new ArgumentException($"the tokenizer has {tokenizer.VocabularySize} ids but the policy's vocabulary is {policy.Config.VocabularySize}", nameof(tokenizer));

        this.policy = policy;
        this.reference = reference;
        this.tokenizer = tokenizer;
        Options = options;
        UpdateCount = initialUpdateCount;
        pairBuilder = new PairBuilder(options.PairingParameters());
        klController = options.TargetKl is { } target
            ? new AdaptiveKlController(options.KlCoefficient, target, options.KlHorizon)
            : new FixedKlController(reference is null ? 0 : options.KlCoefficient);
        movingAverage = options.Baseline == AdvantageBaseline.MovingAverage
            ? new MovingAverageBaseline(options.BaselineDecay, options.NormalizeAdvantages)
            : null;
        this.adapters = adapters;
        parameters = adapters?.TrainableParameters() ?? policy.parameters().ToList();
        policy.DropoutGenerator.manual_seed(unchecked((long)options.Seed));
        adapters?.DropoutGenerator.manual_seed(unchecked((long)options.Seed + 1));
        optimizer = new AdamWOptimizer(parameters, options.OptimizerParameters());
    }

    public LearnerOptions Options { get; }

    /// <summary>
    /// With <see cref="LearnerOptions.Adapter"/>: the policy's adapters (attached here if it had none; the
    /// policy owns them) and, unless a shared one was given, <see cref="ReferenceModel.BaseOf"/> the policy as
    /// the reference. A separate reference copy is refused (it would be the second copy LoRA avoids), and so
    /// is an adapted policy without the option (its base is frozen: nothing else would train).
    /// </summary>
    private static LoraAdapters? AdaptersToTrain(PolicyModel policy, LearnerOptions options, ref ReferenceModel? reference)
    {
        if (options.Adapter is not { } lora)
        {
            if (policy.Adapters is not null)
                throw new ArgumentException("the policy carries LoRA adapters: set LearnerOptions.Adapter to train them (or merge them first)", nameof(policy));
            return null;
        }
        if (reference is { SharesPolicyWeights: false })
            throw new ArgumentException("with LoRA the reference is the policy's base with its adapters off: pass no ReferenceModel (or ReferenceModel.BaseOf(policy))", nameof(reference));
        var adapters = policy.Adapters ?? LoraAdapters.Attach(policy, lora, options.Seed);
        var held = adapters.Options;
        if (held.Rank != lora.Rank || held.Alpha != lora.Alpha || held.Dropout != lora.Dropout
            || (lora.TargetModules.Count > 0 && !held.TargetModules.SequenceEqual(lora.TargetModules, StringComparer.Ordinal)))
            throw new ArgumentException($"the policy's adapters (rank {held.Rank}, alpha {held.Alpha}, dropout {held.Dropout}, targets {string.Join(",", held.TargetModules)}) " +
                                        $"differ from LearnerOptions.Adapter (rank {lora.Rank}, alpha {lora.Alpha}, dropout {lora.Dropout}, targets {string.Join(",", lora.TargetModules)})", nameof(options));
        reference ??= ReferenceModel.BaseOf(policy);
        return adapters;
    }

    /// <summary>Updates applied to the policy's weights: +1 for every update that applied a step. Replay
    /// items are stamped with it and expire by it (staleness is counted in updates). Not the published policy
    /// version, which the host assigns (a checkpoint's version).</summary>
    public long UpdateCount { get; private set; }

    public LearnerCounters Counters => counters;

    /// <summary>The KL-penalty coefficient the next update will use.</summary>
    public double KlCoefficient => klController.Coefficient;

    /// <summary>The moving-average baseline's running statistics (null with the leave-one-out baseline).</summary>
    public MovingAverageState? BaselineState => movingAverage?.State;

    /// <summary>Test seam: runs after backward, before the gradient guard (tests inject NaN gradients here).</summary>
    internal Action<IReadOnlyList<Tensor>>? AfterBackward { get; set; }

    /// <summary>Draws <see cref="LearnerOptions.BatchSize"/> rollouts (and <see cref="LearnerOptions.HumanPairsPerUpdate"/>
    /// human pairs) at the current policy version, then runs one update on them. An empty draw gives an
    /// empty update (nothing changes).</summary>
    public LearnerUpdate Update(ReplayBuffer<Rollout> rollouts, ReplayBuffer<PreferencePair>? humanPairs = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(rollouts);
        cancellationToken.ThrowIfCancellationRequested();
        var drawn = rollouts.Draw(Options.BatchSize, UpdateCount);
        var pairs = humanPairs is not null && Options.HumanPairsPerUpdate > 0 ? humanPairs.Draw(Options.HumanPairsPerUpdate, UpdateCount) : null;
        return Update(LearnerBatch.From(drawn, pairs), cancellationToken);
    }

    /// <summary>One update: T inner steps on <paramref name="batch"/> (see the class summary).</summary>
    public LearnerUpdate Update(LearnerBatch batch, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        ArgumentNullException.ThrowIfNull(batch);
        cancellationToken.ThrowIfCancellationRequested();
        var clock = Stopwatch.StartNew();

        // 1. sample — the rows of this update. Unusable items are dropped and counted, never thrown:
        //    one bad record must not poison a batch the buffer has already handed out.
        var (rows, rolloutCount, freshCount, humanCount, invalid, staleness) = CollectRows(batch);
        // 2. score — rewards were set by the scorer (human label, reward model, programmatic) before the buffer.
        var rolloutRewards = rows.Take(rolloutCount).Select(r => r.Reward).ToArray();
        double? meanReward = rolloutCount > 0 ? rolloutRewards.Average() : null;
        double? freshMeanReward = freshCount > 0 ? rows.Take(rolloutCount).Where(r => r.Fresh).Average(r => r.Reward) : null;
        // 3. pair — or advantages, per what the objective reads.
        var plan = Plan(rows, rolloutCount);

        var stepsApplied = 0;
        var skipped = 0;
        var reason = LearnerSkipReason.None;
        double? loss = null, initialLoss = null, gradNorm = null, kl = null, entropy = null;
        IReadOnlyDictionary<string, double> diagnostics = new Dictionary<string, double>();
        long completionTokens = 0, tokensProcessed = 0;
        var klCoefficient = reference is null ? 0 : klController.Coefficient;

        if (plan.Rows.Count == 0)
        {
            reason = LearnerSkipReason.EmptyBatch;
        }
        else
        {
            var wasTraining = policy.training;
            policy.train();
            try
            {
                using var updateScope = NewDisposeScope();
                // 4. layout
                using var sequences = SequenceBatch.FromTokens(plan.Rows.Select(r => (r.Prompt, r.Completion)).ToList(), policy.Config.ContextLength, tokenizer.PaddingId);
                var rowTokens = Enumerable.Range(0, sequences.Count).Sum(i => (long)sequences.PromptLengths[i] + sequences.CompletionLengths[i]);
                completionTokens = sequences.CompletionLengths.Sum(c => (long)c);
                var inputs = StaticInputs(plan, sequences);
                // 5. reference — no grad, once for the T steps.
                var referenceLogProbs = reference?.Compute(sequences, Options.Reduction, keepDistributions: Options.KlMetric == KlEstimator.FullVocabulary);

                for (var t = 0; t < Options.InnerSteps; t++)
                {
                    using var stepScope = NewDisposeScope();
                    tokensProcessed += rowTokens;
                    // 6. policy log-probs (the log-softmax is kept: autograd holds it anyway, the entropy reads it)
                    var policyLogProbs = SequenceLogProbs.Compute(policy, sequences, Options.Reduction, keepDistributions: true);
                    // PPO on rows no policy sampled (human pairs): the behaviour is the policy as it was at
                    // this update's first step, so the ratio measures only this update's movement.
                    if (t == 0 && inputs.BehaviourTokens is { } recorded && inputs.UnsampledRows is { } unsampled)
                    {
                        using var noGrad = no_grad();
                        var filled = recorded + policyLogProbs.TokenLogProbs.detach() * unsampled;          // (B, Tc)
                        inputs = inputs with { BehaviourTokens = filled.MoveToOuterDisposeScope() };
                    }
                    // 7. loss
                    var result = objective.Compute(Inputs(inputs, policyLogProbs, referenceLogProbs), klCoefficient);
                    var stepLoss = result.Diagnostics[DiagnosticNames.Loss];
                    if (!double.IsFinite(stepLoss))
                    {
                        skipped++;
                        reason = LearnerSkipReason.NonFiniteLoss;
                        break;
                    }
                    // 8. backward
                    optimizer.ZeroGrad();
                    result.Loss.backward();
                    AfterBackward?.Invoke(parameters);
                    // 9. clip (measures the norm first; a non-finite norm scales nothing)
                    var norm = GradientClipping.ClipGradNorm(parameters, Options.MaxGradNorm > 0 ? Options.MaxGradNorm : double.MaxValue);
                    if (!double.IsFinite(norm))
                    {
                        optimizer.ZeroGrad();
                        skipped++;
                        reason = LearnerSkipReason.NonFiniteGradients;
                        break;
                    }
                    // 10. step
                    optimizer.Step();
                    optimizer.ZeroGrad();           // set-to-none: no gradient memory held between updates
                    stepsApplied++;

                    // 11. metrics of this step's forward (the last applied step's are reported)
                    initialLoss ??= stepLoss;
                    loss = stepLoss;
                    gradNorm = norm;
                    diagnostics = result.Diagnostics;
                }

                // 12. KL and entropy of the weights this update leaves behind — the version the guardrail judges
                //     — from one more forward without gradient (the steps' forwards saw the weights before each step).
                if (stepsApplied > 0)
                {
                    using var measureScope = NewDisposeScope();
                    using var noGrad = no_grad();
                    policy.eval(); // measured without dropout; the finally below restores the caller's mode
                    var final = SequenceLogProbs.Compute(policy, sequences, Options.Reduction, keepDistributions: true);
                    entropy = PolicyDivergence.MeanOverTokens(PolicyDivergence.Entropy(final), final.Mask).ToDouble();
                    if (referenceLogProbs is not null)
                    {
                        var perToken = PolicyDivergence.TokenKl(final, referenceLogProbs, Options.KlMetric);   // (B, Tc)
                        kl = perToken.sum(1).mean().ToDouble();
                    }
                }
            }
            finally
            {
                policy.train(wasTraining);
            }
        }

        var applied = stepsApplied > 0;
        if (applied)
        {
            UpdateCount++;
            if (kl is { } observed && double.IsFinite(observed)) klController.Update(observed, plan.Rows.Count);
        }
        counters = counters with
        {
            Updates = counters.Updates + 1,
            UpdatesApplied = counters.UpdatesApplied + (applied ? 1 : 0),
            StepsApplied = counters.StepsApplied + stepsApplied,
            StepsSkipped = counters.StepsSkipped + skipped,
            EmptyUpdates = counters.EmptyUpdates + (reason == LearnerSkipReason.EmptyBatch ? 1 : 0),
            InvalidItems = counters.InvalidItems + invalid,
            Rollouts = counters.Rollouts + rolloutCount,
            HumanPairs = counters.HumanPairs + humanCount,
            TokensProcessed = counters.TokensProcessed + tokensProcessed,
        };

        return new LearnerUpdate(UpdateCount, applied, stepsApplied, skipped, reason, loss, initialLoss, gradNorm, kl, entropy, klCoefficient,
            meanReward, freshMeanReward, plan.Rows.Count, rolloutCount, freshCount, humanCount, plan.PairCount, invalid,
            completionTokens, tokensProcessed, staleness.Mean, staleness.Max, diagnostics, clock.Elapsed.TotalSeconds);
    }

    // ---- stages 1–3: rows, rewards, pairs and advantages (no tensors) ----------------------------------

    private enum RowKind
    {
        Rollout,
        HumanChosen,
        HumanRejected,
    }

    /// <param name="Behaviour">Per-token behaviour log-probs (rollouts); null for human rows.</param>
    private sealed record Row(int[] Prompt, int[] Completion, float[]? Behaviour, double Reward, int Group, RowKind Kind, bool Fresh);

    private (List<Row> Rows, int Rollouts, int Fresh, int Human, int Invalid, (double? Mean, long? Max) Staleness) CollectRows(LearnerBatch batch)
    {
        var rows = new List<Row>();
        var groups = new Dictionary<string, int>(StringComparer.Ordinal);
        var invalid = 0;
        var fresh = 0;
        var ages = new List<long>();
        foreach (var entry in batch.Rollouts)
        {
            var r = entry.Item;
            if (r is null || !IsUsable(r))
            {
                invalid++;
                continue;
            }
            if (!groups.TryGetValue(r.PromptId, out var group)) groups[r.PromptId] = group = groups.Count;
            var isFresh = entry.Uses == 1;
            if (isFresh) fresh++;
            ages.Add(Math.Max(0, UpdateCount - entry.UpdateCount));
            rows.Add(new Row(PromptOf(r.PromptTokens, r.Prompt), r.CompletionTokens.ToArray(), r.BehaviourLogProbs.ToArray(), r.Reward, group, RowKind.Rollout, isFresh));
        }
        var rolloutCount = rows.Count;

        var nextGroup = groups.Count;
        var human = 0;
        foreach (var entry in batch.HumanPairs)
        {
            var p = entry.Item;
            if (p is null || !TryTokenize(p, out var prompt, out var chosen, out var rejected))
            {
                invalid++;
                continue;
            }
            var group = nextGroup++;
            rows.Add(new Row(prompt, chosen, null, Options.HumanPairReward, group, RowKind.HumanChosen, entry.Uses == 1));
            rows.Add(new Row(prompt, rejected, null, -Options.HumanPairReward, group, RowKind.HumanRejected, entry.Uses == 1));
            human++;
        }
        (double?, long?) staleness = ages.Count > 0 ? (ages.Average(), ages.Max()) : (null, null);
        return (rows, rolloutCount, fresh, human, invalid, staleness);
    }

    private bool IsUsable(Rollout r)
    {
        try
        {
            r.Validate();
        }
        catch (ArgumentException)
        {
            return false;
        }
        var vocabulary = policy.Config.VocabularySize;
        foreach (var id in r.PromptTokens) if (id < 0 || id >= vocabulary) return false;
        foreach (var id in r.CompletionTokens) if (id < 0 || id >= vocabulary) return false;
        return true;
    }

    private int[] PromptOf(System.Collections.Immutable.ImmutableArray<int> tokens, string text) =>
        tokens.Length > 0 ? tokens.ToArray() : SequenceBatch.EncodePrompt(tokenizer, text);

    /// <summary>A pair's token rows: the stored ids, or the text encoded (completions end with the
    /// end-of-sequence token, as a sampled completion that stopped does).</summary>
    private bool TryTokenize(PreferencePair p, out int[] prompt, out int[] chosen, out int[] rejected)
    {
        prompt = chosen = rejected = [];
        try
        {
            p.Validate();
            prompt = PromptOf(p.PromptTokens, p.Prompt);
            chosen = p.ChosenTokens.Length > 0 ? p.ChosenTokens.ToArray() : [.. tokenizer.Encode(p.Chosen), tokenizer.EndOfSequenceId];
            rejected = p.RejectedTokens.Length > 0 ? p.RejectedTokens.ToArray() : [.. tokenizer.Encode(p.Rejected), tokenizer.EndOfSequenceId];
        }
        catch (ArgumentException)
        {
            return false;
        }
        var vocabulary = policy.Config.VocabularySize;
        return prompt.Concat(chosen).Concat(rejected).All(id => id >= 0 && id < vocabulary) && !chosen.AsSpan().SequenceEqual(rejected);
    }

    /// <summary>The rows the objective trains on, with pairs (re-indexed to those rows) or advantages.</summary>
    private sealed record RowPlan(IReadOnlyList<Row> Rows, IReadOnlyList<(int Chosen, int Rejected)>? Pairs, double[]? Advantages)
    {
        public int PairCount => Pairs?.Count ?? 0;
    }

    private RowPlan Plan(List<Row> rows, int rolloutCount)
    {
        if (objective.Description.Pairwise)
        {
            // sft is trained "on preferred": the chosen side of each pair, like best_of_n.
            var pairs = pairBuilder.Build(rows.Take(rolloutCount).Select(r => r.Reward).ToArray(), rows.Take(rolloutCount).Select(r => r.Group).ToArray()).ToList();
            for (var i = rolloutCount; i + 1 < rows.Count; i += 2) pairs.Add((i, i + 1));
            // Keep only rows some pair uses: BestVsWorst over K samples needs 2 of them through the model, not K.
            var used = pairs.SelectMany(p => new[] { p.Chosen, p.Rejected }).Distinct().Order().ToArray();
            var newIndex = new Dictionary<int, int>();
            for (var k = 0; k < used.Length; k++) newIndex[used[k]] = k;
            var remapped = pairs.Select(p => (newIndex[p.Chosen], newIndex[p.Rejected])).ToList();
            return new RowPlan(used.Select(i => rows[i]).ToList(), remapped, null);
        }

        double[]? advantages = null;
        if (objective.NeedsAdvantages && rows.Count > 0)
        {
            var rewards = rows.Select(r => r.Reward).ToArray();
            advantages = movingAverage is not null
                ? movingAverage.Advantages(rewards)
                : LeaveOneOutBaseline.Advantages(rewards, rows.Select(r => r.Group).ToArray());
        }
        return new RowPlan(rows, null, advantages);
    }

    // ---- stage 4 onwards: tensors ---------------------------------------------------------------------

    /// <summary>The objective inputs that stay fixed for the T steps, in the update's scope.</summary>
    private sealed record StaticTensors(Tensor? Pairs, Tensor? Rewards, Tensor? Advantages, Tensor? BehaviourTokens, Tensor? UnsampledRows);

    private StaticTensors StaticInputs(RowPlan plan, SequenceBatch sequences)
    {
        var rows = plan.Rows;
        // On the policy's device, in float32 like the log-probs they meet.
        var device = policy.TokenEmbedding.device;
        Tensor? pairs = plan.Pairs is { } p ? PairBuilder.ToTensor(p).to(device) : null;
        Tensor? rewards = objective.NeedsRewards ? tensor(rows.Select(r => (float)r.Reward).ToArray()).to(device) : null;
        Tensor? advantages = plan.Advantages is { } a ? tensor(a.Select(x => (float)x).ToArray()).to(device) : null;
        Tensor? behaviour = null, unsampled = null;
        if (objective.NeedsBehaviour)
        {
            var (b, tc) = (rows.Count, (int)sequences.CompletionTokens.size(1));
            var values = new float[b * tc];
            var missing = new float[b * tc];
            for (var i = 0; i < b; i++)
            {
                var length = sequences.CompletionLengths[i];
                if (rows[i].Behaviour is { } recorded)
                {
                    // The layout may have cut an over-long completion to its first tokens: cut the behaviour alike.
                    Array.Copy(recorded, 0, values, i * tc, length);
                }
                else
                {
                    for (var j = 0; j < length; j++) missing[i * tc + j] = 1;
                }
            }
            behaviour = tensor(values, [b, tc]).to(device);                        // (B, Tc)
            if (rows.Any(r => r.Behaviour is null)) unsampled = tensor(missing, [b, tc]).to(device);
        }
        return new StaticTensors(pairs, rewards, advantages, behaviour, unsampled);
    }

    private static ObjectiveInputs Inputs(StaticTensors s, SequenceLogProbs policyLogProbs, SequenceLogProbs? referenceLogProbs) => new()
    {
        PolicyLogProbs = policyLogProbs.Values,
        ReferenceLogProbs = referenceLogProbs?.Values,
        Rewards = s.Rewards,
        Advantages = s.Advantages,
        Pairs = s.Pairs,
        Tokens = new TokenLogProbs
        {
            Policy = policyLogProbs.TokenLogProbs,
            Reference = referenceLogProbs?.TokenLogProbs,
            Behaviour = s.BehaviourTokens,
            Mask = policyLogProbs.Mask,
        },
    };

    // ---- state -------------------------------------------------------------------------------------

    /// <summary>
    /// The learner's whole resumable state: the optimizer's moments and step counts and the dropout
    /// generator as tensors (<see cref="StateTensorsFileName"/>), and policy version, counters, KL
    /// coefficient and baseline statistics as JSON (<see cref="StateJsonFileName"/>). With the policy's
    /// weights saved beside it, <see cref="ImportState"/> on a fresh learner continues bit for bit.
    /// </summary>
    public TrainingState ExportState()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        using (var scope = NewDisposeScope())
        {
            foreach (var (name, tensor) in optimizer.StateDict()) tensors[OptimizerPrefix + name] = tensor.MoveToOuterDisposeScope();
            tensors[DropoutGeneratorKey] = policy.DropoutGenerator.get_state().MoveToOuterDisposeScope();
            if (adapters is not null) tensors[AdapterDropoutGeneratorKey] = adapters.DropoutGenerator.get_state().MoveToOuterDisposeScope();
        }
        var json = new JsonObject
        {
            ["format"] = "prefonline.learner.v1",
            ["format_version"] = StateFormatVersion,
            ["objective"] = objective.Name,
            ["parameters"] = parameters.Count,
            ["policy_version"] = UpdateCount,          // the key predates the name UpdateCount: kept for checkpoints
            ["learning_rate"] = optimizer.LearningRate,
            ["kl_coefficient"] = klController.Coefficient,
            ["baseline"] = movingAverage is null ? null : new JsonObject
            {
                ["count"] = movingAverage.State.Count,
                ["mean"] = movingAverage.State.Mean,
                ["variance"] = movingAverage.State.Variance,
            },
            ["counters"] = JsonSerializer.SerializeToNode(counters, CountersJson),
        };
        return new TrainingState(tensors, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>Restores a state from <see cref="ExportState"/>. Everything is checked before anything
    /// changes; a damaged or mismatched state throws <see cref="InvalidDataException"/> and leaves the learner as it was.</summary>
    public void ImportState(TrainingState state)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        ArgumentNullException.ThrowIfNull(state);
        JsonNode root;
        try
        {
            root = JsonNode.Parse(state.Json) ?? throw new InvalidDataException("learner state JSON is empty");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"learner state JSON is malformed: {e.Message}", e);
        }
        long policyVersion;
        double klCoefficient, learningRate;
        MovingAverageState? baseline = null;
        LearnerCounters restored;
        try
        {
            var version = root["format_version"]!.GetValue<int>();
            if (version != StateFormatVersion) throw new InvalidDataException($"learner state format {version} is not supported (expected {StateFormatVersion})");
            var parameterCount = root["parameters"]!.GetValue<int>();
            if (parameterCount != parameters.Count)
                throw new InvalidDataException($"learner state is for {parameterCount} parameter tensors, this policy has {parameters.Count}");
            policyVersion = root["policy_version"]!.GetValue<long>();
            klCoefficient = root["kl_coefficient"]!.GetValue<double>();
            learningRate = root["learning_rate"]!.GetValue<double>();
            if (movingAverage is not null && root["baseline"] is JsonObject b)
                baseline = new MovingAverageState(b["count"]!.GetValue<long>(), b["mean"]!.GetValue<double>(), b["variance"]!.GetValue<double>());
            restored = root["counters"].Deserialize<LearnerCounters>(CountersJson);
        }
        catch (Exception e) when (e is NullReferenceException or InvalidOperationException or FormatException or JsonException)
        {
            throw new InvalidDataException($"learner state JSON lacks or mistypes a field: {e.Message}", e);
        }
        if (policyVersion < 0) throw new InvalidDataException($"learner state has a negative policy version {policyVersion}");
        if (!(klCoefficient >= 0) || double.IsInfinity(klCoefficient)) throw new InvalidDataException($"learner state has an invalid KL coefficient {klCoefficient}");
        if (!(learningRate >= 0) || double.IsInfinity(learningRate)) throw new InvalidDataException($"learner state has an invalid learning rate {learningRate}");
        if (!state.Tensors.TryGetValue(DropoutGeneratorKey, out var generatorState))
            throw new InvalidDataException($"learner state lacks '{DropoutGeneratorKey}'");
        var optimizerState = state.Tensors.Where(kv => kv.Key.StartsWith(OptimizerPrefix, StringComparison.Ordinal))
            .ToDictionary(kv => kv.Key[OptimizerPrefix.Length..], kv => kv.Value, StringComparer.Ordinal);
        Tensor? adapterGeneratorState = null;
        if (adapters is not null && !state.Tensors.TryGetValue(AdapterDropoutGeneratorKey, out adapterGeneratorState))
            throw new InvalidDataException($"learner state lacks '{AdapterDropoutGeneratorKey}' (it was written without LoRA adapters)");
        var unknown = state.Tensors.Keys.Where(k => k != DropoutGeneratorKey && !(adapters is not null && k == AdapterDropoutGeneratorKey)
                                                    && !k.StartsWith(OptimizerPrefix, StringComparison.Ordinal)).ToList();
        if (unknown.Count > 0) throw new InvalidDataException($"learner state holds unexpected tensors: {string.Join(", ", unknown.Take(5))}");
        if (movingAverage is not null && baseline is { } check && (check.Count < 0 || !double.IsFinite(check.Mean) || !(check.Variance >= 0)))
            throw new InvalidDataException($"learner state has an invalid baseline {check}");

        // Checked before anything changes, so a bad state cannot leave the learner half restored (and
        // libtorch's own check would abort the process: see GeneratorState).
        if (GeneratorState.Problem(generatorState) is { } problem)
            throw new InvalidDataException($"learner state's '{DropoutGeneratorKey}' is not a generator state: {problem}");
        if (adapterGeneratorState is not null && GeneratorState.Problem(adapterGeneratorState) is { } adapterProblem)
            throw new InvalidDataException($"learner state's '{AdapterDropoutGeneratorKey}' is not a generator state: {adapterProblem}");

        // Checked; now apply. AdamW validates its own entries before it changes anything.
        optimizer.LoadStateDict(optimizerState);
        policy.DropoutGenerator.set_state(generatorState);
        if (adapterGeneratorState is not null) adapters!.DropoutGenerator.set_state(adapterGeneratorState);
        // The learning rate and a fixed KL coefficient are configuration: the options win, so an operator's
        // change applies on restart (the stored values are a record). An adaptive coefficient is state — unless
        // the state was written under a fixed coefficient of 0 (the controller was just switched on): then the
        // controller starts from its configured coefficient.
        if (klController is AdaptiveKlController && klCoefficient > 0) klController.Restore(klCoefficient);
        if (baseline is { } s) movingAverage!.Restore(s);
        UpdateCount = policyVersion;
        counters = restored;
    }

    private static readonly JsonSerializerOptions CountersJson = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        optimizer.Dispose();
    }
}
