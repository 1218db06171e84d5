namespace PrefOnline.Torch;

/// <summary>
/// Frees every tensor created on this thread while it is the innermost scope, unless the tensor was
/// moved out (<see cref="Tensor.MoveToOuterScope"/>) or detached (<see cref="Tensor.DetachFromScope"/>).
/// The GC cannot see native memory, so a training loop without scopes grows until the finalizer
/// happens to run; with one scope per step it stays flat.
/// </summary>
/// <remarks>
/// Scopes are thread-bound, like libtorch's grad mode: a scope opened on one thread and disposed (or
/// a tensor moved out of it) on another is a bug and throws. All tensor work runs on the
/// <see cref="TensorThread"/> anyway. Disposing a scope that is not the innermost one throws too: an
/// inner scope was leaked (not disposed), and every tensor since went into it.
/// </remarks>
public sealed class DisposeScope : IDisposable
{
    // A long-lived scope (around a whole loop, receiving results moved out of per-step scopes) would
    // keep a reference to every tensor it ever saw; the list is compacted when it doubles.
    private const int MinimumCompactionSize = 1024;

    [ThreadStatic] private static DisposeScope? current;

    private readonly List<Tensor> owned = new();
    private readonly int threadId = Environment.CurrentManagedThreadId;
    private int compactAt = MinimumCompactionSize;
    private bool disposed;

    private DisposeScope(DisposeScope? outer) => Outer = outer;

    /// <summary>The scope new tensors on this thread are registered in, if any.</summary>
    public static DisposeScope? Current => current;

    public DisposeScope? Outer { get; }

    public bool IsDisposed => disposed;

    /// <summary>Tensors currently owned by this scope (for diagnostics and tests).</summary>
    public int OwnedCount => owned.Count(t => ReferenceEquals(t.OwningScope, this) && !t.IsDisposed);

    /// <summary>Opens a scope nested in the current one.</summary>
    public static DisposeScope Enter()
    {
        var scope = new DisposeScope(current);
        current = scope;
        return scope;
    }

    internal void Register(Tensor tensor)
    {
        EnsureOwnerThread("register a tensor in");
        if (disposed) throw new ObjectDisposedException(nameof(DisposeScope), "cannot move a tensor into a DisposeScope that was disposed");
        tensor.OwningScope = this;
        owned.Add(tensor);
        if (owned.Count >= compactAt)
        {
            owned.RemoveAll(t => !ReferenceEquals(t.OwningScope, this) || t.IsDisposed);
            compactAt = Math.Max(MinimumCompactionSize, owned.Count * 2);
        }
    }

    internal void EnsureOwnerThread(string action)
    {
        if (Environment.CurrentManagedThreadId != threadId)
            throw new InvalidOperationException(
                $"cannot {action} a DisposeScope from thread {Environment.CurrentManagedThreadId}: it belongs to thread {threadId} (scopes are thread-bound; run tensor work on the TensorThread)");
    }

    /// <summary>Moves the tensors out of this scope into its outer scope (or into no scope).</summary>
    public Tensor[] MoveToOuter(params Tensor[] tensors)
    {
        foreach (var t in tensors)
        {
            if (!ReferenceEquals(t.OwningScope, this))
                throw new InvalidOperationException($"{t} is not owned by this scope");
            t.MoveToOuterScope();
        }
        return tensors;
    }

    public void Dispose()
    {
        if (disposed) return;
        EnsureOwnerThread("dispose");
        if (!ReferenceEquals(current, this))
            throw new InvalidOperationException("DisposeScopes must be disposed innermost first (an inner scope was not disposed)");
        disposed = true;
        current = Outer;
        foreach (var t in owned)
        {
            // A tensor moved elsewhere keeps its new owner; only what is still ours is freed.
            if (ReferenceEquals(t.OwningScope, this))
            {
                t.OwningScope = null;
                t.Dispose();
            }
        }
        owned.Clear();
    }
}
