namespace PrefOnline.Worker.Observability.Health;

/// <summary>One check's verdict with the reason an operator reads in the /healthz or /readyz body.</summary>
public sealed record ProbeResult(string Name, bool Healthy, string Reason)
{
    public static ProbeResult Pass(string name, string reason) => new(name, true, reason);

    public static ProbeResult Fail(string name, string reason) => new(name, false, reason);
}
