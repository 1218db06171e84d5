using Confluent.Kafka;
using PrefOnline.Streaming.Kafka;
using PrefOnline.MockKafka;

namespace PrefOnline.Streaming.Tests.Kafka;

/// <summary>
/// Which librdkafka runs (issue 13 item 8): the redist's 2.16 glibc build loaded from the build output, never a system
/// librdkafka (Debian's 2.0.2 is installed on the development machines as kcat's dependency), and its mock cluster API
/// answers too.
/// </summary>
public sealed class KafkaNativeTests
{
    [Fact]
    public void The_client_runs_librdkafka_2_16_from_the_redist_beside_the_assemblies()
    {
        Assert.StartsWith("2.16.", KafkaNative.LibrdkafkaVersion, StringComparison.Ordinal);
        Assert.Equal(0x0210, Library.Version >> 16); // 0xMMmmrrxx
        Assert.StartsWith("2.16.", KafkaNative.ClientVersion, StringComparison.Ordinal);
        Assert.Equal(KafkaNative.LibraryFileName, Path.GetFileName(KafkaNative.LibrdkafkaPath));
        Assert.Equal(Path.TrimEndingDirectorySeparator(Path.GetFullPath(AppContext.BaseDirectory)), Path.GetDirectoryName(KafkaNative.LibrdkafkaPath));
        // The process maps the redist's file and no other librdkafka.
        var mapped = File.ReadAllLines("/proc/self/maps").Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f.Length >= 6 && f[5].Contains("rdkafka", StringComparison.Ordinal)).Select(f => f[5]).Distinct().ToList();
        Assert.Equal([KafkaNative.LibrdkafkaPath], mapped);
    }

    [Fact]
    public void The_build_has_the_SASL_mechanisms_the_docs_promise_and_no_GSSAPI()
    {
        // config/README.md ("Kafka") promises PLAIN, SCRAM and OAUTHBEARER over TLS, and says Kerberos does not work.
        var features = KafkaNative.BuiltinFeatures;
        foreach (var feature in new[] { "ssl", "sasl_plain", "sasl_scram", "sasl_oauthbearer", "zstd", "lz4", "snappy", "gzip" })
            Assert.Contains(feature, features);
        Assert.DoesNotContain("sasl_gssapi", features);
    }

    [Fact]
    public void The_mock_cluster_api_is_exported_by_the_same_library()
    {
        using var cluster = MockKafkaCluster.Start(brokerCount: 1);
        Assert.StartsWith("127.0.0.1:", cluster.BootstrapServers, StringComparison.Ordinal);
    }
}
