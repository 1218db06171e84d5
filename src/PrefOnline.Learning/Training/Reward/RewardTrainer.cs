using System.Text.Json;
using System.Text.Json.Nodes;
using PrefOnline.Learning.Models.LogProbs;
using PrefOnline.Learning.Models.Reward;
using PrefOnline.Learning.Randomness;
using PrefOnline.Learning.Tokenization;
using PrefOnline.Learning.TrainingData;
using PrefOnline.Tensors;
using TorchSharp;
using static TorchSharp.torch;
using TorchSharp.Modules;
using PrefOnline.Learning.Optimization;

namespace PrefOnline.Learning.Training.Reward;

/// <summary>
/// Trains the <see cref="RewardModel"/> online from incoming labels:
/// <list type="number">
/// <item><b>intake</b> — each preference pair or rating is validated, optionally scored by the current
///   model (progressive validation, <see cref="PairIntake.Agreed"/>), then routed by a hash of its id
///   (<see cref="HeldOutSplit"/>): held out (kept to measure on, never trained on) or queued;</item>
/// <item><b>train</b> — <see cref="Train"/> runs one step per <see cref="RewardTrainerOptions.BatchSize"/>
///   queued labels, each on those new labels plus <see cref="RewardTrainerOptions.ReplayPerStep"/> past
///   labels replayed from a bounded window, with its own AdamW, clipping and the same NaN/Inf guard as the
///   policy's learner. Loss = Bradley–Terry on pairs (label smoothing optional) + w·MSE of ratings on the
///   logit scale (<see cref="RewardTrainerOptions.RatingLogitRange"/>);</item>
/// <item><b>measure</b> — every <see cref="RewardTrainerOptions.EvaluateEvery"/> steps the held-out window
///   is scored: <see cref="HeldOutAccuracy"/> is what the worker exports and the guardrail holds to a floor.</item>
/// </list>
/// Runs synchronously on the caller's (tensor) thread; not thread-safe. Does not own the model.
/// State (optimizer, generator, queue, window, held-out labels, counters) exports for checkpoints.
/// </summary>
public sealed class RewardTrainer : IDisposable
{
    public const string StateTensorsFileName = "reward_optimizer.safetensors";
    public const string StateJsonFileName = "reward_trainer.json";

    private const int StateFormatVersion = 1;
    private const string OptimizerPrefix = "optimizer.";
    private const string DropoutGeneratorKey = "rng.dropout";
    private const string AdapterDropoutGeneratorKey = "rng.adapter_dropout";

    /// <summary>A label: a pair (Chosen/Rejected set) or a rating (Completion/Value set).</summary>
    private sealed record Label(string Id, string Prompt, string? Chosen, string? Rejected, string? Completion, double? Value)
    {
        public bool IsPair => Chosen is not null;
    }

    private readonly ITokenizer tokenizer;
    private readonly AdamWOptimizer optimizer;
    private readonly IReadOnlyList<Parameter> parameters;
    private readonly Queue<Label> pending = new();
    private readonly Queue<Label> window = new();
    private readonly Queue<Label> heldOutPairs = new();
    private readonly Queue<Label> heldOutRatings = new();
    private Xoshiro256StarStar random;
    private RewardTrainerCounters counters;
    private long stepsSinceEvaluation;
    private bool disposed;

    public RewardTrainer(RewardModel model, ITokenizer tokenizer, RewardTrainerOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (tokenizer.VocabularySize > model.Config.VocabularySize)
            throw new ArgumentException($"the tokenizer has {tokenizer.VocabularySize} ids but the reward model's vocabulary is {model.Config.VocabularySize}", nameof(tokenizer));
        Model = model;
        this.tokenizer = tokenizer;
        Options = options;
        random = new Xoshiro256StarStar(options.Seed);
        model.Trunk.DropoutGenerator.manual_seed(unchecked((long)options.Seed));
        model.Adapters?.DropoutGenerator.manual_seed(unchecked((long)options.Seed + 1));
        // Only what trains: with LoRA the adapters and the head, so the frozen trunk has no moments (see RewardModel.TrainableParameters).
        parameters = model.TrainableParameters();
        optimizer = new AdamWOptimizer(parameters, options.OptimizerParameters());
    }

