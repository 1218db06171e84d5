using System.Text.Json.Nodes;

namespace PrefOnline.IntegrationTests.Process;

/// <summary>
/// The Kafka-mode worker of these tests: a tiny random policy (<c>prefonline init</c>, seeded), short update and
/// checkpoint intervals so a test sees several of each within seconds, and guardrails that only alert (the demo's
/// KL budget and accuracy floor are being retuned; these tests are about delivery, not about the guardrail).
/// </summary>
public static class KafkaWorkerSetup
{
    public static async Task<string> InitPolicyAsync(TestWorkspace workspace)
    {
        var directory = workspace.ScratchPath("initial-policy");
        var (code, output) = await workspace.RunPrefOnlineAsync("init", TimeSpan.FromMinutes(2), "init", "--preset", "tiny", "--seed", "1", "--out", directory);
        if (code != 0) throw new InvalidOperationException($"prefonline init failed with {code}: {output}");
        return directory;
    }

    public static JsonObject Configuration(string bootstrapServers, string initialPolicy, bool audit = false) => new()
    {
        // A member killed with SIGKILL keeps its partitions until its session times out (librdkafka's default:
        // 45 s); a short session lets the restarted worker take them over within seconds.
        ["Kafka"] = new JsonObject
        {
            ["BootstrapServers"] = bootstrapServers,
            ["ConsumerGroup"] = "e2e",
            ["ConsumerSettings"] = new JsonObject { ["session.timeout.ms"] = "6000", ["heartbeat.interval.ms"] = "500" },
        },
        ["Model"] = new JsonObject { ["InitialPolicy"] = initialPolicy },
        ["Worker"] = new JsonObject
        {
            ["TensorThreads"] = 1,
            ["ShutdownTimeout"] = "00:00:30",
            ["CheckpointInterval"] = "00:00:01",
            ["AuditAbsorbedLabels"] = audit,
        },
        // Keep every version: the exactly-once proof follows the whole parent chain.
        ["Checkpoints"] = new JsonObject { ["KeepLast"] = 10_000 },
        ["Guardrails"] = new JsonObject { ["Action"] = "Alert", ["KlBudget"] = 1e9, ["AccuracyFloor"] = 0.0 },
        ["Learner"] = new JsonObject
        {
            ["UpdateEverySamples"] = 16, ["UpdateInterval"] = "00:00:02", ["MinSamples"] = 4, ["MaxSamplesAhead"] = 64,
            ["BatchSize"] = 16, ["HumanPairsPerUpdate"] = 8, ["LearningRate"] = 1e-4, ["Seed"] = 1,
        },
        ["Generation"] = new JsonObject { ["MaxNewTokens"] = 12, ["SamplesPerPrompt"] = 2, ["Seed"] = 7 },
        ["Scoring"] = new JsonObject { ["LabelWait"] = "00:00:00.500" },
        ["Replay"] = new JsonObject { ["Seed"] = 3 },
        ["Reward"] = new JsonObject { ["Seed"] = 5 },
        ["Logging"] = new JsonObject { ["LogLevel"] = new JsonObject { ["Default"] = "Information", ["Microsoft.AspNetCore"] = "Warning" } },
    };

    public static string Prompt(string id, string text) =>
        new JsonObject { ["schema"] = "prefonline.prompt.v1", ["id"] = id, ["prompt"] = text }.ToJsonString();

    public static string Rating(string id, string prompt, string completion, double reward, string? rolloutId = null)
    {
        var record = new JsonObject { ["schema"] = "prefonline.rating.v1", ["id"] = id, ["prompt"] = prompt, ["completion"] = completion, ["reward"] = reward };
        if (rolloutId is not null) record["rollout_id"] = rolloutId;
        return record.ToJsonString();
    }

    public static string Preference(string id, string prompt, string chosen, string rejected, (string Chosen, string Rejected)? rolloutIds = null)
    {
        var record = new JsonObject { ["schema"] = "prefonline.preference.v1", ["id"] = id, ["prompt"] = prompt, ["chosen"] = chosen, ["rejected"] = rejected };
        if (rolloutIds is { } ids) record["rollout_ids"] = new JsonArray(ids.Chosen, ids.Rejected);
        return record.ToJsonString();
    }
}
