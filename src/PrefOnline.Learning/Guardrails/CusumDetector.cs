namespace PrefOnline.Learning.Guardrails;

/// <summary>
/// Two-sided, self-starting CUSUM change detector (Page 1954; self-starting form after Hawkins 1987)
/// for a shift in the mean of a stream, e.g. on-policy rewards or human ratings.
///
/// Cycle: the first <see cref="CusumOptions.WarmUp"/> observations estimate the baseline mean μ and σ
/// (Welford). Then every value x is standardised against the baseline, z = (x − μ)/(σ·√(1 + 1/n)) (the
/// √ term is the predictive correction for μ and σ being estimates from n values), and
/// <code>
///   g⁺ ← max(0, g⁺ + z − k)    (evidence the mean went up)
///   g⁻ ← max(0, g⁻ − z − k)    (evidence the mean went down),  k = δ/2
/// </code>
/// An alarm fires when g⁺ or g⁻ exceeds h. After an alarm the detector resets: statistics to zero and
/// a fresh warm-up, so the new regime becomes the next baseline and a later shift is detected again.
/// Sensitivity and measured false-alarm / delay numbers: <see cref="CusumOptions"/>.
///
/// Why CUSUM and not Page–Hinkley: Page–Hinkley measures each value against the running mean of all
/// values so far, which the shift itself drags along (a long in-control history makes it slow, a short
/// one noisy). Here the baseline only learns from values that look in control, so a shift keeps its
/// full size until the alarm, and the false-alarm rate follows from h and δ alone.
///
/// Not thread-safe: one owner feeds it (the <see cref="Guardrail"/> serialises access).
/// </summary>
public sealed class CusumDetector
{
    private readonly CusumOptions options;
    private readonly double allowance;
    private long baselineCount;
    private double baselineMean;
    private double baselineM2; // Σ (x − mean)², Welford's running sum of squares
    private double upper;
    private double lower;
    private long upperRun;
    private long lowerRun;

    public CusumDetector(CusumOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = options.Validate("Cusum");
        if (errors.Count > 0) throw new ArgumentException(string.Join(" ", errors), nameof(options));
        this.options = options;
        allowance = options.Shift / 2;
    }

    public CusumOptions Options => options;

    public DriftPhase Phase => baselineCount < options.WarmUp ? DriftPhase.WarmingUp : DriftPhase.Armed;

    public bool IsArmed => Phase == DriftPhase.Armed;

    /// <summary>max(g⁺, g⁻)/h now; 0 while warming up.</summary>
    public double Score => Math.Max(upper, lower) / options.Threshold;

    /// <summary>
    /// Consecutive armed observations for which the statistic of <paramref name="direction"/> has been
    /// above zero (the larger of the two for <see cref="DriftDirection.Both"/>). The observation where
    /// the current run began is CUSUM's estimate of where a change started: values from there on are
    /// suspect even before an alarm.
    /// </summary>
    public long RunLength(DriftDirection direction) => Math.Max(
        (direction & DriftDirection.Up) != 0 ? upperRun : 0,
        (direction & DriftDirection.Down) != 0 ? lowerRun : 0);

    /// <summary>Alarms raised since construction (resets do not clear this).</summary>
    public long AlarmCount { get; private set; }

    /// <summary>Non-finite values ignored since construction.</summary>
    public long RejectedCount { get; private set; }

    /// <summary>Finite observations since the last reset (warm-up included).</summary>
    public long ObservationsSinceReset { get; private set; }

    public DriftObservation Observe(double value)
    {
        if (!double.IsFinite(value))
        {
            RejectedCount++;
            return Snapshot(DriftDirection.None, Score, accepted: false);
        }
        ObservationsSinceReset++;
        if (!IsArmed)
        {
            AddToBaseline(value);
            return Snapshot(DriftDirection.None, 0, accepted: true);
        }

        var sigma = Math.Max(Math.Sqrt(baselineM2 / (baselineCount - 1)), options.MinStdDev);
        var z = (value - baselineMean) / (sigma * Math.Sqrt(1 + 1.0 / baselineCount));
        upper = Math.Max(0, upper + z - allowance);
        lower = Math.Max(0, lower - z - allowance);
        upperRun = upper > 0 ? upperRun + 1 : 0;
        lowerRun = lower > 0 ? lowerRun + 1 : 0;
        var score = Math.Max(upper, lower) / options.Threshold;

        var alarm = DriftDirection.None;
        if (upper > options.Threshold) alarm |= DriftDirection.Up;
        if (lower > options.Threshold) alarm |= DriftDirection.Down;
        if (alarm != DriftDirection.None)
        {
            // Both can only exceed h together for an absurd z; report the larger one.
            if (alarm == DriftDirection.Both) alarm = upper >= lower ? DriftDirection.Up : DriftDirection.Down;
            var observation = Snapshot(alarm, score, accepted: true);
            AlarmCount++;
            Reset();
            return observation with { Phase = DriftPhase.WarmingUp };
        }

        if (Math.Max(upper, lower) < options.BaselineGate * options.Threshold) AddToBaseline(value);
        return Snapshot(DriftDirection.None, score, accepted: true);
    }

    /// <summary>Forget the baseline and the statistics: the next <see cref="CusumOptions.WarmUp"/> values form a new baseline.</summary>
    public void Reset()
    {
        baselineCount = 0;
        baselineMean = 0;
        baselineM2 = 0;
        upper = 0;
        lower = 0;
        upperRun = 0;
        lowerRun = 0;
        ObservationsSinceReset = 0;
    }

    private void AddToBaseline(double value)
    {
        baselineCount++;
        var delta = value - baselineMean;
        baselineMean += delta / baselineCount;
        baselineM2 += delta * (value - baselineMean);
    }

    private DriftObservation Snapshot(DriftDirection alarm, double score, bool accepted)
    {
        var armed = IsArmed;
        return new DriftObservation(
            Phase,
            alarm,
            score,
            armed ? baselineMean : double.NaN,
            armed ? Math.Max(Math.Sqrt(baselineM2 / (baselineCount - 1)), options.MinStdDev) : double.NaN,
            accepted);
    }
}
