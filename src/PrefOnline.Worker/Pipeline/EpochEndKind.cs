namespace PrefOnline.Worker.Pipeline;

/// <summary>Why a pipeline epoch ended.</summary>
public enum EpochEndKind
{
    /// <summary>The worker is stopping: write a final checkpoint and exit.</summary>
    Stop,

    /// <summary>An update was refused after it changed the weights: reload <c>latest</c> (no event: the served policy did not change).</summary>
    Reload,

    /// <summary>The guardrail asked for a rollback to <c>good</c>: move <c>latest</c> there, reload, publish a rollback event.</summary>
    GuardrailRollback,

    /// <summary>An operator's <c>prefonline checkpoint rollback</c> moved <c>latest</c>: reload it and publish.</summary>
    OperatorRollback,
}
