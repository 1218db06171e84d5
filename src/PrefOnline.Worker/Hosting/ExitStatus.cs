namespace PrefOnline.Worker.Hosting;

/// <summary>
/// The exit code of <c>prefonline run</c>: 0 after a clean stop (SIGTERM, Ctrl-C, --duration), 1 after a fatal
/// error (the first one wins and is the line printed last), 2 for invalid configuration (decided before the host starts).
/// </summary>
public sealed class ExitStatus
{
    public const int Success = 0;
    public const int Fatal = 1;
    public const int InvalidConfiguration = 2;

    private int code;
    private string? reason;

    public int Code => Volatile.Read(ref code);

    public string? Reason => Volatile.Read(ref reason);

    /// <summary>Records a fatal error (the first one is kept).</summary>
    public void Fail(string why)
    {
        if (Interlocked.CompareExchange(ref code, Fatal, Success) == Success) Volatile.Write(ref reason, why);
    }
}
