using PrefOnline.Streaming.Transport;

namespace PrefOnline.Worker.Transport;

/// <summary>
/// Where the worker's records come from and go to: Kafka (<see cref="KafkaStreamTransport"/>) or the
/// in-process broker (<see cref="EmbeddedStreamTransport"/>), behind the same source/sink contract
/// (src/PrefOnline.Streaming/README.md). One sink per process serves every output topic; sources are
/// made per input and per pipeline epoch (a rollback restarts intake from a checkpoint's offsets).
/// </summary>
public interface IStreamTransport : IAsyncDisposable
{
    /// <summary>True for the in-process broker (the demo).</summary>
    bool IsEmbedded { get; }

    /// <summary>The topic names in use.</summary>
    KafkaTopicsOptions Topics { get; }

    /// <summary>The process's one producer (rollouts, policy events, dead letters).</summary>
    IRecordSink Sink { get; }

    /// <summary>A running consumer-group member for <paramref name="topics"/>; on every assignment it resumes where <paramref name="resume"/> says.</summary>
    IRecordSource Subscribe(string groupId, IReadOnlyList<string> topics, IResumeOffsetProvider resume, SourceStart start = SourceStart.Earliest);

    /// <summary>The sink's and every live source's view of the broker (feeds /readyz).</summary>
    BrokerReachability Reachability { get; }
}
