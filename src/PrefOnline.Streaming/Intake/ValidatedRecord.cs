using PrefOnline.Streaming.Contracts;
using PrefOnline.Streaming.Transport;

namespace PrefOnline.Streaming.Intake;

/// <summary>
/// A record that passed validation, with the raw record it came from. After absorbing it into durable
/// state call <see cref="OffsetTracker.Complete"/> with <see cref="Source"/> (the intake already began it).
/// </summary>
public sealed record ValidatedRecord(StreamRecord Record, ConsumedRecord Source);
