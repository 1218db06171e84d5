using System.Text.RegularExpressions;
using PrefOnline.Deployment.Tests.Tools;

namespace PrefOnline.Deployment.Tests.Lint;

/// <summary>
/// Every document a comment cites is in the repository (docs/ARCHITECTURE.md is the design a comment points
/// into): a citation such as <c>docs/OPERATIONS.md</c> or <c>README.md</c> in source, build files, the chart or
/// the scripts names a file that exists — by its path from the repository root, from the citing file's folder, or,
/// for a bare name, in the root, <c>docs/</c> or <c>config/</c>.
/// </summary>
public sealed partial class DocumentCitationTests
{
    private static readonly string[] Extensions = [".cs", ".csproj", ".props", ".targets", ".sh", ".yaml", ".yml", ".tpl", ".json", ".c", ".cpp", ".h"];

    private static readonly string[] SkippedFolders = ["bin", "obj", ".git", ".cache", "node_modules"];

    [GeneratedRegex(@"(?<![\w/.-])(?<path>[\w./-]*[A-Za-z0-9_-]+\.md)\b")]
    private static partial Regex Citation();

    [Fact]
    public void Every_cited_document_exists_in_the_repository()
    {
        var root = RepositoryPaths.Root;
        var missing = new List<string>();
        var checkedCitations = 0;
        foreach (var file in Files(root).Concat([Path.Combine(root, "Dockerfile"), Path.Combine(root, "dev.sh")]).Distinct())
        {
            var lines = File.ReadAllLines(file);
            for (var i = 0; i < lines.Length; i++)
            {
                foreach (Match match in Citation().Matches(lines[i]))
                {
                    var cited = match.Groups["path"].Value;
                    if (cited.Contains("://", StringComparison.Ordinal) || lines[i].Contains("http", StringComparison.Ordinal) && lines[i].Contains(cited + ")", StringComparison.Ordinal)) continue;
                    checkedCitations++;
                    if (!Exists(root, Path.GetDirectoryName(file)!, cited))
                        missing.Add($"{Path.GetRelativePath(root, file)}:{i + 1}: {cited}");
                }
            }
        }
        Assert.True(checkedCitations > 10, $"only {checkedCitations} citations found: is the scan looking at the right files?");
        Assert.True(missing.Count == 0, "documents cited but not in the repository:\n" + string.Join('\n', missing));
    }

    private static bool Exists(string root, string folder, string cited)
    {
        if (File.Exists(Path.Combine(root, cited)) || File.Exists(Path.Combine(folder, cited))) return true;
        if (cited.Contains('/', StringComparison.Ordinal)) return false;
        return File.Exists(Path.Combine(root, "docs", cited)) || File.Exists(Path.Combine(root, "config", cited));
    }

    private static IEnumerable<string> Files(string directory)
    {
        foreach (var file in Directory.EnumerateFiles(directory))
            if (Extensions.Contains(Path.GetExtension(file), StringComparer.Ordinal)) yield return file;
        foreach (var sub in Directory.EnumerateDirectories(directory))
        {
            if (SkippedFolders.Contains(Path.GetFileName(sub), StringComparer.Ordinal)) continue;
            foreach (var file in Files(sub)) yield return file;
        }
    }
}
