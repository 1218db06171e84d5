namespace PrefOnline.Worker.Checkpoints;

/// <summary>
/// The two pointer files as read from disk. A pointer that is absent is null with no problem; one that
/// exists but does not name a version is null and its problem is listed.
/// </summary>
public sealed record CheckpointPointers(long? Latest, long? Good, IReadOnlyList<string> Problems);
