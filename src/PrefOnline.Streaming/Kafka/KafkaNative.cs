using System.Reflection;
using System.Runtime.InteropServices;

namespace PrefOnline.Streaming.Kafka;

/// <summary>
/// Loads Debian's librdkafka for Confluent.Kafka 1.9.3 and for our own mock-cluster P/Invokes.
/// </summary>
/// <remarks>
/// WHY: the NuGet package librdkafka.redist is absent here, so Confluent.Kafka must find the system
/// library. Its default probe asks for "librdkafka" (which resolves only when librdkafka-dev's
/// unversioned symlink exists) and loads through "libdl" (absent as a plain name on glibc 2.36).
/// A DllImportResolver on both assemblies maps those names to their sonames
/// (ENVIRONMENT.md, "Kafka"). Every Kafka entry point of this library calls <see cref="EnsureLoaded"/>
/// first; it is idempotent and thread-safe.
/// </remarks>
public static class KafkaNative
{
    /// <summary>The soname of the librdkafka this project is built and tested against (Debian 12: 2.0.2).</summary>
    public const string LibrdkafkaSoname = "librdkafka.so.1";

    /// <summary>The command that installs the runtime library on Debian.</summary>
    public const string InstallHint = "apt-get install -y librdkafka1";

    private static readonly Lock Gate = new();
    private static bool loaded;

    /// <summary>Registers the resolvers and loads librdkafka; throws a clear error when it is missing.</summary>
    /// <exception cref="InvalidOperationException">librdkafka.so.1 cannot be loaded.</exception>
    public static void EnsureLoaded()
    {
        lock (Gate)
        {
            if (loaded) return;
            NativeLibrary.SetDllImportResolver(typeof(Confluent.Kafka.Library).Assembly, Resolve);
            NativeLibrary.SetDllImportResolver(typeof(KafkaNative).Assembly, Resolve);
            try
            {
                // No path: Confluent.Kafka's own probe runs, through our resolver.
                Confluent.Kafka.Library.Load();
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or InvalidOperationException)
            {
                throw new InvalidOperationException($"cannot load {LibrdkafkaSoname} ({e.Message}); install it with: {InstallHint}", e);
            }
            loaded = true;
        }
    }

    /// <summary>librdkafka's version string (e.g. "2.0.2"), loading the library if needed.</summary>
    public static string LibrdkafkaVersion
    {
        get
        {
            EnsureLoaded();
            return Confluent.Kafka.Library.VersionString;
        }
    }

    private static IntPtr Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        string[] candidates = libraryName switch
        {
            "librdkafka" or "librdkafka.so" => [LibrdkafkaSoname, "librdkafka.so"],
            "libdl" or "libdl.so" => ["libdl.so.2"],
            _ => [],
        };
        foreach (var candidate in candidates)
        {
            if (NativeLibrary.TryLoad(candidate, out var handle)) return handle;
        }
        // IntPtr.Zero hands the name back to the runtime's default probing.
        return IntPtr.Zero;
    }
}
