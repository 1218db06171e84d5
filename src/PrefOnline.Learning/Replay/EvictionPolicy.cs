namespace PrefOnline.Learning.Replay;

/// <summary>What a full replay buffer does with a new item.</summary>
public enum EvictionPolicy : byte
{
    /// <summary>The oldest item leaves, the new one enters: the buffer holds the most recent data.</summary>
    Fifo = 0,

    /// <summary>Vitter's Algorithm R: the n-th item offered enters with probability capacity/n,
    /// replacing a uniformly chosen resident; otherwise it is rejected. The buffer stays a uniform
    /// sample of everything offered (useful when old data must keep a voice).</summary>
    Reservoir = 1,
}
