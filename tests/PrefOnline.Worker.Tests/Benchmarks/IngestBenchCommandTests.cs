using System.Text.Json;
using PrefOnline.Worker.Tests.Tools;

namespace PrefOnline.Worker.Tests.Benchmarks;

/// <summary><c>prefonline bench ingest</c> as a user runs it (quick sizes: a smoke run, not a measurement).</summary>
public class IngestBenchCommandTests
{
    [Fact]
    public async Task Bench_ingest_quick_measures_both_sides_against_kcat_and_writes_json()
    {
        ExternalTool.Require("kcat", "apt-get install -y kcat");
        var json = Path.Combine(Path.GetTempPath(), $"prefonline-bench-ingest-{Guid.NewGuid():N}.json");
        try
        {
            var (code, stdout, stderr) = await ExternalTool.RunAsync("dotnet",
                [Path.Combine(AppContext.BaseDirectory, "prefonline.dll"), "bench", "ingest", "--quick", "--rounds", "1", "--warmup", "0", "--json", json],
                timeout: TimeSpan.FromMinutes(3));
            Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
            Assert.Contains("consume + validate 5,000", stdout);
            Assert.Contains("(ref: kcat)", stdout);
            Assert.Contains("validator alone", stdout);
            using var doc = JsonDocument.Parse(await File.ReadAllTextAsync(json));
            var results = doc.RootElement.GetProperty("results");
            Assert.Equal(2, results.GetArrayLength());
            Assert.True(results[0].GetProperty("ratio").GetDouble() > 0, "the kcat reference was measured");
        }
        finally
        {
            File.Delete(json);
        }
    }
}
