using System.Text.Json;
using Xunit.Abstractions;
using static PrefOnline.IntegrationTests.Process.KafkaWorkerSetup;
using static PrefOnline.IntegrationTests.Process.MockBrokerProcess;

namespace PrefOnline.IntegrationTests.Process;

/// <summary>
/// The real <c>prefonline run</c> binary against a standalone <c>prefonline mock-broker</c> process, with kcat as the
/// outside world: kcat produces prompts and labels and reads what the worker publishes.
/// </summary>
[Collection(ProcessCollection.Name)]
public sealed class KcatEndToEndTests(ITestOutputHelper output)
{
    private const int PromptCount = 24;
    private const int SamplesPerPrompt = 2; // KafkaWorkerSetup's Generation:SamplesPerPrompt

    [Fact]
    public async Task Prompts_and_labels_from_kcat_become_rollouts_policy_versions_and_dead_letters()
    {
        await using var workspace = new TestWorkspace("kcat-end-to-end", output);
        var (_, bootstrap) = await MockBrokerProcess.StartAsync(workspace);
        var kcat = new Kcat(bootstrap);
        var policy = await InitPolicyAsync(workspace);
        var worker = WorkerProcess.Start(workspace, "worker", Configuration(bootstrap, policy), workspace.ScratchPath("checkpoints"));
        await worker.WaitForLearnerAsync(TimeSpan.FromMinutes(2));

        // 1. Prompts, with one that is not JSON in the middle of them.
        var prompts = Enumerable.Range(0, PromptCount).Select(i => (Key: $"p{i}", Value: Prompt($"p{i}", $"{(char)('a' + i % 8)}:"))).ToList();
        await kcat.ProduceAsync(Prompts, [.. prompts.Take(PromptCount / 2), ("bad-prompt", "{not json"), .. prompts.Skip(PromptCount / 2)]);

        // 2. Rollouts: K per prompt, each naming its prompt and the policy version that sampled it.
        var rolloutRecords = await Poll.ForAsync(async () =>
        {
            var records = await kcat.ReadAllAsync(Rollouts);
            return records.Count >= PromptCount * SamplesPerPrompt ? records : null;
        }, TimeSpan.FromMinutes(2), $"{PromptCount * SamplesPerPrompt} rollouts on {Rollouts}", () => worker.Process.Tail());
        var rollouts = rolloutRecords.Select(r => JsonDocument.Parse(r.Value).RootElement.Clone()).ToList();
        Assert.Equal(PromptCount * SamplesPerPrompt, rollouts.Count);
        Assert.All(rollouts, r =>
        {
            Assert.Equal("prefonline.rollout.v1", r.GetProperty("schema").GetString());
            Assert.True(r.GetProperty("policy_version").GetInt64() >= 1);
            var logprob = r.GetProperty("logprob").GetDouble();
            Assert.True(double.IsFinite(logprob) && logprob <= 0, $"logprob {logprob}");
        });
        var byPrompt = rollouts.GroupBy(r => r.GetProperty("prompt_id").GetString()!).ToDictionary(g => g.Key, g => g.ToList());
        Assert.Equal(prompts.Select(p => p.Key).Order(), byPrompt.Keys.Order());
        Assert.All(byPrompt.Values, group => Assert.Equal(SamplesPerPrompt, group.Count));
        Assert.Equal(rollouts.Count, rollouts.Select(r => r.GetProperty("id").GetString()).Distinct().Count());

        // 3. Labels for those rollouts (joined by rollout id): a rating per rollout and a preference per prompt,
        //    plus two bad labels. Completions of the random tiny policy are arbitrary text: exactly what users send back.
        var labels = new List<(string Key, string Value)>();
        foreach (var (promptId, group) in byPrompt)
        {
            var prompt = group[0].GetProperty("prompt").GetString()!;
            foreach (var rollout in group)
            {
                var completion = rollout.GetProperty("completion").GetString()!;
                labels.Add(($"r-{rollout.GetProperty("id").GetString()}", Rating($"r-{rollout.GetProperty("id").GetString()}", prompt, completion, -completion.Length / 8.0, rollout.GetProperty("id").GetString())));
            }
            var (a, b) = (group[0], group[1]);
            if (a.GetProperty("completion").GetString() != b.GetProperty("completion").GetString())
            {
                labels.Add(($"pref-{promptId}", Preference($"pref-{promptId}", prompt, a.GetProperty("completion").GetString()!, b.GetProperty("completion").GetString()!,
                    (a.GetProperty("id").GetString()!, b.GetProperty("id").GetString()!))));
            }
        }
        var goodLabels = labels.Count;
        var wrongType = """{"schema":"prefonline.rating.v1","id":"bad-rating","prompt":"a:","completion":"b","reward":"high"}""";
        var identicalPair = Preference("bad-pair", "a:", "same answer", "same answer");
        await kcat.ProduceAsync(Feedback, [.. labels.Take(goodLabels / 2), ("bad-rating", wrongType), .. labels.Skip(goodLabels / 2), ("bad-pair", identicalPair)]);
        workspace.Log($"produced {PromptCount} prompts, {goodLabels} labels and 3 bad records");

        // 4. The policy topic: versions rise, and a published checkpoint has absorbed every good label.
        var events = await Poll.ForAsync(async () =>
        {
            var records = (await kcat.ReadAllAsync(Policy)).Select(r => JsonDocument.Parse(r.Value).RootElement.Clone()).ToList();
            return records.Any(e => e.GetProperty("metrics").TryGetProperty("labels_absorbed", out var absorbed) && absorbed.GetDouble() >= goodLabels) ? records : null;
        }, TimeSpan.FromMinutes(2), $"a policy event with labels_absorbed >= {goodLabels}", () => worker.Process.Tail());
        var versions = events.Select(e => e.GetProperty("version").GetInt64()).ToList();
        workspace.Log($"policy events: {events.Count}, versions {string.Join(' ', versions)}");
        Assert.All(events, e =>
        {
            Assert.Equal("prefonline.policy.v1", e.GetProperty("schema").GetString());
            Assert.Equal("publish", e.GetProperty("kind").GetString());
            Assert.StartsWith("file://", e.GetProperty("uri").GetString());
            Assert.Equal(64, e.GetProperty("sha256").GetString()!.Length);
        });
        Assert.Equal(1, versions[0]);
        Assert.True(versions.Max() > versions[0], $"the policy version never rose: {string.Join(' ', versions)}");
        Assert.Equal(versions.Order(), versions); // Action Alert: no rollbacks, so versions never go down
        Assert.Equal(goodLabels, (int)events.Max(e => e.GetProperty("metrics").GetProperty("labels_absorbed").GetDouble()));

        // 5. The dead-letter topic: exactly the three bad records, each with its reason and where it came from.
        var deadLetters = await Poll.ForAsync(async () =>
        {
            var records = await kcat.ReadAllAsync(DeadLetter);
            return records.Count >= 3 ? records : null;
        }, TimeSpan.FromMinutes(1), "3 dead letters", () => worker.Process.Tail());
        var inputs = (await kcat.ReadAllAsync(Prompts)).Concat(await kcat.ReadAllAsync(Feedback)).ToList();
        Assert.Equal(3, deadLetters.Count);
        foreach (var (value, reason, topic) in new[] { ("{not json", "invalid-json", Prompts), (wrongType, "wrong-type", Feedback), (identicalPair, "identical-pair", Feedback) })
        {
            var letter = Assert.Single(deadLetters, d => d.Value == value);
            var original = Assert.Single(inputs, i => i.Value == value);
            Assert.Equal(reason, letter.Headers["reason"]);
            Assert.Equal(topic, letter.Headers["source-topic"]);
            Assert.Equal(original.Partition.ToString(), letter.Headers["source-partition"]);
            Assert.Equal(original.Offset.ToString(), letter.Headers["source-offset"]);
        }
        Assert.Equal(3, await worker.MetricAsync("prefonline_messages_total", ("result", "dead_letter")));

        // 6. Offsets are committed once the checkpoint that absorbed the records is durable: the feedback group
        //    is at the end of the topic, and the committed offsets are the latest checkpoint's.
        var feedbackEnd = await KafkaOffsets.EndAsync(bootstrap, Feedback, 4);
        await Poll.UntilAsync(async () => Same(await KafkaOffsets.CommittedAsync(bootstrap, "e2e.feedback", Feedback, 4), feedbackEnd),
            TimeSpan.FromMinutes(1), $"group e2e.feedback committed at the end of {Feedback} ({KafkaOffsets.Format(feedbackEnd)})");
        var latest = CheckpointFiles.TryReadLatest(worker.CheckpointDirectory)!;
        Assert.All(feedbackEnd, end => Assert.Equal(end.Value, latest.NextOffset(Feedback, end.Key)));

        await worker.Process.TerminateAsync();
        Assert.Equal(0, await worker.Process.WaitForExitAsync(TimeSpan.FromSeconds(40)));
    }

    private static bool Same(IReadOnlyDictionary<int, long> a, IReadOnlyDictionary<int, long> b) =>
        a.Count == b.Count && a.All(kv => b.TryGetValue(kv.Key, out var v) && v == kv.Value);
}
