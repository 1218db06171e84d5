using PrefOnline.Streaming.Transport;

namespace PrefOnline.Worker.Pipeline;

/// <summary>One input of a pipeline epoch: its source and the tracker of what the state absorbed from it.</summary>
public sealed record EpochInput(string Name, IRecordSource Source, OffsetTracker Tracker);
