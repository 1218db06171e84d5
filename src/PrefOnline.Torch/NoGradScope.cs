using PrefOnline.Torch.Interop;

namespace PrefOnline.Torch;

/// <summary>
/// Disables autograd recording on this thread until disposed (torch.no_grad()). Grad mode is
/// thread-local in libtorch, so the scope must end on the thread that began it.
/// </summary>
public readonly struct NoGradScope : IDisposable
{
    private readonly bool previous;
    private readonly int threadId;

    private NoGradScope(bool previous)
    {
        this.previous = previous;
        threadId = Environment.CurrentManagedThreadId;
    }

    public static NoGradScope Enter()
    {
        var scope = new NoGradScope(NativeMethods.pt_grad_enabled() != 0);
        NativeMethods.pt_set_grad_enabled(0);
        return scope;
    }

    public static bool IsGradEnabled => NativeMethods.pt_grad_enabled() != 0;

    public void Dispose()
    {
        if (Environment.CurrentManagedThreadId != threadId)
            throw new InvalidOperationException("a NoGradScope must end on the thread that began it (grad mode is thread-local)");
        NativeMethods.pt_set_grad_enabled(previous ? 1 : 0);
    }
}
