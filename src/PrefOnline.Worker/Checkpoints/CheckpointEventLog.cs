using System.Text;
using System.Text.Json;

namespace PrefOnline.Worker.Checkpoints;

/// <summary>
/// Appends to and reads <c>events.jsonl</c>. Each append is one write of one line followed by fsync; a
/// crash can at worst leave a torn last line, which readers skip (and count) instead of failing.
/// </summary>
internal static class CheckpointEventLog
{
    public static void Append(string root, CheckpointEvent entry)
    {
        var stamped = entry with
        {
            ProcessId = entry.ProcessId ?? Environment.ProcessId,
            Host = entry.Host ?? Environment.MachineName,
            User = entry.User ?? Environment.UserName,
        };
        var line = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(stamped, CheckpointJson.EventLine) + "\n");
        var path = Path.Combine(root, CheckpointLayout.EventsFileName);
        using var file = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite);
        // A torn line from a crash has no newline: start on a fresh line so this event stays readable.
        if (file.Length > 0 && LastByte(path) != (byte)'\n') file.WriteByte((byte)'\n');
        file.Write(line);
        file.Flush(flushToDisk: true);
    }

    /// <summary>All readable events in order, and how many lines could not be parsed.</summary>
    public static (IReadOnlyList<CheckpointEvent> Events, int UnreadableLines) Read(string root)
    {
        var path = Path.Combine(root, CheckpointLayout.EventsFileName);
        var events = new List<CheckpointEvent>();
        if (!File.Exists(path)) return (events, 0);
        var unreadable = 0;
        foreach (var line in File.ReadLines(path, Encoding.UTF8))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                var parsed = JsonSerializer.Deserialize<CheckpointEvent>(line, CheckpointJson.EventLine);
                if (parsed is null) unreadable++;
                else events.Add(parsed);
            }
            catch (JsonException)
            {
                unreadable++;
            }
        }
        return (events, unreadable);
    }

    private static int LastByte(string path)
    {
        using var reader = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        if (reader.Length == 0) return -1;
        reader.Seek(-1, SeekOrigin.End);
        return reader.ReadByte();
    }
}
