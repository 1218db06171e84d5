using PrefOnline.Deployment.Tests.Tools;
using Xunit.Abstractions;

namespace PrefOnline.Deployment.Tests.Lint;

/// <summary>yamllint (repository config .yamllint.yaml, strict) on the chart's static YAML and config/.</summary>
public sealed class YamlLintTests(ITestOutputHelper output)
{
    private static readonly string Config = Path.Combine(RepositoryPaths.Root, ".yamllint.yaml");

    public static IEnumerable<string> StaticYaml() =>
    [
        Path.Combine(RepositoryPaths.Chart, "Chart.yaml"),
        Path.Combine(RepositoryPaths.Chart, "values.yaml"),
        .. Directory.GetFiles(Path.Combine(RepositoryPaths.Chart, "ci"), "*.yaml"),
        .. Directory.GetFiles(RepositoryPaths.Config, "*.y*ml", SearchOption.AllDirectories),
        RepositoryPaths.AlertRuleTests,
        .. Directory.GetFiles(RepositoryPaths.InvalidValues, "*.yaml"),
        Config,
    ];

    [Fact]
    public async Task TheChartsStaticYamlAndConfigAreClean()
    {
        var files = StaticYaml().ToList();
        Assert.Contains(RepositoryPaths.AlertRules, files);
        var result = await ExternalTool.RunAsync(ExternalTool.YamlLint(), ["-c", Config, "-s", "-f", "parsable", .. files]);
        output.WriteLine($"{files.Count} files\n{result.Output}");
        Assert.True(result.ExitCode == 0, result.Output);
    }

    [Fact]
    public async Task YamlLintCatchesABrokenFileSoTheCheckAboveCanFail()
    {
        var file = Path.Combine(Directory.CreateTempSubdirectory("prefonline-yamllint-").FullName, "bad.yaml");
        await File.WriteAllTextAsync(file, "key: 1\nkey: 2\nlist:\n    - a\n  - b\n");
        var result = await ExternalTool.RunAsync(ExternalTool.YamlLint(), ["-c", Config, "-s", file]);
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("duplication of key", result.Output);
        File.Delete(file);
    }
}
