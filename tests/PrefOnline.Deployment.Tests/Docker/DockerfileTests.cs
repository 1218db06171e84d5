using System.Text.RegularExpressions;
using PrefOnline.Deployment.Tests.Tools;
using Xunit.Abstractions;

namespace PrefOnline.Deployment.Tests.Docker;

/// <summary>
/// No Docker engine runs here, so the Dockerfile is checked statically: its stages (CPU by default, GPU
/// by a build argument, Ubuntu 24.04 bases whose libstdc++ TorchSharp's native library accepts), user,
/// entry point and packages, that its package lists agree with dev.sh, and that every library the
/// published tensor engine links is either published with it or part of the base system.
/// </summary>
public sealed partial class DockerfileTests(ITestOutputHelper output)
{
    private static readonly string DockerfilePath = Path.Combine(RepositoryPaths.Root, "Dockerfile");
    /// <summary>dev.sh packages only tests and benchmarks need. A new dev.sh package fails the test below until it is
    /// classified: into the Dockerfile's build stage if building needs it, or here if only tests do.</summary>
    private static readonly string[] TestOnlyPackages = ["kcat", "python3-torch", "python3-regex", "prometheus", "yamllint", "unzip"];
    private static readonly string[] DotnetDependencies = ["ca-certificates", "libssl3t64", "zlib1g", "tzdata"];

    /// <summary>Libraries every glibc-based base image provides (libc6, libgcc-s1, libstdc++6).</summary>
    private static readonly string[] BaseSystemLibraries =
        ["libc.so.6", "libm.so.6", "libdl.so.2", "librt.so.1", "libpthread.so.0", "ld-linux-x86-64.so.2", "libgcc_s.so.1", "libstdc++.so.6"];

    /// <summary>GLIBCXX of Ubuntu 24.04's libstdc++ (GCC 13/14): the newest version the images provide.</summary>
    private static readonly Version UbuntuNobleGlibcxx = new(3, 4, 33);

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

    /// <summary>The restore layer copies each project file before `dotnet restore`; a project missing there (a new
    /// tool project the CLI references, say) fails the image build only after the whole source is copied.</summary>
    [Fact]
    public void The_restore_layer_copies_every_source_project_before_restoring()
    {
        var build = Stage("build");
        var restore = build.FindIndex(l => l.StartsWith("RUN dotnet restore", StringComparison.Ordinal));
        Assert.True(restore >= 0, "no dotnet restore in the build stage");
        var copied = build.Take(restore).Where(l => l.StartsWith("COPY src/", StringComparison.Ordinal)).Select(l => l.Split(' ')[1]).ToHashSet();
        var projects = Directory.GetFiles(Path.Combine(RepositoryPaths.Root, "src"), "*.csproj", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(RepositoryPaths.Root, f).Replace('\\', '/')).Order().ToList();
        Assert.NotEmpty(projects);
        Assert.All(projects, p => Assert.Contains(p, copied));
    }

    [Fact]
    public void A_noble_build_stage_publishes_for_the_chosen_backend_and_the_runtime_follows_it()
    {
        var lines = Instructions();
        Assert.Contains("ARG TORCH_BACKEND=cpu", lines);
        Assert.Contains("FROM ${SDK_IMAGE} AS build", lines);
        var build = Stage("build");
        Assert.Contains("ARG TORCH_BACKEND", build);
        Assert.Contains(build, l => l.StartsWith("RUN dotnet restore src/PrefOnline.Cli/PrefOnline.Cli.csproj -p:TorchBackend=${TORCH_BACKEND}", StringComparison.Ordinal));
        Assert.Contains(build, l => l.StartsWith("RUN dotnet publish src/PrefOnline.Cli/PrefOnline.Cli.csproj -c Release -p:TorchBackend=${TORCH_BACKEND}", StringComparison.Ordinal)
                                     && l.Contains("test -f /app/libLibTorchSharp.so")
                                     && l.Contains("test -f /app/libPrefOnlineFinalizerGuard.so"));  // the guard TorchSharp must load through
        // MKL's vendor-check patch (README "MKL on AMD CPUs"): off by default, opt-in per image.
        Assert.Contains("ARG PATCH_MKL_VENDOR_CHECK=false", lines); // opt-in: it changes code in the bundled MKL
        Assert.Contains("ARG PATCH_MKL_VENDOR_CHECK", build);
        Assert.Contains(build, l => l.StartsWith("RUN dotnet publish", StringComparison.Ordinal) && l.Contains("-p:PatchMklVendorCheck=${PATCH_MKL_VENDOR_CHECK}"));
        // One runtime stage per backend, the final one chosen by the argument; both Ubuntu 24.04.
        Assert.Contains("FROM ${ASPNET_IMAGE} AS runtime-cpu", lines);
        Assert.Contains("FROM ${CUDA_RUNTIME_IMAGE} AS runtime-cuda", lines);
        Assert.Contains(Stage("runtime-cuda"), l => l == "COPY --from=dotnet-aspnet /usr/share/dotnet /usr/share/dotnet");
        var froms = lines.Where(l => l.StartsWith("FROM ", StringComparison.Ordinal)).ToList();
        Assert.Equal("FROM runtime-${TORCH_BACKEND} AS runtime", froms[^1]);
        Assert.Contains(Stage("runtime"), l => l == "COPY --from=build /app /app");
    }

