namespace PrefOnline.Learning.Replay;

/// <summary>What happened to the items a replay buffer was offered, since it was created (checkpointed with it).</summary>
/// <param name="Added">Items accepted into the buffer.</param>
/// <param name="Evicted">Residents pushed out by a new item because the buffer was full.</param>
/// <param name="Rejected">New items a full reservoir declined (never entered).</param>
/// <param name="Expired">Items removed because their policy version became too old.</param>
/// <param name="Exhausted">Items removed after their last allowed use.</param>
/// <param name="DrawnFresh">Draws of items never drawn before.</param>
/// <param name="DrawnReplayed">Draws of items drawn before.</param>
public readonly record struct ReplayCounters(long Added, long Evicted, long Rejected, long Expired, long Exhausted, long DrawnFresh, long DrawnReplayed);
