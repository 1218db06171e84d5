using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using PrefOnline.Streaming.Contracts;
using PrefOnline.Worker.Checkpoints;
using PrefOnline.Worker.Hosting;
using PrefOnline.Worker.Observability;
using PrefOnline.Worker.PolicyDistribution;
using PrefOnline.Worker.Tests.Checkpoints;
using PrefOnline.Worker.Tests.Observability;

namespace PrefOnline.Worker.Tests.PolicyDistribution;

/// <summary>
/// Issue 15 items 1 and 4 in process: the learner's policy port (<see cref="PolicyServer"/>: bearer token, rate and
/// connection limits, current lineage only) and a generator's <see cref="PolicyFetcher"/>, which trusts a policy event
/// only as far as it can verify it (uri under its learner or checkpoint directory, a hash for every file, a size cap).
/// A real checkpoint store and a real Kestrel on 127.0.0.1.
/// </summary>
public sealed class PolicyDistributionTests : IAsyncLifetime
{
    private const string Token = "tok-0123456789abcdefghij";

    private readonly TempStore store = new();
    private readonly string downloads = Directory.CreateTempSubdirectory("prefonline-downloads-").FullName;
    private readonly string tokenFile;
    private readonly IsolatedMeter meter = new();
    private readonly PrefOnlineMetrics metrics;
    private readonly PolicyServingLeases leases = new(TimeProvider.System);
    private readonly List<PolicyServer> servers = [];
    private readonly HttpClient http = new() { Timeout = TimeSpan.FromSeconds(30) };
    private CheckpointStore writer = null!;
    private Uri baseUri = null!;

    public PolicyDistributionTests()
    {
        tokenFile = Path.Combine(Path.GetTempPath(), $"prefonline-token-{Guid.NewGuid():N}");
        File.WriteAllText(tokenFile, Token + "\n");
        metrics = new PrefOnlineMetrics(meter.Create());
    }

    public async Task InitializeAsync()
    {
        writer = await store.OpenAsync(keepLast: 100);
        await writer.LoadLatestValidAsync();
        for (var seed = 1; seed <= 4; seed++) await writer.WriteAsync(Version(seed));
        baseUri = (await StartServerAsync(Options())).Address!;
    }

    [Fact]
    public async Task A_generator_fetches_and_verifies_every_listed_file_of_a_current_version_and_nothing_else()
    {
        using var fetcher = Fetcher(Options());
        var directory = await fetcher.FetchAsync(EventFor(3), CancellationToken.None);
        Assert.Equal(["policy.safetensors", "tokenizer_config.json"], Directory.GetFiles(directory).Select(f => Path.GetFileName(f)).Order(StringComparer.Ordinal).ToArray());
        Assert.Equal(await File.ReadAllBytesAsync(store.PathOf(3, "policy.safetensors")), await File.ReadAllBytesAsync(Path.Combine(directory, "policy.safetensors")));
        Assert.StartsWith(fetcher.Root, directory, StringComparison.Ordinal);
        fetcher.Discard(directory);
        Assert.Empty(Directory.GetFileSystemEntries(downloads));
    }

