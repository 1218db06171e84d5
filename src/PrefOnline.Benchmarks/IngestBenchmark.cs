using System.Diagnostics;
using System.Text.Json.Nodes;
using PrefOnline.Streaming.Contracts;
using PrefOnline.Streaming.Validation;

namespace PrefOnline.Benchmarks;

/// <summary>
/// <c>prefonline bench ingest</c>: validated records/s consumed from a Kafka-protocol broker (librdkafka's
/// mock cluster on 127.0.0.1) through the worker's real intake path, against kcat's raw consume rate of
/// the same records on the same broker (goal: at least 0.5x kcat and 50,000 records/s). The reference
/// column is kcat, not PyTorch: the reference harness only launches kcat and times it from its first
/// record to its last, exactly as our side is timed (joining the group and starting kcat excluded).
/// </summary>
public sealed class IngestBenchmark : IBenchmark
{
    public string Name => "ingest";

    public string Description => "validated Kafka records/s (consumer group + intake + validation) vs kcat's raw consume (reference column = kcat)";

    public string? ReferenceSource => """
        import subprocess
        import time

        def setup_kcat(args):
            command = [args["kcat"], "-C", "-b", args["bootstrap"], "-t", args["topic"], "-o", "beginning", "-e", "-q", "-f", "%o\n"]
            expected = args["records"]

            def round():
                process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                lines = 0
                first = None
                while True:
                    chunk = process.stdout.read1(65536)
                    if not chunk:
                        break
                    if first is None:
                        first = time.perf_counter()
                    lines += chunk.count(b"\n")
                end = time.perf_counter()
                stderr = process.stderr.read().decode(errors="replace")
                if process.wait() != 0 or lines != expected:
                    raise RuntimeError("kcat read %d of %d records (exit %s): %s" % (lines, expected, process.returncode, stderr))
                return end - first
            return round
        """;

    public async Task<IReadOnlyList<BenchmarkCase>> CreateCasesAsync(BenchmarkContext context, CancellationToken cancellationToken)
    {
        var options = context.Quick
            ? new IngestMeasurementOptions { Records = 5000, Partitions = 2 }
            : new IngestMeasurementOptions();
        context.Log.WriteLine($"[bench] ingest: filling a mock-broker topic with {options.Records:N0} preference records");
        var measurement = await IngestMeasurement.PrepareAsync(options, cancellationToken);
        return [new ConsumeCase(measurement) { TargetThroughput = context.Quick ? null : IngestMeasurementReport.AbsoluteGoal }, new ValidatorCase(options)];
    }

    /// <summary>One round = one fresh consumer group reading the whole topic through the intake.</summary>
    private sealed class ConsumeCase(IngestMeasurement measurement)
        : BenchmarkCase($"consume + validate {measurement.Records:N0} x {measurement.RecordBytes} B (ref: kcat)", "records/s", measurement.Records - 1)
    {
        public override ReferenceCase? Reference => new("kcat", new JsonObject
        {
            ["kcat"] = measurement.KcatPath,
            ["bootstrap"] = measurement.BootstrapServers,
            ["topic"] = IngestMeasurement.Topic,
            ["records"] = measurement.Records,
        });

        public override async Task<double> RunRoundAsync(CancellationToken cancellationToken) =>
            (await measurement.RunOursRoundAsync(cancellationToken)).Seconds;

        public override async ValueTask DisposeAsync()
        {
            await measurement.DisposeAsync();
            await base.DisposeAsync();
        }
    }

    /// <summary>The validator alone on the same kind of records (no transport, no reference): its share of the cost.</summary>
    private sealed class ValidatorCase : BenchmarkCase
    {
        private const int RecordsPerRound = 20_000;
        private readonly IReadOnlyList<byte[]> records;
        private readonly RecordValidator validator = new(new ValidationLimits { DuplicateWindowSize = 0 }, SchemaNames.FeedbackTopic);

        public ValidatorCase(IngestMeasurementOptions options) : base("validator alone", "records/s", RecordsPerRound)
        {
            records = IngestMeasurement.BuildRecords(options.TextChars, RecordsPerRound);
        }

        public override Task<double> RunRoundAsync(CancellationToken cancellationToken)
        {
            var clock = Stopwatch.StartNew();
            foreach (var record in records)
            {
                if (!validator.Validate(record).IsValid) throw new InvalidOperationException("a benchmark record was refused");
            }
            return Task.FromResult(clock.Elapsed.TotalSeconds);
        }
    }
}
