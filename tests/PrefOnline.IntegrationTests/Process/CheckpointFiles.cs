using System.Globalization;
using System.Text.Json;
using PrefOnline.Worker.Pipeline;

namespace PrefOnline.IntegrationTests.Process;

/// <summary>Reads a checkpoint store directory the way an operator's script would: pointers, manifests, the label audit, events.jsonl.</summary>
public static class CheckpointFiles
{
    public static long? Latest(string root) => Pointer(root, "latest");

    public static long? Good(string root) => Pointer(root, "good");

    private static long? Pointer(string root, string name)
    {
        var path = Path.Combine(root, name);
        if (!File.Exists(path)) return null;
        var text = File.ReadAllText(path).Trim();
        return text.StartsWith('v') && long.TryParse(text[1..], NumberStyles.None, CultureInfo.InvariantCulture, out var version) ? version : null;
    }

    public static string DirectoryName(long version) => $"v{version:D6}";

    public static CheckpointInfo Read(string root, long version)
    {
        var directory = Path.Combine(root, DirectoryName(version));
        using var document = JsonDocument.Parse(File.ReadAllText(Path.Combine(directory, "manifest.json")));
        var manifest = document.RootElement;
        var offsets = new Dictionary<string, IReadOnlyDictionary<int, long>>(StringComparer.Ordinal);
        foreach (var topic in manifest.GetProperty("offsets").EnumerateObject())
            offsets[topic.Name] = topic.Value.EnumerateObject().ToDictionary(p => int.Parse(p.Name, CultureInfo.InvariantCulture), p => p.Value.GetInt64());
        var metrics = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var metric in manifest.GetProperty("metrics").EnumerateObject())
            if (metric.Value.ValueKind == JsonValueKind.Number) metrics[metric.Name] = metric.Value.GetDouble();
        var parent = manifest.GetProperty("parent");
        return new CheckpointInfo(
            manifest.GetProperty("version").GetInt64(),
            parent.ValueKind == JsonValueKind.Null ? null : parent.GetInt64(),
            manifest.GetProperty("created").GetDateTimeOffset(),
            offsets, metrics, directory);
    }

    /// <summary>The latest checkpoint, or null while the store has none (or a write is switching the pointer).</summary>
    public static CheckpointInfo? TryReadLatest(string root)
    {
        try
        {
            return Latest(root) is { } latest ? Read(root, latest) : null;
        }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>The lineage of <paramref name="version"/>, oldest first (follows manifest parents).</summary>
    public static IReadOnlyList<CheckpointInfo> Lineage(string root, long version)
    {
        var chain = new List<CheckpointInfo>();
        for (long? next = version; next is { } v; next = chain[^1].Parent) chain.Add(Read(root, v));
        chain.Reverse();
        return chain;
    }

    /// <summary>The labels a checkpoint absorbed since its parent (Worker:AuditAbsorbedLabels); fails if the audit file is missing.</summary>
    public static IReadOnlyList<AbsorbedLabel> Audit(CheckpointInfo checkpoint)
    {
        var path = Path.Combine(checkpoint.Directory, LabelAudit.FileName);
        if (!File.Exists(path)) throw new InvalidOperationException($"{path} is missing: was Worker:AuditAbsorbedLabels on?");
        return LabelAudit.Parse(File.ReadAllText(path));
    }

    /// <summary>events.jsonl, oldest first.</summary>
    public static IReadOnlyList<JsonElement> Events(string root)
    {
        var path = Path.Combine(root, "events.jsonl");
        if (!File.Exists(path)) return [];
        return File.ReadAllLines(path).Where(l => l.Trim().Length > 0).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
    }
}