    public RewardModel Model { get; }

    public RewardTrainerOptions Options { get; }

    public RewardTrainerCounters Counters => counters;

    /// <summary>Labels queued and not yet trained on.</summary>
    public int PendingCount => pending.Count;

    /// <summary>Trained labels kept for replay.</summary>
    public int WindowCount => window.Count;

    public int HeldOutPairCount => heldOutPairs.Count;

    public int HeldOutRatingCount => heldOutRatings.Count;

    /// <summary>The last held-out measurement (null before the first).</summary>
    public RewardHeldOutMetrics? HeldOut { get; private set; }

    /// <summary>Held-out pair accuracy for the guardrail: null until the last measurement covered at
    /// least <see cref="RewardTrainerOptions.MinHeldOutPairs"/> pairs.</summary>
    public double? HeldOutAccuracy => HeldOut is { PairAccuracy: { } a, PairCount: var n } && n >= Options.MinHeldOutPairs ? a : null;

    /// <summary>The held-out pairs currently kept, oldest first (as the model sees them).</summary>
    public IReadOnlyList<(string Prompt, string Chosen, string Rejected)> HeldOutPairs => heldOutPairs.Select(l => (l.Prompt, l.Chosen!, l.Rejected!)).ToList();

    /// <summary>Test seam: runs after backward, before the gradient guard.</summary>
    internal Action<IReadOnlyList<Tensor>>? AfterBackward { get; set; }

    // ---- intake ------------------------------------------------------------------------------------

    /// <summary>Takes preference pairs (scored together by the current model in one forward, two rows per
    /// pair, for <see cref="PairIntake.Agreed"/>), one result per pair in order.</summary>
    public IReadOnlyList<PairIntake> AddPairs(IReadOnlyList<PreferencePair> pairs)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        ArgumentNullException.ThrowIfNull(pairs);
        var results = new PairIntake?[pairs.Count];
        var accepted = new List<(int Index, Label Label)>();
        for (var i = 0; i < pairs.Count; i++)
        {
            var p = pairs[i];
            var problem = p is null ? "pair is null"
                : string.IsNullOrEmpty(p.Id) ? "pair id is empty"
                : p.Prompt is null || p.Chosen is null || p.Rejected is null ? $"pair {p.Id}: prompt, chosen and rejected text are required"
                : p.Chosen == p.Rejected ? $"pair {p.Id}: chosen and rejected are the same text"
                : null;
            if (problem is not null)
            {
                counters = counters with { Rejected = counters.Rejected + 1 };
                results[i] = new PairIntake(LabelRoute.Rejected, null, problem);
                continue;
            }
            accepted.Add((i, new Label(p!.Id, p.Prompt!, p.Chosen, p.Rejected, null, null)));
        }

        bool[]? agreed = null;
        if (accepted.Count > 0)
        {
            var rows = accepted.SelectMany(a => new[] { (a.Label.Prompt, a.Label.Chosen!), (a.Label.Prompt, a.Label.Rejected!) }).ToList();
            var scores = Model.Score(tokenizer, rows);
            agreed = Enumerable.Range(0, accepted.Count).Select(k => scores[2 * k] > scores[2 * k + 1]).ToArray();
        }

