namespace PrefOnline.Deployment.Tests.Tools;

/// <summary>Locations in the source tree (these tests check the files that ship, not build output).</summary>
internal static class RepositoryPaths
{
    public static string Root { get; } = FindRoot();

    public static string Chart => Path.Combine(Root, "helm", "prefonline");

    public static string Config => Path.Combine(Root, "config");

    public static string AlertRules => Path.Combine(Config, "prometheus", "prefonline-alerts.yml");

    public static string AlertRuleTests => Path.Combine(Root, "tests", "PrefOnline.Deployment.Tests", "promtool", "prefonline-alerts.test.yml");

    public static string InvalidValues => Path.Combine(Root, "tests", "PrefOnline.Deployment.Tests", "values");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "PrefOnline.sln"))) return dir.FullName;
        }
        throw new InvalidOperationException($"PrefOnline.sln not found above {AppContext.BaseDirectory}");
    }
}
