using System.Threading.Channels;

namespace PrefOnline.Streaming.Transport;

/// <summary>
/// A consumer-group member reading raw records from one or more topics (Kafka or embedded: same contract).
/// </summary>
/// <remarks>
/// Delivery contract:
/// <list type="number">
/// <item>Sources are returned already running: a background loop reads records into the bounded
/// <see cref="Records"/> channel. When the caller stops reading, the channel fills and the source pauses
/// its partitions (backpressure) while staying in the group; memory stays bounded.</item>
/// <item>On every partition assignment the source asks its <see cref="IResumeOffsetProvider"/> where to
/// resume and starts exactly there (null: the group's committed offset, else the reset policy).</item>
/// <item>Within a partition records arrive in offset order, at least once. A record can be delivered
/// again only after a re-assignment (the resume offset moved back); callers that track absorbed offsets
/// (<see cref="OffsetTracker"/>) skip such replays and so absorb each record exactly once.</item>
/// <item>Nothing is committed automatically. <see cref="CommitAsync"/> is called by the owner only after
/// the state that absorbed those offsets is durable (checkpoint written); committed offsets serve the
/// group and lag monitoring, while restarts resume from the checkpoint through the provider.</item>
/// <item>Transient broker failures never end the loop: the client reconnects by itself and
/// <see cref="Reachability"/> reports the state. Only disposal ends it; then the channel completes.</item>
/// </list>
/// </remarks>
public interface IRecordSource : IAsyncDisposable
{
    /// <summary>The subscribed topics.</summary>
    IReadOnlyList<string> Topics { get; }

    /// <summary>Records in per-partition offset order. Completes when the source is closed or disposed.</summary>
    ChannelReader<ConsumedRecord> Records { get; }

    /// <summary>The partitions currently assigned to this member.</summary>
    IReadOnlyCollection<TopicPartitionId> Assignment { get; }

    BrokerReachability Reachability { get; }

    /// <summary>
    /// Commits resume offsets for the group and waits for the broker's acknowledgement.
    /// Call only after the state that absorbed everything before these offsets is durable.
    /// </summary>
    /// <exception cref="StreamingException">The commit was refused or timed out; nothing is lost: commit again later.</exception>
    Task CommitAsync(IReadOnlyCollection<ResumeOffset> offsets, CancellationToken cancellationToken);

    /// <summary>The group's committed resume offsets for these partitions (null entry: nothing committed).</summary>
    Task<IReadOnlyDictionary<TopicPartitionId, long?>> GetCommittedAsync(IReadOnlyCollection<TopicPartitionId> partitions, CancellationToken cancellationToken);

    /// <summary>Progress of every assigned partition; cheap (no broker round trip), safe from any thread.</summary>
    IReadOnlyList<PartitionLag> GetLag();

    /// <summary>Leaves the group cleanly (partitions are handed to other members at once) and completes <see cref="Records"/>.</summary>
    Task CloseAsync(CancellationToken cancellationToken);
}