    /// <summary>Issue 15: every external base image is pinned by digest, its tag readable beside it, and the
    /// Dockerfile names no image by a moving tag; all of them Ubuntu 24.04 (noble), whose libstdc++ TorchSharp needs.</summary>
    [Fact]
    public void Every_base_image_is_pinned_by_digest_with_its_tag_in_a_comment()
    {
        var text = File.ReadAllLines(DockerfilePath);
        var images = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < text.Length; i++)
        {
            var pin = Regex.Match(text[i], @"^ARG (?<name>[A-Z_]+_IMAGE)=(?<tag>[a-z0-9./-]+:[A-Za-z0-9._-]+)@sha256:(?<digest>[0-9a-f]{64})$");
            if (!pin.Success) continue;
            images[pin.Groups["name"].Value] = pin.Groups["tag"].Value;
            Assert.True(i > 0 && text[i - 1].StartsWith($"# {pin.Groups["tag"].Value}", StringComparison.Ordinal),
                $"the line before {text[i]} must be a comment starting with its tag");
        }
        Assert.Equal(["ASPNET_IMAGE", "CUDA_RUNTIME_IMAGE", "SDK_IMAGE"], images.Keys.Order(StringComparer.Ordinal));
        Assert.All(images.Values, tag => Assert.Matches("(noble|ubuntu24\\.04)$", tag));
        // Every FROM names a pinned argument or an earlier stage, never an image by tag.
        var stages = new HashSet<string>(StringComparer.Ordinal);
        foreach (var from in Instructions().Where(l => l.StartsWith("FROM ", StringComparison.Ordinal)))
        {
            var parts = from.Split(' ');
            var source = parts[1];
            Assert.True(source.StartsWith("${", StringComparison.Ordinal) && images.ContainsKey(source[2..^1]) || stages.Contains(source) || source == "runtime-${TORCH_BACKEND}",
                $"{from}: not a digest-pinned base image or an earlier stage");
            stages.Add(parts[^1]);
        }
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
    public void The_runtime_installs_no_system_librdkafka_no_development_packages_and_no_system_libtorch()
    {
        var packages = AptPackages(Stage("runtime"));
        // The Kafka client's librdkafka 2.16 is published into /app from librdkafka.redist; a system one is never loaded.
        Assert.DoesNotContain(packages, p => p.Contains("rdkafka", StringComparison.Ordinal));
        Assert.Contains(Stage("build"), l => l.StartsWith("RUN dotnet publish", StringComparison.Ordinal) && l.Contains("test -f /app/centos8-librdkafka.so"));
        Assert.DoesNotContain(packages, p => p.EndsWith("-dev", StringComparison.Ordinal));
        Assert.DoesNotContain(packages, p => p.Contains("libtorch", StringComparison.Ordinal) || p.Contains("openblas", StringComparison.Ordinal));
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

    /// <summary>
    /// The published tensor engine and Kafka client (the worker's build output, which is what `dotnet publish` copies)
    /// needs nothing beyond its own files and the base system, and no libstdc++ newer than Ubuntu 24.04's:
    /// so the images need no extra package and no patch.
    /// </summary>
    [Fact]
    public async Task Every_native_library_of_the_tensor_engine_and_the_kafka_client_links_only_published_or_base_system_libraries()
    {
        var bin = Path.Combine(RepositoryPaths.Root, "src", "PrefOnline.Cli", "bin", "Release", "net10.0");
        Assert.True(File.Exists(Path.Combine(bin, "libLibTorchSharp.so")), $"build the worker first (dotnet build -c Release): no libLibTorchSharp.so in {bin}");
        var readelf = ExternalTool.Require("readelf", $"{ExternalTool.AptInstall} binutils");
        var published = Directory.GetFiles(bin, "*.so*").Select(Path.GetFileName).ToHashSet();
        // centos8-librdkafka.so: the Kafka client's librdkafka (librdkafka.redist), OpenSSL and compression linked in.
        foreach (var library in new[] { "libPrefOnlineFinalizerGuard.so", "libLibTorchSharp.so", "libtorch_cpu.so", "libtorch.so", "libc10.so", "centos8-librdkafka.so" })
        {
            var dynamic = await ExternalTool.RunAsync(readelf, ["-d", Path.Combine(bin, library)]);
            var needed = NeededLibrary().Matches(dynamic.StdOut).Select(m => m.Groups[1].Value).ToList();
            output.WriteLine($"{library}: {string.Join(", ", needed)}");
            Assert.NotEmpty(needed);
            foreach (var dependency in needed)
                Assert.True(published.Contains(dependency) || BaseSystemLibraries.Contains(dependency),
                    $"{library} needs {dependency}, which is neither published beside it nor part of the base system");

            var versions = await ExternalTool.RunAsync(readelf, ["-V", Path.Combine(bin, library)]);
            var newest = GlibcxxVersion().Matches(versions.StdOut).Select(m => Version.Parse(m.Groups[1].Value)).DefaultIfEmpty(new Version(3, 4)).Max()!;
            Assert.True(newest <= UbuntuNobleGlibcxx, $"{library} needs GLIBCXX_{newest}, newer than Ubuntu 24.04's {UbuntuNobleGlibcxx}");
        }
    }

    /// <summary>The project's own kernels (src/PrefOnline.Kernels, built by the same publish with cmake
    /// and g++) link only the C and C++ runtimes, which every image has: nothing to install for them, and
    /// the build stage checks the library is published.</summary>
    [Fact]
    public async Task The_native_kernels_link_only_the_c_and_cpp_runtimes_and_are_published()
    {
        var bin = Path.Combine(RepositoryPaths.Root, "src", "PrefOnline.Cli", "bin", "Release", "net10.0");
        var kernels = Path.Combine(bin, "libprefonline_kernels.so");
        Assert.True(File.Exists(kernels), $"build the worker first (dotnet build -c Release): no libprefonline_kernels.so in {bin}");
        var readelf = ExternalTool.Require("readelf", $"{ExternalTool.AptInstall} binutils");
        var dynamic = await ExternalTool.RunAsync(readelf, ["-d", kernels]);
        var needed = NeededLibrary().Matches(dynamic.StdOut).Select(m => m.Groups[1].Value).ToHashSet();
        output.WriteLine(string.Join(", ", needed));
        Assert.NotEmpty(needed);
        Assert.Subset(new HashSet<string> { "ld-linux-x86-64.so.2", "libc.so.6", "libm.so.6", "libgcc_s.so.1", "libstdc++.so.6" }, needed);
        var build = Stage("build");
        Assert.Contains(build, l => l.StartsWith("RUN dotnet publish", StringComparison.Ordinal) && l.Contains("test -f /app/libprefonline_kernels.so"));
        Assert.Contains("COPY src/PrefOnline.Kernels/PrefOnline.Kernels.csproj src/PrefOnline.Kernels/", build);
        Assert.Contains("cmake", AptPackages(build));
        Assert.Contains("g++", AptPackages(build));
        Assert.Contains("cmake", DevShPackages());
        Assert.Contains("g++", DevShPackages());
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

    [GeneratedRegex(@"GLIBCXX_(\d+\.\d+\.\d+)")]
    private static partial Regex GlibcxxVersion();
}
