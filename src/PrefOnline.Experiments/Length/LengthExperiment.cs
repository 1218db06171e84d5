using System.Diagnostics;
using PrefOnline.Experiments.Bandit;
using PrefOnline.Learning.Models;
using PrefOnline.Learning.Models.LogProbs;
using PrefOnline.Learning.Objectives;
using PrefOnline.Learning.Randomness;
using PrefOnline.Learning.Sampling;
using PrefOnline.Learning.Tokenization;
using PrefOnline.Learning.Training;
using PrefOnline.Learning.TrainingData;
using TorchSharp;
using static TorchSharp.torch;
using PrefOnline.Learning.Optimization;

namespace PrefOnline.Experiments.Length;

/// <summary>
/// Runs the length experiment. Per seed: fit a fresh <c>tiny</c> policy onto the corpus by SFT (the
/// reference), then for every task × method × mode train a copy of it with the product's
/// <see cref="Learner"/> for the same number of updates on the same batch shape:
/// <list type="bullet">
/// <item>online — each update samples K completions for each of its prompts from the current policy
///   with the product's <see cref="PolicySampler"/>, scores them with the task's reward, and learns;</item>
/// <item>offline — each update takes the next slice of a dataset sampled once from the reference (the
///   skew task: from a long-skewed distribution), the same size as the online budget.</item>
/// </list>
/// Then the sweeps: online runs on <see cref="LengthOptions.SweepTask"/> with T ∈ the reuse sweep (same
/// samples, more steps on each batch), and with each batch size of the batch sweep (same total samples).
/// The policy is measured exactly (<see cref="Evaluate"/>), so curves carry no evaluation noise.
/// </summary>
/// <remarks>Call on the tensor thread: all work is synchronous tensor work.</remarks>
public static class LengthExperiment
{
    private static readonly DateTimeOffset Epoch = DateTimeOffset.UnixEpoch;

    public static ITokenizer Tokenizer => ByteTokenizer.Instance;

    public static LengthResults Run(LengthOptions options, Action<LengthRunResult>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var clock = Stopwatch.StartNew();
        var corpus = new LengthCorpus(options.MaxLength, options.MeanLength, options.LengthStd, options.PromptLetters);
        var runs = new List<LengthRunResult>();
        var references = new List<LengthReferenceStats>();

        for (var seed = 1; seed <= options.Seeds; seed++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var pretrainClock = Stopwatch.StartNew();
            using var fitted = Pretrain(options, corpus, seed, cancellationToken);
            var pretrainSeconds = pretrainClock.Elapsed.TotalSeconds;
            using var reference = new ReferenceModel(fitted);
            var done = new Dictionary<(LengthTask, string, LengthMode, int, int), LengthRunResult>();
            var offlineMeanLength = new Dictionary<LengthTask, double>();

            void Execute(LengthTask task, string method, LengthMode mode, int innerSteps, int prompts, IReadOnlyList<List<Rollout>>? offline)
            {
                if (done.ContainsKey((task, method, mode, innerSteps, prompts))) return;
                cancellationToken.ThrowIfCancellationRequested();
                // Online, the skew task IS the min task (same reward; on-policy samples never see the skewed
                // offline data) and runs are deterministic, so its online run is the min task's, not a rerun.
                var result = task == LengthTask.Skew && mode == LengthMode.Online && done.TryGetValue((LengthTask.Min, method, mode, innerSteps, prompts), out var min)
                    ? min with { Task = LengthTask.Skew, SameRunAs = LengthTask.Min }
                    : RunOne(options, corpus, fitted, reference, task, method, mode, seed, innerSteps, prompts, offline, cancellationToken);
                done[(task, method, mode, innerSteps, prompts)] = result;
                runs.Add(result);
                progress?.Invoke(result);
            }

            foreach (var task in options.Tasks)
            {
                IReadOnlyList<List<Rollout>>? offline = null;
                if (options.Modes.Contains(LengthMode.Offline))
                {
                    offline = OfflineDataset(options, corpus, fitted, task, seed);
                    var lengths = offline.SelectMany(g => g).Select(r => corpus.ValidLength(r.Prompt, r.CompletionTokens, Tokenizer.EndOfSequenceId))
                        .Where(l => l is not null).Select(l => (double)l!.Value).ToList();
                    offlineMeanLength[task] = lengths.Count > 0 ? lengths.Average() : double.NaN;
                }
                foreach (var method in options.Methods)
                foreach (var mode in options.Modes)
                    Execute(task, method, mode, options.InnerSteps, options.PromptsPerUpdate, offline);
            }
            foreach (var method in options.SweepMethods)
            {
                foreach (var t in options.ReuseSweep) Execute(options.SweepTask, method, LengthMode.Online, t, options.PromptsPerUpdate, null);
                foreach (var b in options.BatchSweep) Execute(options.SweepTask, method, LengthMode.Online, options.InnerSteps, b, null);
            }

            var measured = Evaluate(fitted, corpus, LengthTask.Min);
            var validLengths = measured.LengthProbabilities.Select(p => p / Math.Max(measured.ValidMass, 1e-12)).ToArray();
            var tv = 0.5 * Enumerable.Range(0, corpus.MaxLength + 1).Sum(l => Math.Abs(validLengths[l] - corpus.LengthProbabilities[l]));
            references.Add(new LengthReferenceStats(seed, measured.MeanLength, measured.ValidMass, tv,
                Enum.GetValues<LengthTask>().ToDictionary(t => t, t => Evaluate(fitted, corpus, t).Reward), offlineMeanLength, pretrainSeconds));
        }
        return new LengthResults(options, corpus, references, runs, Summarise(runs), clock.Elapsed.TotalSeconds);
    }

