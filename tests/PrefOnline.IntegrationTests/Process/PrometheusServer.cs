using System.Globalization;
using System.Text.Json;
using PrefOnline.IntegrationTests.Streaming;

namespace PrefOnline.IntegrationTests.Process;

/// <summary>
/// A real Prometheus server (Debian's <c>prometheus</c> package) for one test: listening on 127.0.0.1 only, with a
/// temporary configuration and data directory, scraping one target and evaluating the given rule files at short
/// intervals. Read through its HTTP API (/api/v1/alerts, /api/v1/query, /api/v1/rules).
/// </summary>
public sealed class PrometheusServer
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };

    private PrometheusServer(ChildProcess process, Uri address)
    {
        Process = process;
        Address = address;
    }

    public ChildProcess Process { get; }

    public Uri Address { get; }

    public static async Task<PrometheusServer> StartAsync(TestWorkspace workspace, int targetPort, IReadOnlyList<string> ruleFiles, TimeSpan interval)
    {
        var binary = ExternalTools.Require("prometheus", "apt-get install -y --no-install-recommends prometheus");
        var directory = workspace.ScratchPath("prometheus");
        Directory.CreateDirectory(directory);
        var seconds = $"{interval.TotalSeconds.ToString(CultureInfo.InvariantCulture)}s";
        var config = $"""
            global:
              scrape_interval: {seconds}
              scrape_timeout: {seconds}
              evaluation_interval: {seconds}
            rule_files:
            {string.Join('\n', ruleFiles.Select(f => $"  - '{f}'"))}
            scrape_configs:
              - job_name: prefonline
                static_configs:
                  - targets: ['127.0.0.1:{targetPort}']
            """;
        var configPath = Path.Combine(directory, "prometheus.yml");
        await File.WriteAllTextAsync(configPath, config);
        File.Copy(configPath, Path.Combine(workspace.Logs, "prometheus.yml"), overwrite: true);

        var port = TestWorkspace.FreePort();
        var process = workspace.Start("prometheus", binary,
        [
            $"--config.file={configPath}",
            $"--storage.tsdb.path={Path.Combine(directory, "data")}",
            $"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=1h",
        ]);
        var server = new PrometheusServer(process, new Uri($"http://127.0.0.1:{port}/"));
        await Poll.UntilAsync(async () =>
        {
            if (process.HasExited) throw new InvalidOperationException($"prometheus exited with {process.ExitCode}:\n{process.Tail()}");
            try
            {
                return (await Http.GetAsync(new Uri(server.Address, "-/ready"))).IsSuccessStatusCode;
            }
            catch (HttpRequestException)
            {
                return false;
            }
        }, TimeSpan.FromMinutes(1), "prometheus is ready", () => process.Tail());
        workspace.Log($"prometheus {server.Address} scraping 127.0.0.1:{targetPort} every {seconds}");
        return server;
    }

    /// <summary>The <c>data</c> member of an API answer (fails on status other than success).</summary>
    public async Task<JsonElement> GetDataAsync(string pathAndQuery)
    {
        var text = await Http.GetStringAsync(new Uri(Address, pathAndQuery));
        using var document = JsonDocument.Parse(text);
        if (document.RootElement.GetProperty("status").GetString() != "success") throw new InvalidOperationException($"prometheus {pathAndQuery}: {text}");
        return document.RootElement.GetProperty("data").Clone();
    }

    /// <summary>Active alerts (pending or firing) with the given name.</summary>
    public async Task<IReadOnlyList<JsonElement>> AlertsAsync(string name)
    {
        var data = await GetDataAsync("api/v1/alerts");
        return data.GetProperty("alerts").EnumerateArray().Where(a => a.GetProperty("labels").GetProperty("alertname").GetString() == name).ToList();
    }

    /// <summary>The value of an instant query that returns one sample (the sum of the vector), or null when it returns none.</summary>
    public async Task<double?> QueryAsync(string promql)
    {
        var data = await GetDataAsync("api/v1/query?query=" + Uri.EscapeDataString(promql));
        var samples = data.GetProperty("result").EnumerateArray().ToList();
        if (samples.Count == 0) return null;
        return samples.Sum(s => double.Parse(s.GetProperty("value")[1].GetString()!, NumberStyles.Float, CultureInfo.InvariantCulture));
    }
}
