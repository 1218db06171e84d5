using PrefOnline.IntegrationTests.Streaming;
using PrefOnline.Streaming.Contracts;
using Xunit.Abstractions;
using static PrefOnline.IntegrationTests.Worker.WorkerCluster;

namespace PrefOnline.IntegrationTests.Worker;

/// <summary>
/// Roles split over Kafka (docs/ARCHITECTURE.md, "Roles and the pipeline": generators as a Deployment, the learner as a StatefulSet): a generator
/// host and a learner host in this process share only the mock cluster and the checkpoint volume. Prompts →
/// generator → rollouts topic → learner (with labels) → policy events → the generator follows them.
/// </summary>
[Collection(KafkaCollection.Name)]
public sealed class WorkerSplitRolesTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Deadline = WorkerEndToEndTests.Deadline;

    [Fact]
    public async Task A_generator_and_a_learner_over_Kafka_learn_from_labels_and_the_generator_follows_the_published_policy()
    {
        const int promptCount = 24;
        await using var cluster = WorkerCluster.Start();
        await using var learner = await WorkerUnderTest.StartAsync(cluster, output, new Dictionary<string, string?> { ["Worker:Role"] = "learner" });
        await using var generator = await WorkerUnderTest.StartAsync(cluster, output, new Dictionary<string, string?>
        {
            ["Worker:Role"] = "generator",
            ["Checkpoints:Directory"] = learner.CheckpointDirectory, // the chart mounts the learner's volume read-only
        });
        await using var rollouts = new TopicTail(cluster.BootstrapServers, Rollouts, InputPartitions);
        await using var policy = new TopicTail(cluster.BootstrapServers, WorkerCluster.Policy, 1);
        await learner.WaitReadyAsync(Deadline);
        await generator.WaitReadyAsync(Deadline);
        var initial = WorkerEndToEndTests.PolicyEvents(await policy.WaitForAsync(r => r.Count >= 1, Deadline, "the learner's first policy event"))[0];

        var labeler = new RolloutLabeler(cluster, rollouts, samplesPerPrompt: 2);
        await using var stop = new BackgroundLoops();
        var labelling = stop.Start(labeler.RunAsync);
        var asked = 0;
        var deadline = DateTime.UtcNow + Deadline;
        while (true)
        {
            // Prompts keep coming (as users would) until the generator answers with a policy the learner published after the start.
            if (asked < 200)
            {
                for (var i = 0; i < 4; i++, asked++)
                    cluster.Produce(Prompts, asked % InputPartitions, new PromptRecord($"split-prompt-{asked:D3}", WorkerEndToEndTests.Questions[asked % WorkerEndToEndTests.Questions.Length]));
            }
            learner.AssertRunning();
            generator.AssertRunning();
            var versions = WorkerEndToEndTests.PolicyEvents(policy.Records).Select(e => e.Version).Distinct().ToList();
            if (asked >= promptCount && versions.Count(v => v > initial.Version) >= 2 && labeler.Rollouts.Any(r => r.PolicyVersion > initial.Version)) break;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"after {Deadline}: policy versions {string.Join(",", versions)}, rollout versions {string.Join(",", labeler.Rollouts.Select(r => r.PolicyVersion).Distinct())}");
            await Task.Delay(500);
        }
        await stop.CancelAsync();
        await labelling;
        labeler.LabelNew();
        await cluster.FlushAsync(Deadline);

        // The learner absorbs every label exactly once and every rollout the generator published.
        var produced = labeler.Produced;
        deadline = DateTime.UtcNow + Deadline;
        while (true)
        {
            learner.AssertRunning();
            var audit = await learner.AuditChainAsync();
            var latest = learner.Latest() is { } v ? (await learner.ManifestsAsync())[v] : null;
            var rolloutEnds = cluster.EndOffsets(Rollouts, InputPartitions);
            if (produced.All(id => audit.Any(a => a.Id == id)) && latest is not null && rolloutEnds.All(p => WorkerEndToEndTests.Offset(latest, Rollouts, p.Key) == p.Value))
            {
                Assert.Equal(produced.Order(StringComparer.Ordinal), audit.Select(a => a.Id).Order(StringComparer.Ordinal));
                break;
            }
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"{produced.Count(id => audit.Any(a => a.Id == id))} of {produced.Count} labels absorbed; rollouts absorbed {string.Join(",", latest?.Offsets.GetValueOrDefault(Rollouts)?.Select(o => $"{o.Key}:{o.Value}") ?? [])} of {string.Join(",", rolloutEnds.Select(o => $"{o.Key}:{o.Value}"))}");
            await Task.Delay(200);
        }

        // Clean stops: the generator commits the prompts it answered, the learner its final checkpoint.
        await generator.StopAsync();
        await learner.StopAsync();
        Assert.True(learner.Pipeline.Completed && generator.Pipeline.Completed, "a role did not stop cleanly");
        var committed = cluster.Committed(WorkerUnderTest.PromptGroup, Prompts, InputPartitions);
        Assert.Equal(cluster.EndOffsets(Prompts, InputPartitions).Select(p => (p.Key, (long?)p.Value)), committed.OrderBy(c => c.Key).Select(c => (c.Key, c.Value)));
    }
}
