using PrefOnline.Streaming.Benchmarks;

namespace PrefOnline.IntegrationTests.Streaming;

/// <summary>
/// The ingest measurement runs end to end on a small topic (both sides read every record, the report is
/// complete). Speed itself is not asserted here: it is measured by the benchmark, interleaved with kcat.
/// </summary>
[Collection(KafkaCollection.Name)]
public sealed class IngestBenchmarkTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public async Task Both_sides_read_every_record_and_the_report_is_complete()
    {
        _ = ExternalTools.Kcat;
        await using var benchmark = await IngestBenchmark.PrepareAsync(new IngestBenchmarkOptions { Records = 5000, Partitions = 2, RoundTimeout = TimeSpan.FromSeconds(60) }, CancellationToken.None);
        var report = await benchmark.RunAsync(rounds: 1, CancellationToken.None);
        output.WriteLine(report.ToString());

        Assert.Equal(2, report.Rounds.Count);
        Assert.All(report.Rounds, r => Assert.Equal(4999, r.Records)); // timed from the first record to the last
        Assert.All(report.Rounds, r => Assert.True(r.Seconds > 0));
        Assert.True(double.IsFinite(report.Ratio) && report.Ratio > 0);
        Assert.True(report.ValidatorOnlyRecordsPerSecond > 0);
        Assert.InRange(report.RecordBytes, 200, 400);
        Assert.Contains("kcat", report.ToString());
    }

    [Fact]
    public async Task A_topic_larger_than_the_mock_brokers_retention_is_refused_instead_of_measured()
    {
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            IngestBenchmark.PrepareAsync(new IngestBenchmarkOptions { Records = 60_000, Partitions = 1, TextChars = 200 }, CancellationToken.None));
        Assert.Contains("retention", e.Message);
    }
}
