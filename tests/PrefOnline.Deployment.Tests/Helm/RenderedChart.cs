using System.Text.Json;
using PrefOnline.Deployment.Tests.Tools;

namespace PrefOnline.Deployment.Tests.Helm;

/// <summary>The objects <c>helm template</c> renders for one set of values, parsed to JSON.</summary>
internal sealed class RenderedChart(IReadOnlyList<JsonElement> objects)
{
    public const string Release = "rel";

    public IReadOnlyList<JsonElement> Objects { get; } = objects;

    /// <summary>"Kind/name" of every object, sorted.</summary>
    public IReadOnlyList<string> Inventory => Objects.Select(o => $"{o.GetProperty("kind").GetString()}/{Name(o)}").Order(StringComparer.Ordinal).ToList();

    public static Task<RenderedChart> RenderAsync(params string[] valuesFiles) => RenderWithAsync(valuesFiles, []);

    /// <summary>Renders with values files and extra helm arguments (e.g. <c>--set key=value</c>).</summary>
    public static async Task<RenderedChart> RenderWithAsync(IEnumerable<string> valuesFiles, IEnumerable<string> extra)
    {
        var result = await TemplateAsync(valuesFiles, extra);
        Assert.True(result.ExitCode == 0, $"helm template failed:\n{result.Output}");
        return new RenderedChart(await Yaml.ParseAllAsync(result.StdOut));
    }

    public static Task<ToolResult> TemplateAsync(IEnumerable<string> valuesFiles, IEnumerable<string>? extra = null)
    {
        var arguments = new List<string> { "template", Release, RepositoryPaths.Chart, "--namespace", "ml" };
        foreach (var file in valuesFiles) arguments.AddRange(["-f", file]);
        arguments.AddRange(extra ?? []);
        return ExternalTool.RunAsync(ExternalTool.Helm(), arguments);
    }

    public JsonElement Get(string kind, string name) =>
        TryGet(kind, name) ?? throw new Xunit.Sdk.XunitException($"no {kind}/{name} among: {string.Join(", ", Inventory)}");

    public JsonElement? TryGet(string kind, string name)
    {
        foreach (var o in Objects)
        {
            if (o.GetProperty("kind").GetString() == kind && Name(o) == name) return o;
        }
        return null;
    }

    public IEnumerable<JsonElement> OfKind(string kind) => Objects.Where(o => o.GetProperty("kind").GetString() == kind);

    /// <summary>The pod templates of every workload (StatefulSet, Deployment).</summary>
    public IEnumerable<(string Workload, JsonElement PodSpec)> PodSpecs() =>
        Objects.Where(o => o.GetProperty("kind").GetString() is "StatefulSet" or "Deployment")
            .Select(o => (Name(o), o.GetProperty("spec").GetProperty("template").GetProperty("spec")));

    public static string Name(JsonElement o) => o.GetProperty("metadata").GetProperty("name").GetString()!;

    public static JsonElement Container(JsonElement podSpec) => podSpec.GetProperty("containers").EnumerateArray().Single();

    /// <summary>The container's environment: name → the variable's object (value or valueFrom).</summary>
    public static Dictionary<string, JsonElement> Env(JsonElement podSpec) =>
        Container(podSpec).GetProperty("env").EnumerateArray().ToDictionary(e => e.GetProperty("name").GetString()!, e => e);

    /// <summary>The pod template spec of a workload.</summary>
    public JsonElement Pod(string kind, string name) => Get(kind, name).GetProperty("spec").GetProperty("template").GetProperty("spec");

    public static IReadOnlyList<string> Strings(JsonElement array) => array.EnumerateArray().Select(e => e.GetString()!).ToList();
}
