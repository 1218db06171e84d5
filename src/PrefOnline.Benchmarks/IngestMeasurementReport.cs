using System.Globalization;

namespace PrefOnline.Benchmarks;

/// <summary>Interleaved rounds of both sides and their medians; <see cref="Ratio"/> = ours / kcat.</summary>
public sealed record IngestMeasurementReport(IReadOnlyList<IngestRound> Rounds, double ValidatorOnlyRecordsPerSecond, int RecordBytes)
{
    /// <summary>Goal of the issue: validated records/s at least half of kcat's raw consume rate...</summary>
    public const double RatioGoal = 0.5;

    /// <summary>...and at least 50,000 records/s.</summary>
    public const double AbsoluteGoal = 50_000;

    public double OursMedian => Median(IngestMeasurement.OursSide);

    public double KcatMedian => Median(IngestMeasurement.KcatSide);

    public double Ratio => OursMedian / KcatMedian;

    public bool MeetsGoals => Ratio >= RatioGoal && OursMedian >= AbsoluteGoal;

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"ingest: validated {OursMedian:N0} records/s vs kcat raw {KcatMedian:N0} records/s = {Ratio:F2}x (goal >= {RatioGoal}x and >= {AbsoluteGoal:N0}/s: {(MeetsGoals ? "met" : "NOT met")}); validator alone {ValidatorOnlyRecordsPerSecond:N0} records/s; {RecordBytes} B/record; rounds {string.Join(", ", Rounds.Select(r => $"{r.Side} {r.RecordsPerSecond:N0}"))}");

    private double Median(string side)
    {
        var rates = Rounds.Where(r => r.Side == side).Select(r => r.RecordsPerSecond).Order().ToArray();
        if (rates.Length == 0) return double.NaN;
        return rates.Length % 2 == 1 ? rates[rates.Length / 2] : (rates[rates.Length / 2 - 1] + rates[rates.Length / 2]) / 2;
    }
}
