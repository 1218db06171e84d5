namespace PrefOnline.Worker.Transport;

/// <summary>Where a source starts on a partition nothing (checkpoint, group commit) says anything about.</summary>
public enum SourceStart
{
    /// <summary>The oldest retained record: nothing produced before the worker started is lost.</summary>
    Earliest,

    /// <summary>Only records produced from now on.</summary>
    Latest,
}
