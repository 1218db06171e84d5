using System.Text;
using PrefOnline.Streaming.Transport;
using PrefOnline.Streaming.Validation;

namespace PrefOnline.Worker.Pipeline;

/// <summary>
/// <c>duplicate-ids.bin</c> in a learner checkpoint: the duplicate-id windows of the learner's input topics, so
/// that exactly-once holds for duplicates too. A label refused as a duplicate before a crash must be refused
/// again after the restart, not absorbed a second time; that needs the ids the checkpoint's state has absorbed.
/// </summary>
/// <remarks>
/// Only the entries a restart needs are kept: ids first seen at a position the checkpoint has absorbed (offset
/// below the partition's resume offset) or at no known position. Records at or after the resume offset are read
/// again after a restart and register themselves at the same position (a redelivery, not a duplicate).
/// Layout (little-endian, <see cref="BinaryWriter"/> strings): "PODUPIDS" magic, int32 format (1), int32 window
/// count; per window: topic, int32 entry count; per entry: id, byte has-position, int32 partition, int64 offset,
/// int64 first-seen time (Unix milliseconds, UTC). Oldest first. The manifest's SHA-256 covers it.
/// </remarks>
public static class DuplicateWindowFile
{
    private const int Format = 1;
    private static readonly byte[] Magic = "PODUPIDS"u8.ToArray();

    /// <summary>Writes the windows' entries that <paramref name="absorbed"/> (the checkpoint's resume offsets) covers.</summary>
    public static void Write(string path, IReadOnlyList<(string Topic, DuplicateIdWindow Window)> windows, IReadOnlyList<ResumeOffset> absorbed)
    {
        var resume = absorbed.ToDictionary(o => o.Partition, o => o.NextOffset);
        using var stream = File.Create(path);
        using var writer = new BinaryWriter(stream, Encoding.UTF8);
        writer.Write(Magic);
        writer.Write(Format);
        writer.Write(windows.Count);
        foreach (var (topic, window) in windows)
        {
            var kept = window.Snapshot()
                .Where(e => e.Position is not { } position || (resume.TryGetValue(position.Partition, out var next) && position.Offset < next))
                .ToList();
            writer.Write(topic);
            writer.Write(kept.Count);
            foreach (var entry in kept)
            {
                writer.Write(entry.Id);
                writer.Write(entry.Position is not null);
                writer.Write(entry.Position?.Partition.Partition ?? 0);
                writer.Write(entry.Position?.Offset ?? 0);
                writer.Write(entry.SeenAt.ToUnixTimeMilliseconds());
            }
        }
    }

    /// <summary>Topic → saved entries, oldest first.</summary>
    /// <exception cref="InvalidDataException">Not a file written by <see cref="Write"/>.</exception>
    public static IReadOnlyDictionary<string, IReadOnlyList<SeenId>> Read(Stream stream)
    {
        using var reader = new BinaryReader(stream, Encoding.UTF8, leaveOpen: true);
        try
        {
            if (!reader.ReadBytes(Magic.Length).AsSpan().SequenceEqual(Magic)) throw new InvalidDataException("not a duplicate-id window file (bad magic)");
            var format = reader.ReadInt32();
            if (format != Format) throw new InvalidDataException($"duplicate-id window file format {format} is not supported (this build reads {Format})");
            var windows = new Dictionary<string, IReadOnlyList<SeenId>>(StringComparer.Ordinal);
            var count = reader.ReadInt32();
            if (count < 0) throw new InvalidDataException("negative window count");
            for (var w = 0; w < count; w++)
            {
                var topic = reader.ReadString();
                var entries = reader.ReadInt32();
                if (entries < 0) throw new InvalidDataException($"negative entry count for {topic}");
                var list = new List<SeenId>(Math.Min(entries, 1 << 16));
                for (var i = 0; i < entries; i++)
                {
                    var id = reader.ReadString();
                    var hasPosition = reader.ReadBoolean();
                    var partition = reader.ReadInt32();
                    var offset = reader.ReadInt64();
                    var seenAt = DateTimeOffset.FromUnixTimeMilliseconds(reader.ReadInt64());
                    list.Add(new SeenId(id, hasPosition ? new RecordPosition(new TopicPartitionId(topic, partition), offset) : null, seenAt));
                }
                windows[topic] = list;
            }
            return windows;
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException("duplicate-id window file is truncated", e);
        }
    }
}
