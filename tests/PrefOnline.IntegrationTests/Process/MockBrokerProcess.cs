namespace PrefOnline.IntegrationTests.Process;

/// <summary><c>prefonline mock-broker</c> as its own process (librdkafka's mock cluster on 127.0.0.1 with the worker's default topics).</summary>
public static class MockBrokerProcess
{
    public const string Prompts = "prefonline.prompts";
    public const string Feedback = "prefonline.feedback";
    public const string Rollouts = "prefonline.rollouts";
    public const string Policy = "prefonline.policy";
    public const string DeadLetter = "prefonline.dlq";

    /// <summary>Starts the broker and returns it with its bootstrap address (the first line it prints).</summary>
    /// <param name="topics">The mock-broker's <c>--topics</c> (name:partitions,...; must include the DLQ); null: its defaults.</param>
    public static async Task<(ChildProcess Process, string BootstrapServers)> StartAsync(TestWorkspace workspace, string? topics = null)
    {
        // stdin stays open (and unused): EOF would only end its command loop, but an open pipe keeps it simple.
        var broker = workspace.StartPrefOnline("mock-broker", topics is null ? ["mock-broker"] : ["mock-broker", "--topics", topics], redirectInput: true);
        var line = await broker.WaitForLineAsync("bootstrap.servers=", TimeSpan.FromSeconds(60));
        var bootstrap = line.Text["bootstrap.servers=".Length..].Trim();
        if (!bootstrap.StartsWith("127.0.0.1:", StringComparison.Ordinal)) throw new InvalidOperationException($"the mock broker is not on 127.0.0.1: {bootstrap}");
        await broker.WaitForLineAsync($"topic {DeadLetter} ", TimeSpan.FromSeconds(30));
        workspace.Log($"mock broker at {bootstrap}");
        return (broker, bootstrap);
    }
}
