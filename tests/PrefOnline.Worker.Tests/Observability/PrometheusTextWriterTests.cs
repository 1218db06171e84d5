using PrefOnline.Worker.Observability;

namespace PrefOnline.Worker.Tests.Observability;

public sealed class PrometheusTextWriterTests
{
    [Fact]
    public void LabelValuesEscapeBackslashQuoteAndNewline()
    {
        Assert.Equal(@"a\\b\""c\nd", PrometheusTextWriter.EscapeLabelValue("a\\b\"c\nd"));
        var text = PrometheusTextWriter.Write([
            new MetricFamilySnapshot("x_total", MetricKind.Counter, "help with \\ and\nnewline",
                [new MetricSeriesSnapshot([new("path", "C:\\dir \"q\"\nz")], 3)]),
        ]);
        Assert.Equal(
            "# HELP x_total help with \\\\ and\\nnewline\n" +
            "# TYPE x_total counter\n" +
            "x_total{path=\"C:\\\\dir \\\"q\\\"\\nz\"} 3\n", text);
    }

    [Fact]
    public void HistogramsAreCumulativeWithInfSumAndCount()
    {
        var text = PrometheusTextWriter.Write([
            new MetricFamilySnapshot("d_seconds", MetricKind.Histogram, "h",
                [new MetricSeriesSnapshot([new("stage", "a")], 0, new HistogramSnapshot([0.5, 1], [1, 3], 2.75, 4))]),
        ]);
        Assert.Equal(
            "# HELP d_seconds h\n# TYPE d_seconds histogram\n" +
            "d_seconds_bucket{stage=\"a\",le=\"0.5\"} 1\n" +
            "d_seconds_bucket{stage=\"a\",le=\"1\"} 3\n" +
            "d_seconds_bucket{stage=\"a\",le=\"+Inf\"} 4\n" +
            "d_seconds_sum{stage=\"a\"} 2.75\n" +
            "d_seconds_count{stage=\"a\"} 4\n", text);
    }

    [Theory]
    [InlineData(double.NaN, "NaN")]
    [InlineData(double.PositiveInfinity, "+Inf")]
    [InlineData(double.NegativeInfinity, "-Inf")]
    [InlineData(0.1, "0.1")]
    [InlineData(1e-5, "1E-05")]
    [InlineData(1234567890123.0, "1234567890123")]
    [InlineData(-2.5, "-2.5")]
    public void ValuesUseGoCompatibleFloatText(double value, string expected) => Assert.Equal(expected, PrometheusTextWriter.FormatValue(value));

    [Fact]
    public void MetricsAreSortedAndEmptyOnesOmittedAndDuplicatesRefused()
    {
        var text = PrometheusTextWriter.Write([
            new MetricFamilySnapshot("b", MetricKind.Gauge, "b", [new MetricSeriesSnapshot([], 1)]),
            new MetricFamilySnapshot("c", MetricKind.Gauge, "c", []),
            new MetricFamilySnapshot("a", MetricKind.Gauge, "a", [new MetricSeriesSnapshot([], 2)]),
        ]);
        Assert.Equal("# HELP a a\n# TYPE a gauge\na 2\n# HELP b b\n# TYPE b gauge\nb 1\n", text);
        Assert.Throws<InvalidOperationException>(() => PrometheusTextWriter.Write([
            new MetricFamilySnapshot("a", MetricKind.Gauge, "a", [new MetricSeriesSnapshot([], 1)]),
            new MetricFamilySnapshot("a", MetricKind.Gauge, "a", [new MetricSeriesSnapshot([], 2)]),
        ]));
    }
}
