namespace PrefOnline.Worker.Observability.Health;

/// <summary>
/// A /healthz check: failing means the process should be restarted (Kubernetes kills the container).
/// Only conditions a restart fixes belong here (a wedged tensor thread), never a dependency being down.
/// </summary>
public interface ILivenessProbe : IHealthProbe;
