using System.Text.RegularExpressions;
using PrefOnline.Worker.Observability;

namespace PrefOnline.Worker.Tests.Observability;

/// <summary>
/// The alert rules and the Grafana dashboard query metrics by name; a renamed metric would silently
/// empty a panel or disarm an alert. Every prefonline_* name they use must be in the catalog.
/// </summary>
public sealed partial class MetricNameConsistencyTests
{
    private static string Root()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "PrefOnline.sln"))) return dir.FullName;
        }
        throw new InvalidOperationException("PrefOnline.sln not found");
    }

    private static readonly HashSet<string> Exposed = MetricCatalog.All
        .SelectMany(d => d.Kind == MetricKind.Histogram ? [d.Name, d.Name + "_bucket", d.Name + "_sum", d.Name + "_count"] : new[] { d.Name })
        .ToHashSet();

    public static TheoryData<string> Files => new()
    {
        "config/prometheus/prefonline-alerts.yml",
        "helm/prefonline/dashboards/prefonline-overview.json",
        "tests/PrefOnline.Deployment.Tests/promtool/prefonline-alerts.test.yml",
    };

    [Theory]
    [MemberData(nameof(Files))]
    public void EveryMetricNameUsedExistsInTheCatalog(string relativePath)
    {
        var text = File.ReadAllText(Path.Combine(Root(), relativePath));
        var used = MetricName().Matches(text).Select(m => m.Value).ToHashSet();
        Assert.NotEmpty(used);
        Assert.Empty(used.Where(name => !Exposed.Contains(name)).Order());
    }

    [Fact]
    public void TheDashboardShowsEveryWorkerMetric()
    {
        var dashboard = File.ReadAllText(Path.Combine(Root(), "helm/prefonline/dashboards/prefonline-overview.json"));
        var internalOnes = new[] { MetricCatalog.LabelRejectionsTotal.Name, MetricCatalog.CallbackErrorsTotal.Name, MetricCatalog.BuildInfo.Name };
        foreach (var definition in MetricCatalog.All.Where(d => !internalOnes.Contains(d.Name)))
            Assert.Contains(definition.Name, dashboard);
    }

    [GeneratedRegex(@"\bprefonline_[a-z_]+\b")]
    private static partial Regex MetricName();
}
