using System.Globalization;

namespace PrefOnline.MockKafka;

/// <summary>
/// What <c>prefonline mock-broker</c> does besides starting a <see cref="MockKafkaCluster"/>: parse its topic
/// list and answer the commands it reads on stdin, one per line — <c>down [BROKER]</c>, <c>up [BROKER]</c>
/// (outages for end-to-end tests; default all brokers) and <c>create TOPIC PARTITIONS</c> — with
/// <c>ok ...</c> or <c>error ...</c>. The verb itself (options, exit codes, signals) is in the CLI.
/// </summary>
public static class MockBrokerConsole
{
    /// <summary>Parses <c>name[:partitions],...</c> (partitions 1..1000, default 1; empty: no topics).</summary>
    /// <exception cref="FormatException">An item is not name[:partitions]; the message names it.</exception>
    public static List<(string Name, int Partitions)> ParseTopics(string spec)
    {
        var result = new List<(string, int)>();
        foreach (var item in spec.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var parts = item.Split(':');
            var partitions = 1;
            if (parts.Length > 2 || parts[0].Length == 0 || (parts.Length == 2 && (!int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out partitions) || partitions is < 1 or > 1000)))
            {
                throw new FormatException($"'{item}' is not name[:partitions] with 1..1000 partitions");
            }
            result.Add((parts[0], partitions));
        }
        return result;
    }

    /// <summary>Answers commands from <paramref name="input"/> on <paramref name="output"/> until end of input
    /// (which ends only the command serving; the cluster keeps running) or cancellation.</summary>
    public static async Task ServeCommandsAsync(MockKafkaCluster cluster, TextReader input, TextWriter output, CancellationToken cancellationToken)
    {
        while (await input.ReadLineAsync(cancellationToken) is { } line)
        {
            var words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (words.Length == 0) continue;
            string reply;
            try
            {
                var broker = words.Length > 1 && words[0] is "down" or "up" ? int.Parse(words[1], CultureInfo.InvariantCulture) : MockKafkaCluster.AllBrokers;
                switch (words[0])
                {
                    case "down":
                        cluster.SetBrokerDown(broker);
                        reply = $"ok down {broker}";
                        break;
                    case "up":
                        cluster.SetBrokerUp(broker);
                        reply = $"ok up {broker}";
                        break;
                    case "create" when words.Length == 3:
                        cluster.CreateTopic(words[1], int.Parse(words[2], CultureInfo.InvariantCulture));
                        reply = $"ok create {words[1]}";
                        break;
                    default:
                        reply = "error unknown command; use: down [BROKER] | up [BROKER] | create TOPIC PARTITIONS";
                        break;
                }
            }
            catch (Exception e) when (e is FormatException or OverflowException or ArgumentException or InvalidOperationException)
            {
                reply = "error " + e.Message.ReplaceLineEndings(" ");
            }
            await output.WriteLineAsync(reply);
            await output.FlushAsync(cancellationToken);
        }
    }
}
