using PrefOnline.Benchmarks;

namespace PrefOnline.IntegrationTests.Streaming;

/// <summary>
/// The ingest measurement runs end to end on a small topic (both sides read every record, the report is
/// complete). Speed itself is not asserted here: <c>prefonline bench ingest</c> measures it, interleaved with kcat.
/// </summary>
[Collection(KafkaCollection.Name)]
public sealed class IngestMeasurementTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public async Task Both_sides_read_every_record_and_the_report_is_complete()
    {
        _ = ExternalTools.Kcat;
        const int records = 5000;
        const int rounds = 1;
        var options = new IngestMeasurementOptions { Records = records, Partitions = 2, RoundTimeout = TimeSpan.FromSeconds(60) };
        await using var benchmark = await IngestMeasurement.PrepareAsync(options, CancellationToken.None);
        var report = await benchmark.RunAsync(rounds, CancellationToken.None);
        output.WriteLine(report.ToString());

        Assert.Equal(2 * rounds, report.Rounds.Count);
        Assert.All(report.Rounds, round => Assert.Equal(records - 1, round.Records)); // timed from the first record to the last
        Assert.All(report.Rounds, round => Assert.True(round.Seconds > 0));
        Assert.True(double.IsFinite(report.Ratio) && report.Ratio > 0);
        Assert.True(report.ValidatorOnlyRecordsPerSecond > 0);
        Assert.InRange(report.RecordBytes, 200, 400);
        Assert.Contains("kcat", report.ToString());
    }

    [Fact]
    public async Task A_topic_larger_than_the_mock_brokers_retention_is_refused_instead_of_measured()
    {
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            IngestMeasurement.PrepareAsync(new IngestMeasurementOptions { Records = 60_000, Partitions = 1, TextChars = 200 }, CancellationToken.None));
        Assert.Contains("retention", e.Message);
    }
}
