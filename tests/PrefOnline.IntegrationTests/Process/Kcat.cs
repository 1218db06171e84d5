using System.Text;
using System.Text.RegularExpressions;
using PrefOnline.IntegrationTests.Streaming;

namespace PrefOnline.IntegrationTests.Process;

/// <summary>Debian's kcat as the external Kafka client of the end-to-end tests: it produces the input and reads the output.</summary>
public sealed partial class Kcat(string bootstrapServers)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    public string BootstrapServers { get; } = bootstrapServers;

    /// <summary>Produces (key, value) records; kcat exits once every record is acknowledged (acks=all).</summary>
    public Task ProduceAsync(string topic, IEnumerable<(string Key, string Value)> records)
    {
        var lines = new StringBuilder();
        foreach (var (key, value) in records)
        {
            if (key.Contains('\t') || key.Contains('\n') || value.Contains('\n')) throw new ArgumentException("keys and values must be single lines without tabs");
            lines.Append(key).Append('\t').Append(value).Append('\n');
        }
        return ExternalTools.RunAsync(ExternalTools.Kcat, ["-P", "-b", BootstrapServers, "-t", topic, "-K", "\t", "-X", "acks=all"], Timeout, stdin: lines.ToString());
    }

    /// <summary>Every record of <paramref name="topic"/> from the beginning to its current end.</summary>
    public async Task<IReadOnlyList<KcatRecord>> ReadAllAsync(string topic)
    {
        // \x1f and \x1e cannot occur in our JSON (control characters are escaped), so they delimit fields and records.
        var output = await ExternalTools.RunAsync(ExternalTools.Kcat,
            ["-C", "-b", BootstrapServers, "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%p\x1f%o\x1f%k\x1f%h\x1f%s\x1e"], Timeout);
        return output.Split('\x1e', StringSplitOptions.RemoveEmptyEntries)
            .Where(record => record.Trim().Length > 0)
            .Select(record =>
            {
                var fields = record.TrimStart('\n').Split('\x1f');
                if (fields.Length != 5) throw new FormatException($"unexpected kcat output: {record}");
                return new KcatRecord(topic, int.Parse(fields[0]), long.Parse(fields[1]), fields[2], ParseHeaders(fields[3]), fields[4]);
            })
            .ToList();
    }

    /// <summary>kcat prints headers as <c>k1=v1,k2=v2</c>; values may contain commas, so keys are matched by name.</summary>
    private static IReadOnlyDictionary<string, string> ParseHeaders(string text)
    {
        var headers = new Dictionary<string, string>(StringComparer.Ordinal);
        var matches = HeaderKey().Matches(text);
        for (var i = 0; i < matches.Count; i++)
        {
            var start = matches[i].Index + matches[i].Length;
            var end = i + 1 < matches.Count ? matches[i + 1].Index : text.Length;
            headers[matches[i].Groups["key"].Value] = text[start..end];
        }
        return headers;
    }

    // Our header names (DeadLetterHeaders): reason, detail, source-*, forward-error.
    [GeneratedRegex(@"(?:^|,)(?<key>reason|detail|source-topic|source-partition|source-offset|source-timestamp|forward-error)=")]
    private static partial Regex HeaderKey();
}
