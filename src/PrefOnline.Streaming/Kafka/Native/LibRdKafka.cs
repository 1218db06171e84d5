using System.Runtime.InteropServices;

namespace PrefOnline.Streaming.Kafka.Native;

/// <summary>
/// The few librdkafka C functions Confluent.Kafka does not wrap: client handle creation for the mock
/// cluster's book-keeping, reading a configuration property (builtin.features) and the mock cluster API itself.
/// Signatures follow rdkafka.h and rdkafka_mock.h of librdkafka 2.16 (librdkafka.redist). The mock API is marked
/// experimental upstream; the variadic rd_kafka_mock_push_request_errors is deliberately avoided in
/// favour of its array twin, because variadic calls are not portable through P/Invoke.
/// </summary>
internal static unsafe partial class LibRdKafka
{
    private const string Library = "librdkafka";

    internal const int ProducerType = 0; // RD_KAFKA_PRODUCER
    internal const int ConfigOk = 0;     // RD_KAFKA_CONF_OK

    [LibraryImport(Library, EntryPoint = "rd_kafka_conf_new")]
    internal static partial IntPtr ConfNew();

    [LibraryImport(Library, EntryPoint = "rd_kafka_conf_destroy")]
    internal static partial void ConfDestroy(IntPtr conf);

    [LibraryImport(Library, EntryPoint = "rd_kafka_conf_set", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int ConfSet(IntPtr conf, string name, string value, byte* errstr, nuint errstrSize);

    /// <remarks><paramref name="destSize"/> in: the buffer's size; out: the size the value needs, NUL included.</remarks>
    [LibraryImport(Library, EntryPoint = "rd_kafka_conf_get", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int ConfGet(IntPtr conf, string name, byte* dest, nuint* destSize);

    /// <remarks>On success the handle owns <paramref name="conf"/>; on failure the caller still does.</remarks>
    [LibraryImport(Library, EntryPoint = "rd_kafka_new")]
    internal static partial IntPtr New(int type, IntPtr conf, byte* errstr, nuint errstrSize);

    [LibraryImport(Library, EntryPoint = "rd_kafka_destroy")]
    internal static partial void Destroy(IntPtr rk);

    [LibraryImport(Library, EntryPoint = "rd_kafka_err2str")]
    internal static partial IntPtr ErrorToString(int error);

    [LibraryImport(Library, EntryPoint = "rd_kafka_mock_cluster_new")]
    internal static partial IntPtr MockClusterNew(IntPtr rk, int brokerCount);

    [LibraryImport(Library, EntryPoint = "rd_kafka_mock_cluster_destroy")]
    internal static partial void MockClusterDestroy(IntPtr cluster);

    [LibraryImport(Library, EntryPoint = "rd_kafka_mock_cluster_bootstraps")]
    internal static partial IntPtr MockClusterBootstraps(IntPtr cluster);

    [LibraryImport(Library, EntryPoint = "rd_kafka_mock_topic_create", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int MockTopicCreate(IntPtr cluster, string topic, int partitionCount, int replicationFactor);

    [LibraryImport(Library, EntryPoint = "rd_kafka_mock_broker_set_down")]
    internal static partial int MockBrokerSetDown(IntPtr cluster, int brokerId);

    [LibraryImport(Library, EntryPoint = "rd_kafka_mock_broker_set_up")]
    internal static partial int MockBrokerSetUp(IntPtr cluster, int brokerId);

    [LibraryImport(Library, EntryPoint = "rd_kafka_mock_broker_set_rtt")]
    internal static partial int MockBrokerSetRtt(IntPtr cluster, int brokerId, int rttMs);

    [LibraryImport(Library, EntryPoint = "rd_kafka_mock_push_request_errors_array")]
    internal static partial void MockPushRequestErrorsArray(IntPtr cluster, short apiKey, nuint count, int* errors);

    [LibraryImport(Library, EntryPoint = "rd_kafka_mock_clear_request_errors")]
    internal static partial void MockClearRequestErrors(IntPtr cluster, short apiKey);

    [LibraryImport(Library, EntryPoint = "rd_kafka_mock_topic_set_error", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial void MockTopicSetError(IntPtr cluster, string topic, int error);

    internal static string DescribeError(int error) => Marshal.PtrToStringUTF8(ErrorToString(error)) ?? $"error {error}";
}
