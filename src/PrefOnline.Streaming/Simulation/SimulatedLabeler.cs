using PrefOnline.Streaming.Contracts;

namespace PrefOnline.Streaming.Simulation;

/// <summary>
/// The pure, seeded labeling rule of the simulated users (no I/O, so it is unit-testable): given one
/// prompt's rollouts and the current hidden preference, returns preference pairs and/or ratings.
/// </summary>
/// <remarks>
/// Pairs: two rollouts with different completions are drawn uniformly; the user picks a with
/// probability σ((U(a) − U(b)) / T) (Bradley–Terry / Boltzmann-rational; T = 0 picks the better one, ties
/// at random), then flips the answer with probability <see cref="SimulatedUsersOptions.FlipProbability"/>.
/// Ratings: reward = U(completion) + N(0, σ²), one per rollout. Not thread-safe (one Random).
/// </remarks>
public sealed class SimulatedLabeler
{
    private readonly SimulatedUsersOptions options;
    private readonly Random random;
    private readonly string idPrefix;
    private long nextLabel;

    /// <param name="idPrefix">Prefix of label ids (default <see cref="SimulatedUsersOptions.IdPrefix"/>); labels are <c>{prefix}-l-00000001</c>, ...</param>
    public SimulatedLabeler(SimulatedUsersOptions options, int seed, string? idPrefix = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var problems = options.Problems();
        if (problems.Count > 0) throw new ArgumentException("invalid simulated users options: " + string.Join("; ", problems), nameof(options));
        this.options = options;
        random = new Random(seed);
        this.idPrefix = idPrefix ?? options.IdPrefix;
    }

    /// <summary>Labels produced so far.</summary>
    public long LabelsProduced => nextLabel;

    /// <summary>Probability that a Bradley–Terry user with the configured temperature prefers utility <paramref name="a"/> over <paramref name="b"/> (before flips).</summary>
    public double ChoiceProbability(double a, double b)
    {
        if (options.Temperature == 0) return a > b ? 1 : a < b ? 0 : 0.5;
        return 1 / (1 + Math.Exp(-(a - b) / options.Temperature));
    }

    /// <summary>Labels for one prompt's rollouts (all with the same prompt id); empty when there is nothing to compare.</summary>
    public IReadOnlyList<StreamRecord> Label(IReadOnlyList<RolloutRecord> group, IHiddenPreference preference)
    {
        ArgumentNullException.ThrowIfNull(group);
        ArgumentNullException.ThrowIfNull(preference);
        var labels = new List<StreamRecord>();
        if (group.Count == 0) return labels;
        if (options.LabelMode is LabelMode.Pairs or LabelMode.Both) AddPairs(group, preference, labels);
        if (options.LabelMode is LabelMode.Ratings or LabelMode.Both)
        {
            foreach (var rollout in group)
            {
                var reward = preference.Utility(rollout.Prompt, rollout.Completion) + options.RatingNoiseStd * NextGaussian();
                labels.Add(new RatingRecord(NextLabelId(), rollout.Prompt, rollout.Completion, reward, rollout.Id));
            }
        }
        return labels;
    }

    private void AddPairs(IReadOnlyList<RolloutRecord> group, IHiddenPreference preference, List<StreamRecord> labels)
    {
        // Only distinct completions can form a pair (identical texts carry no preference).
        var distinct = group.DistinctBy(r => r.Completion, StringComparer.Ordinal).ToArray();
        if (distinct.Length < 2) return;
        for (var pair = 0; pair < options.PairsPerGroup; pair++)
        {
            var i = random.Next(distinct.Length);
            var j = random.Next(distinct.Length - 1);
            if (j >= i) j++;
            var a = distinct[i];
            var b = distinct[j];
            var pA = ChoiceProbability(preference.Utility(a.Prompt, a.Completion), preference.Utility(b.Prompt, b.Completion));
            var aWins = random.NextDouble() < pA;
            if (random.NextDouble() < options.FlipProbability) aWins = !aWins;
            var (chosen, rejected) = aWins ? (a, b) : (b, a);
            labels.Add(new PreferenceRecord(NextLabelId(), chosen.Prompt, chosen.Completion, rejected.Completion, new PreferenceRolloutIds(chosen.Id, rejected.Id)));
        }
    }

    private string NextLabelId() => $"{idPrefix}-l-{++nextLabel:D8}";

    private double NextGaussian()
    {
        // Box–Muller; 1 − U keeps the logarithm's argument in (0, 1].
        var u1 = 1.0 - random.NextDouble();
        var u2 = random.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }
}
