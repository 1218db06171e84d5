using System.Text.RegularExpressions;
using PrefOnline.Deployment.Tests.Tools;
using Xunit.Abstractions;

namespace PrefOnline.Deployment.Tests.Docker;

/// <summary>
/// No Docker engine runs here, so the Dockerfile is checked statically: its stages, user, entry point
/// and packages, and that its package lists agree with dev.sh and with what the built shim links.
/// </summary>
public sealed partial class DockerfileTests(ITestOutputHelper output)
{
    private static readonly string DockerfilePath = Path.Combine(RepositoryPaths.Root, "Dockerfile");
    /// <summary>dev.sh packages only tests and benchmarks need. A new dev.sh package fails the test below until it is
    /// classified: into the Dockerfile's build stage if building needs it, or here if only tests do.</summary>
    private static readonly string[] TestOnlyPackages = ["kcat", "python3-torch", "python3-regex", "prometheus", "yamllint", "unzip"];
    private static readonly string[] DotnetDependencies = ["ca-certificates", "libssl3", "zlib1g", "tzdata"];

    private static string Dockerfile => File.ReadAllText(DockerfilePath);

    /// <summary>Instructions with line continuations joined and comments removed.</summary>
    private static List<string> Instructions() =>
        Continuation().Replace(string.Join('\n', Dockerfile.Split('\n').Where(l => !l.TrimStart().StartsWith('#'))), " ")
            .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();

    private static List<string> Stage(string name)
    {
        var lines = Instructions();
        var start = lines.FindIndex(l => l.StartsWith("FROM ", StringComparison.Ordinal) && l.EndsWith($" AS {name}", StringComparison.Ordinal));
        Assert.True(start >= 0, $"no stage named {name}");
        var end = lines.FindIndex(start + 1, l => l.StartsWith("FROM ", StringComparison.Ordinal));
        return lines.GetRange(start, (end < 0 ? lines.Count : end) - start);
    }

    private static HashSet<string> AptPackages(IEnumerable<string> stage)
    {
        var packages = new HashSet<string>();
        foreach (var line in stage.Where(l => l.Contains("apt-get install")))
        {
            var list = line[(line.IndexOf("--no-install-recommends", StringComparison.Ordinal) + "--no-install-recommends".Length)..];
            list = list.Split("&&")[0];
            foreach (var word in list.Split(' ', StringSplitOptions.RemoveEmptyEntries)) packages.Add(word);
        }
        return packages;
    }

