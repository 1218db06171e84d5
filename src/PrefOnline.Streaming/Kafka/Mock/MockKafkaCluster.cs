using System.Runtime.InteropServices;
using Confluent.Kafka;
using PrefOnline.Streaming.Kafka.Native;

namespace PrefOnline.Streaming.Kafka.Mock;

/// <summary>
/// An in-process Kafka cluster from librdkafka itself (rdkafka_mock.h): real Kafka protocol on
/// 127.0.0.1 ephemeral ports, idempotent produce, consumer groups with committed offsets, and fault
/// injection (request errors, brokers down/up, latency). It keeps nothing on disk and has no auth.
/// For tests, benchmarks and <c>prefonline mock-broker</c>; never a production broker.
/// </summary>
/// <remarks>
/// librdkafka needs a client handle for the cluster's book-keeping; we create a dummy producer that
/// never produces. Ports cannot be chosen (librdkafka 2.0.2 has no API for it): read
/// <see cref="BootstrapServers"/>. Dispose every client connected to the cluster before the cluster.
/// The mock API is experimental upstream; it is pinned by Debian's librdkafka 2.0.2.
/// </remarks>
public sealed unsafe class MockKafkaCluster : IDisposable
{
    /// <summary>Broker id meaning "every broker" for <see cref="SetBrokerDown"/>, <see cref="SetBrokerUp"/>, <see cref="SetRoundTripTime"/>.</summary>
    public const int AllBrokers = -1;

    private readonly Lock gate = new();
    private IntPtr handle;   // rd_kafka_t* (dummy producer)
    private IntPtr cluster;  // rd_kafka_mock_cluster_t*

    private MockKafkaCluster(IntPtr handle, IntPtr cluster, int brokerCount)
    {
        this.handle = handle;
        this.cluster = cluster;
        BrokerCount = brokerCount;
        BootstrapServers = Marshal.PtrToStringUTF8(LibRdKafka.MockClusterBootstraps(cluster))
                           ?? throw new InvalidOperationException("mock cluster returned no bootstrap servers");
    }

    /// <summary>Comma-separated <c>127.0.0.1:port</c> list for <c>bootstrap.servers</c>.</summary>
    public string BootstrapServers { get; }

    /// <summary>Number of brokers; their ids are 1..BrokerCount.</summary>
    public int BrokerCount { get; }

    /// <summary>Starts a mock cluster with <paramref name="brokerCount"/> brokers (ids 1..N).</summary>
    public static MockKafkaCluster Start(int brokerCount = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(brokerCount, 1);
        KafkaNative.EnsureLoaded();
        var conf = LibRdKafka.ConfNew();
        var errstr = stackalloc byte[512];
        // The dummy handle never connects anywhere: keep its logging to errors so it does not chatter.
        if (LibRdKafka.ConfSet(conf, "log_level", "3", errstr, 512) != LibRdKafka.ConfigOk)
        {
            LibRdKafka.ConfDestroy(conf);
            throw new InvalidOperationException($"rd_kafka_conf_set(log_level): {Marshal.PtrToStringUTF8((IntPtr)errstr)}");
        }
        var rk = LibRdKafka.New(LibRdKafka.ProducerType, conf, errstr, 512);
        if (rk == IntPtr.Zero)
        {
            LibRdKafka.ConfDestroy(conf);
            throw new InvalidOperationException($"rd_kafka_new failed: {Marshal.PtrToStringUTF8((IntPtr)errstr)}");
        }
        var mock = LibRdKafka.MockClusterNew(rk, brokerCount);
        if (mock == IntPtr.Zero)
        {
            LibRdKafka.Destroy(rk);
            throw new InvalidOperationException("rd_kafka_mock_cluster_new failed (could not bind 127.0.0.1 listeners?)");
        }
        return new MockKafkaCluster(rk, mock, brokerCount);
    }

    /// <summary>Creates a topic (the mock broker does not support the CreateTopics admin API).</summary>
    public void CreateTopic(string topic, int partitions, int replicationFactor = 1)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(topic);
        ArgumentOutOfRangeException.ThrowIfLessThan(partitions, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(replicationFactor, 1);
        Check(LibRdKafka.MockTopicCreate(Cluster(), topic, partitions, replicationFactor), $"create topic {topic}");
    }

    /// <summary>Disconnects the broker and refuses new connections (no leader change).</summary>
    public void SetBrokerDown(int brokerId = AllBrokers) => Check(LibRdKafka.MockBrokerSetDown(Cluster(), brokerId), $"set broker {brokerId} down");

    /// <summary>Makes the broker accept connections again.</summary>
    public void SetBrokerUp(int brokerId = AllBrokers) => Check(LibRdKafka.MockBrokerSetUp(Cluster(), brokerId), $"set broker {brokerId} up");

    /// <summary>Adds a round-trip delay to every response of the broker.</summary>
    public void SetRoundTripTime(TimeSpan rtt, int brokerId = AllBrokers)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rtt, TimeSpan.Zero);
        Check(LibRdKafka.MockBrokerSetRtt(Cluster(), brokerId, checked((int)rtt.TotalMilliseconds)), $"set broker {brokerId} rtt");
    }

    /// <summary>
    /// The next <c>errors.Length</c> requests of type <paramref name="api"/> fail with these errors, in order.
    /// <see cref="ErrorCode.Local_Transport"/> makes the broker drop the connection instead.
    /// </summary>
    public void PushRequestErrors(KafkaApiKey api, params ErrorCode[] errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        if (errors.Length == 0) return;
        var codes = new int[errors.Length];
        for (var i = 0; i < errors.Length; i++) codes[i] = (int)errors[i];
        fixed (int* p = codes) LibRdKafka.MockPushRequestErrorsArray(Cluster(), (short)api, (nuint)codes.Length, p);
    }

    /// <summary>Forgets every pending injected error for <paramref name="api"/>.</summary>
    public void ClearRequestErrors(KafkaApiKey api) => LibRdKafka.MockClearRequestErrors(Cluster(), (short)api);

    /// <summary>Makes metadata requests for <paramref name="topic"/> report <paramref name="error"/> (NoError clears it).</summary>
    public void SetTopicError(string topic, ErrorCode error) => LibRdKafka.MockTopicSetError(Cluster(), topic, (int)error);

    public void Dispose()
    {
        lock (gate)
        {
            if (cluster != IntPtr.Zero) LibRdKafka.MockClusterDestroy(cluster);
            if (handle != IntPtr.Zero) LibRdKafka.Destroy(handle);
            cluster = IntPtr.Zero;
            handle = IntPtr.Zero;
        }
    }

    private IntPtr Cluster()
    {
        lock (gate)
        {
            ObjectDisposedException.ThrowIf(cluster == IntPtr.Zero, this);
            return cluster;
        }
    }

    private static void Check(int error, string what)
    {
        if (error != 0) throw new InvalidOperationException($"mock cluster: {what} failed: {LibRdKafka.DescribeError(error)}");
    }
}
