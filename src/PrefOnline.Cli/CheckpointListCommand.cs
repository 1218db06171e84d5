using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using PrefOnline.Worker.Checkpoints;

namespace PrefOnline.Cli;

/// <summary>
/// <c>prefonline checkpoint list --dir DIR [--quick] [--json]</c>: every version, newest first, with when
/// it was written, its parent, which pointers name it (and "abandoned" for versions a rollback left behind:
/// never loaded, never good again), its size, key metrics and whether it verifies. Exit 0 whatever the verdicts (use <c>verify</c> to gate on them).
/// </summary>
public static class CheckpointListCommand
{
    private const int MaxMetricsWidth = 60;

    public static Command Create()
    {
        var directory = new CheckpointCliDirectory();
        var quick = new Option<bool>("--quick") { Description = "Check manifests, file sets and sizes only; skip the SHA-256 of every file." };
        var json = new Option<bool>("--json") { Description = "Print the listing as JSON (all metrics and problems) instead of a table." };
        var command = new Command("list", "List the versions of a checkpoint store with their verification status.");
        directory.AddTo(command);
        command.Options.Add(quick);
        command.Options.Add(json);
        command.SetAction((parse, ct) => CliAction.RunAsync(async token =>
        {
            var root = directory.Resolve(parse, "checkpoint list");
            var reader = new CheckpointReader(root);
            var level = parse.GetValue(quick) ? CheckpointVerificationLevel.Quick : CheckpointVerificationLevel.Full;
            var rows = await reader.ListAsync(level, token);
            var pointers = reader.ReadPointers();
            var abandoned = await reader.AbandonedVersionsAsync(token);
            var warnings = Warnings(reader, pointers, rows);
            Console.Write(parse.GetValue(json) ? Json(root, pointers, rows, abandoned, warnings) : Table(root, pointers, rows, abandoned, warnings, level));
            return 0;
        }, ct));
        return command;
    }

    private static List<string> Warnings(CheckpointReader reader, CheckpointPointers pointers, IReadOnlyList<CheckpointSummary> rows)
    {
        var warnings = new List<string>(pointers.Problems);
        var present = rows.Select(r => r.Version).ToHashSet();
        if (pointers.Latest is { } latest && !present.Contains(latest)) warnings.Add($"'latest' names {CheckpointVersion.DirectoryName(latest)}, which does not exist");
        if (pointers.Good is { } good && !present.Contains(good)) warnings.Add($"'good' names {CheckpointVersion.DirectoryName(good)}, which does not exist");
        var (request, requestProblem) = reader.ReadRollbackRequest();
        if (request is not null) warnings.Add($"pending {request}; the running learner applies it before its next checkpoint");
        if (requestProblem is not null) warnings.Add($"{requestProblem} (the learner will drop it)");
        foreach (var leftover in reader.FindLeftovers())
            warnings.Add($"{leftover}: a write or deletion in progress, or left by a crash (the next writer removes it)");
        return warnings;
    }

