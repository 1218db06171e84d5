namespace PrefOnline.Learning.Online;

/// <summary>Totals the learning state keeps across restarts (in worker.json).</summary>
public sealed record OnlineLearnerCounters
{
    public long PromptsAbsorbed { get; init; }
    public long RolloutsAdmitted { get; init; }
    public long RolloutsScored { get; init; }
    public long RolloutsHumanScored { get; init; }
    public long RolloutsDropped { get; init; }
    public long PairsAbsorbed { get; init; }
    public long RatingsAbsorbed { get; init; }
    public long LabelsJoined { get; init; }
    public long LabelsUnjoined { get; init; }
    public long LabelsRefused { get; init; }
    public long UpdatesAccepted { get; init; }
}
