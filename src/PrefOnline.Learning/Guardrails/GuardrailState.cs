namespace PrefOnline.Learning.Guardrails;

/// <summary>
/// The guardrail's state. The numeric values are the <c>prefonline_guardrail_state</c> gauge's
/// encoding and are part of the operator interface (alert rules compare against them): do not renumber.
/// </summary>
public enum GuardrailState
{
    /// <summary>0: every check passes.</summary>
    Ok = 0,
    /// <summary>1: a check is near its limit (drift score ≥ warning score, KL near budget, accuracy near floor, one non-finite update).</summary>
    Warning = 1,
    /// <summary>2: a check failed; the configured action applies and versions stop qualifying as <c>good</c>.</summary>
    Tripped = 2,
}
