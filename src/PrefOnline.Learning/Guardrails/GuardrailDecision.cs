namespace PrefOnline.Learning.Guardrails;

/// <summary>
/// The guardrail's verdict on one update, and what the worker must do now.
/// </summary>
/// <param name="PolicyVersion">The evaluated version.</param>
/// <param name="State">State after this evaluation.</param>
/// <param name="Action">
/// What to do now: <see cref="GuardrailAction.None"/> (carry on), <see cref="GuardrailAction.Alert"/>
/// (a new trip under alert-only: log it at error level), <see cref="GuardrailAction.PauseUpdates"/>
/// (do not apply further updates; returned on every evaluation while paused), or
/// <see cref="GuardrailAction.Rollback"/> (roll back to <paramref name="RollbackTo"/>, publish the
/// rollback event, then call <see cref="Guardrail.RollbackCompleted"/>; returned until that call).
/// </param>
/// <param name="Reasons">Why, one line per failing or warning check; empty when everything passes.</param>
/// <param name="IsNewTrip">True on the evaluation that moved the state to Tripped.</param>
/// <param name="RejectUpdate">True when this update's metrics were not finite: do not checkpoint or publish this version.</param>
/// <param name="PromoteGood">When set, move the <c>good</c> pointer to this (already checkpointed) version, then report it with <see cref="Guardrail.GoodMarked"/>.</param>
/// <param name="RollbackTo">The <c>good</c> version to roll back to (set with <see cref="GuardrailAction.Rollback"/>; null if no version has qualified yet).</param>
public sealed record GuardrailDecision(
    long PolicyVersion,
    GuardrailState State,
    GuardrailAction Action,
    IReadOnlyList<string> Reasons,
    bool IsNewTrip,
    bool RejectUpdate,
    long? PromoteGood,
    long? RollbackTo);
