using System.Text.Json;

namespace PrefOnline.Deployment.Tests.Tools;

/// <summary>YAML (one or many documents) to JSON, through Debian's PyYAML: there is no YAML library for .NET on this machine.</summary>
internal static class Yaml
{
    private const string Script =
        "import sys, json, yaml\n" +
        "docs = [d for d in yaml.safe_load_all(sys.stdin) if d is not None]\n" +
        "json.dump(docs, sys.stdout, sort_keys=True)\n";

    public static async Task<IReadOnlyList<JsonElement>> ParseAllAsync(string yaml)
    {
        var result = await ExternalTool.RunAsync(ExternalTool.PythonWithYaml(), ["-c", Script], stdin: yaml);
        if (result.ExitCode != 0)
        {
            if (result.StdErr.Contains("No module named 'yaml'"))
                throw new InvalidOperationException($"PyYAML is missing. Install it: {ExternalTool.AptInstall} python3-yaml");
            throw new InvalidOperationException($"YAML did not parse: {result.StdErr}");
        }
        return JsonDocument.Parse(result.StdOut).RootElement.EnumerateArray().Select(e => e.Clone()).ToList();
    }

    public static async Task<JsonElement> ParseAsync(string yaml) => (await ParseAllAsync(yaml)).Single();

    /// <summary>Canonical text of a JSON value (keys sorted recursively) for equality checks.</summary>
    public static string Canonical(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.Object => "{" + string.Join(",", element.EnumerateObject().OrderBy(p => p.Name, StringComparer.Ordinal)
            .Select(p => JsonSerializer.Serialize(p.Name) + ":" + Canonical(p.Value))) + "}",
        JsonValueKind.Array => "[" + string.Join(",", element.EnumerateArray().Select(Canonical)) + "]",
        _ => element.GetRawText(),
    };
}
