using System.CommandLine;
using System.Runtime.InteropServices;
using PrefOnline.MockKafka;

namespace PrefOnline.Cli;

/// <summary>
/// <c>prefonline mock-broker</c>: runs librdkafka's mock Kafka cluster (real Kafka protocol on 127.0.0.1,
/// nothing on disk, no auth) until killed, for end-to-end tests and demos without a Kafka installation.
/// Prints <c>bootstrap.servers=HOST:PORT</c> as its first stdout line. Reads optional commands from
/// stdin (<see cref="MockBrokerConsole"/>, src/PrefOnline.MockKafka, has the protocol).
/// SIGTERM or Ctrl-C stops it with exit code 0.
/// </summary>
/// <remarks>
/// A CLI verb rather than a C program compiled by the tests: it ships inside the binary users already
/// have (no gcc or headers needed), reuses the exact <see cref="MockKafkaCluster"/> the in-process tests
/// use, and follows the CLI's failure policy. <c>--port</c> is served by a bootstrap forwarder because
/// librdkafka's mock API cannot choose its listening ports.
/// </remarks>
public static class MockBrokerCommand
{
    /// <summary>Topics created when --topics is not given: the worker's default topic names (config/README.md, Kafka:Topics).</summary>
    public const string DefaultTopics = "prefonline.prompts:4,prefonline.feedback:4,prefonline.rollouts:4,prefonline.policy:1,prefonline.dlq:1";

    public static Command Create()
    {
        var port = new Option<int>("--port") { Description = "Fixed 127.0.0.1 port for bootstrap.servers (0: the mock's own ephemeral port)", DefaultValueFactory = _ => 0 };
        var brokers = new Option<int>("--brokers") { Description = "Number of mock brokers (ids 1..N)", DefaultValueFactory = _ => 1 };
        var topics = new Option<string>("--topics") { Description = "Topics to create: name[:partitions],... (empty string: none)", DefaultValueFactory = _ => DefaultTopics };
        var bootstrapFile = new Option<FileInfo?>("--bootstrap-file") { Description = "Also write the bootstrap address to this file (for scripts)" };
        var command = new Command("mock-broker", "Run an in-memory Kafka-protocol broker (librdkafka mock cluster) on 127.0.0.1 until killed.");
        command.Options.Add(port);
        command.Options.Add(brokers);
        command.Options.Add(topics);
        command.Options.Add(bootstrapFile);
        command.SetAction((parse, ct) => CliAction.RunAsync(async token =>
        {
            var brokerCount = parse.GetValue(brokers);
            if (brokerCount is < 1 or > 16) throw new CliException($"--brokers must be in 1..16 (got {brokerCount})", CliAction.UsageError);
            var portValue = parse.GetValue(port);
            if (portValue is < 0 or > 65535) throw new CliException($"--port must be in 0..65535 (got {portValue})", CliAction.UsageError);
            var topicList = ParseTopics(parse.GetValue(topics) ?? "");

            // SIGTERM/SIGINT end the verb normally (exit 0), whatever the host's own signal handling.
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(token);
            using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context => { context.Cancel = true; stop.Cancel(); });
            using var onInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, context => { context.Cancel = true; stop.Cancel(); });

            using var cluster = MockKafkaCluster.Start(brokerCount);
            foreach (var (name, partitions) in topicList) cluster.CreateTopic(name, partitions);
            await using var forwarder = portValue == 0 ? null : StartForwarder(portValue, cluster.BootstrapServers);
            var bootstrap = forwarder?.Address ?? cluster.BootstrapServers;

            Console.Out.WriteLine($"bootstrap.servers={bootstrap}");
            foreach (var (name, partitions) in topicList) Console.Out.WriteLine($"topic {name} partitions={partitions}");
            await Console.Out.FlushAsync(token);
            if (parse.GetValue(bootstrapFile) is { } file) await File.WriteAllTextAsync(file.FullName, bootstrap + "\n", token);
            _ = Task.Run(() => MockBrokerConsole.ServeCommandsAsync(cluster, Console.In, Console.Out, stop.Token), CancellationToken.None);
            try
            {
                await Task.Delay(Timeout.Infinite, stop.Token);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                // A signal is how this verb is meant to end.
            }
            return 0;
        }, ct));
        return command;
    }

    private static BootstrapForwarder StartForwarder(int port, string bootstrapServers)
    {
        try
        {
            return BootstrapForwarder.Start(port, bootstrapServers);
        }
        catch (System.Net.Sockets.SocketException e)
        {
            throw new CliException($"cannot listen on 127.0.0.1:{port}: {e.Message}");
        }
    }

    private static List<(string Name, int Partitions)> ParseTopics(string spec)
    {
        try
        {
            return MockBrokerConsole.ParseTopics(spec);
        }
        catch (FormatException e)
        {
            throw new CliException($"--topics: {e.Message}", CliAction.UsageError);
        }
    }
}
