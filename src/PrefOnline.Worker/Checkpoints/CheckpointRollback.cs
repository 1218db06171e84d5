namespace PrefOnline.Worker.Checkpoints;

/// <summary>
/// The outcome of a rollback: <c>latest</c> moved From → To (From null if there was no pointer), and
/// <c>good</c> GoodFrom → GoodTo (GoodTo = To when <c>good</c> was newer than the target or off its line,
/// else unchanged; a store without <c>good</c> keeps none). <see cref="Changed"/> is false when both pointers already were where the rollback puts
/// them (nothing was written). <see cref="NextVersion"/> is the number the next write will get; its parent
/// will be To.
/// </summary>
public sealed record CheckpointRollback(long? From, long To, string Reason, DateTimeOffset Time, bool Changed, long NextVersion, long? GoodFrom, long? GoodTo);
