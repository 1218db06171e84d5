using System.Text;
using System.Text.Json;

namespace PrefOnline.Worker.Pipeline;

/// <summary>
/// The opt-in audit of absorbed labels (<c>Worker:AuditAbsorbedLabels</c>): the labels absorbed since the
/// last checkpoint, written into the next one as <see cref="FileName"/> (JSON lines), so the list is atomic
/// with the state that absorbed them. Following a checkpoint's parent chain and concatenating the lists
/// gives every label its state has absorbed, each once if delivery is exactly-once.
/// Bounded: cleared whenever a checkpoint takes it. Owned by the learning state's single writer.
/// </summary>
public sealed class LabelAudit
{
    public const string FileName = "absorbed-labels.jsonl";

    private List<AbsorbedLabel> entries = [];

    public int Count => entries.Count;

    public void Add(AbsorbedLabel label) => entries.Add(label);

    /// <summary>Entries a checkpoint took but could not write: back in front of the ones added since, in order.</summary>
    public void Return(IReadOnlyList<AbsorbedLabel> taken)
    {
        if (taken.Count == 0) return;
        entries = [.. taken, .. entries];
    }

    /// <summary>Hands the entries to a checkpoint and starts a new list.</summary>
    public IReadOnlyList<AbsorbedLabel> Take()
    {
        var taken = entries;
        entries = [];
        return taken;
    }

    public static byte[] Serialize(IReadOnlyList<AbsorbedLabel> labels)
    {
        var text = new StringBuilder();
        foreach (var label in labels)
        {
            text.Append(JsonSerializer.Serialize(new { id = label.Id, schema = label.Schema, topic = label.Topic, partition = label.Partition, offset = label.Offset, updates_before = label.UpdatesBefore }));
            text.Append('\n');
        }
        return Encoding.UTF8.GetBytes(text.ToString());
    }

    /// <summary>Reads an audit file written by <see cref="Serialize"/> (for tests and tools).</summary>
    public static IReadOnlyList<AbsorbedLabel> Parse(string jsonLines)
    {
        var labels = new List<AbsorbedLabel>();
        foreach (var line in jsonLines.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            using var document = JsonDocument.Parse(line);
            var root = document.RootElement;
            labels.Add(new AbsorbedLabel(
                root.GetProperty("id").GetString()!, root.GetProperty("schema").GetString()!, root.GetProperty("topic").GetString()!,
                root.GetProperty("partition").GetInt32(), root.GetProperty("offset").GetInt64(),
                root.TryGetProperty("updates_before", out var updates) && updates.ValueKind == JsonValueKind.Number ? updates.GetInt64() : null));
        }
        return labels;
    }
}
