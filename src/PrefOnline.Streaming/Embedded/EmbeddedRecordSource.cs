using System.Threading.Channels;
using PrefOnline.Streaming.Metrics;
using PrefOnline.Streaming.Transport;

namespace PrefOnline.Streaming.Embedded;

/// <summary>
/// A consumer-group member of an <see cref="EmbeddedBroker"/>, with the same <see cref="IRecordSource"/>
/// contract as the Kafka source (resume offsets asked on assignment, explicit commits, bounded channel).
/// Obtain one from <see cref="EmbeddedBroker.Subscribe"/>.
/// </summary>
public sealed class EmbeddedRecordSource : IRecordSource
{
    private readonly EmbeddedBroker broker;
    private readonly IResumeOffsetProvider resumeOffsets;
    private readonly Channel<ConsumedRecord> channel;
    private readonly CancellationTokenSource stopping = new();
    private readonly IDisposable? lagRegistration;
    private Task pump = Task.CompletedTask;
    private int closed;

    internal EmbeddedRecordSource(EmbeddedBroker broker, EmbeddedSourceOptions options, IResumeOffsetProvider resumeOffsets, StreamingMetrics? metrics)
    {
        this.broker = broker;
        this.resumeOffsets = resumeOffsets;
        GroupId = options.GroupId;
        OffsetReset = options.OffsetReset;
        Topics = options.Topics.Select(t => t.Trim()).Distinct(StringComparer.Ordinal).ToArray();
        channel = Channel.CreateBounded<ConsumedRecord>(new BoundedChannelOptions(options.ChannelCapacity) { SingleWriter = true, FullMode = BoundedChannelFullMode.Wait });
        lagRegistration = metrics?.TrackLag(this);
    }

    public string GroupId { get; }

    public IReadOnlyList<string> Topics { get; }

    public ChannelReader<ConsumedRecord> Records => channel.Reader;

    public IReadOnlyCollection<TopicPartitionId> Assignment => broker.GetAssignment(this);

    /// <summary>Always reachable: the broker is in this process.</summary>
    public BrokerReachability Reachability => BrokerReachability.Reachable;

    // Guarded by the broker's lock.
    internal Dictionary<TopicPartitionId, long> Positions { get; } = new();

    internal long JoinOrder { get; set; }

    internal int RoundRobin { get; set; }

    internal OffsetResetPolicy OffsetReset { get; }

    public Task CommitAsync(IReadOnlyCollection<ResumeOffset> offsets, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(offsets);
        foreach (var offset in offsets)
        {
            if (offset.NextOffset < 0) throw new ArgumentOutOfRangeException(nameof(offsets), $"resume offset {offset} is negative");
        }
        cancellationToken.ThrowIfCancellationRequested();
        broker.Commit(GroupId, offsets);
        return Task.CompletedTask;
    }

    public Task<IReadOnlyDictionary<TopicPartitionId, long?>> GetCommittedAsync(IReadOnlyCollection<TopicPartitionId> partitions, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(partitions);
        var committed = broker.GetCommitted(GroupId);
        IReadOnlyDictionary<TopicPartitionId, long?> result = partitions.ToDictionary(p => p, p => committed.TryGetValue(p, out var c) ? (long?)c : null);
        return Task.FromResult(result);
    }

    public IReadOnlyList<PartitionLag> GetLag() => broker.GetLag(this);

    public async Task CloseAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref closed, 1) == 1)
        {
            await pump.WaitAsync(cancellationToken).ConfigureAwait(false);
            return;
        }
        broker.Leave(this);
        await stopping.CancelAsync().ConfigureAwait(false);
        try
        {
            await pump.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            channel.Writer.TryComplete();
            lagRegistration?.Dispose();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await CloseAsync(CancellationToken.None).ConfigureAwait(false);
        stopping.Dispose();
    }

    internal long? AskResumeOffset(TopicPartitionId partition) => resumeOffsets.GetResumeOffset(partition);

    internal void StartPump() => pump = Task.Run(PumpAsync);

    private async Task PumpAsync()
    {
        var token = stopping.Token;
        try
        {
            while (!token.IsCancellationRequested)
            {
                if (!await channel.Writer.WaitToWriteAsync(token).ConfigureAwait(false)) return;
                var wait = broker.TryDeliverNext(this, channel.Writer.TryWrite);
                if (wait is not null) await wait.WaitAsync(token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
        }
        finally
        {
            channel.Writer.TryComplete();
        }
    }
}
