namespace PrefOnline.Streaming.Simulation;

/// <summary>Mean hidden utility (nats) of <see cref="Count"/> rollouts.</summary>
public readonly record struct UtilitySummary(long Count, double Mean);
