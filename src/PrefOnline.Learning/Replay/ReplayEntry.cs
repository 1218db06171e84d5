namespace PrefOnline.Learning.Replay;

/// <summary>An item as drawn from a replay buffer, with what the learner needs to know about it.</summary>
/// <param name="Item">The stored item.</param>
/// <param name="UpdateCount">The learner's update count of the policy that produced it (staleness = current update count − this; not the published version).</param>
/// <param name="Uses">Times it has been drawn, this draw included.</param>
/// <param name="Sequence">Its arrival number (0, 1, 2, … over the buffer's life).</param>
public readonly record struct ReplayEntry<T>(T Item, long UpdateCount, int Uses, long Sequence);
