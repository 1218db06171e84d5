using PrefOnline.Learning.Guardrails;

namespace PrefOnline.Worker.Guardrails;

/// <summary>
/// The worker's one <see cref="Guardrail"/>, created by the learner once the checkpoint store is open (its
/// <c>good</c> pointer is the guardrail's starting point) rather than at host start. Readiness and metrics
/// read it through here; null until the learner has started (and in role generator).
/// </summary>
public sealed class GuardrailHolder
{
    private Guardrail? current;

    public Guardrail? Current => Volatile.Read(ref current);

    public void Set(Guardrail guardrail) => Volatile.Write(ref current, guardrail ?? throw new ArgumentNullException(nameof(guardrail)));
}
