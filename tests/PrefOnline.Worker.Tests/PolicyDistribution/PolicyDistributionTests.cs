using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using PrefOnline.Streaming.Contracts;
using PrefOnline.Worker.Hosting;
using PrefOnline.Worker.PolicyDistribution;

namespace PrefOnline.Worker.Tests.PolicyDistribution;

/// <summary>
/// Split deployments without a shared volume: the learner serves each published policy's files over HTTP
/// and generators download them, checking the weights against the policy event's SHA-256.
/// </summary>
public sealed class PolicyDistributionTests : IAsyncLifetime
{
    private readonly string store = Directory.CreateTempSubdirectory("prefonline-store-").FullName;
    private readonly string downloads = Directory.CreateTempSubdirectory("prefonline-downloads-").FullName;
    private readonly HttpClient http = new() { Timeout = TimeSpan.FromSeconds(30) };
    private WebApplication? learner;
    private Uri baseUri = null!;

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        learner = builder.Build();
        learner.MapPolicyFiles(store);
        await learner.StartAsync();
        baseUri = new Uri(learner.Urls.First());
    }

    [Fact]
    public async Task AGeneratorDownloadsThePolicyAndItsTokenizerFilesAndNothingElse()
    {
        var weights = WriteVersion(3, seed: 1);
        var downloader = new PolicyDownloader(http, downloads);
        var path = await downloader.DownloadAsync(EventFor(3, weights), CancellationToken.None);
        Assert.Equal(weights, await File.ReadAllBytesAsync(path));
        var directory = Path.GetDirectoryName(path)!;
        Assert.Equal(["policy.safetensors", "tokenizer_config.json"], Directory.GetFiles(directory).Select(f => Path.GetFileName(f)).Order(StringComparer.Ordinal).ToArray());
    }

    [Theory]
    [InlineData("/policy/3/optimizer.safetensors")]      // learner state is never served
    [InlineData("/policy/3/replay.bin")]
    [InlineData("/policy/3/manifest.json")]
    [InlineData("/policy/3/..%2Fsecret")]                // no way out of the version directory
    [InlineData("/policy/3/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd")]
    [InlineData("/policy/99/policy.safetensors")]        // no such version
    [InlineData("/policy/0/policy.safetensors")]
    [InlineData("/policy/-1/policy.safetensors")]
    [InlineData("/policy/v000003/policy.safetensors")]
    public async Task OnlyPolicyFilesOfExistingVersionsAreServed(string path)
    {
        WriteVersion(3, seed: 2);
        await File.WriteAllTextAsync(Path.Combine(store, "secret"), "not for generators");
        using var response = await http.GetAsync(new Uri(baseUri, path));
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Fact]
    public async Task WeightsThatDoNotMatchTheEventAreRefusedAndLeaveNothingBehind()
    {
        var weights = WriteVersion(4, seed: 3);
        var lying = EventFor(4, "other"u8.ToArray());
        var error = await Assert.ThrowsAsync<PolicyDownloadException>(() => new PolicyDownloader(http, downloads).DownloadAsync(lying, CancellationToken.None));
        Assert.Contains("SHA-256", error.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(downloads));
    }

    [Fact]
    public async Task AVersionDeletedByRetentionIsAClearErrorNotACrash()
    {
        var weights = WriteVersion(5, seed: 4);
        Directory.Delete(Path.Combine(store, "v000005"), recursive: true);
        var error = await Assert.ThrowsAsync<PolicyDownloadException>(() => new PolicyDownloader(http, downloads).DownloadAsync(EventFor(5, weights), CancellationToken.None));
        Assert.Contains("HTTP 404", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnUnreachableLearnerIsAClearError()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop(); // nothing listens there now
        var policyEvent = PolicyEvent.Publish(6, $"http://127.0.0.1:{port}/policy/6/policy.safetensors", new string('0', 64), DateTimeOffset.UnixEpoch, new Dictionary<string, double>());
        var error = await Assert.ThrowsAsync<PolicyDownloadException>(() => new PolicyDownloader(http, downloads).DownloadAsync(policyEvent, CancellationToken.None));
        Assert.Contains($"127.0.0.1:{port}", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OnlyTheNewestDownloadIsKept()
    {
        var downloader = new PolicyDownloader(http, downloads);
        var first = await downloader.DownloadAsync(EventFor(7, WriteVersion(7, seed: 5)), CancellationToken.None);
        var second = await downloader.DownloadAsync(EventFor(8, WriteVersion(8, seed: 6)), CancellationToken.None);
        Assert.False(File.Exists(first));
        Assert.True(File.Exists(second));
        Assert.Single(Directory.GetDirectories(downloads));
    }

    [Fact]
    public void TheBaseUrlMustBeAnHttpUrlAndIsCheckedAtStart()
    {
        Assert.Null(PolicyLocation.Problem(null));
        Assert.Null(PolicyLocation.Problem("http://prefonline-learner-0.prefonline-learner:8080"));
        Assert.NotNull(PolicyLocation.Problem("ftp://learner/"));
        Assert.NotNull(PolicyLocation.Problem("learner:8080"));
        var (_, problems) = ConfigurationCheck.Check(new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Worker:PolicyBaseUrl"] = "learner:8080" }).Build());
        Assert.Single(problems, p => p.StartsWith("Worker:PolicyBaseUrl must be an absolute http:// or https:// URL", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_version_served_to_generators_is_kept_by_retention_while_its_lease_lasts()
    {
        // Issue 11 item 4: a generator fetches a version's files one request after another; retention must not
        // delete the version in between.
        using var temp = new Checkpoints.TempStore();
        using (await Checkpoints.CheckpointTestKit.OpenWithVersionsAsync(temp, 4, keepLast: 10)) { }
        var clock = new LeaseClock();
        var leases = new PolicyServingLeases(clock);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        await using var server = builder.Build();
        server.MapPolicyFiles(temp.Root, leases);
        await server.StartAsync();
        using (var response = await http.GetAsync(new Uri(new Uri(server.Urls.First()), "/policy/2/policy.safetensors")))
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        using var store = await temp.OpenAsync(keepLast: 1);
        await store.LoadLatestValidAsync();
        store.ProtectFromRetention("policies served to generators", leases.Active);
        Assert.Equal([1L, 3L], await store.ApplyRetentionAsync());
        Assert.Equal([2L, 4L], temp.Reader().ListVersions().ToArray());

        clock.Advance(PolicyServingLeases.Duration);
        Assert.Equal([2L], await store.ApplyRetentionAsync());
    }

    private sealed class LeaseClock : TimeProvider
    {
        private DateTimeOffset now = new(2025, 6, 1, 12, 0, 0, TimeSpan.Zero);

        public override DateTimeOffset GetUtcNow() => now;

        public void Advance(TimeSpan by) => now += by;
    }

    private byte[] WriteVersion(long version, int seed)
    {
        var directory = Path.Combine(store, $"v{version:D6}");
        Directory.CreateDirectory(directory);
        var weights = new byte[300_000];
        new Random(seed).NextBytes(weights);
        File.WriteAllBytes(Path.Combine(directory, "policy.safetensors"), weights);
        File.WriteAllText(Path.Combine(directory, "tokenizer_config.json"), """{ "tokenizer_class": "PrefOnlineByteTokenizer" }""");
        File.WriteAllBytes(Path.Combine(directory, "optimizer.safetensors"), [1, 2, 3]);
        File.WriteAllBytes(Path.Combine(directory, "replay.bin"), [4, 5, 6]);
        File.WriteAllText(Path.Combine(directory, "manifest.json"), "{}");
        return weights;
    }

    private PolicyEvent EventFor(long version, byte[] weights) =>
        PolicyEvent.Publish(version, new Uri(baseUri, $"/policy/{version}/policy.safetensors").AbsoluteUri, Convert.ToHexStringLower(SHA256.HashData(weights)), DateTimeOffset.UnixEpoch, new Dictionary<string, double>());

    public async Task DisposeAsync()
    {
        if (learner is not null) await learner.DisposeAsync();
        http.Dispose();
        Directory.Delete(store, recursive: true);
        Directory.Delete(downloads, recursive: true);
    }
}