    private static string Table(string root, CheckpointPointers pointers, IReadOnlyList<CheckpointSummary> rows, IReadOnlySet<long> abandoned, List<string> warnings, CheckpointVerificationLevel level)
    {
        var output = new StringBuilder();
        output.Append(CultureInfo.InvariantCulture,
            $"checkpoint store {root}: latest {Name(pointers.Latest)}, good {Name(pointers.Good)}, {rows.Count} version(s)\n");
        if (rows.Count > 0)
        {
            var table = new List<string[]> { new[] { "VERSION", "CREATED (UTC)", "PARENT", "POINTERS", "SIZE", "VERIFIED", "METRICS" } };
            foreach (var row in rows)
            {
                var marks = string.Join(",", new[] { row.IsLatest ? "latest" : null, row.IsGood ? "good" : null, abandoned.Contains(row.Version) ? "abandoned" : null, row.Manifest?.PublishOnly == true ? "publish-only" : null }.OfType<string>());
                table.Add(
                [
                    CheckpointVersion.DirectoryName(row.Version),
                    row.Manifest?.Created.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) ?? "?",
                    row.Manifest is null ? "?" : Name(row.Manifest.Parent),
                    marks.Length == 0 ? "-" : marks,
                    row.Manifest is null ? "?" : Size(row.Manifest.TotalBytes),
                    row.Verification.IsValid ? level == CheckpointVerificationLevel.Full ? "yes" : "quick" : "NO",
                    row.Manifest is null ? "" : Metrics(row.Manifest.Metrics),
                ]);
            }
            var widths = Enumerable.Range(0, table[0].Length).Select(c => table.Max(r => r[c].Length)).ToArray();
            foreach (var cells in table)
                output.Append(string.Join("  ", cells.Select((cell, c) => c == cells.Length - 1 ? cell : cell.PadRight(widths[c]))).TrimEnd()).Append('\n');
        }
        foreach (var row in rows.Where(r => !r.Verification.IsValid))
            output.Append(CultureInfo.InvariantCulture, $"invalid {CheckpointVersion.DirectoryName(row.Version)}: {row.Verification.Reason}\n");
        foreach (var warning in warnings) output.Append(CultureInfo.InvariantCulture, $"warning: {warning}\n");
        if (level == CheckpointVerificationLevel.Quick) output.Append("(quick: SHA-256 not checked; run without --quick or use 'checkpoint verify')\n");
        return output.ToString();
    }

    private static string Json(string root, CheckpointPointers pointers, IReadOnlyList<CheckpointSummary> rows, IReadOnlySet<long> abandoned, List<string> warnings)
    {
        var versions = new JsonArray();
        foreach (var row in rows)
        {
            var m = row.Manifest;
            versions.Add(new JsonObject
            {
                ["version"] = row.Version,
                ["directory"] = CheckpointVersion.DirectoryName(row.Version),
                ["created"] = m?.Created.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture),
                ["parent"] = m?.Parent,
                ["latest"] = row.IsLatest,
                ["good"] = row.IsGood,
                ["abandoned"] = abandoned.Contains(row.Version),
                ["size_bytes"] = m?.TotalBytes,
                ["own_bytes"] = m?.OwnBytes,
                ["publish_only"] = m?.PublishOnly ?? false,
                ["valid"] = row.Verification.IsValid,
                ["verification"] = row.Verification.Level == CheckpointVerificationLevel.Full ? "full" : "quick",
                ["problems"] = new JsonArray(row.Verification.Problems.Select(p => (JsonNode?)JsonValue.Create(p)).ToArray()),
                ["metrics"] = m is null ? null : new JsonObject(m.Metrics.Select(kv => KeyValuePair.Create(kv.Key, double.IsFinite(kv.Value) ? (JsonNode?)JsonValue.Create(kv.Value) : JsonValue.Create(kv.Value.ToString(CultureInfo.InvariantCulture))))),
            });
        }
        var document = new JsonObject
        {
            ["directory"] = root,
            ["latest"] = pointers.Latest,
            ["good"] = pointers.Good,
            ["versions"] = versions,
            ["warnings"] = new JsonArray(warnings.Select(w => (JsonNode?)JsonValue.Create(w)).ToArray()),
        };
        return document.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
    }

    private static string Name(long? version) => version is { } v ? CheckpointVersion.DirectoryName(v) : "-";

    private static string Metrics(IReadOnlyDictionary<string, double> metrics)
    {
        var text = string.Join(" ", metrics.Select(kv => string.Create(CultureInfo.InvariantCulture, $"{kv.Key}={kv.Value:G4}")));
        return text.Length <= MaxMetricsWidth ? text : text[..(MaxMetricsWidth - 1)] + "…";
    }

    internal static string Size(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double value = bytes;
        var unit = 0;
        while (value >= 1024 && unit < units.Length - 1)
        {
            value /= 1024;
            unit++;
        }
        return unit == 0 ? string.Create(CultureInfo.InvariantCulture, $"{bytes} B") : string.Create(CultureInfo.InvariantCulture, $"{value:F1} {units[unit]}");
    }
}
