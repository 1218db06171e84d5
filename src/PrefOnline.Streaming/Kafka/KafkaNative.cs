using System.Reflection;
using System.Runtime.InteropServices;
using PrefOnline.Streaming.Kafka.Native;

namespace PrefOnline.Streaming.Kafka;

/// <summary>
/// Loads the librdkafka that ships with the NuGet package librdkafka.redist (2.16) for Confluent.Kafka and for our own
/// mock-cluster P/Invokes, and never the system's.
/// </summary>
/// <remarks>
/// WHY: the redist's Linux x64 folder holds three builds. Its plain <c>librdkafka.so</c> links Cyrus SASL
/// (<c>libsasl2.so.3</c>), which Debian 12 and Ubuntu 24.04 do not have (they ship <c>libsasl2.so.2</c>);
/// <c>centos8-librdkafka.so</c> links only glibc (OpenSSL 3, zlib, zstd, lz4 and curl are static) and runs on both.
/// Left to itself, Confluent.Kafka asks the loader for "librdkafka", which finds a system librdkafka first where one
/// is installed (Debian's 2.0.2 lacks 2.16's entry points: EntryPointNotFoundException), and loads libdl by a name
/// glibc 2.34+ no longer provides. A DllImportResolver on both assemblies maps "librdkafka" to the centos8 file by
/// its full path and "libdl" to <c>libdl.so.2</c>. That build has no GSSAPI: SASL PLAIN, SCRAM and OAUTHBEARER work,
/// Kerberos does not (config/README.md, "Kafka"). Every Kafka entry point of this library calls
/// <see cref="EnsureLoaded"/> first; it is idempotent and thread-safe.
/// </remarks>
public static class KafkaNative
{
    /// <summary>The redist's glibc build without Cyrus SASL, published beside the assemblies (linux-x64).</summary>
    public const string LibraryFileName = "centos8-librdkafka.so";

    private static readonly Lock Gate = new();
    private static string? loadedPath;
    private static IntPtr handle;

    /// <summary>Registers the resolvers and loads librdkafka; throws a clear error when the redist's file is missing.</summary>
    /// <exception cref="InvalidOperationException">The library is not beside the assemblies or cannot be loaded.</exception>
    public static void EnsureLoaded()
    {
        lock (Gate)
        {
            if (loadedPath is not null) return;
            var path = FindLibrary() ?? throw new InvalidOperationException(
                $"cannot find {LibraryFileName} (the NuGet package librdkafka.redist, linux-x64) in {string.Join(" or ", SearchDirectories())}; build or publish for linux-x64");
            try
            {
                handle = NativeLibrary.Load(path);
                NativeLibrary.SetDllImportResolver(typeof(Confluent.Kafka.Library).Assembly, Resolve);
                NativeLibrary.SetDllImportResolver(typeof(KafkaNative).Assembly, Resolve);
                // No path: Confluent.Kafka binds its "librdkafka" imports, which our resolver answers with the handle above.
                Confluent.Kafka.Library.Load();
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException or InvalidOperationException)
            {
                throw new InvalidOperationException($"cannot load {path}: {e.Message}", e);
            }
            loadedPath = path;
        }
    }

    /// <summary>librdkafka's version string (e.g. "2.16.0"), loading the library if needed.</summary>
    public static string LibrdkafkaVersion
    {
        get
        {
            EnsureLoaded();
            return Confluent.Kafka.Library.VersionString;
        }
    }

    /// <summary>The file librdkafka was loaded from, loading it if needed.</summary>
    public static string LibrdkafkaPath
    {
        get
        {
            EnsureLoaded();
            return loadedPath!;
        }
    }

    /// <summary>
    /// What this librdkafka was compiled with (its <c>builtin.features</c>, e.g. "gzip, snappy, ssl, sasl, regex, ...,
    /// sasl_plain, sasl_scram, ..., sasl_oauthbearer, ...").
    /// </summary>
    public static unsafe IReadOnlyList<string> BuiltinFeatures
    {
        get
        {
            EnsureLoaded();
            var conf = LibRdKafka.ConfNew();
            try
            {
                const int capacity = 1024;
                var buffer = stackalloc byte[capacity];
                nuint size = capacity;
                if (LibRdKafka.ConfGet(conf, "builtin.features", buffer, &size) != LibRdKafka.ConfigOk || size > capacity)
                    throw new InvalidOperationException("librdkafka did not report builtin.features");
                return (Marshal.PtrToStringUTF8((IntPtr)buffer) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            }
            finally
            {
                LibRdKafka.ConfDestroy(conf);
            }
        }
    }

    /// <summary>Confluent.Kafka's assembly version (e.g. "2.16.0").</summary>
    public static string ClientVersion => typeof(Confluent.Kafka.Library).Assembly.GetName().Version?.ToString(3) ?? "unknown";

    private static IEnumerable<string> SearchDirectories()
    {
        // A RID-specific build or publish (Directory.Build.props: linux-x64) lays the native files flat beside the
        // assemblies; a portable one keeps the package's runtimes/ tree.
        var directories = new[] { AppContext.BaseDirectory, Path.GetDirectoryName(typeof(Confluent.Kafka.Library).Assembly.Location) };
        foreach (var directory in directories.Where(d => !string.IsNullOrEmpty(d)).Distinct())
        {
            yield return directory!;
            yield return Path.Combine(directory!, "runtimes", "linux-x64", "native");
        }
    }

    private static string? FindLibrary() =>
        SearchDirectories().Select(d => Path.Combine(d, LibraryFileName)).FirstOrDefault(File.Exists);

    private static IntPtr Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath) => libraryName switch
    {
        "librdkafka" or "librdkafka.so" or LibraryFileName => handle,
        "libdl" or "libdl.so" => NativeLibrary.TryLoad("libdl.so.2", out var libdl) ? libdl : IntPtr.Zero,
        // IntPtr.Zero hands the name back to the runtime's default probing.
        _ => IntPtr.Zero,
    };
}
