using PrefOnline.Learning.Guardrails;

namespace PrefOnline.Worker.Observability.Health;

/// <summary>Not ready while a guardrail trip keeps the learner from applying updates; the body names the failing checks.</summary>
public sealed class GuardrailReadinessContributor(Guardrail guardrail) : IReadinessContributor
{
    public string Name => "guardrail";

    public Task<ProbeResult> CheckAsync(CancellationToken cancellationToken)
    {
        var status = guardrail.Status;
        if (!status.UpdatesPaused)
            return Task.FromResult(ProbeResult.Pass(Name, $"updates running (guardrail state {status.State.ToString().ToLowerInvariant()})"));
        return Task.FromResult(ProbeResult.Fail(Name, "updates paused by the guardrail: " + string.Join("; ", status.Reasons)));
    }
}
