using System.Collections.Concurrent;
using Confluent.Kafka;
using PrefOnline.Streaming.Kafka;

namespace PrefOnline.IntegrationTests.Worker;

/// <summary>
/// The outside world reading a topic: a plain Confluent consumer (no group membership, nothing committed)
/// assigned to every partition from the beginning, collecting records in the background until disposed.
/// It reconnects by itself across a broker outage (fast reconnect settings).
/// </summary>
public sealed class TopicTail : IAsyncDisposable
{
    private readonly ConcurrentQueue<ConsumeResult<byte[], byte[]>> records = new();
    private readonly CancellationTokenSource stop = new();
    private readonly Task loop;

    public TopicTail(string bootstrap, string topic, int partitions)
    {
        KafkaNative.EnsureLoaded();
        Topic = topic;
        var config = new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            GroupId = "test-tail-" + Guid.NewGuid().ToString("N"),
            EnableAutoCommit = false,
            EnableAutoOffsetStore = false,
        };
        foreach (var (key, value) in WorkerCluster.FastReconnect()) config.Set(key, value);
        var consumer = new ConsumerBuilder<byte[], byte[]>(config).SetLogHandler((_, _) => { }).SetErrorHandler((_, _) => { }).Build();
        consumer.Assign(Enumerable.Range(0, partitions).Select(p => new TopicPartitionOffset(topic, p, Offset.Beginning)));
        // A blocking client loop on its own thread (Consume blocks; it must not hold a thread-pool thread).
        loop = Task.Factory.StartNew(() =>
        {
            try
            {
                while (!stop.IsCancellationRequested)
                {
                    var result = consumer.Consume(TimeSpan.FromMilliseconds(100));
                    if (result is { IsPartitionEOF: false, Message: not null }) records.Enqueue(result);
                }
            }
            finally
            {
                consumer.Dispose();
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    public string Topic { get; }

    public IReadOnlyList<ConsumeResult<byte[], byte[]>> Records => records.ToArray();

    public int Count => records.Count;

    /// <summary>Waits until <paramref name="condition"/> holds on the records read so far, or fails naming <paramref name="what"/>.</summary>
    public async Task<IReadOnlyList<ConsumeResult<byte[], byte[]>>> WaitForAsync(Func<IReadOnlyList<ConsumeResult<byte[], byte[]>>, bool> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (loop.IsFaulted) await loop;
            var snapshot = Records;
            if (condition(snapshot)) return snapshot;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"{Topic}: timed out after {timeout} waiting for {what} ({snapshot.Count} records read)");
            await Task.Delay(50);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync();
        await loop.WaitAsync(TimeSpan.FromSeconds(30));
        stop.Dispose();
    }
}