        for (var k = 0; k < accepted.Count; k++)
        {
            var (index, label) = accepted[k];
            var heldOut = HeldOutSplit.IsHeldOut(label.Id, Options.HeldOutFraction);
            if (heldOut) Enqueue(heldOutPairs, label, Options.HeldOutCapacity);
            else pending.Enqueue(label);
            bool? verdict = agreed?[k];
            counters = counters with
            {
                PairsReceived = counters.PairsReceived + 1,
                HeldOutPairs = counters.HeldOutPairs + (heldOut ? 1 : 0),
                Scored = counters.Scored + (verdict is null ? 0 : 1),
                Agreed = counters.Agreed + (verdict == true ? 1 : 0),
            };
            results[index] = new PairIntake(heldOut ? LabelRoute.HeldOut : LabelRoute.Training, verdict);
        }
        return results.Select(r => r!).ToList();
    }

    public PairIntake AddPair(PreferencePair pair) => AddPairs([pair])[0];

    /// <summary>Takes one rating; values outside the configured scale (or non-finite) are refused.</summary>
    public LabelRoute AddRating(Rating rating)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        ArgumentNullException.ThrowIfNull(rating);
        try
        {
            rating.Validate();
        }
        catch (ArgumentException)
        {
            counters = counters with { Rejected = counters.Rejected + 1 };
            return LabelRoute.Rejected;
        }
        if (rating.Value < Options.RatingMin || rating.Value > Options.RatingMax)
        {
            counters = counters with { Rejected = counters.Rejected + 1 };
            return LabelRoute.Rejected;
        }
        var label = new Label(rating.Id, rating.Prompt, null, null, rating.Completion, rating.Value);
        var heldOut = HeldOutSplit.IsHeldOut(label.Id, Options.HeldOutFraction);
        if (heldOut) Enqueue(heldOutRatings, label, Options.HeldOutCapacity);
        else pending.Enqueue(label);
        counters = counters with { RatingsReceived = counters.RatingsReceived + 1, HeldOutRatings = counters.HeldOutRatings + (heldOut ? 1 : 0) };
        return heldOut ? LabelRoute.HeldOut : LabelRoute.Training;
    }

    // ---- training ----------------------------------------------------------------------------------

    /// <summary>
    /// Runs one step for every full <see cref="RewardTrainerOptions.BatchSize"/> of queued labels (with
    /// <paramref name="flush"/>, a last smaller step for the remainder), then re-measures the held-out
    /// window if <see cref="RewardTrainerOptions.EvaluateEvery"/> steps have passed.
    /// </summary>
    public IReadOnlyList<RewardTrainingStep> Train(bool flush = false, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        var steps = new List<RewardTrainingStep>();
        while (pending.Count >= Options.BatchSize || (flush && pending.Count > 0))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var fresh = new List<Label>();
            while (fresh.Count < Options.BatchSize && pending.Count > 0) fresh.Add(pending.Dequeue());
            var replayed = DrawReplay();
            steps.Add(Step(fresh, replayed));
            foreach (var label in fresh) Enqueue(window, label, Options.WindowCapacity);
            stepsSinceEvaluation++;
        }
        if (steps.Count > 0 && (HeldOut is null || stepsSinceEvaluation >= Options.EvaluateEvery)) Evaluate();
        return steps;
    }

    /// <summary>Measures the model on every held-out label now (no grad, eval mode).</summary>
    public RewardHeldOutMetrics Evaluate()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        double? accuracy = null, margin = null, rmse = null;
        if (heldOutPairs.Count > 0)
        {
            var evaluation = Model.Evaluate(tokenizer, HeldOutPairs);
            (accuracy, margin) = (evaluation.Accuracy, evaluation.MeanMargin);
        }
        if (heldOutRatings.Count > 0)
        {
            var labels = heldOutRatings.ToList();
            var scores = Model.Score(tokenizer, labels.Select(l => (l.Prompt, l.Completion!)).ToList());
            var unitsPerLogit = (Options.RatingMax - Options.RatingMin) / Options.RatingLogitRange;
            var sumSq = labels.Select((l, i) => Math.Pow((scores[i] - Options.RatingTarget(l.Value!.Value)) * unitsPerLogit, 2)).Sum();
            rmse = Math.Sqrt(sumSq / labels.Count);
        }
        stepsSinceEvaluation = 0;
        HeldOut = new RewardHeldOutMetrics(accuracy, margin, heldOutPairs.Count, rmse, heldOutRatings.Count, counters.StepsApplied + counters.StepsSkipped);
        return HeldOut;
    }

    /// <summary>Up to ReplayPerStep window labels, uniformly without replacement (partial Fisher–Yates on indices).</summary>
    private List<Label> DrawReplay()
    {
        var take = Math.Min(Options.ReplayPerStep, window.Count);
        if (take == 0) return [];
        var items = window.ToArray();
        var indices = Enumerable.Range(0, items.Length).ToArray();
        for (var k = 0; k < take; k++)
        {
            var j = k + random.NextInt(indices.Length - k);
            (indices[k], indices[j]) = (indices[j], indices[k]);
        }
        return indices.Take(take).Select(i => items[i]).ToList();
    }

    private RewardTrainingStep Step(List<Label> fresh, List<Label> replayed)
    {
        var labels = fresh.Concat(replayed).ToList();
        var pairs = labels.Where(l => l.IsPair).ToList();
        var ratings = labels.Where(l => !l.IsPair).ToList();
        var p = pairs.Count;
        // One forward over every row: pairs' chosen (P), pairs' rejected (P), rated completions (R).
        var rows = pairs.Select(l => (l.Prompt, l.Chosen!)).Concat(pairs.Select(l => (l.Prompt, l.Rejected!)))
            .Concat(ratings.Select(l => (l.Prompt, l.Completion!))).ToList();

        var wasTraining = Model.training;
        Model.train();
        try
        {
            using var scope = NewDisposeScope();
            using var batch = SequenceBatch.FromText(tokenizer, rows, Model.Config.ContextLength);
            var rewards = Model.Forward(batch);                                              // (2P + R)
            Tensor? pairLoss = null, ratingLoss = null;
            double? accuracy = null;
            if (p > 0)
            {
                var chosen = rewards.slice(0, 0, p, 1);                                         // (P)
                var rejected = rewards.slice(0, p, 2L * p, 1);                                  // (P)
                pairLoss = RewardLoss.BradleyTerry(chosen, rejected, Options.LabelSmoothing);
                using (no_grad()) accuracy = chosen.detach().gt(rejected.detach()).to(ScalarType.Float64).mean().ToDouble();
            }
            if (ratings.Count > 0)
            {
                var targets = tensor(ratings.Select(l => (float)Options.RatingTarget(l.Value!.Value)).ToArray()).to(rewards.device);
                ratingLoss = RewardLoss.Regression(rewards.slice(0, 2L * p, rows.Count, 1), targets);
            }
            var loss = (pairLoss, ratingLoss) switch
            {
                ({ } a, { } b) => a + b * Options.RatingWeight,
                ({ } a, null) => a,
                (null, { } b) => b * Options.RatingWeight,
                _ => throw new InvalidOperationException("a step without labels"),
            };
            var lossValue = loss.ToDouble();
            double? pairValue = pairLoss?.ToDouble(), ratingValue = ratingLoss?.ToDouble();
            double norm = double.NaN;
            var applied = false;
            if (double.IsFinite(lossValue))
            {
                optimizer.ZeroGrad();
                loss.backward();
                AfterBackward?.Invoke(parameters);
                norm = GradientClipping.ClipGradNorm(parameters, Options.MaxGradNorm > 0 ? Options.MaxGradNorm : double.MaxValue);
                if (double.IsFinite(norm))
                {
                    optimizer.Step();
                    applied = true;
                }
                optimizer.ZeroGrad();
            }
            counters = counters with
            {
                StepsApplied = counters.StepsApplied + (applied ? 1 : 0),
                StepsSkipped = counters.StepsSkipped + (applied ? 0 : 1),
                LabelsTrained = counters.LabelsTrained + (applied ? fresh.Count : 0),
            };
            return new RewardTrainingStep(applied, lossValue, pairValue, ratingValue, norm, accuracy, p, ratings.Count, fresh.Count, replayed.Count);
        }
        finally
        {
            Model.train(wasTraining);
        }
    }

    private static void Enqueue(Queue<Label> queue, Label label, int capacity)
    {
        if (capacity == 0) return;
        while (queue.Count >= capacity) queue.Dequeue();
        queue.Enqueue(label);
    }

    // ---- state -------------------------------------------------------------------------------------

    /// <summary>The whole resumable state: optimizer moments and step counts and the dropout generator as
    /// tensors (<see cref="StateTensorsFileName"/>); queue, window, held-out labels, replay generator,
    /// counters and the last measurement as JSON (<see cref="StateJsonFileName"/>, bounded by the
    /// window and held-out capacities).</summary>
    public TrainingState ExportState()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        using (var scope = NewDisposeScope())
        {
            foreach (var (name, tensor) in optimizer.StateDict()) tensors[OptimizerPrefix + name] = tensor.MoveToOuterDisposeScope();
            tensors[DropoutGeneratorKey] = Model.Trunk.DropoutGenerator.get_state().MoveToOuterDisposeScope();
            if (Model.Adapters is { } adapters) tensors[AdapterDropoutGeneratorKey] = adapters.DropoutGenerator.get_state().MoveToOuterDisposeScope();
        }
        var json = new JsonObject
        {
            ["format"] = "prefonline.reward_trainer.v1",
            ["format_version"] = StateFormatVersion,
            ["parameters"] = parameters.Count,
            ["learning_rate"] = optimizer.LearningRate,
            ["random"] = new JsonArray(random.GetState().Select(w => (JsonNode)JsonValue.Create(w.ToString(System.Globalization.CultureInfo.InvariantCulture))).ToArray()),
            ["steps_since_evaluation"] = stepsSinceEvaluation,
            ["counters"] = JsonSerializer.SerializeToNode(counters, Json),
            ["held_out_metrics"] = HeldOut is null ? null : JsonSerializer.SerializeToNode(HeldOut, Json),
            ["pending"] = LabelsJson(pending),
            ["window"] = LabelsJson(window),
            ["held_out_pairs"] = LabelsJson(heldOutPairs),
            ["held_out_ratings"] = LabelsJson(heldOutRatings),
        };
        return new TrainingState(tensors, json.ToJsonString());
    }

    /// <summary>Restores a state from <see cref="ExportState"/>; checks everything first and throws
    /// <see cref="InvalidDataException"/> (changing nothing) when it is damaged or does not fit.</summary>
    public void ImportState(TrainingState state)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        ArgumentNullException.ThrowIfNull(state);
        ulong[] randomState;
        long sinceEvaluation;
        double learningRate;
        RewardTrainerCounters restored;
        RewardHeldOutMetrics? metrics;
        List<Label> newPending, newWindow, newHeldOutPairs, newHeldOutRatings;
        try
        {
            var root = JsonNode.Parse(state.Json) ?? throw new InvalidDataException("reward trainer state JSON is empty");
            var version = root["format_version"]!.GetValue<int>();
            if (version != StateFormatVersion) throw new InvalidDataException($"reward trainer state format {version} is not supported (expected {StateFormatVersion})");
            var parameterCount = root["parameters"]!.GetValue<int>();
            if (parameterCount != parameters.Count)
                throw new InvalidDataException($"reward trainer state is for {parameterCount} parameter tensors, this model has {parameters.Count}");
            learningRate = root["learning_rate"]!.GetValue<double>();
            randomState = root["random"]!.AsArray().Select(n => ulong.Parse(n!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture)).ToArray();
            sinceEvaluation = root["steps_since_evaluation"]!.GetValue<long>();
            restored = root["counters"].Deserialize<RewardTrainerCounters>(Json);
            metrics = root["held_out_metrics"]?.Deserialize<RewardHeldOutMetrics>(Json);
            newPending = ParseLabels(root["pending"]);
            newWindow = ParseLabels(root["window"]);
            newHeldOutPairs = ParseLabels(root["held_out_pairs"]);
            newHeldOutRatings = ParseLabels(root["held_out_ratings"]);
        }
        catch (Exception e) when (e is JsonException or NullReferenceException or InvalidOperationException or FormatException or OverflowException)
        {
            throw new InvalidDataException($"reward trainer state JSON is malformed or lacks a field: {e.Message}", e);
        }
        if (newHeldOutPairs.Any(l => !l.IsPair) || newHeldOutRatings.Any(l => l.IsPair))
            throw new InvalidDataException("reward trainer state mixes pairs and ratings in a held-out window");
        Xoshiro256StarStar restoredRandom;
        try
        {
            restoredRandom = Xoshiro256StarStar.FromState(randomState);
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"reward trainer state has an invalid generator state: {e.Message}", e);
        }
        if (!(learningRate >= 0) || double.IsInfinity(learningRate)) throw new InvalidDataException($"reward trainer state has an invalid learning rate {learningRate}");
        if (!state.Tensors.TryGetValue(DropoutGeneratorKey, out var generatorState))
            throw new InvalidDataException($"reward trainer state lacks '{DropoutGeneratorKey}'");
        // Checked before anything changes (libtorch's own check would abort the process: see GeneratorState).
        if (GeneratorState.Problem(generatorState) is { } problem)
            throw new InvalidDataException($"reward trainer state's '{DropoutGeneratorKey}' is not a generator state: {problem}");
        Tensor? adapterGeneratorState = null;
        if (Model.Adapters is not null)
        {
            if (!state.Tensors.TryGetValue(AdapterDropoutGeneratorKey, out adapterGeneratorState))
                throw new InvalidDataException($"reward trainer state lacks '{AdapterDropoutGeneratorKey}': it was not saved by a reward model with LoRA adapters");
            if (GeneratorState.Problem(adapterGeneratorState) is { } adapterProblem)
                throw new InvalidDataException($"reward trainer state's '{AdapterDropoutGeneratorKey}' is not a generator state: {adapterProblem}");
        }
        var optimizerState = state.Tensors.Where(kv => kv.Key.StartsWith(OptimizerPrefix, StringComparison.Ordinal))
            .ToDictionary(kv => kv.Key[OptimizerPrefix.Length..], kv => kv.Value, StringComparer.Ordinal);

        optimizer.LoadStateDict(optimizerState);              // validates before it changes anything
        Model.Trunk.DropoutGenerator.set_state(generatorState);
        if (adapterGeneratorState is not null) Model.Adapters!.DropoutGenerator.set_state(adapterGeneratorState);
        optimizer.LearningRate = learningRate;
        random = restoredRandom;
        stepsSinceEvaluation = sinceEvaluation;
        counters = restored;
        HeldOut = metrics;
        // Capacities are configuration: a state saved under larger ones keeps its most recent labels.
        Refill(pending, newPending, int.MaxValue);
        Refill(window, newWindow, Options.WindowCapacity);
        Refill(heldOutPairs, newHeldOutPairs, Options.HeldOutCapacity);
        Refill(heldOutRatings, newHeldOutRatings, Options.HeldOutCapacity);
    }

    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    private static JsonArray LabelsJson(IEnumerable<Label> labels) => new(labels.Select(l => (JsonNode)new JsonObject
    {
        ["id"] = l.Id,
        ["prompt"] = l.Prompt,
        ["chosen"] = l.Chosen,
        ["rejected"] = l.Rejected,
        ["completion"] = l.Completion,
        ["value"] = l.Value,
    }).ToArray());

    private static List<Label> ParseLabels(JsonNode? node) => node!.AsArray().Select(n =>
    {
        var label = new Label(n!["id"]!.GetValue<string>(), n["prompt"]!.GetValue<string>(), n["chosen"]?.GetValue<string>(),
            n["rejected"]?.GetValue<string>(), n["completion"]?.GetValue<string>(), n["value"]?.GetValue<double>());
        var valid = label.IsPair ? label.Rejected is not null && label.Completion is null && label.Value is null
            : label.Completion is not null && label.Value is { } v && double.IsFinite(v);
        return valid ? label : throw new FormatException($"label '{label.Id}' is neither a pair nor a rating");
    }).ToList();

    private static void Refill(Queue<Label> queue, IEnumerable<Label> labels, int capacity)
    {
        queue.Clear();
        foreach (var l in labels) Enqueue(queue, l, capacity);
    }

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        optimizer.Dispose();
    }
}
