namespace PrefOnline.Torch.Modules;

/// <summary>
/// A tree of named parameters, as torch.nn.Module: children registered under a name give the dotted
/// names of <see cref="NamedParameters"/> (for example <c>h.0.attn.c_attn.weight</c>), which are the
/// keys of the state dict and of safetensors files. Parameters live outside every
/// <see cref="DisposeScope"/> and are freed when the module is disposed.
/// </summary>
public abstract class Module : IDisposable
{
    private readonly List<(string Name, Tensor Tensor)> parameters = new();
    private readonly List<(string Name, Tensor Tensor)> buffers = new();
    private readonly List<(string Name, Module Module)> children = new();
    private bool disposed;

    /// <summary>Training mode (dropout active). Set recursively by <see cref="Train"/> / <see cref="Eval"/>.</summary>
    public bool Training { get; private set; } = true;

    /// <summary>Registers a trainable tensor: taken out of any scope and marked requires_grad.</summary>
    protected Tensor RegisterParameter(string name, Tensor tensor)
    {
        CheckName(name);
        tensor.DetachFromScope();
        tensor.RequiresGrad = true;
        parameters.Add((name, tensor));
        return tensor;
    }

    /// <summary>Registers a non-trainable tensor that is still part of the state dict.</summary>
    protected Tensor RegisterBuffer(string name, Tensor tensor)
    {
        CheckName(name);
        tensor.DetachFromScope();
        buffers.Add((name, tensor));
        return tensor;
    }

    protected T RegisterModule<T>(string name, T module) where T : Module
    {
        CheckName(name);
        children.Add((name, module));
        return module;
    }

    private void CheckName(string name)
    {
        if (string.IsNullOrEmpty(name) || name.Contains('.'))
            throw new ArgumentException($"'{name}' is not a valid member name (non-empty, no dots)");
        if (parameters.Any(p => p.Name == name) || buffers.Any(b => b.Name == name) || children.Any(c => c.Name == name))
            throw new ArgumentException($"'{name}' is already registered in {GetType().Name}");
    }

    public IEnumerable<(string Name, Tensor Parameter)> NamedParameters(string prefix = "")
    {
        foreach (var (name, tensor) in parameters) yield return (prefix + name, tensor);
        foreach (var (name, child) in children)
        foreach (var item in child.NamedParameters($"{prefix}{name}.")) yield return item;
    }

    public IEnumerable<(string Name, Tensor Buffer)> NamedBuffers(string prefix = "")
    {
        foreach (var (name, tensor) in buffers) yield return (prefix + name, tensor);
        foreach (var (name, child) in children)
        foreach (var item in child.NamedBuffers($"{prefix}{name}.")) yield return item;
    }

    public IReadOnlyList<Tensor> Parameters() => NamedParameters().Select(p => p.Parameter).ToList();

    public long ParameterCount() => NamedParameters().Sum(p => p.Parameter.NumberOfElements);

    /// <summary>Parameters and buffers by dotted name. The tensors are the module's own (not copies):
    /// read them, do not dispose them.</summary>
    public IReadOnlyDictionary<string, Tensor> StateDict()
    {
        var state = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, p) in NamedParameters()) state[name] = p;
        foreach (var (name, b) in NamedBuffers()) state[name] = b;
        return state;
    }

    /// <summary>
    /// Copies values into this module's tensors. With <paramref name="strict"/>, the names must match
    /// exactly; shapes must always match. Every problem is reported at once, and nothing is copied
    /// unless all checks pass (a half-loaded model is worse than an error).
    /// </summary>
    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> source, bool strict = true)
    {
        var own = StateDict();
        var problems = new List<string>();
        if (strict)
        {
            var missing = own.Keys.Where(k => !source.ContainsKey(k)).ToList();
            var unexpected = source.Keys.Where(k => !own.ContainsKey(k)).ToList();
            if (missing.Count > 0) problems.Add($"missing: {string.Join(", ", missing.Take(10))}{(missing.Count > 10 ? ", …" : "")}");
            if (unexpected.Count > 0) problems.Add($"unexpected: {string.Join(", ", unexpected.Take(10))}{(unexpected.Count > 10 ? ", …" : "")}");
        }
        foreach (var (name, target) in own)
        {
            if (!source.TryGetValue(name, out var value)) continue;
            var (want, got) = (target.Shape, value.Shape);
            if (!want.SequenceEqual(got))
                problems.Add($"{name}: shape [{string.Join(", ", got)}] does not match the model's [{string.Join(", ", want)}]");
        }
        if (problems.Count > 0)
            throw new InvalidDataException($"cannot load state into {GetType().Name}: {string.Join("; ", problems)}");
        foreach (var (name, target) in own)
            if (source.TryGetValue(name, out var value)) target.CopyFrom(value);
    }

    public void ZeroGrad()
    {
        foreach (var p in Parameters()) p.ClearGrad();
    }

    public Module Train(bool on = true)
    {
        Training = on;
        foreach (var (_, child) in children) child.Train(on);
        return this;
    }

    public Module Eval() => Train(false);

    /// <summary>Freezes (or unfreezes) every parameter: a frozen module records no autograd graph.</summary>
    public void SetRequiresGrad(bool requiresGrad)
    {
        foreach (var p in Parameters()) p.RequiresGrad = requiresGrad;
    }

    public virtual void Dispose()
    {
        if (disposed) return;
        disposed = true;
        foreach (var (_, t) in parameters) t.Dispose();
        foreach (var (_, t) in buffers) t.Dispose();
        foreach (var (_, c) in children) c.Dispose();
        GC.SuppressFinalize(this);
    }
}
