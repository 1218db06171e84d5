using System.Net;
using System.Net.Sockets;
using PrefOnline.Worker.Serving;

namespace PrefOnline.Worker.Tests.Serving;

/// <summary>
/// The hand-off to vLLM and SGLang against an in-test server that records the requests as those servers' admin APIs
/// receive them: exact paths, JSON fields, bearer token; retries of transient failures, no retries of refusals, a newer
/// version superseding the retries of an older one, rollbacks, idempotence, and what metrics and /readyz say.
/// </summary>
public sealed class ServingHandOffTests(ServingTestKit kit) : IClassFixture<ServingTestKit>
{
    private const string Token = "serving-token-0123456789";

    [Fact]
    public async Task Sglang_reloads_full_weights_with_the_documented_request_and_a_bearer_token()
    {
        await using var server = await FakeServingServer.StartAsync();
        var tokenFile = Path.Combine(kit.NewDirectory("token"), "token");
        await File.WriteAllTextAsync(tokenFile, Token + "\n");
        var export = kit.NewDirectory("export");
        using var metrics = new RecordedMetrics();
        await using var handOff = await TestHandOff.StartAsync(TestHandOff.Options(new ServingPublisherOptions
        {
            Name = "sglang-a", Type = ServingPublisherType.Sglang, BaseUrl = server.Address.ToString(), Directory = export,
            ServerPath = "/models/prefonline", TokenFile = tokenFile, AbortAllRequests = true,
        }), metrics);

        handOff.Announce(kit.Full(3));
        await TestHandOff.WaitUntilAsync(() => metrics.Count("sglang-a", "success") == 1, "sglang hand-off of v3");

        var request = Assert.Single(server.Requests);
        Assert.Equal("POST", request.Method);
        Assert.Equal("/update_weights_from_disk", request.Path);
        Assert.Equal("Bearer " + Token, request.Authorization);
        Assert.StartsWith("application/json", request.ContentType, StringComparison.Ordinal);
        Assert.Equal("/models/prefonline/v000003", request.Field("model_path"));
        Assert.Equal("true", request.Field("abort_all_requests"));
        Assert.Equal("3", request.Field("weight_version"));
        Assert.Equal(["abort_all_requests", "model_path", "weight_version"], request.Body.Select(p => p.Key).Order(StringComparer.Ordinal));
        // The server reads what the path names: the version's Hugging Face directory on the shared volume.
        Assert.True(File.Exists(Path.Combine(export, "v000003", "model.safetensors")));
        Assert.Equal(3, metrics.Version("sglang-a"));
        Assert.Equal(1, metrics.Durations("sglang-a"));
        var check = await Assert.Single(handOff.Checks).CheckAsync(CancellationToken.None);
        Assert.True(check.Healthy, check.Reason);
        Assert.Equal("serving-sglang-a", check.Name);
        Assert.Contains("v3 handed off", check.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sglang_is_retried_after_connection_refused_and_503_then_succeeds()
    {
        var port = FreePort();
        using var metrics = new RecordedMetrics();
        // The most attempts the section allows, 100 ms apart at most: the retries must outlast starting the stand-in
        // server on a loaded machine (with the kit's 4 attempts the version could fail before anything listened).
        var options = TestHandOff.Options(new ServingPublisherOptions
        {
            Type = ServingPublisherType.Sglang, BaseUrl = $"http://127.0.0.1:{port}", Directory = kit.NewDirectory("export"),
        });
        options.MaxAttempts = 100;
        await using var handOff = await TestHandOff.StartAsync(options, metrics);

        handOff.Announce(kit.Full(1));
        // Nothing listens yet: connection refused, retried.
        await TestHandOff.WaitUntilAsync(() => metrics.Count("sglang", "retry") >= 1, "a retry after connection refused");
        var answered = 0;
        await using var server = await FakeServingServer.StartAsync(port);
        server.Respond = request => Interlocked.Increment(ref answered) == 1 ? (503, """{"detail": "busy"}""") : FakeServingServer.Success(request);
        await TestHandOff.WaitUntilAsync(() => metrics.Count("sglang", "success") == 1, "success after the server came up");

        Assert.Equal(2, server.Requests.Count); // 503, then 200
        Assert.All(server.Requests, r => Assert.Equal("/update_weights_from_disk", r.Path));
        Assert.True(metrics.Count("sglang", "retry") >= 2);
        Assert.Equal(0, metrics.Count("sglang", "failed"));
        Assert.Equal(1, metrics.Version("sglang"));
    }

    [Fact]
    public async Task A_refusal_is_not_retried_is_counted_and_readyz_says_why_until_a_later_version_succeeds()
    {
        await using var server = await FakeServingServer.StartAsync();
        server.Respond = _ => (400, """{"success": false, "message": "Failed to get weights iterator: model path not found", "num_paused_requests": 0}""");
        using var metrics = new RecordedMetrics();
        await using var handOff = await TestHandOff.StartAsync(TestHandOff.Options(new ServingPublisherOptions
        {
            Type = ServingPublisherType.Sglang, BaseUrl = server.Address.ToString(), Directory = kit.NewDirectory("export"),
        }), metrics);

        handOff.Announce(kit.Full(1));
        await TestHandOff.WaitUntilAsync(() => metrics.Count("sglang", "rejected") == 1, "the 400 counted as rejected");
        Assert.Single(server.Requests);
        Assert.Equal(0, metrics.Count("sglang", "retry"));
        var check = await handOff.Checks[0].CheckAsync(CancellationToken.None);
        Assert.False(check.Healthy);
        Assert.Contains("v1 not handed off", check.Reason, StringComparison.Ordinal);
        Assert.Contains("400", check.Reason, StringComparison.Ordinal);
        Assert.Contains("model path not found", check.Reason, StringComparison.Ordinal);

        // A 200 with success=false (some SGLang builds) is a refusal too.
        server.Respond = _ => (200, """{"success": false, "message": "shape mismatch"}""");
        handOff.Announce(kit.Full(2));
        await TestHandOff.WaitUntilAsync(() => metrics.Count("sglang", "rejected") == 2, "success=false counted as rejected");
        Assert.Contains("shape mismatch", (await handOff.Checks[0].CheckAsync(CancellationToken.None)).Reason, StringComparison.Ordinal);

        server.Respond = FakeServingServer.Success;
        handOff.Announce(kit.Full(3));
        await TestHandOff.WaitUntilAsync(() => metrics.Count("sglang", "success") == 1, "v3 handed off");
        var healed = await handOff.Checks[0].CheckAsync(CancellationToken.None);
        Assert.True(healed.Healthy, healed.Reason);
        Assert.Equal(3, server.Requests.Count);
    }

    [Fact]
    public async Task Every_attempt_failing_ends_in_failed_after_MaxAttempts()
    {
        await using var server = await FakeServingServer.StartAsync();
        server.Respond = _ => (502, "bad gateway");
        using var metrics = new RecordedMetrics();
        var options = TestHandOff.Options(new ServingPublisherOptions { Type = ServingPublisherType.Sglang, BaseUrl = server.Address.ToString(), Directory = kit.NewDirectory("export") });
        options.FailReadinessOnError = false;
        await using var handOff = await TestHandOff.StartAsync(options, metrics);

        handOff.Announce(kit.Full(1));
        await TestHandOff.WaitUntilAsync(() => metrics.Count("sglang", "failed") == 1, "gave up");
        Assert.Equal(options.MaxAttempts, server.Requests.Count);
        Assert.Equal(options.MaxAttempts - 1, metrics.Count("sglang", "retry"));
        var check = await handOff.Checks[0].CheckAsync(CancellationToken.None);
        Assert.True(check.Healthy, "FailReadinessOnError=false only reports");
        Assert.Contains("gave up after 4 attempt(s)", check.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_newer_version_supersedes_the_pending_retries_of_an_older_one()
    {
        await using var server = await FakeServingServer.StartAsync();
        server.Respond = request => request.Field("weight_version") == "1" ? (503, "loading") : FakeServingServer.Success(request);
        using var metrics = new RecordedMetrics();
        var options = TestHandOff.Options(new ServingPublisherOptions { Type = ServingPublisherType.Sglang, BaseUrl = server.Address.ToString(), Directory = kit.NewDirectory("export") });
        options.MaxAttempts = 100;
        // Retries about 1 s and then about 2 s apart (Polly's jitter): the test must announce v2 within the second gap
        // after seeing the first retry for v1 to have at most 3 attempts; with 200 ms / 400 ms a descheduled test thread
        // on a loaded machine could miss that.
        options.RetryBaseDelay = TimeSpan.FromSeconds(1);
        options.RetryMaxDelay = TimeSpan.FromSeconds(2);
        await using var handOff = await TestHandOff.StartAsync(options, metrics);

        handOff.Announce(kit.Full(1));
        await TestHandOff.WaitUntilAsync(() => metrics.Count("sglang", "retry") >= 1, "v1 being retried");
        handOff.Announce(kit.Full(2));
        await TestHandOff.WaitUntilAsync(() => metrics.Count("sglang", "success") == 1, "v2 handed off");

        Assert.Equal(1, metrics.Count("sglang", "superseded"));
        Assert.Equal(0, metrics.Count("sglang", "failed"));
        Assert.Equal(2, metrics.Version("sglang"));
        var v1Attempts = server.Requests.Count(r => r.Field("weight_version") == "1");
        Assert.InRange(v1Attempts, 1, 3);
        Assert.Equal("2", server.Requests[^1].Field("weight_version"));
        // Nothing of v1 follows once v2 is there.
        await Task.Delay(options.RetryMaxDelay * 2);
        Assert.Equal(v1Attempts, server.Requests.Count(r => r.Field("weight_version") == "1"));
    }

    [Fact]
    public async Task A_rollback_hands_the_older_version_off_again_and_repeating_a_version_is_a_no_op()
    {
        await using var server = await FakeServingServer.StartAsync();
        using var metrics = new RecordedMetrics();
        var export = kit.NewDirectory("export");
        await using var handOff = await TestHandOff.StartAsync(TestHandOff.Options(
            new ServingPublisherOptions { Type = ServingPublisherType.Sglang, BaseUrl = server.Address.ToString(), Directory = export },
            new ServingPublisherOptions { Name = "volume", Type = ServingPublisherType.Directory, Directory = export }), metrics);

        handOff.Announce(kit.Full(2));
        await TestHandOff.WaitUntilAsync(() => metrics.Count("sglang", "success") == 1 && metrics.Count("volume", "success") == 1, "v2");
        handOff.Announce(kit.Full(2)); // the learner restarts and announces what it loads: nothing to do
        await TestHandOff.WaitUntilAsync(() => metrics.Count("sglang", "unchanged") == 1 && metrics.Count("volume", "unchanged") == 1, "v2 again");
        handOff.Announce(kit.Full(3));
        await TestHandOff.WaitUntilAsync(() => metrics.Count("sglang", "success") == 2 && metrics.Count("volume", "success") == 2, "v3");
        handOff.Announce(kit.Full(2, rolledBackFrom: 3));
        await TestHandOff.WaitUntilAsync(() => metrics.Count("sglang", "success") == 3 && metrics.Count("volume", "success") == 3, "rollback to v2");

        Assert.Equal(["2", "3", "2"], server.Requests.Select(r => r.Field("weight_version")));
        Assert.Equal(2, metrics.Version("sglang"));
        Assert.Equal(2, metrics.Version("volume"));
        Assert.Equal("v000002", new FileInfo(Path.Combine(export, "current")).LinkTarget);
        Assert.Contains("\"kind_of_event\": \"rollback\"", await File.ReadAllTextAsync(Path.Combine(export, "current.json")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Vllm_unloads_then_loads_each_adapter_under_one_stable_name()
    {
        await using var server = await FakeServingServer.StartAsync();
        var unloads = 0;
        // vLLM answers 404 NotFoundError to unloading a name it has not loaded (the first version, a restarted server).
        server.Respond = request => request.Path == "/v1/unload_lora_adapter" && Interlocked.Increment(ref unloads) == 1
            ? (404, """{"object": "error", "message": "The lora adapter 'policy' cannot be found.", "type": "NotFoundError", "param": null, "code": 404}""")
            : FakeServingServer.Success(request);
        using var metrics = new RecordedMetrics();
        var variable = "PREFONLINE_TEST_VLLM_KEY_" + Guid.NewGuid().ToString("N");
        Environment.SetEnvironmentVariable(variable, Token);
        await using var handOff = await TestHandOff.StartAsync(TestHandOff.Options(new ServingPublisherOptions
        {
            Type = ServingPublisherType.Vllm, BaseUrl = server.Address + "/", Directory = kit.NewDirectory("export"), ServerPath = "/adapters/",
            AdapterName = "policy", TokenVariable = variable,
        }), metrics);

        handOff.Announce(kit.AdapterVersion(5));
        await TestHandOff.WaitUntilAsync(() => metrics.Count("vllm", "success") == 1, "v5");
        handOff.Announce(kit.AdapterVersion(6));
        await TestHandOff.WaitUntilAsync(() => metrics.Count("vllm", "success") == 2, "v6");

        Assert.Equal(
            ["/v1/unload_lora_adapter", "/v1/load_lora_adapter", "/v1/unload_lora_adapter", "/v1/load_lora_adapter"],
            server.Requests.Select(r => r.Path));
        Assert.All(server.Requests, r => Assert.Equal("Bearer " + Token, r.Authorization));
        Assert.All(server.Requests.Where(r => r.Path.Contains("unload", StringComparison.Ordinal)), r => Assert.Equal("""{"lora_name":"policy"}""", r.Body.ToJsonString()));
        Assert.Equal("""{"lora_name":"policy","lora_path":"/adapters/v000005"}""", server.Requests[1].Body.ToJsonString());
        Assert.Equal("""{"lora_name":"policy","lora_path":"/adapters/v000006"}""", server.Requests[3].Body.ToJsonString());
        Environment.SetEnvironmentVariable(variable, null);
    }

    [Fact]
    public async Task Vllm_with_LoadInplace_replaces_the_adapter_in_one_request_and_refuses_full_weights()
    {
        await using var server = await FakeServingServer.StartAsync();
        using var metrics = new RecordedMetrics();
        var export = kit.NewDirectory("export");
        await using var handOff = await TestHandOff.StartAsync(TestHandOff.Options(new ServingPublisherOptions
        {
            Type = ServingPublisherType.Vllm, BaseUrl = server.Address.ToString(), Directory = export, LoadInplace = true,
        }), metrics);

        handOff.Announce(kit.AdapterVersion(1));
        await TestHandOff.WaitUntilAsync(() => metrics.Count("vllm", "success") == 1, "v1");
        var request = Assert.Single(server.Requests);
        Assert.Equal("/v1/load_lora_adapter", request.Path);
        Assert.Equal($$"""{"lora_name":"prefonline","lora_path":"{{export}}/v000001","load_inplace":true}""", request.Body.ToJsonString());
        Assert.True(File.Exists(Path.Combine(export, "v000001", "adapter_model.safetensors")));

        handOff.Announce(kit.Full(2));
        await TestHandOff.WaitUntilAsync(() => metrics.Count("vllm", "rejected") == 1, "full weights refused");
        Assert.Single(server.Requests);
        Assert.Contains("LoRA adapters only", (await handOff.Checks[0].CheckAsync(CancellationToken.None)).Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sglang_loads_adapters_through_its_lora_api()
    {
        await using var server = await FakeServingServer.StartAsync();
        using var metrics = new RecordedMetrics();
        await using var handOff = await TestHandOff.StartAsync(TestHandOff.Options(new ServingPublisherOptions
        {
            Type = ServingPublisherType.Sglang, BaseUrl = server.Address.ToString(), Directory = kit.NewDirectory("export"), ServerPath = "/mnt/x", AdapterName = "tuned",
        }), metrics);

        handOff.Announce(kit.AdapterVersion(4));
        await TestHandOff.WaitUntilAsync(() => metrics.Count("sglang", "success") == 1, "v4");
        Assert.Equal(["/unload_lora_adapter", "/load_lora_adapter"], server.Requests.Select(r => r.Path));
        Assert.Equal("""{"lora_name":"tuned"}""", server.Requests[0].Body.ToJsonString());
        Assert.Equal("""{"lora_name":"tuned","lora_path":"/mnt/x/v000004"}""", server.Requests[1].Body.ToJsonString());
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
