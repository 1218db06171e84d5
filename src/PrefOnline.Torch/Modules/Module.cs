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

    /// <summary>
    /// Parameters by dotted name, depth first in registration order. A tensor registered under two
    /// names (tied weights) is listed once, under its first name, as torch's named_parameters() does:
    /// an optimiser must update it once per step, not twice.
    /// </summary>
    public IEnumerable<(string Name, Tensor Parameter)> NamedParameters(string prefix = "")
    {
        var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        foreach (var (name, tensor) in AllNamedParameters(prefix))
            if (seen.Add(tensor)) yield return (name, tensor);
    }

    /// <summary>Every (name, parameter) pair including tied duplicates: the state dict keeps every name.</summary>
    private IEnumerable<(string Name, Tensor Parameter)> AllNamedParameters(string prefix)
    {
        foreach (var (name, tensor) in parameters) yield return (prefix + name, tensor);
        foreach (var (name, child) in children)
        foreach (var item in child.AllNamedParameters($"{prefix}{name}.")) yield return item;
    }

    /// <summary>Direct and indirect children by dotted name (the module itself is not listed).</summary>
    public IEnumerable<(string Name, Module Module)> NamedModules(string prefix = "")
    {
        foreach (var (name, child) in children)
        {
            yield return (prefix + name, child);
            foreach (var item in child.NamedModules($"{prefix}{name}.")) yield return item;
        }
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
        foreach (var (name, p) in AllNamedParameters("")) state[name] = p;
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
            if (missing.Count > 0) problems.Add($"missing {missing.Count}: {NameList(missing)}");
            if (unexpected.Count > 0) problems.Add($"unexpected {unexpected.Count}: {NameList(unexpected)}");
        }
        foreach (var (name, target) in own)
        {
            if (!source.TryGetValue(name, out var value)) continue;
            if (value is null || value.IsDisposed)
            {
                problems.Add($"{name}: the source tensor is {(value is null ? "null" : "disposed")}");
                continue;
            }
            var (want, got) = (target.Shape, value.Shape);
            if (!want.SequenceEqual(got))
                problems.Add($"{name}: shape [{string.Join(", ", got)}] does not match the model's [{string.Join(", ", want)}]");
            else if (value.Dtype.IsFloatingPoint() != target.Dtype.IsFloatingPoint())
                // float16 weights into a float32 model is a normal load; integers into floats is a wrong file.
                problems.Add($"{name}: dtype {value.Dtype} cannot be loaded into the model's {target.Dtype}");
        }
        if (problems.Count > 0)
            throw new InvalidDataException($"cannot load state into {GetType().Name}: {string.Join("; ", problems)}");
        foreach (var (name, target) in own)
            if (source.TryGetValue(name, out var value)) target.CopyFrom(value);
    }

    /// <summary>Moves every parameter and buffer to <paramref name="device"/> in place (torch's module.to(device)):
    /// the tensors keep their identity, so optimisers built on them stay valid.</summary>
    public Module To(Device device)
    {
        device.EnsureAvailable();
        return Apply(t => t.To(device));
    }

    /// <summary>Converts every floating-point parameter and buffer to <paramref name="dtype"/> in place
    /// (module.half() / .bfloat16() / .float()); integer buffers keep their type, as in torch.</summary>
    public Module To(ScalarType dtype)
    {
        if (!dtype.IsFloatingPoint()) throw new ArgumentException($"modules convert to floating-point dtypes only, not {dtype}", nameof(dtype));
        return Apply(t => t.Dtype.IsFloatingPoint() ? t.To(dtype) : null);
    }

    private Module Apply(Func<Tensor, Tensor?> convert)
    {
        var all = AllNamedParameters("").Select(p => p.Parameter).Concat(NamedBuffers().Select(b => b.Buffer))
            .Distinct<Tensor>(ReferenceEqualityComparer.Instance).ToList();
        // Convert everything first, then swap: a failure half-way leaves the module as it was.
        using var scope = DisposeScope.Enter();
        var converted = all.Select(convert).ToList();
        for (var i = 0; i < all.Count; i++)
            if (converted[i] is { } c) all[i].SetData(c);
        return this;
    }

    // A GPT-2 checkpoint can hold hundreds of names; the first 20 tell what went wrong.
    private static string NameList(IReadOnlyList<string> names) =>
        string.Join(", ", names.Take(20)) + (names.Count > 20 ? $", … ({names.Count - 20} more)" : "");

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