    private static HashSet<string> DevShPackages()
    {
        var devSh = File.ReadAllText(Path.Combine(RepositoryPaths.Root, "dev.sh"));
        var block = DevShApt().Match(devSh);
        Assert.True(block.Success, "APT_PACKAGES=( ... ) not found in dev.sh");
        return block.Groups[1].Value.Split('\n')
            .Select(l => l.Split('#')[0])
            .SelectMany(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .ToHashSet();
    }

    [Fact]
    public void TwoDebian12StagesBuildThenRun()
    {
        var froms = Instructions().Where(l => l.StartsWith("FROM ", StringComparison.Ordinal)).ToList();
        Assert.Contains("FROM debian:12-slim AS build", froms);
        Assert.Equal("FROM debian:12-slim AS runtime", froms[^1]);
        Assert.Contains(Stage("build"), l => l.StartsWith("RUN dotnet publish src/PrefOnline.Worker/PrefOnline.Worker.csproj -c Release", StringComparison.Ordinal));
        Assert.Contains(Stage("runtime"), l => l == "COPY --from=build /app /app");
    }

    [Fact]
    public void TheRuntimeRunsPrefonlineAsUid10001WithoutAHealthcheck()
    {
        var runtime = Stage("runtime");
        Assert.DoesNotContain(Instructions(), l => l.StartsWith("HEALTHCHECK", StringComparison.Ordinal));
        Assert.Equal("USER 10001:10001", runtime.Last(l => l.StartsWith("USER ", StringComparison.Ordinal)));
        Assert.Equal("ENTRYPOINT [\"/app/prefonline\"]", runtime.Single(l => l.StartsWith("ENTRYPOINT", StringComparison.Ordinal)));
        Assert.StartsWith("CMD [\"run\"", runtime.Single(l => l.StartsWith("CMD", StringComparison.Ordinal)));
        Assert.Contains(runtime, l => l.Contains("--uid 10001") && l.Contains("--gid 10001"));
        // Writable only where the chart mounts volumes: checkpoints and /tmp.
        Assert.Contains(runtime, l => l.Contains("chown -R 10001:10001 /var/lib/prefonline"));
        Assert.Contains(runtime, l => l == "VOLUME [\"/var/lib/prefonline\"]");
        Assert.Contains(runtime, l => l.StartsWith("ENV ", StringComparison.Ordinal) && l.Contains("HOME=/tmp") && l.Contains("TMPDIR=/tmp"));
    }

    [Fact]
    public void TheRuntimeHasLibtorchOpenBlasOpenmpAndLibrdkafkaAndSelectsOpenBlas()
    {
        var runtime = Stage("runtime");
        var packages = AptPackages(runtime);
        foreach (var required in new[] { "libtorch1.13", "libopenblas0-openmp", "librdkafka1" }) Assert.Contains(required, packages);
        Assert.DoesNotContain("libopenblas0-pthread", packages);
        Assert.DoesNotContain(packages, p => p.EndsWith("-dev", StringComparison.Ordinal));
        Assert.Contains(runtime, l => l.Contains("update-alternatives --set libblas.so.3-x86_64-linux-gnu /usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3"));
    }

    [Fact]
    public void TheBuildStageInstallsExactlyDevShsBuildPackages()
    {
        var devSh = DevShPackages();
        var build = AptPackages(Stage("build"));
        output.WriteLine($"dev.sh: {string.Join(' ', devSh)}\nDockerfile build: {string.Join(' ', build)}");
        var missing = devSh.Except(TestOnlyPackages).Except(build).Order().ToList();
        Assert.True(missing.Count == 0,
            $"dev.sh installs {string.Join(", ", missing)} but the Dockerfile's build stage does not: add them there if the build needs them, else to TestOnlyPackages in this test");
        var extra = build.Except(DotnetDependencies).Except(devSh).Order().ToList();
        Assert.True(extra.Count == 0, $"the Dockerfile's build stage installs {string.Join(", ", extra)} which dev.sh (the README's setup) does not");
    }

    [Fact]
    public async Task EveryLibraryTheBuiltShimLinksComesFromARuntimePackage()
    {
        var shim = Directory.GetFiles(Path.Combine(RepositoryPaths.Root, "src", "PrefOnline.Torch", "obj", "native"), "libprefonline_torch.so", SearchOption.AllDirectories)
            .OrderByDescending(File.GetLastWriteTimeUtc).FirstOrDefault();
        Assert.True(shim is not null, "build the solution first (dotnet build PrefOnline.sln): the native shim is not built");
        var readelf = await ExternalTool.RunAsync(ExternalTool.Require("readelf", $"{ExternalTool.AptInstall} binutils"), ["-d", shim!]);
        var needed = NeededLibrary().Matches(readelf.StdOut).Select(m => m.Groups[1].Value).ToList();
        Assert.Contains("libtorch.so.1.13", needed);
        var runtime = AptPackages(Stage("runtime")).Union(["libc6", "libgcc-s1", "libstdc++6"]).ToHashSet();
        foreach (var library in needed)
        {
            var owner = await ExternalTool.RunAsync("/usr/bin/dpkg", ["-S", $"*/{library}"]);
            var packages = owner.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(':')[0]).Distinct().ToList();
            output.WriteLine($"{library}: {string.Join(", ", packages)}");
            Assert.True(packages.Any(runtime.Contains), $"{library} comes from {string.Join(", ", packages)}, none of which the runtime stage installs");
        }
    }

    [Fact]
    public void TheBuildContextKeepsSourcesAndConfigButNotBuildOutput()
    {
        var ignore = File.ReadAllLines(Path.Combine(RepositoryPaths.Root, ".dockerignore")).Select(l => l.Trim()).Where(l => l != "" && !l.StartsWith('#')).ToList();
        foreach (var excluded in new[] { ".git", ".cache/", "**/bin/", "**/obj/" }) Assert.Contains(excluded, ignore);
        foreach (var copy in Instructions().Where(l => l.StartsWith("COPY ", StringComparison.Ordinal) && !l.StartsWith("COPY --from", StringComparison.Ordinal)))
        {
            var sources = copy.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1..^1];
            foreach (var source in sources)
            {
                Assert.True(File.Exists(Path.Combine(RepositoryPaths.Root, source)) || Directory.Exists(Path.Combine(RepositoryPaths.Root, source)), $"COPY source {source} does not exist");
                Assert.DoesNotContain(ignore, pattern => source.TrimEnd('/') == pattern.TrimEnd('/') || source.StartsWith(pattern.TrimEnd('/') + "/", StringComparison.Ordinal));
            }
        }
    }

    [GeneratedRegex(@"\\\s*\n\s*")]
    private static partial Regex Continuation();

    [GeneratedRegex(@"APT_PACKAGES=\((.*?)\n\)", RegexOptions.Singleline)]
    private static partial Regex DevShApt();

    [GeneratedRegex(@"\(NEEDED\)\s+Shared library: \[([^\]]+)\]")]
    private static partial Regex NeededLibrary();
}
