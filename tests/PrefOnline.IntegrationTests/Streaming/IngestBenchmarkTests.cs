using PrefOnline.Streaming.Benchmarks;

namespace PrefOnline.IntegrationTests.Streaming;

/// <summary>
/// The ingest measurement runs end to end on a small topic (both sides read every record, the report is
/// complete). Speed itself is not asserted here: it is measured by the benchmark, interleaved with kcat.
/// </summary>
[Collection(KafkaCollection.Name)]
public sealed class IngestBenchmarkTests(Xunit.Abstractions.ITestOutputHelper output)
{
    /// <remarks>
    /// Until <c>prefonline bench ingest</c> exists, a full measurement runs here with
    /// <c>PREFONLINE_INGEST_RECORDS=100000 PREFONLINE_INGEST_ROUNDS=3 dotnet test tests/PrefOnline.IntegrationTests -c Release --filter "FullyQualifiedName~IngestBenchmarkTests.Both" --logger "console;verbosity=detailed"</c>
    /// (the report is in the test output).
    /// </remarks>
    [Fact]
    public async Task Both_sides_read_every_record_and_the_report_is_complete()
    {
        _ = ExternalTools.Kcat;
        var records = int.TryParse(Environment.GetEnvironmentVariable("PREFONLINE_INGEST_RECORDS"), out var n) ? n : 5000;
        var rounds = int.TryParse(Environment.GetEnvironmentVariable("PREFONLINE_INGEST_ROUNDS"), out var r) ? r : 1;
        var options = new IngestBenchmarkOptions { Records = records, Partitions = records > 20_000 ? 8 : 2, RoundTimeout = TimeSpan.FromSeconds(60) };
        await using var benchmark = await IngestBenchmark.PrepareAsync(options, CancellationToken.None);
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
            IngestBenchmark.PrepareAsync(new IngestBenchmarkOptions { Records = 60_000, Partitions = 1, TextChars = 200 }, CancellationToken.None));
        Assert.Contains("retention", e.Message);
    }
}