    // ---- the reference ---------------------------------------------------------------------------------

    /// <summary>A fresh <c>tiny</c> policy fitted onto the corpus by SFT: mean token cross-entropy of the
    /// completions (end-of-sequence included), AdamW, learning rate decayed linearly to 10 %.</summary>
    public static PolicyModel Pretrain(LengthOptions options, LengthCorpus corpus, int seed, CancellationToken cancellationToken = default)
    {
        var policy = PolicyModel.Create(Gpt2Config.Tiny(Tokenizer.VocabularySize), BanditExperiment.DeriveSeed(seed, "length-init"));
        try
        {
            using var optimizer = new AdamWOptimizer(policy.parameters(), new AdamWOptions { LearningRate = options.PretrainLearningRate, WeightDecay = 0 });
            var random = new Xoshiro256StarStar(BanditExperiment.DeriveSeed(seed, "length-corpus"));
            for (var step = 0; step < options.PretrainSteps; step++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                optimizer.LearningRate = options.PretrainLearningRate * (1 - 0.9 * step / Math.Max(1, options.PretrainSteps - 1));
                var rows = new List<(int[] Prompt, int[] Completion)>(options.PretrainBatch);
                for (var i = 0; i < options.PretrainBatch; i++)
                {
                    var prompt = corpus.Prompts[random.NextInt(corpus.Prompts.Count)];
                    var length = corpus.LengthAt(random.NextDouble());
                    rows.Add((Tokenizer.Encode(prompt), [.. Tokenizer.Encode(LengthCorpus.Completion(prompt, length)), Tokenizer.EndOfSequenceId]));
                }
                using var scope = NewDisposeScope();
                using var batch = SequenceBatch.FromTokens(rows, policy.Config.ContextLength, Tokenizer.PaddingId);
                var logProbs = SequenceLogProbs.Compute(policy, batch, LogProbReduction.Sum);
                var loss = logProbs.Values.sum().neg() / logProbs.Mask.sum();               // mean token NLL
                optimizer.ZeroGrad();
                loss.backward();
                GradientClipping.ClipGradNorm(optimizer.Parameters, 1.0);
                optimizer.Step();
                optimizer.ZeroGrad();
            }
            return policy;
        }
        catch
        {
            policy.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The exact length distribution of <paramref name="policy"/>'s valid completions and its task reward,
    /// averaged over the corpus prompts. Because a valid completion is fixed by its length, P(valid, L = l)
    /// = Π_{j&lt;l} π(c_j | prompt, c_&lt;j) · π(EOS | prompt, c_&lt;l): one forward per prompt over the longest
    /// valid completion gives every term. Everything else (wrong letters, no stop) earns reward 0.
    /// </summary>
    public static LengthEvaluation Evaluate(PolicyModel policy, LengthCorpus corpus, LengthTask task)
    {
        var wasTraining = policy.training;
        policy.eval();
        try
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var prompts = corpus.Prompts;
            var promptLength = prompts[0].Length;
            var width = promptLength + corpus.MaxLength;
            var tokens = new long[prompts.Count * width];
            for (var i = 0; i < prompts.Count; i++)
            {
                var row = Tokenizer.Encode(prompts[i] + LengthCorpus.Completion(prompts[i], corpus.MaxLength));
                for (var j = 0; j < width; j++) tokens[i * width + j] = row[j];
            }
            var logp = policy.Forward(tensor(tokens, [prompts.Count, width])).log_softmax(-1);   // (P, W, V)
            // Completion token j is predicted at position promptLength − 1 + j, j = 0..MaxLength.
            var positions = logp.slice(1, promptLength - 1, width, 1);                                      // (P, MaxLength + 1, V)
            var eos = positions.select(2, Tokenizer.EndOfSequenceId).to(ScalarType.Float64).data<double>().ToArray();   // (P·(Max+1))
            var next = positions.slice(1, 0, corpus.MaxLength, 1)
                .gather(2, tensor(tokens, [prompts.Count, width]).slice(1, promptLength, width, 1).unsqueeze(-1))
                .squeeze(-1).to(ScalarType.Float64).data<double>().ToArray();                                  // (P·Max)

            var distribution = new double[corpus.MaxLength + 1];
            for (var i = 0; i < prompts.Count; i++)
            {
                var prefix = 0.0;                                                   // log Π_{j<l} π(c_j)
                for (var l = 1; l <= corpus.MaxLength; l++)
                {
                    prefix += next[i * corpus.MaxLength + l - 1];
                    distribution[l] += Math.Exp(prefix + eos[i * (corpus.MaxLength + 1) + l]) / prompts.Count;
                }
            }
            var valid = distribution.Sum();
            var reward = Enumerable.Range(1, corpus.MaxLength).Sum(l => distribution[l] * LengthRewards.Reward(task, l, corpus));
            var meanLength = valid > 0 ? Enumerable.Range(1, corpus.MaxLength).Sum(l => l * distribution[l]) / valid : double.NaN;
            return new LengthEvaluation(reward, meanLength, valid, distribution);
        }
        finally
        {
            policy.train(wasTraining);
        }
    }

    // ---- data ----------------------------------------------------------------------------------------

    private static SamplingOptions Sampling(LengthOptions options, int samplesPerPrompt, ulong seed) => new()
    {
        SamplesPerPrompt = samplesPerPrompt,
        MaxNewTokens = options.MaxLength + 1,          // the longest valid completion and its end-of-sequence token
        Seed = seed,
        BatchSize = 128,
    };

    /// <summary>The prompts of update <paramref name="update"/>: the same for every method and mode of a seed.</summary>
    private static string[] PromptsFor(LengthCorpus corpus, int seed, int update, int count)
    {
        var random = new Xoshiro256StarStar(BanditExperiment.DeriveSeed(seed, $"length-prompts-{update}-{count}"));
        return Enumerable.Range(0, count).Select(_ => corpus.Prompts[random.NextInt(corpus.Prompts.Count)]).ToArray();
    }

    /// <summary>Scored rollouts, one group of K per prompt, with a prompt id unique to (tag, update, prompt).</summary>
    private static List<Rollout> Score(IReadOnlyList<string> prompts, IReadOnlyList<SampledCompletion> completions, int k, LengthCorpus corpus, LengthTask task, string tag, int update)
    {
        var rollouts = new List<Rollout>(completions.Count);
        foreach (var c in completions)
        {
            var prompt = prompts[c.PromptIndex];
            var reward = LengthRewards.Reward(task, corpus.ValidLength(prompt, c.Tokens, Tokenizer.EndOfSequenceId), corpus);
            rollouts.Add(new Rollout
            {
                Id = $"{tag}-{update}-{c.PromptIndex}-{c.SampleIndex}",
                PromptId = $"{tag}-{update}-{c.PromptIndex}",
                Prompt = prompt,
                Completion = c.Text,
                PromptTokens = [.. c.PromptTokens],
                CompletionTokens = [.. c.Tokens],
                BehaviourLogProbs = [.. c.PolicyLogProbs],
                Reward = reward,
                RewardSource = RewardSource.Programmatic,
                UpdateCount = c.PolicyVersion,
                GeneratedAt = Epoch,
                ScoredAt = Epoch,
            });
        }
        return rollouts;
    }

    /// <summary>
    /// The offline dataset of a seed and task: for each of the updates, K reference samples for each of
    /// its prompts. For the skew task each sample is kept with probability σ((L − mode)/s) (L = its token
    /// count less the end-of-sequence token), drawing more until every prompt has K.
    /// </summary>
    public static IReadOnlyList<List<Rollout>> OfflineDataset(LengthOptions options, LengthCorpus corpus, PolicyModel reference, LengthTask task, int seed)
    {
        var k = options.SamplesPerPrompt;
        using var sampler = PolicySampler.Create(reference, Tokenizer);
        var coin = new Xoshiro256StarStar(BanditExperiment.DeriveSeed(seed, $"length-skew-{LengthTaskNames.Name(task)}"));
        var dataset = new List<List<Rollout>>(options.Updates);
        for (var u = 0; u < options.Updates; u++)
        {
            var prompts = PromptsFor(corpus, seed, u, options.PromptsPerUpdate);
            if (task != LengthTask.Skew)
            {
                var completions = sampler.Sample(prompts, Sampling(options, k, BanditExperiment.DeriveSeed(seed, $"length-offline-{u}")));
                dataset.Add(Score(prompts, completions, k, corpus, task, "offline", u));
                continue;
            }
            // Skewed: rejection-sample each prompt's K from rounds of 4K reference samples.
            var kept = prompts.Select(_ => new List<SampledCompletion>()).ToArray();
            for (var round = 0; kept.Any(g => g.Count < k); round++)
            {
                if (round > 1000) throw new InvalidOperationException("the skew acceptance keeps (almost) no reference sample; lower --skew-sharpness");
                var candidates = sampler.Sample(prompts, Sampling(options, 4 * k, BanditExperiment.DeriveSeed(seed, $"length-offline-skew-{u}-{round}")));
                foreach (var c in candidates)
                {
                    if (kept[c.PromptIndex].Count >= k) continue;
                    var length = c.Tokens.Length - (c.Tokens.Length > 0 && c.Tokens[^1] == Tokenizer.EndOfSequenceId ? 1 : 0);
                    if (coin.NextDouble() < LengthRewards.SkewAcceptance(length, corpus, options.SkewSharpness))
                        kept[c.PromptIndex].Add(c with { SampleIndex = kept[c.PromptIndex].Count });
                }
            }
            dataset.Add(Score(prompts, kept.SelectMany(g => g).ToList(), k, corpus, task, "offline", u));
        }
        return dataset;
    }

    // ---- one run ---------------------------------------------------------------------------------------

    public static LearnerOptions LearnerOptionsFor(string method, LengthOptions options, int innerSteps, int seed) => LengthMethods.Objective(method, options) with
    {
        Pairing = LengthMethods.Pairing(method),
        InnerSteps = innerSteps,
        HumanPairsPerUpdate = 16,                          // no human pairs in this experiment; the value is unused
        LearningRate = options.LearningRate,
        WeightDecay = 0,
        MaxGradNorm = 1.0,
        KlCoefficient = options.KlCoefficient,
        KlMetric = KlEstimator.FullVocabulary,           // exact, and cheap with the byte vocabulary
        Baseline = AdvantageBaseline.LeaveOneOut,
        Seed = BanditExperiment.DeriveSeed(seed, $"length-learner-{method}"),
    };

    /// <summary>One run from the fitted reference (left untouched). The online runs of a sweep keep the
    /// main grid's sample budget: updates = budget / (prompts × K).</summary>
    public static LengthRunResult RunOne(LengthOptions options, LengthCorpus corpus, PolicyModel fitted, ReferenceModel reference, LengthTask task, string method,
        LengthMode mode, int seed, int innerSteps, int promptsPerUpdate, IReadOnlyList<List<Rollout>>? offline, CancellationToken cancellationToken = default)
    {
        var clock = Stopwatch.StartNew();
        var k = options.SamplesPerPrompt;
        var updates = mode == LengthMode.Offline ? options.Updates : (int)Math.Max(1, options.SampleBudget / ((long)promptsPerUpdate * k));
        if (mode == LengthMode.Offline && (offline is null || offline.Count < updates || promptsPerUpdate != options.PromptsPerUpdate))
            throw new ArgumentException("an offline run needs the offline dataset of the main grid's batch shape", nameof(offline));

        using var policy = fitted.Copy();
        using var learner = new Learner(policy, reference, Tokenizer, LearnerOptionsFor(method, options, innerSteps, seed));
        using var sampler = mode == LengthMode.Online ? PolicySampler.Create(policy, Tokenizer, () => learner.UpdateCount) : null;
        var curve = new List<LengthCurvePoint> { Point(0, 0) };
        int steps = 0, skipped = 0;
        long pairs = 0, samples = 0;
        double? kl = null;
        for (var u = 0; u < updates; u++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            List<Rollout> batch;
            if (sampler is not null)
            {
                var prompts = PromptsFor(corpus, seed, u, promptsPerUpdate);
                var completions = sampler.Sample(prompts, Sampling(options, k, BanditExperiment.DeriveSeed(seed, $"length-online-{u}-{promptsPerUpdate}")), cancellationToken);
                batch = Score(prompts, completions, k, corpus, task, "online", u);
            }
            else
            {
                batch = offline![u];
            }
            samples += batch.Count;
            var update = learner.Update(LearnerBatch.Of(batch), cancellationToken);
            steps += update.InnerSteps;
            skipped += update.SkippedSteps;
            pairs += update.Pairs;
            kl = update.KlToReference ?? kl;
            if ((u + 1) % options.EvaluateEvery == 0 || u == updates - 1) curve.Add(Point(u + 1, samples));
        }
        return new LengthRunResult(task, method, mode, seed, innerSteps, promptsPerUpdate, options.LearningRate, curve, updates, steps, skipped, pairs, samples, kl,
            clock.Elapsed.TotalSeconds);

        LengthCurvePoint Point(int update, long drawn)
        {
            var e = Evaluate(policy, corpus, task);
            return new LengthCurvePoint(update, drawn, e.Reward, e.MeanLength, e.ValidMass);
        }
    }

    // ---- summaries ---------------------------------------------------------------------------------------

    private static IReadOnlyList<LengthSummary> Summarise(IReadOnlyList<LengthRunResult> runs) =>
        runs.GroupBy(r => (r.Task, r.Method, r.Mode, r.InnerSteps, r.PromptsPerUpdate))
            .Select(g =>
            {
                var list = g.ToList();
                var (reward, rewardStd) = BanditExperiment.MeanAndStd(list.Select(r => r.Final.Reward).ToArray());
                var (length, lengthStd) = BanditExperiment.MeanAndStd(list.Select(r => r.Final.MeanLength).ToArray());
                var (curve, curveStd) = BanditExperiment.MeanAndStd(list.Select(r => CurveAverage(r.Curve)).ToArray());
                return new LengthSummary(g.Key.Task, g.Key.Method, g.Key.Mode, g.Key.InnerSteps, g.Key.PromptsPerUpdate, list.Count,
                    reward, rewardStd, length, lengthStd, list.Average(r => r.Final.ValidMass), curve, curveStd);
            })
            .ToList();

    /// <summary>The reward averaged over the samples drawn (trapezoids over the curve's points, divided by the
    /// samples of the last point): how fast a run learned, comparable across batch sizes whose curves are
    /// measured at different sample counts. A one-point curve is its own value.</summary>
    public static double CurveAverage(IReadOnlyList<LengthCurvePoint> curve)
    {
        ArgumentNullException.ThrowIfNull(curve);
        if (curve.Count == 0) throw new ArgumentException("an empty curve has no average", nameof(curve));
        var span = curve[^1].Samples - curve[0].Samples;
        if (curve.Count == 1 || span <= 0) return curve[^1].Reward;
        var area = 0.0;
        for (var i = 1; i < curve.Count; i++) area += 0.5 * (curve[i].Reward + curve[i - 1].Reward) * (curve[i].Samples - curve[i - 1].Samples);
        return area / span;
    }
}
