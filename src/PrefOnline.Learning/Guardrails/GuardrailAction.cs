namespace PrefOnline.Learning.Guardrails;

/// <summary>
/// What happens when the guardrail trips (as configured in <see cref="GuardrailOptions.Action"/>) and
/// what the worker must do now (as returned in <see cref="GuardrailDecision.Action"/>).
/// </summary>
public enum GuardrailAction
{
    /// <summary>Nothing to do (never a valid configured action).</summary>
    None = 0,
    /// <summary>Alert only: log and expose the trip; learning continues, but versions stop qualifying as <c>good</c> while tripped.</summary>
    Alert = 1,
    /// <summary>Stop applying updates (intake and generation continue) until resumed or <see cref="GuardrailOptions.PauseDuration"/> passes.</summary>
    PauseUpdates = 2,
    /// <summary>Roll back to the <c>good</c> checkpoint, publish a rollback event, resume learning from there; then call <see cref="Guardrail.RollbackCompleted"/>.</summary>
    Rollback = 3,
}