    [Fact]
    public async Task Without_a_token_or_with_a_wrong_one_the_policy_port_answers_401_with_a_bearer_challenge()
    {
        var url = new Uri(baseUri, "/policy/3/policy.safetensors");
        using (var none = await http.GetAsync(url))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, none.StatusCode);
            Assert.Equal("Bearer realm=\"prefonline-policy\"", none.Headers.WwwAuthenticate.ToString());
            Assert.Empty(await none.Content.ReadAsByteArrayAsync());
        }
        foreach (var wrong in new[] { "Bearer " + Token[..^1] + "X", "Bearer " + Token + "X", "Basic " + Token, "Bearer", Token, "bearer  " })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, url);
            request.Headers.TryAddWithoutValidation("Authorization", wrong);
            using var response = await http.SendAsync(request);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        }
        // Unauthenticated requests learn nothing, not even whether a path exists.
        using (var probe = await http.GetAsync(new Uri(baseUri, "/metrics"))) Assert.Equal(HttpStatusCode.Unauthorized, probe.StatusCode);
        using (var ok = await SendAsync(url)) Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        // The scheme is case-insensitive (RFC 6750).
        using var lower = new HttpRequestMessage(HttpMethod.Get, url);
        lower.Headers.TryAddWithoutValidation("Authorization", "bearer " + Token);
        using (var response = await http.SendAsync(lower)) Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Theory]
    [InlineData("/policy/3/optimizer.safetensors")]      // learner state is never served
    [InlineData("/policy/3/manifest.json")]
    [InlineData("/policy/3/..%2Fsecret")]                // no way out of the version directory
    [InlineData("/policy/3/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd")]
    [InlineData("/policy/99/policy.safetensors")]        // no such version
    [InlineData("/policy/0/policy.safetensors")]
    [InlineData("/policy/-1/policy.safetensors")]
    [InlineData("/policy/v000003/policy.safetensors")]
    [InlineData("/metrics")]                             // nothing but policy files on this port
    [InlineData("/healthz")]
    public async Task Only_policy_files_of_existing_versions_are_served(string path)
    {
        await File.WriteAllTextAsync(Path.Combine(store.Root, "secret"), "not for generators");
        using var response = await SendAsync(new Uri(baseUri, path));
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Fact]
    public async Task A_version_withdrawn_by_a_rollback_answers_410_and_the_current_lineage_is_still_served()
    {
        await writer.RollbackAsync(2, "test: users changed their mind");
        await writer.LoadLatestValidAsync();
        foreach (var withdrawn in new[] { 3, 4 })
        {
            using var response = await SendAsync(new Uri(baseUri, $"/policy/{withdrawn}/policy.safetensors"));
            Assert.Equal(HttpStatusCode.Gone, response.StatusCode);
            Assert.Contains("rollback", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        foreach (var current in new[] { 1, 2 })
        {
            using var response = await SendAsync(new Uri(baseUri, $"/policy/{current}/tokenizer_config.json"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        using var fetcher = Fetcher(Options());
        var refused = await Assert.ThrowsAsync<PolicyRefusedException>(() => fetcher.FetchAsync(EventFor(4), CancellationToken.None));
        Assert.Equal(PolicyRefusalReasons.FetchFailed, refused.Reason);
        Assert.Contains("HTTP 410", refused.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(downloads));

        // The line continues from v2: the new version is served, the abandoned ones stay withdrawn.
        var next = await writer.WriteAsync(Version(5));
        using (var response = await SendAsync(new Uri(baseUri, $"/policy/{next.Version}/policy.safetensors"))) Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using (var response = await SendAsync(new Uri(baseUri, "/policy/4/policy.safetensors"))) Assert.Equal(HttpStatusCode.Gone, response.StatusCode);
    }

    [Fact]
    public async Task Requests_beyond_a_clients_burst_answer_429_with_retry_after()
    {
        var options = Options();
        options.RequestBurst = 3;
        options.RequestsPerSecond = 1;
        var limited = (await StartServerAsync(options)).Address!;
        // The client's bucket is created at its first request and refilled one second later: within that second
        // exactly the burst passes. Requests without a token draw from the same bucket (the limit runs before the
        // token check), so guessing tokens is as slow as fetching.
        var statuses = new List<HttpStatusCode>();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using (var anonymous = await http.GetAsync(new Uri(limited, "/policy/1/policy.safetensors"))) statuses.Add(anonymous.StatusCode);
        for (var i = 0; i < 5; i++)
        {
            using var response = await SendAsync(new Uri(limited, "/policy/1/tokenizer_config.json"));
            statuses.Add(response.StatusCode);
            if (response.StatusCode == HttpStatusCode.TooManyRequests) Assert.Equal("1", response.Headers.RetryAfter?.ToString());
        }
        var elapsed = clock.Elapsed;
        Assert.Equal([HttpStatusCode.Unauthorized, HttpStatusCode.OK, HttpStatusCode.OK], statuses.Take(3));
        if (elapsed < TimeSpan.FromSeconds(0.9)) Assert.Equal(Enumerable.Repeat(HttpStatusCode.TooManyRequests, 3), statuses.Skip(3));
        else Assert.True(statuses.Count(s => s == HttpStatusCode.TooManyRequests) >= 1, $"{string.Join(", ", statuses)} in {elapsed}");
    }

    [Fact]
    public async Task Connections_beyond_the_limit_are_closed_at_once_and_admitted_again_when_one_ends()
    {
        var options = Options();
        options.MaxConnections = 2;
        var limited = (await StartServerAsync(options)).Address!;
        var held = new List<TcpClient>();
        try
        {
            for (var i = 0; i < 2; i++)
            {
                var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, limited.Port);
                held.Add(client);
            }
            await Eventually(async () =>
            {
                using var fresh = new HttpClient();
                try
                {
                    using var response = await fresh.GetAsync(new Uri(limited, "/policy/1/policy.safetensors"));
                    return false;
                }
                catch (HttpRequestException)
                {
                    return true; // closed by Kestrel: the limit counts the two idle connections
                }
            }, "a third connection refused");
        }
        finally
        {
            foreach (var client in held) client.Dispose();
        }
        await Eventually(async () =>
        {
            using var fresh = new HttpClient();
            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(limited, "/policy/1/policy.safetensors"));
                request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", Token);
                using var response = await fresh.SendAsync(request);
                return response.StatusCode == HttpStatusCode.OK;
            }
            catch (HttpRequestException)
            {
                return false;
            }
        }, "a connection admitted once the held ones closed");
    }

    [Theory]
    [InlineData("http://evil.example:{port}/policy/3/policy.safetensors")]       // another host
    [InlineData("http://127.0.0.1:1/policy/3/policy.safetensors")]                // another port
    [InlineData("https://127.0.0.1:{port}/policy/3/policy.safetensors")]          // another scheme
    [InlineData("http://user:pw@127.0.0.1:{port}/policy/3/policy.safetensors")]   // user info
    [InlineData("http://127.0.0.1:{port}/policy/3/policy.safetensors?x=1")]       // a query
    [InlineData("http://127.0.0.1:{port}/policy/3/policy.safetensors#f")]         // a fragment
    [InlineData("http://127.0.0.1:{port}/policy/3/../4/policy.safetensors")]      // dot segments
    [InlineData("http://127.0.0.1:{port}/policy/3/%2e%2e/4/policy.safetensors")]
    [InlineData("http://127.0.0.1:{port}/policy/3/optimizer.safetensors")]        // not the weights
    [InlineData("http://127.0.0.1:{port}/elsewhere/3/policy.safetensors")]
    [InlineData("http://127.0.0.1:{port}/policy/0/policy.safetensors")]
    [InlineData("http://127.0.0.1:{port}/policy/x/policy.safetensors")]
    [InlineData("ftp://127.0.0.1/policy/3/policy.safetensors")]
    [InlineData("file:///etc/passwd")]                                          // no checkpoint directory here
    public async Task A_uri_outside_the_configured_learner_is_refused_before_any_request(string template)
    {
        var uri = template.Replace("{port}", baseUri.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
        var recorder = new RecordingHandler();
        using var fetcher = new PolicyFetcher(Options(), baseUri.AbsoluteUri, checkpointDirectory: null, NullLogger.Instance, recorder);
        var legit = EventFor(3);
        var forged = PolicyEvent.Publish(3, uri, legit.Sha256, DateTimeOffset.UnixEpoch, new Dictionary<string, double>(), legit.Files);
        var refused = await Assert.ThrowsAsync<PolicyRefusedException>(() => fetcher.FetchAsync(forged, CancellationToken.None));
        Assert.Equal(PolicyRefusalReasons.UntrustedUri, refused.Reason);
        Assert.Empty(recorder.Requests);
        Assert.Empty(Directory.GetFileSystemEntries(downloads));
    }

    [Fact]
    public async Task A_generator_without_a_policy_base_url_trusts_no_http_event_and_one_without_a_volume_no_file_event()
    {
        using var fetcher = new PolicyFetcher(Options(), policyBaseUrl: null, checkpointDirectory: null, NullLogger.Instance);
        Assert.Equal(PolicyRefusalReasons.UntrustedUri, (await Assert.ThrowsAsync<PolicyRefusedException>(() => fetcher.FetchAsync(EventFor(3), CancellationToken.None))).Reason);
        Assert.Equal(PolicyRefusalReasons.UntrustedUri, (await Assert.ThrowsAsync<PolicyRefusedException>(() => fetcher.FetchAsync(FileEventFor(3), CancellationToken.None))).Reason);
    }

    [Fact]
    public async Task A_tampered_tokenizer_file_is_refused_and_nothing_is_left_behind()
    {
        var tokenizer = store.PathOf(4, "tokenizer_config.json");
        await File.WriteAllTextAsync(tokenizer, """{ "tokenizer_class": "SomethingElse" }""");
        using var fetcher = Fetcher(Options());
        var refused = await Assert.ThrowsAsync<PolicyRefusedException>(() => fetcher.FetchAsync(EventFor(4), CancellationToken.None));
        Assert.Equal(PolicyRefusalReasons.HashMismatch, refused.Reason);
        Assert.Contains("tokenizer_config.json has SHA-256", refused.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(downloads));
    }

    [Fact]
    public async Task An_event_that_does_not_hash_every_file_of_the_policy_is_refused()
    {
        using var fetcher = Fetcher(Options());
        var good = EventFor(3);
        Dictionary<string, string> Files(params (string Name, string Sha)[] files) => files.ToDictionary(f => f.Name, f => f.Sha);
        var tokenizer = good.Files["tokenizer_config.json"];
        var cases = new[]
        {
            Files(),                                                                                // an event from before 'files' existed
            Files(("policy.safetensors", good.Sha256)),                                              // no tokenizer: its files would load unverified
            Files(("tokenizer_config.json", tokenizer)),                                            // no hash for the weights
            Files(("policy.safetensors", new string('0', 64)), ("tokenizer_config.json", tokenizer)), // disagrees with sha256
            Files(("policy.safetensors", good.Sha256), ("vocab.json", tokenizer)),                  // half a BPE tokenizer
            Files(("policy.safetensors", good.Sha256), ("tokenizer_config.json", tokenizer), ("optimizer.safetensors", tokenizer)), // not a policy file
        };
        foreach (var files in cases)
        {
            var policyEvent = PolicyEvent.Publish(3, good.Uri, good.Sha256, DateTimeOffset.UnixEpoch, new Dictionary<string, double>(), files);
            var refused = await Assert.ThrowsAsync<PolicyRefusedException>(() => fetcher.FetchAsync(policyEvent, CancellationToken.None));
            Assert.Equal(PolicyRefusalReasons.IncompleteFileList, refused.Reason);
        }
        Assert.Empty(Directory.GetFileSystemEntries(downloads));
    }

    [Fact]
    public void A_hugging_face_tokenizer_json_is_a_complete_tokenizer_and_its_companion_files_are_policy_files()
    {
        const string Weights = "aa", Json = "bb";
        var files = new Dictionary<string, string> { ["policy.safetensors"] = Weights, ["tokenizer.json"] = Json };
        Assert.Null(PolicyFiles.FileListProblem(files, Weights));
        foreach (var companion in new[] { "tokenizer_config.json", "special_tokens_map.json", "generation_config.json" })
        {
            Assert.True(PolicyFiles.IsServed(companion), companion);
            Assert.Null(PolicyFiles.FileListProblem(new Dictionary<string, string>(files) { [companion] = Json }, Weights));
        }
        Assert.Contains("lists no tokenizer (tokenizer.json,", PolicyFiles.FileListProblem(new Dictionary<string, string> { ["policy.safetensors"] = Weights }, Weights));
    }

    [Fact]
    public async Task A_policy_over_the_size_cap_is_refused_whether_or_not_its_length_is_announced()
    {
        var options = Options();
        options.MaxDownloadBytes = 4000; // the weights of every test version are larger
        using (var fetcher = Fetcher(options))
        {
            var refused = await Assert.ThrowsAsync<PolicyRefusedException>(() => fetcher.FetchAsync(EventFor(3), CancellationToken.None));
            Assert.Equal(PolicyRefusalReasons.TooLarge, refused.Reason);
        }
        // A learner that streams without Content-Length is cut off at the cap.
        var streaming = await StartFakeLearnerAsync(async context =>
        {
            for (var i = 0; i < 100; i++)
            {
                await context.Response.Body.WriteAsync(new byte[1000]);
                await context.Response.Body.FlushAsync();
            }
        });
        using (var fetcher = new PolicyFetcher(options, streaming.AbsoluteUri, null, NullLogger.Instance))
        {
            var refused = await Assert.ThrowsAsync<PolicyRefusedException>(() => fetcher.FetchAsync(EventFor(3, streaming), CancellationToken.None));
            Assert.Equal(PolicyRefusalReasons.TooLarge, refused.Reason);
            Assert.Contains("more than 4000 bytes", refused.Message, StringComparison.Ordinal);
        }
        Assert.Empty(Directory.GetFileSystemEntries(downloads));
    }

    [Fact]
    public async Task A_redirect_to_elsewhere_is_not_followed()
    {
        var redirecting = await StartFakeLearnerAsync(context =>
        {
            context.Response.Redirect(new Uri(baseUri, context.Request.Path.Value).AbsoluteUri);
            return Task.CompletedTask;
        });
        using var fetcher = new PolicyFetcher(Options(), redirecting.AbsoluteUri, null, NullLogger.Instance);
        var refused = await Assert.ThrowsAsync<PolicyRefusedException>(() => fetcher.FetchAsync(EventFor(3, redirecting), CancellationToken.None));
        Assert.Equal(PolicyRefusalReasons.FetchFailed, refused.Reason);
        Assert.Contains("redirects are not followed", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Files_on_a_mounted_volume_are_copied_and_verified_the_same_way()
    {
        using var fetcher = new PolicyFetcher(Options(), policyBaseUrl: null, store.Root, NullLogger.Instance);
        var directory = await fetcher.FetchAsync(FileEventFor(2), CancellationToken.None);
        Assert.Equal(await File.ReadAllBytesAsync(store.PathOf(2, "policy.safetensors")), await File.ReadAllBytesAsync(Path.Combine(directory, "policy.safetensors")));
        fetcher.Discard(directory);

        var outside = PolicyEvent.Publish(2, new Uri(Path.Combine(downloads, "v000002", "policy.safetensors")).AbsoluteUri, EventFor(2).Sha256, DateTimeOffset.UnixEpoch, new Dictionary<string, double>(), EventFor(2).Files);
        Assert.Equal(PolicyRefusalReasons.UntrustedUri, (await Assert.ThrowsAsync<PolicyRefusedException>(() => fetcher.FetchAsync(outside, CancellationToken.None))).Reason);
        var weights = store.PathOf(2, "policy.safetensors");
        CheckpointTestKit.FlipByte(weights, 10);
        Assert.Equal(PolicyRefusalReasons.HashMismatch, (await Assert.ThrowsAsync<PolicyRefusedException>(() => fetcher.FetchAsync(FileEventFor(2), CancellationToken.None))).Reason);
    }

    [Fact]
    public async Task A_lora_version_is_announced_by_its_adapter_and_fetched_with_its_base_over_http_and_from_the_volume()
    {
        // What this build's LoRA learner writes: no merged weights; the adapter, and the base as a shared blob.
        var baseWeights = Path.Combine(store.Root, "sources", "base.safetensors");
        Directory.CreateDirectory(Path.GetDirectoryName(baseWeights)!);
        File.WriteAllBytes(baseWeights, Enumerable.Range(0, 30_000).Select(i => (byte)(i * 7)).ToArray());
        var written = await writer.WriteAsync(new CheckpointDraft()
            .AddBytes("adapter_model.safetensors", Enumerable.Range(0, 2000).Select(i => (byte)i).ToArray())
            .AddBytes("adapter_config.json", """{ "peft_type": "LORA" }"""u8)
            .ShareFile("reference.safetensors", baseWeights)
            .AddBytes("tokenizer_config.json", """{ "tokenizer_class": "PrefOnlineByteTokenizer" }"""u8)
            .AddBytes("optimizer.safetensors", [9, 9]));
        Assert.Equal("adapter_model.safetensors", PolicyFiles.WeightsNameOf(written.Contains));
        var files = written.Manifest.Files.Where(f => PolicyFiles.IsNeeded("adapter_model.safetensors", f.Key)).ToDictionary(f => f.Key, f => f.Value.Sha256);
        Assert.False(PolicyFiles.IsNeeded("policy.safetensors", "reference.safetensors")); // a full fine-tune's consumers never download the reference
        var sha = files["adapter_model.safetensors"];
        var overHttp = PolicyEvent.Publish(written.Version, new PolicyLocation(baseUri.AbsoluteUri).UriOf(written), sha, DateTimeOffset.UnixEpoch, new Dictionary<string, double>(), files);
        Assert.EndsWith($"/policy/{written.Version}/adapter_model.safetensors", overHttp.Uri, StringComparison.Ordinal);

        string[] expected = ["adapter_config.json", "adapter_model.safetensors", "reference.safetensors", "tokenizer_config.json"];
        using (var fetcher = Fetcher(Options()))
        {
            var directory = await fetcher.FetchAsync(overHttp, CancellationToken.None);
            Assert.Equal(expected, Directory.GetFiles(directory).Select(f => Path.GetFileName(f)).Order(StringComparer.Ordinal).ToArray());
            Assert.Equal(await File.ReadAllBytesAsync(baseWeights), await File.ReadAllBytesAsync(Path.Combine(directory, "reference.safetensors")));
            fetcher.Discard(directory);

            // An adapter without its base (or its config) cannot be loaded: refused before anything is fetched.
            var noBase = PolicyEvent.Publish(written.Version, overHttp.Uri, sha, DateTimeOffset.UnixEpoch, new Dictionary<string, double>(),
                files.Where(f => f.Key != "reference.safetensors").ToDictionary(f => f.Key, f => f.Value));
            var refused = await Assert.ThrowsAsync<PolicyRefusedException>(() => fetcher.FetchAsync(noBase, CancellationToken.None));
            Assert.Equal(PolicyRefusalReasons.IncompleteFileList, refused.Reason);
            Assert.Contains("lists no reference.safetensors (its base)", refused.Message, StringComparison.Ordinal);

            // The next version on the same base: the generator takes the base it kept, not the learner's (here made unavailable).
            Assert.True(File.Exists(Path.Combine(downloads, "base-" + files["reference.safetensors"])));
            var next = await writer.WriteAsync(new CheckpointDraft()
                .AddBytes("adapter_model.safetensors", Enumerable.Range(0, 2000).Select(i => (byte)(i + 1)).ToArray())
                .AddBytes("adapter_config.json", """{ "peft_type": "LORA" }"""u8)
                .ShareFile("reference.safetensors", baseWeights)
                .AddBytes("tokenizer_config.json", """{ "tokenizer_class": "PrefOnlineByteTokenizer" }"""u8));
            var nextFiles = next.Manifest.Files.Where(f => PolicyFiles.IsNeeded("adapter_model.safetensors", f.Key)).ToDictionary(f => f.Key, f => f.Value.Sha256);
            var nextEvent = PolicyEvent.Publish(next.Version, new PolicyLocation(baseUri.AbsoluteUri).UriOf(next), nextFiles["adapter_model.safetensors"], DateTimeOffset.UnixEpoch, new Dictionary<string, double>(), nextFiles);
            File.Delete(store.PathOf(next.Version, "reference.safetensors"));
            var nextDirectory = await fetcher.FetchAsync(nextEvent, CancellationToken.None);
            Assert.Equal(await File.ReadAllBytesAsync(baseWeights), await File.ReadAllBytesAsync(Path.Combine(nextDirectory, "reference.safetensors")));
            fetcher.Discard(nextDirectory);
            File.Delete(Path.Combine(downloads, "base-" + files["reference.safetensors"]));
            Assert.Equal(PolicyRefusalReasons.FetchFailed, (await Assert.ThrowsAsync<PolicyRefusedException>(() => fetcher.FetchAsync(nextEvent, CancellationToken.None))).Reason);
        }
        using (var fetcher = new PolicyFetcher(Options(), policyBaseUrl: null, store.Root, NullLogger.Instance))
        {
            var fromVolume = PolicyEvent.Publish(written.Version, new PolicyLocation(null).UriOf(written), sha, DateTimeOffset.UnixEpoch, new Dictionary<string, double>(), files);
            var directory = await fetcher.FetchAsync(fromVolume, CancellationToken.None);
            Assert.Equal(expected, Directory.GetFiles(directory).Select(f => Path.GetFileName(f)).Order(StringComparer.Ordinal).ToArray());
            fetcher.Discard(directory);
        }
    }

    [Fact]
    public async Task A_fetcher_clears_what_an_earlier_process_left_in_its_directory_and_nothing_else()
    {
        Directory.CreateDirectory(Path.Combine(downloads, "v7-0123456789ab"));
        Directory.CreateDirectory(Path.Combine(downloads, "v8-0123456789ab.partial"));
        Directory.CreateDirectory(Path.Combine(downloads, "someone-elses"));
        using var fetcher = Fetcher(Options());
        fetcher.Prepare();
        Assert.Equal(["someone-elses"], Directory.GetDirectories(downloads).Select(d => Path.GetFileName(d)).ToArray());
        await Task.CompletedTask;
    }

    [Fact]
    public void The_token_is_read_again_when_its_file_changes_and_never_shown()
    {
        var clock = new LeaseClock();
        var path = Path.Combine(downloads, "rotating-token");
        File.WriteAllText(path, "first-token-0123456789");
        var token = PolicyAccessToken.FromFile(path, clock);
        Assert.True(token.Matches("first-token-0123456789"));
        Assert.Equal("***", token.ToString());
        File.WriteAllText(path, "second-token-0123456789\n");
        Assert.True(token.Matches("first-token-0123456789")); // read again only after the refresh interval
        clock.Advance(PolicyAccessToken.RefreshInterval);
        Assert.False(token.Matches("first-token-0123456789"));
        Assert.True(token.Matches("second-token-0123456789"));
        Assert.Equal("second-token-0123456789", token.Current());
        File.WriteAllText(path, "short"); // broken: the last good token stays
        clock.Advance(PolicyAccessToken.RefreshInterval);
        Assert.True(token.Matches("second-token-0123456789"));
        Assert.False(token.Matches(null));
        Assert.False(token.Matches(""));
    }

    [Theory]
    [InlineData("short", "at least 16")]
    [InlineData("has spaces in the middle of it", "may hold only")]
    [InlineData("line\nbreak-0123456789abc", "may hold only")]
    [InlineData("quote\"0123456789abcdef", "may hold only")]
    public void A_token_that_is_short_or_could_break_the_header_is_refused(string token, string expected)
    {
        Assert.Contains(expected, PolicyAccessToken.Check(token), StringComparison.Ordinal);
        Assert.Null(PolicyAccessToken.Check("abcDEF0123456789-._~+/=="));
    }

    [Fact]
    public void TheBaseUrlMustBeAnHttpUrlAndIsCheckedAtStart()
    {
        Assert.Null(PolicyLocation.Problem(null));
        Assert.Null(PolicyLocation.Problem("http://prefonline-policy.ml.svc:8081"));
        Assert.NotNull(PolicyLocation.Problem("ftp://learner/"));
        Assert.NotNull(PolicyLocation.Problem("learner:8081"));
        var (_, problems) = ConfigurationCheck.Check(new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Worker:PolicyBaseUrl"] = "learner:8081" }).Build());
        Assert.Single(problems, p => p.StartsWith("Worker:PolicyBaseUrl must be an absolute http:// or https:// URL", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_version_served_to_generators_is_kept_by_retention_while_its_lease_lasts()
    {
        // Issue 11 item 4: a generator fetches a version's files one request after another; retention must not
        // delete the version in between.
        using var temp = new TempStore();
        using (await CheckpointTestKit.OpenWithVersionsAsync(temp, 4, keepLast: 10)) { }
        var clock = new LeaseClock();
        var leaseTable = new PolicyServingLeases(clock);
        var server = new PolicyServer(Options(), new ServedLineage(temp.Root), leaseTable, PolicyAccessToken.FromValue(Token), metrics, NullLoggerFactory.Instance, null);
        servers.Add(server);
        await server.StartAsync(CancellationToken.None);
        using (var response = await SendAsync(new Uri(server.Address!, "/policy/2/policy.safetensors")))
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        using var retained = await temp.OpenAsync(keepLast: 1);
        await retained.LoadLatestValidAsync();
        retained.ProtectFromRetention("policies served to generators", leaseTable.Active);
        Assert.Equal([1L, 3L], await retained.ApplyRetentionAsync());
        Assert.Equal([2L, 4L], temp.Reader().ListVersions().ToArray());

        clock.Advance(PolicyServingLeases.Duration);
        Assert.Equal([2L], await retained.ApplyRetentionAsync());
    }

    private sealed class LeaseClock : TimeProvider
    {
        private DateTimeOffset now = new(2025, 6, 1, 12, 0, 0, TimeSpan.Zero);

        public override DateTimeOffset GetUtcNow() => now;

        public void Advance(TimeSpan by) => now += by;
    }

    private sealed class RecordingHandler : HttpMessageHandler
    {
        public List<Uri> Requests { get; } = [];

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Requests.Add(request.RequestUri!);
            return Task.FromResult(new HttpResponseMessage(HttpStatusCode.NotFound));
        }
    }

    private PolicyDistributionOptions Options() => new()
    {
        Port = 0,
        BindAddress = "127.0.0.1",
        TokenFile = tokenFile,
        DownloadDirectory = downloads,
        MaxDownloadBytes = 1 << 20,
        DownloadTimeout = TimeSpan.FromSeconds(30),
    };

    private PolicyFetcher Fetcher(PolicyDistributionOptions options) => new(options, baseUri.AbsoluteUri, checkpointDirectory: null, NullLogger.Instance);

    private async Task<PolicyServer> StartServerAsync(PolicyDistributionOptions options)
    {
        var server = new PolicyServer(options, new ServedLineage(store.Root), leases, options.AccessToken(), metrics, NullLoggerFactory.Instance, null);
        servers.Add(server);
        await server.StartAsync(CancellationToken.None);
        return server;
    }

    /// <summary>A stand-in learner on 127.0.0.1 answering every request with <paramref name="handler"/>.</summary>
    private async Task<Uri> StartFakeLearnerAsync(RequestDelegate handler)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        app.Run(handler);
        await app.StartAsync();
        fakes.Add(app);
        return new Uri(app.Urls.First() + "/");
    }

    private readonly List<WebApplication> fakes = [];

    private async Task<HttpResponseMessage> SendAsync(Uri url)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", Token);
        return await http.SendAsync(request);
    }

    /// <summary>A version with weights, a byte tokenizer's config and learner state that must never be served.</summary>
    private static CheckpointDraft Version(int seed)
    {
        var random = new Random(seed);
        var weights = new byte[20_000 + seed];
        random.NextBytes(weights);
        return new CheckpointDraft()
            .AddBytes("policy.safetensors", weights)
            .AddBytes("tokenizer_config.json", System.Text.Encoding.UTF8.GetBytes($$"""{ "tokenizer_class": "PrefOnlineByteTokenizer", "seed": {{seed}} }"""))
            .AddBytes("optimizer.safetensors", [1, 2, 3, (byte)seed]);
    }

    private PolicyEvent EventFor(long version, Uri? learner = null)
    {
        // The hashes the store recorded when it wrote the version, as the learner's event carries them.
        using var manifest = System.Text.Json.JsonDocument.Parse(File.ReadAllText(store.PathOf(version, "manifest.json")));
        var files = manifest.RootElement.GetProperty("files").EnumerateObject().Where(f => PolicyFiles.IsServed(f.Name))
            .ToDictionary(f => f.Name, f => f.Value.GetProperty("sha256").GetString()!);
        return PolicyEvent.Publish(version, new Uri(learner ?? baseUri, $"policy/{version}/policy.safetensors").AbsoluteUri, files["policy.safetensors"],
            DateTimeOffset.UnixEpoch, new Dictionary<string, double>(), files);
    }

    private PolicyEvent FileEventFor(long version)
    {
        var http = EventFor(version);
        return PolicyEvent.Publish(version, new Uri(store.PathOf(version, "policy.safetensors")).AbsoluteUri, http.Sha256, DateTimeOffset.UnixEpoch, new Dictionary<string, double>(), http.Files);
    }

    private static async Task Eventually(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException(what);
            await Task.Delay(50);
        }
    }

    public async Task DisposeAsync()
    {
        foreach (var server in servers)
        {
            await server.StopAsync(CancellationToken.None);
            await server.DisposeAsync();
        }
        foreach (var fake in fakes) await fake.DisposeAsync();
        writer.Dispose();
        http.Dispose();
        metrics.Dispose();
        meter.Dispose();
        store.Dispose();
        File.Delete(tokenFile);
        Directory.Delete(downloads, recursive: true);
    }
}
