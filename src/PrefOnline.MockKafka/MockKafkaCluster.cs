using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Confluent.Kafka;
using PrefOnline.Streaming.Kafka;
using PrefOnline.Streaming.Kafka.Native;

namespace PrefOnline.MockKafka;

/// <summary>
/// An in-process Kafka cluster from librdkafka itself (rdkafka_mock.h): real Kafka protocol on
/// 127.0.0.1 ephemeral ports, idempotent produce, consumer groups with committed offsets, and fault
/// injection (request errors, brokers down/up, latency). It keeps nothing on disk and has no auth.
/// For tests, benchmarks and <c>prefonline mock-broker</c>; never a production broker.
/// </summary>
/// <remarks>
/// librdkafka needs a client handle for the cluster's book-keeping; we create a dummy producer that
/// never produces. Listening ports cannot be chosen (librdkafka's mock API has none): read
/// <see cref="BootstrapServers"/>. Dispose every client connected to the cluster before the cluster.
/// The mock API is experimental upstream; it is pinned with librdkafka.redist (Directory.Packages.props).
/// <para>
/// Port guard: <c>rd_kafka_mock_broker_set_up</c> re-binds the broker's old port and ABORTS the whole
/// process if that fails. While a broker is down its port would be free for any socket on the machine
/// (a parallel test's listener, another process's ephemeral port) to take, so <see cref="SetBrokerDown"/>
/// binds a placeholder socket to the port (bound, not listening: clients still get "connection
/// refused", exactly like a dead broker) and <see cref="SetBrokerUp"/> releases it immediately before
/// the re-bind.
/// </para>
/// </remarks>
public sealed unsafe class MockKafkaCluster : IDisposable
{
    /// <summary>Broker id meaning "every broker" for <see cref="SetBrokerDown"/>, <see cref="SetBrokerUp"/>, <see cref="SetRoundTripTime"/>.</summary>
    public const int AllBrokers = -1;

    private readonly Lock gate = new();
    private readonly Dictionary<int, Socket> portGuards = new(); // broker id -> placeholder socket while down
    private readonly IPEndPoint[] brokerEndpoints;                // index = broker id - 1
    private IntPtr handle;   // rd_kafka_t* (dummy producer)
    private IntPtr cluster;  // rd_kafka_mock_cluster_t*

    private MockKafkaCluster(IntPtr handle, IntPtr cluster, int brokerCount)
    {
        this.handle = handle;
        this.cluster = cluster;
        BrokerCount = brokerCount;
        BootstrapServers = Marshal.PtrToStringUTF8(LibRdKafka.MockClusterBootstraps(cluster))
                           ?? throw new InvalidOperationException("mock cluster returned no bootstrap servers");
        // The bootstrap list names the brokers in id order (1..N).
        brokerEndpoints = BootstrapServers.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(IPEndPoint.Parse).ToArray();
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

    /// <summary>Disconnects the broker and refuses new connections (no leader change); its port stays reserved (see remarks).</summary>
    public void SetBrokerDown(int brokerId = AllBrokers)
    {
        lock (gate)
        {
            Check(LibRdKafka.MockBrokerSetDown(Cluster(), brokerId), $"set broker {brokerId} down");
            foreach (var id in BrokerIds(brokerId))
            {
                if (portGuards.ContainsKey(id)) continue;
                var guard = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                try
                {
                    // SO_REUSEADDR: the broker's closed connections may linger in TIME_WAIT on this port.
                    guard.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
                    guard.Bind(brokerEndpoints[id - 1]);
                    portGuards[id] = guard;
                }
                catch (SocketException)
                {
                    // Already taken by someone else: nothing to guard; set_up will report it.
                    guard.Dispose();
                }
            }
        }
    }

    /// <summary>Makes the broker accept connections again on its old port.</summary>
    public void SetBrokerUp(int brokerId = AllBrokers)
    {
        lock (gate)
        {
            var cluster = Cluster();
            foreach (var id in BrokerIds(brokerId))
            {
                if (portGuards.Remove(id, out var guard)) guard.Dispose();
            }
            Check(LibRdKafka.MockBrokerSetUp(cluster, brokerId), $"set broker {brokerId} up");
        }
    }

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
            foreach (var guard in portGuards.Values) guard.Dispose();
            portGuards.Clear();
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

    private IEnumerable<int> BrokerIds(int brokerId)
    {
        if (brokerId == AllBrokers) return Enumerable.Range(1, brokerEndpoints.Length);
        if (brokerId < 1 || brokerId > brokerEndpoints.Length) throw new ArgumentOutOfRangeException(nameof(brokerId), brokerId, $"broker ids are 1..{brokerEndpoints.Length} (or {AllBrokers} for all)");
        return [brokerId];
    }

    private static void Check(int error, string what)
    {
        if (error != 0) throw new InvalidOperationException($"mock cluster: {what} failed: {LibRdKafka.DescribeError(error)}");
    }
}

/// <summary>Kafka protocol request types (the protocol's ApiKey numbers) used for fault injection.</summary>
public enum KafkaApiKey : short
{
    Produce = 0,
    Fetch = 1,
    ListOffsets = 2,
    Metadata = 3,
    OffsetCommit = 8,
    OffsetFetch = 9,
    FindCoordinator = 10,
    JoinGroup = 11,
    Heartbeat = 12,
    LeaveGroup = 13,
    SyncGroup = 14,
    ApiVersions = 18,
    InitProducerId = 22,
}
