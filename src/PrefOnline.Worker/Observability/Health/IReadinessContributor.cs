namespace PrefOnline.Worker.Observability.Health;

/// <summary>
/// A /readyz check: failing means "alive but not doing its job right now" (model not loaded yet, Kafka
/// unreachable, updates paused by a guardrail). Also drives <c>prefonline_ready</c>.
/// </summary>
public interface IReadinessContributor : IHealthProbe;
