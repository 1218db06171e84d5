namespace PrefOnline.IntegrationTests.Process;

/// <summary>
/// The <c>prefonline</c> binary under test, as built: this test project references the worker project, so the
/// build copies <c>prefonline.dll</c> (with its runtimeconfig, appsettings.json and the native shim) next to
/// the tests; it runs under the <c>dotnet</c> host that runs the tests. $PREFONLINE_BINARY (an apphost or a
/// .dll) overrides it, e.g. to test a published build.
/// </summary>
public static class PrefOnlineBinary
{
    /// <summary>The program to start and the arguments that come before the verb.</summary>
    public static (string File, IReadOnlyList<string> Prefix) Command { get; } = Locate();

    public static IReadOnlyList<string> Arguments(params string[] verbAndOptions) => [.. Command.Prefix, .. verbAndOptions];

    private static (string, IReadOnlyList<string>) Locate()
    {
        var configured = Environment.GetEnvironmentVariable("PREFONLINE_BINARY");
        if (!string.IsNullOrEmpty(configured))
        {
            if (!File.Exists(configured)) throw new InvalidOperationException($"PREFONLINE_BINARY={configured} does not exist");
            return configured.EndsWith(".dll", StringComparison.Ordinal) ? (DotnetHost(), [configured]) : (configured, []);
        }
        var dll = Path.Combine(AppContext.BaseDirectory, "prefonline.dll");
        var runtimeConfig = Path.Combine(AppContext.BaseDirectory, "prefonline.runtimeconfig.json");
        if (!File.Exists(dll) || !File.Exists(runtimeConfig))
            throw new InvalidOperationException($"prefonline.dll (and its runtimeconfig) is not in {AppContext.BaseDirectory}: build the solution first (dotnet build PrefOnline.sln), or set PREFONLINE_BINARY");
        return (DotnetHost(), [dll]);
    }

    /// <summary>The dotnet host running these tests (so the binary runs on the same runtime).</summary>
    private static string DotnetHost()
    {
        var host = Environment.ProcessPath;
        if (host is not null && Path.GetFileNameWithoutExtension(host) == "dotnet") return host;
        var root = Environment.GetEnvironmentVariable("DOTNET_ROOT");
        if (!string.IsNullOrEmpty(root) && File.Exists(Path.Combine(root, "dotnet"))) return Path.Combine(root, "dotnet");
        return "dotnet";
    }
}
