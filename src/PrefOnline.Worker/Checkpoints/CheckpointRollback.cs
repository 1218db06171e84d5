namespace PrefOnline.Worker.Checkpoints;

/// <summary>
/// The outcome of a rollback: <c>latest</c> moved From → To (From null if there was no pointer).
/// <see cref="Changed"/> is false when <c>latest</c> already named the target (nothing was written).
/// <see cref="NextVersion"/> is the number the next write will get; its parent will be To.
/// </summary>
public sealed record CheckpointRollback(long? From, long To, string Reason, DateTimeOffset Time, bool Changed, long NextVersion);
