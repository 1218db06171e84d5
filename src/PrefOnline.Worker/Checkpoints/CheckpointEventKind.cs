namespace PrefOnline.Worker.Checkpoints;

/// <summary>What an <see cref="CheckpointEvent"/> records; written in snake_case in <c>events.jsonl</c>.</summary>
public enum CheckpointEventKind
{
    /// <summary>A version became <c>latest</c> (Version, Parent).</summary>
    Commit,

    /// <summary><c>good</c> moved (From → To).</summary>
    MarkGood,

    /// <summary><c>latest</c> was moved to an existing version (From → To, Reason).</summary>
    Rollback,

    /// <summary>A requested rollback could not be applied (To, Reason says why); the request was dropped.</summary>
    RollbackRefused,

    /// <summary>A version was deleted (Version, Reason: retention).</summary>
    Delete,

    /// <summary>A writer removed what a crashed write left behind (Reason names it).</summary>
    Cleanup,
}
