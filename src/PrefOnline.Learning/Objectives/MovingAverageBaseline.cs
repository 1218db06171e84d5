namespace PrefOnline.Learning.Objectives;

/// <summary>
/// A running reward baseline across batches: A = r − mean, optionally divided by the running standard
/// deviation. With no <see cref="Decay"/> the mean and variance are over every reward seen so far
/// (exactly what the paper's bandit REINFORCE does with its running sums); with a decay they are
/// exponential moving averages that forget old policies' rewards. Statistics are updated with the
/// batch first, then the batch is normalised (so the very first batch is centred on itself).
/// </summary>
public sealed class MovingAverageBaseline
{
    /// <summary>Added to the standard deviation before dividing (the paper's code uses 1e-12).</summary>
    public const double Epsilon = 1e-12;

    /// <param name="decay">EMA decay in (0, 1), e.g. 0.9 (the paper's LLM code's ema_baseline); null = cumulative.</param>
    /// <param name="normalizeByStd">Divide by the running standard deviation (the paper's bandit does).</param>
    public MovingAverageBaseline(double? decay = null, bool normalizeByStd = true)
    {
        if (decay is { } d && !(d > 0 && d < 1)) throw new ArgumentOutOfRangeException(nameof(decay), d, "the decay must be in (0, 1), or null for a cumulative average");
        Decay = decay;
        NormalizeByStd = normalizeByStd;
    }

    public double? Decay { get; }

    public bool NormalizeByStd { get; }

    /// <summary>Running state (for checkpoints): rewards seen, their mean and variance (population).</summary>
    public MovingAverageState State { get; private set; }

    /// <summary>Folds the batch into the running statistics, then returns its advantages.</summary>
    public double[] Advantages(IReadOnlyList<double> rewards)
    {
        ArgumentNullException.ThrowIfNull(rewards);
        foreach (var r in rewards)
            if (!double.IsFinite(r)) throw new ArgumentException($"reward {r} is not finite", nameof(rewards));
        Observe(rewards);
        var (_, mean, variance) = State;
        var scale = NormalizeByStd ? Math.Sqrt(variance) + Epsilon : 1.0;
        var advantages = new double[rewards.Count];
        for (var i = 0; i < advantages.Length; i++) advantages[i] = (rewards[i] - mean) / scale;
        return advantages;
    }

    public void Restore(MovingAverageState state)
    {
        if (state.Count < 0 || !double.IsFinite(state.Mean) || !(state.Variance >= 0) || double.IsInfinity(state.Variance))
            throw new ArgumentException($"invalid baseline state {state}", nameof(state));
        State = state;
    }

    private void Observe(IReadOnlyList<double> rewards)
    {
        if (rewards.Count == 0) return;
        var (count, mean, variance) = State;
        if (Decay is { } decay)
        {
            foreach (var r in rewards)
            {
                if (count == 0)
                {
                    (mean, variance) = (r, 0);
                }
                else
                {
                    // West's exponentially weighted mean and variance.
                    var delta = r - mean;
                    mean += (1 - decay) * delta;
                    variance = decay * (variance + (1 - decay) * delta * delta);
                }
                count++;
            }
        }
        else
        {
            // Chan et al.'s parallel merge of (count, mean, M2) with the batch's: exact and stable.
            double batchMean = 0;
            foreach (var r in rewards) batchMean += r;
            batchMean /= rewards.Count;
            double batchM2 = 0;
            foreach (var r in rewards) batchM2 += (r - batchMean) * (r - batchMean);
            var total = count + rewards.Count;
            var delta = batchMean - mean;
            var m2 = variance * count + batchM2 + delta * delta * count * rewards.Count / total;
            mean += delta * rewards.Count / total;
            variance = m2 / total;
            count = total;
        }
        State = new MovingAverageState(count, mean, variance);
    }
}
