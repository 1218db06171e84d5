using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using PrefOnline.Streaming.Contracts;
using PrefOnline.Streaming.Validation;
using Xunit.Abstractions;
using static PrefOnline.IntegrationTests.Process.KafkaWorkerSetup;
using static PrefOnline.IntegrationTests.Process.MockBrokerProcess;

namespace PrefOnline.IntegrationTests.Process;

/// <summary>
/// Issue 15 items 1 and 4 on the real binary, in the chart's topology: a learner and a generator process that share no
/// files, the learner's policy files on their own port behind a bearer token. One run checks, in order:
/// <list type="number">
/// <item>the generator follows the learner's versions over HTTP with the token (200), while requests without it, or
/// with a wrong one, get 401 and a bearer challenge; the policy port serves nothing else and the metrics port no policy;</item>
/// <item>a policy event whose uri points at another host is refused, counted (<c>untrusted-uri</c>) and the generator
/// keeps generating with its version;</item>
/// <item>an event for a real version whose tokenizer file was tampered with on the learner is refused, counted
/// (<c>hash-mismatch</c>), and the generator keeps its version;</item>
/// <item>an operator's rollback while both run: the withdrawn versions answer 410, the target 200, and the generator
/// follows the learner's rollback event.</item>
/// </list>
/// Refused policy events are skipped and counted, not dead-lettered (docs/OPERATIONS.md, "Failure policy").
/// </summary>
[Collection(ProcessCollection.Name)]
public sealed class PolicySurfaceTests(ITestOutputHelper output)
{
    private const string Token = "process-test-token-0123456789";
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);

    [Fact]
    public async Task The_policy_port_wants_the_token_serves_the_current_lineage_only_and_the_generator_loads_only_what_it_verified()
    {
        await using var workspace = new TestWorkspace("policy-surface", output);
        var (_, bootstrap) = await MockBrokerProcess.StartAsync(workspace);
        var kcat = new Kcat(bootstrap);
        var initial = await InitPolicyAsync(workspace);
        var tokenFile = workspace.ScratchPath("policy-token");
        await File.WriteAllTextAsync(tokenFile, Token + "\n");
        var policyPort = TestWorkspace.FreePort();
        var baseUrl = $"http://127.0.0.1:{policyPort}";
        var store = workspace.ScratchPath("learner-checkpoints");

        JsonObject Role(string role)
        {
            var configuration = Configuration(bootstrap, initial);
            configuration["Worker"]!["Role"] = role;
            configuration["Worker"]!["PolicyBaseUrl"] = baseUrl;
            configuration["Kafka"]!["DeliveryTimeout"] = "00:00:05";
            configuration["Scoring"]!["LabelWait"] = "00:00:00"; // no users: the reward model scores at once, updates follow
            configuration["PolicyDistribution"] = new JsonObject { ["TokenFile"] = tokenFile, ["Port"] = policyPort };
            return configuration;
        }
        var learner = WorkerProcess.Start(workspace, "learner", Role("learner"), store);
        await learner.Process.WaitForLineAsync("Learner running (role learner) from ", Timeout);
        Assert.NotNull(learner.Process.FindLine("to bearer-token holders only"));
        var generator = WorkerProcess.Start(workspace, "generator", Role("generator"), workspace.ScratchPath("generator-has-no-volume"));
        await Task.WhenAll(learner.WaitReadyAsync(Timeout), generator.WaitReadyAsync(Timeout));
        string Tails() => learner.Process.Tail() + "\n" + generator.Process.Tail();

        // 1. The generator follows the learner over HTTP with the token.
        await kcat.ProduceAsync(Prompts, Enumerable.Range(0, 48).Select(i => ($"p{i}", Prompt($"p{i}", $"{(char)('a' + i % 8)}:"))));
        await Poll.UntilAsync(async () => await generator.MetricAsync("prefonline_policy_version") >= 3, Timeout, "the generator on policy v3 or later", Tails);
        var serving = await WaitForSteadyVersionAsync(learner, generator, Tails);
        var events = await PolicyEventsAsync(kcat);
        var current = events.Last();
        var currentCheckpoint = CheckpointOf(current);
        workspace.Log($"generator serving v{serving}; newest event v{current.Version} at checkpoint {currentCheckpoint}; {events.Count} events");
        Assert.All(events, e => Assert.StartsWith($"{baseUrl}/policy/", e.Uri, StringComparison.Ordinal));
        Assert.All(events, e => Assert.Contains("tokenizer_config.json", e.Files.Keys));

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        var weightsUrl = $"{baseUrl}/policy/{currentCheckpoint}/policy.safetensors";
        using (var anonymous = await http.GetAsync(weightsUrl))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
            Assert.Equal("Bearer realm=\"prefonline-policy\"", anonymous.Headers.WwwAuthenticate.ToString());
        }
        using (var wrong = await GetAsync(http, weightsUrl, Token[..^1] + "x")) Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        using (var ok = await GetAsync(http, weightsUrl, Token))
        {
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
            Assert.Equal(current.Sha256, Convert.ToHexStringLower(SHA256.HashData(await ok.Content.ReadAsByteArrayAsync())));
        }
        using (var metricsHere = await GetAsync(http, $"{baseUrl}/metrics", Token)) Assert.Equal(HttpStatusCode.NotFound, metricsHere.StatusCode);
        using (var policyThere = await GetAsync(http, $"http://127.0.0.1:{learner.Port}/policy/{currentCheckpoint}/policy.safetensors", Token))
            Assert.Equal(HttpStatusCode.NotFound, policyThere.StatusCode);
        Assert.True(await learner.MetricAsync("prefonline_policy_requests_total", ("result", "unauthorized")) >= 2);
        Assert.True(await learner.MetricAsync("prefonline_policy_requests_total", ("result", "served")) >= 1);

        // 2. A forged event pointing elsewhere: refused before any request, counted, the generator keeps its version.
        var forged = PolicyEvent.Publish(current.Version + 100, $"http://attacker.example:{policyPort}/policy/{currentCheckpoint}/policy.safetensors", current.Sha256,
            DateTimeOffset.UtcNow, new Dictionary<string, double>(), current.Files);
        await ProduceUntilJudgedAsync(generator, kcat, forged, "untrusted-uri", Tails);
        await AssertRefusedAndStillServingAsync(generator, kcat, "untrusted-uri", serving, forged.Version, "after-forged", Tails);

        // 3. A real older version whose tokenizer file was tampered with on the learner's disk, named by a rollback event
        //    with the learner's own hashes: fetched (it is on the lineage), refused on the hash, counted.
        var older = events.First(e => CheckpointOf(e) < currentCheckpoint && CheckpointOf(e) > CheckpointOf(events[0]));
        var tokenizer = Path.Combine(store, CheckpointFiles.DirectoryName(CheckpointOf(older)), "tokenizer_config.json");
        // Replaced, not appended to: the version's file is a hard link to the store's shared blob, which every version's
        // tokenizer_config.json is — writing into it would tamper with all of them, the rollback target of step 4 too.
        var tampered = await File.ReadAllTextAsync(tokenizer) + " ";
        File.Delete(tokenizer);
        await File.WriteAllTextAsync(tokenizer, tampered);
        var replay = PolicyEvent.Rollback(current.Version, older.Version, "forged", older.Uri, older.Sha256, DateTimeOffset.UtcNow, new Dictionary<string, double>(), older.Files);
        await ProduceUntilJudgedAsync(generator, kcat, replay, "hash-mismatch", Tails);
        await AssertRefusedAndStillServingAsync(generator, kcat, "hash-mismatch", serving, older.Version, "after-tampered", Tails);

        // 4. An operator's rollback to the first published version: the versions after it are withdrawn (410), it is
        //    served (200), and the generator follows the learner's rollback event.
        var target = events[0];
        var targetCheckpoint = CheckpointOf(target);
        var (code, text) = await workspace.RunPrefOnlineAsync("rollback", Timeout, "checkpoint", "rollback", "--dir", store, "--to", targetCheckpoint.ToString(CultureInfo.InvariantCulture), "--reason", "issue 15 test");
        Assert.True(code == 0, text);
        await Poll.UntilAsync(async () => await generator.MetricAsync("prefonline_policy_version") == target.Version, Timeout,
            $"the generator back on v{target.Version} after the rollback", Tails);
        var rollbackEvent = (await PolicyEventsAsync(kcat)).Last(e => e.Kind == PolicyEventKind.Rollback && e.Reason != "forged");
        Assert.Equal(target.Version, rollbackEvent.Version);
        using (var withdrawn = await GetAsync(http, weightsUrl, Token)) Assert.Equal(HttpStatusCode.Gone, withdrawn.StatusCode);
        using (var withdrawnTokenizer = await GetAsync(http, $"{baseUrl}/policy/{currentCheckpoint}/tokenizer_config.json", Token)) Assert.Equal(HttpStatusCode.Gone, withdrawnTokenizer.StatusCode);
        using (var targetWeights = await GetAsync(http, $"{baseUrl}/policy/{CheckpointOf(rollbackEvent)}/policy.safetensors", Token)) Assert.Equal(HttpStatusCode.OK, targetWeights.StatusCode);
        Assert.True(await learner.MetricAsync("prefonline_policy_requests_total", ("result", "withdrawn")) >= 2);
        Assert.Equal(0, (await kcat.ReadAllAsync(DeadLetter)).Count(r => r.Headers.GetValueOrDefault("source-topic") == Policy));

        await Task.WhenAll(learner.Process.TerminateAsync(), generator.Process.TerminateAsync());
        var codes = await Task.WhenAll(learner.Process.WaitForExitAsync(TimeSpan.FromSeconds(60)), generator.Process.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal([0, 0], codes);
    }

    /// <summary>
    /// Produces <paramref name="policyEvent"/> until the generator has judged it (counted under <paramref name="reason"/>).
    /// The learner may publish its current version again at any moment (a checkpoint that absorbed input without an
    /// update), and a generator acts on the newest event of what it has read: an event of ours that such a publish
    /// follows closely is rightly superseded unseen (the newest says "serve the current version"). Measured once in
    /// a full CI run: the learner's re-publish landed one second after ours.
    /// </summary>
    private static async Task ProduceUntilJudgedAsync(WorkerProcess generator, Kcat kcat, PolicyEvent policyEvent, string reason, Func<string> diagnostics)
    {
        for (var attempt = 1; ; attempt++)
        {
            await ProducePolicyAsync(kcat, policyEvent);
            try
            {
                await Poll.UntilAsync(async () => await generator.MetricAsync("prefonline_skipped_records_total", ("topic", Policy), ("reason", reason)) >= 1,
                    TimeSpan.FromSeconds(30), $"the policy event judged as {reason} (attempt {attempt})", diagnostics);
                return;
            }
            catch (TimeoutException) when (attempt < 3)
            {
            }
        }
    }

    /// <summary>
    /// The refusal is counted under <paramref name="reason"/>, and the generator stays ready on what it served
    /// (<paramref name="serving"/>, or a newer version the learner published since), never on
    /// <paramref name="refused"/>, and answers a new prompt with it. Newer is allowed: "steady" left the learner up to
    /// three unused rollouts, and the probes' own rollouts can make the next update due (CI timing).
    /// </summary>
    private async Task AssertRefusedAndStillServingAsync(WorkerProcess generator, Kcat kcat, string reason, double serving, long refused, string promptId, Func<string> diagnostics)
    {
        await Poll.UntilAsync(async () => await generator.MetricAsync("prefonline_skipped_records_total", ("topic", Policy), ("reason", reason)) >= 1, Timeout,
            $"the policy event refused as {reason}", diagnostics);
        Assert.NotNull(generator.Process.FindLine($"as {reason}:"));
        var now = (await generator.MetricAsync("prefonline_policy_version"))!.Value;
        Assert.True(now >= serving && now != refused, $"the generator serves v{now} (served v{serving}, refused v{refused})");
        Assert.Equal(HttpStatusCode.OK, (await generator.ReadinessAsync())?.Status);
        await kcat.ProduceAsync(Prompts, [(promptId, Prompt(promptId, "a:"))]);
        var answers = await Poll.ForAsync(async () =>
        {
            var records = (await kcat.ReadAllAsync(Rollouts)).Where(r => r.Value.Contains($"\"prompt_id\":\"{promptId}\"", StringComparison.Ordinal)).ToList();
            return records.Count >= 2 ? records : null;
        }, Timeout, $"rollouts for {promptId}", diagnostics);
        Assert.All(answers, a =>
        {
            using var rollout = JsonDocument.Parse(a.Value);
            var version = rollout.RootElement.GetProperty("policy_version").GetInt64();
            Assert.True(version >= serving && version != refused, $"a rollout of v{version} (served v{serving}, refused v{refused})");
        });
        output.WriteLine($"{reason}: refused, counted, still generating with v{now}");
    }

    /// <summary>Waits until no update is applied for a while and the generator serves the learner's version; returns it.</summary>
    private static async Task<double> WaitForSteadyVersionAsync(WorkerProcess learner, WorkerProcess generator, Func<string> diagnostics)
    {
        double? previous = null;
        double steady = -1;
        await Poll.UntilAsync(async () =>
        {
            var updates = await learner.MetricAsync("prefonline_updates_total");
            var learnerVersion = await learner.MetricAsync("prefonline_policy_version");
            var generatorVersion = await generator.MetricAsync("prefonline_policy_version");
            var settled = updates is not null && updates == previous && learnerVersion == generatorVersion;
            previous = updates;
            if (settled) steady = generatorVersion!.Value;
            else await Task.Delay(TimeSpan.FromSeconds(3)); // an update interval (2 s) and then some without a new update
            return settled;
        }, Timeout, "the learner done with the prompts and the generator on its version", diagnostics);
        return steady;
    }

    private static async Task<List<PolicyEvent>> PolicyEventsAsync(Kcat kcat)
    {
        var validator = new RecordValidator(new ValidationLimits { DuplicateWindowSize = 0 }, SchemaNames.PolicyTopic);
        return (await kcat.ReadAllAsync(Policy)).Select(r => validator.Validate(System.Text.Encoding.UTF8.GetBytes(r.Value)).Record).OfType<PolicyEvent>().ToList();
    }

    private static Task ProducePolicyAsync(Kcat kcat, PolicyEvent policyEvent) =>
        kcat.ProduceAsync(Policy, [("prefonline.policy", System.Text.Encoding.UTF8.GetString(RecordSerializer.Serialize(policyEvent)))]);

    /// <summary>The checkpoint version an http event's uri names (…/policy/{checkpoint}/policy.safetensors).</summary>
    private static long CheckpointOf(PolicyEvent policyEvent)
    {
        var segments = new Uri(policyEvent.Uri).Segments;
        return long.Parse(segments[^2].TrimEnd('/'), CultureInfo.InvariantCulture);
    }

    private static async Task<HttpResponseMessage> GetAsync(HttpClient http, string url, string token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return await http.SendAsync(request);
    }
}
