using PrefOnline.Worker.Observability.Health;

namespace PrefOnline.Worker.Guardrails;

/// <summary>/readyz's <c>guardrail</c> check for a guardrail created after start-up: passes until it exists, then fails while it pauses updates.</summary>
public sealed class HeldGuardrailReadinessContributor(GuardrailHolder holder) : IReadinessContributor
{
    public string Name => "guardrail";

    public Task<ProbeResult> CheckAsync(CancellationToken cancellationToken) =>
        holder.Current is { } guardrail
            ? new GuardrailReadinessContributor(guardrail).CheckAsync(cancellationToken)
            : Task.FromResult(ProbeResult.Pass(Name, "learner not started yet"));
}
