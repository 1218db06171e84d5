namespace PrefOnline.Worker.Serving;

/// <summary>
/// A hand-off that did not succeed. <see cref="Transient"/>: worth another attempt (the server is unreachable, busy
/// or answered 5xx/408/429; a file system hiccup). Otherwise the same request would fail again (a 4xx, a server
/// answering <c>success: false</c>, a version whose files do not match its event): counted as <c>rejected</c> and shown
/// on /readyz until a later version succeeds.
/// </summary>
public sealed class ServingHandOffException(string message, bool transient, Exception? inner = null) : Exception(message, inner)
{
    public bool Transient { get; } = transient;
}
