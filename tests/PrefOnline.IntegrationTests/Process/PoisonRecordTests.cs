using System.Net;
using Xunit.Abstractions;
using static PrefOnline.IntegrationTests.Process.KafkaWorkerSetup;
using static PrefOnline.IntegrationTests.Process.MockBrokerProcess;

namespace PrefOnline.IntegrationTests.Process;

/// <summary>
/// Issue 11: the record that used to crash-loop the worker, <c>{"\udc00":0}</c> (a lone surrogate escape in a
/// key), sent with kcat to every input topic of the real binary. No single role reads all four: the learner reads
/// feedback and rollouts, a generator prompts and the policy topic, so the chart's split topology runs here — one
/// learner and one generator process sharing the checkpoint directory. Each record is refused as
/// <c>lone-surrogate</c>: dead-lettered from prompts, feedback and rollouts; skipped and counted on the policy
/// topic (every generator reads it from its start, so it is not dead-lettered: docs/OPERATIONS.md, "Failure
/// policy"). Both processes stay ready and exit 0 on SIGTERM.
/// </summary>
[Collection(ProcessCollection.Name)]
public sealed class PoisonRecordTests(ITestOutputHelper output)
{
    private const string Poison = """{"\udc00":0}""";
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);

    [Fact]
    public async Task A_lone_surrogate_key_on_every_input_topic_is_refused_and_both_roles_stay_ready_and_exit_0()
    {
        await using var workspace = new TestWorkspace("poison-record", output);
        var (_, bootstrap) = await MockBrokerProcess.StartAsync(workspace);
        var kcat = new Kcat(bootstrap);
        var policy = await InitPolicyAsync(workspace);
        var checkpoints = workspace.ScratchPath("checkpoints");
        var learnerConfiguration = Configuration(bootstrap, policy);
        learnerConfiguration["Worker"]!["Role"] = "learner";
        learnerConfiguration["Kafka"]!["DeliveryTimeout"] = "00:00:05"; // within the grace period (checked at start)
        var generatorConfiguration = Configuration(bootstrap, policy);
        generatorConfiguration["Worker"]!["Role"] = "generator";
        generatorConfiguration["Kafka"]!["DeliveryTimeout"] = "00:00:05";
        var learner = WorkerProcess.Start(workspace, "learner", learnerConfiguration, checkpoints);
        await learner.Process.WaitForLineAsync("Learner running (role learner) from ", Timeout);
        var generator = WorkerProcess.Start(workspace, "generator", generatorConfiguration, checkpoints); // the learner's volume, as the chart mounts it
        await Task.WhenAll(learner.WaitReadyAsync(Timeout), generator.WaitReadyAsync(Timeout));

        foreach (var topic in new[] { Prompts, Feedback, Rollouts, Policy }) await kcat.ProduceAsync(topic, [($"poison-{topic}", Poison)]);
        workspace.Log($"produced {Poison} to {Prompts}, {Feedback}, {Rollouts} and {Policy}");

        // Dead letters from the three topics a consumer group reads once, each naming where the record was.
        var letters = await Poll.ForAsync(async () =>
        {
            var records = await kcat.ReadAllAsync(DeadLetter);
            return records.Count >= 3 ? records : null;
        }, Timeout, "3 dead letters", () => learner.Process.Tail() + "\n" + generator.Process.Tail());
        Assert.Equal(3, letters.Count);
        foreach (var topic in new[] { Prompts, Feedback, Rollouts })
        {
            var letter = Assert.Single(letters, l => l.Headers["source-topic"] == topic);
            Assert.Equal(Poison, letter.Value);
            Assert.Equal("lone-surrogate", letter.Headers["reason"]);
            var original = Assert.Single(await kcat.ReadAllAsync(topic), r => r.Value == Poison);
            Assert.Equal((original.Partition.ToString(), original.Offset.ToString()), (letter.Headers["source-partition"], letter.Headers["source-offset"]));
        }
        // The policy topic's copy: skipped with its reason, counted, logged with its position.
        await Poll.UntilAsync(async () => await generator.MetricAsync("prefonline_skipped_records_total", ("topic", Policy), ("reason", "lone-surrogate")) == 1,
            Timeout, "the poison policy record skipped", () => generator.Process.Tail());
        Assert.NotNull(generator.Process.FindLine($"Skipped {Policy}[0]@"));
        Assert.Equal(1, await generator.MetricAsync("prefonline_messages_total", ("topic", Policy), ("result", "skipped")));

        // Still serving: both ready, and the generator still answers prompts.
        foreach (var worker in new[] { learner, generator })
        {
            Assert.False(worker.Process.HasExited, $"{worker.Process.Name} exited:\n{worker.Process.Tail()}");
            var readiness = await worker.ReadinessAsync();
            Assert.True(readiness?.Status == HttpStatusCode.OK, $"{worker.Process.Name} /readyz: {readiness?.Status} {readiness?.Body}");
        }
        await kcat.ProduceAsync(Prompts, [("after", Prompt("after-poison", "a:"))]);
        await Poll.UntilAsync(async () => (await kcat.ReadAllAsync(Rollouts)).Count(r => r.Value.Contains("\"prompt_id\":\"after-poison\"", StringComparison.Ordinal)) == 2,
            Timeout, "rollouts for a prompt sent after the poison", () => generator.Process.Tail());

        // SIGTERM: both exit 0.
        await Task.WhenAll(learner.Process.TerminateAsync(), generator.Process.TerminateAsync());
        var codes = await Task.WhenAll(learner.Process.WaitForExitAsync(TimeSpan.FromSeconds(60)), generator.Process.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        workspace.Log($"exit codes: learner {codes[0]}, generator {codes[1]}");
        Assert.Equal([0, 0], codes);
    }
}
