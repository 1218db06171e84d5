namespace PrefOnline.Torch;

/// <summary>
/// Frees every tensor created on this thread while it is the innermost scope, unless the tensor was
/// moved out (<see cref="Tensor.MoveToOuterScope"/>) or detached (<see cref="Tensor.DetachFromScope"/>).
/// The GC cannot see native memory, so a training loop without scopes grows until the finalizer
/// happens to run; with one scope per step it stays flat.
/// </summary>
/// <remarks>
/// Scopes are thread-bound, like libtorch's grad mode: a scope opened on one thread and disposed on
/// another is a bug and throws. All tensor work runs on the <see cref="TensorThread"/> anyway.
/// </remarks>
public sealed class DisposeScope : IDisposable
{
    [ThreadStatic] private static DisposeScope? current;

    private readonly List<Tensor> owned = new();
    private readonly int threadId = Environment.CurrentManagedThreadId;
    private bool disposed;

    private DisposeScope(DisposeScope? outer) => Outer = outer;

    /// <summary>The scope new tensors on this thread are registered in, if any.</summary>
    public static DisposeScope? Current => current;

    public DisposeScope? Outer { get; }

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
        tensor.OwningScope = this;
        owned.Add(tensor);
    }

    /// <summary>Moves the tensors out of this scope into its outer scope (or into no scope).</summary>
    public Tensor[] MoveToOuter(params Tensor[] tensors)
    {
        foreach (var t in tensors) t.MoveToOuterScope();
        return tensors;
    }

    public void Dispose()
    {
        if (disposed) return;
        if (Environment.CurrentManagedThreadId != threadId)
            throw new InvalidOperationException("a DisposeScope must be disposed on the thread that opened it");
        if (!ReferenceEquals(current, this))
            throw new InvalidOperationException("DisposeScopes must be disposed innermost first");
        disposed = true;
        current = Outer;
        foreach (var t in owned)
        {
            // A tensor moved elsewhere keeps its new owner; only what is still ours is freed.
            if (ReferenceEquals(t.OwningScope, this)) t.Dispose();
        }
        owned.Clear();
    }
}
