using PrefOnline.Streaming.Transport;

namespace PrefOnline.Worker.Pipeline;

/// <summary>
/// Where the learner's sources resume on every assignment: what the state has absorbed (the tracker,
/// restored from the checkpoint and advanced as records are absorbed), and for a partition the state has
/// never absorbed from, offset 0 — the beginning (the broker resets an offset its retention has passed to
/// the earliest one). Never the group's committed offsets: those serve lag monitoring, and after a rollback
/// they are ahead of what the restored state absorbed.
/// </summary>
public sealed class CheckpointResume(OffsetTracker tracker) : IResumeOffsetProvider
{
    public long? GetResumeOffset(TopicPartitionId partition) => tracker.GetResumeOffset(partition) ?? 0;
}
