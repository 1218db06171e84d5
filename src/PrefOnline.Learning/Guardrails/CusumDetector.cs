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
///
/// The warm-up after an alarm is not blind. The baseline the shift was measured against stays on guard
/// for the opposite direction until the new baseline is armed: after an upward alarm (the policy got
/// better), a drop below the previous level during the re-baselining still raises a downward alarm
/// instead of being learned as the new normal. Without it, a policy that improves in steps re-baselines
/// every few hundred ratings, and a preference change that lands in one of those warm-ups went unseen
/// (the drop became the baseline, the recovery that followed looked like one more improvement).
/// A return to the previous level is not an alarm (z ≈ 0 against it); only a shift past it is.
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
    // During a warm-up after an alarm: the baseline that alarm was measured against, watching the opposite
    // direction (upper/lower and their runs hold that one statistic until the new baseline is armed).
    private Baseline? guard;
    private DriftDirection guardDirection;

    private readonly record struct Baseline(double Mean, double StdDev, long Count)
    {
        /// <summary>x standardised against this baseline, with the predictive correction for n estimated values.</summary>
        public double Standardise(double x) => (x - Mean) / (StdDev * Math.Sqrt(1 + 1.0 / Count));
    }

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

    /// <summary>max(g⁺, g⁻)/h now; while warming up, the guard's statistic (0 on the first warm-up).</summary>
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
        if (!IsArmed) return ObserveWarmingUp(value);

        var against = CurrentBaseline();
        Accumulate(against.Standardise(value), DriftDirection.Both);
        var alarm = AlarmDirection();
        if (alarm != DriftDirection.None) return RaiseAlarm(alarm, against);

        if (Math.Max(upper, lower) < options.BaselineGate * options.Threshold) AddToBaseline(value);
        return Snapshot(DriftDirection.None, Score, accepted: true);
    }

    /// <summary>Forget the baseline, the statistics and any guard: the next <see cref="CusumOptions.WarmUp"/> values form a new baseline.</summary>
    public void Reset()
    {
        ResetStatistics();
        guard = null;
        guardDirection = DriftDirection.None;
    }

    /// <summary>
    /// A warm-up value joins the new baseline; after an alarm it is also measured against the guard (the
    /// previous baseline), in the opposite direction only. The guard retires when the new baseline is armed.
    /// </summary>
    private DriftObservation ObserveWarmingUp(double value)
    {
        AddToBaseline(value);
        if (guard is not { } previous) return Snapshot(DriftDirection.None, 0, accepted: true);

        Accumulate(previous.Standardise(value), guardDirection);
        var alarm = AlarmDirection();
        if (alarm != DriftDirection.None) return RaiseAlarm(alarm, previous);

        var score = Score;
        if (IsArmed)
        {
            // The new baseline takes over with fresh statistics (as after the first warm-up).
            upper = lower = 0;
            upperRun = lowerRun = 0;
            guard = null;
            guardDirection = DriftDirection.None;
        }
        return Snapshot(DriftDirection.None, score, accepted: true);
    }

    /// <summary>One CUSUM step on a standardised value z, for the statistics of <paramref name="directions"/>.</summary>
    private void Accumulate(double z, DriftDirection directions)
    {
        if ((directions & DriftDirection.Up) != 0)
        {
            upper = Math.Max(0, upper + z - allowance);
            upperRun = upper > 0 ? upperRun + 1 : 0;
        }
        if ((directions & DriftDirection.Down) != 0)
        {
            lower = Math.Max(0, lower - z - allowance);
            lowerRun = lower > 0 ? lowerRun + 1 : 0;
        }
    }

    private DriftDirection AlarmDirection()
    {
        var alarm = DriftDirection.None;
        if (upper > options.Threshold) alarm |= DriftDirection.Up;
        if (lower > options.Threshold) alarm |= DriftDirection.Down;
        // Both can only exceed h together for an absurd z; report the larger one.
        if (alarm == DriftDirection.Both) alarm = upper >= lower ? DriftDirection.Up : DriftDirection.Down;
        return alarm;
    }

    /// <summary>Report the alarm against the baseline it was measured on, then re-baseline with that baseline on guard.</summary>
    private DriftObservation RaiseAlarm(DriftDirection alarm, Baseline against)
    {
        var observation = new DriftObservation(DriftPhase.WarmingUp, alarm, Score, against.Mean, against.StdDev, Accepted: true);
        AlarmCount++;
        ResetStatistics();
        guard = against;
        guardDirection = alarm == DriftDirection.Up ? DriftDirection.Down : DriftDirection.Up;
        return observation;
    }

    private Baseline CurrentBaseline() =>
        new(baselineMean, Math.Max(Math.Sqrt(baselineM2 / (baselineCount - 1)), options.MinStdDev), baselineCount);

    private void ResetStatistics()
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
        var baseline = armed ? CurrentBaseline() : default;
        return new DriftObservation(Phase, alarm, score, armed ? baseline.Mean : double.NaN, armed ? baseline.StdDev : double.NaN, accepted);
    }
}
