using PrefOnline.Torch.Interop;

namespace PrefOnline.Torch.Optim;

/// <summary>
/// torch.optim.AdamW (decoupled weight decay), the same update as PyTorch 1.13 with amsgrad off:
///   p ← p·(1 − lr·λ);  m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;
///   p ← p − lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε).
/// The whole step over every parameter is one native call (with <see cref="AdamWOptions.Fused"/>, one
/// pass over memory per parameter). A parameter without a gradient is
/// skipped (no decay, no step count), as in PyTorch. State (m, v, t per parameter) is exposed by
/// name for checkpoints and restores exactly: a resumed run continues bit for bit.
/// </summary>
public sealed class AdamW : IDisposable
{
    private readonly Tensor[] parameters;
    private readonly Tensor[] expAvg;
    private readonly Tensor[] expAvgSq;
    private readonly long[] steps;
    // parameters ++ exp_avg ++ exp_avg_sq: the handle list the native step takes, built once.
    private readonly Tensor[] all;
    private double learningRate;
    private bool disposed;

    public AdamW(IReadOnlyList<Tensor> parameters, AdamWOptions options)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        learningRate = options.LearningRate;
        this.parameters = parameters.ToArray();
        var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        foreach (var p in this.parameters)
        {
            ArgumentNullException.ThrowIfNull(p, nameof(parameters));
            if (!seen.Add(p)) throw new ArgumentException("a parameter appears twice in the list (tied weights must be passed once)", nameof(parameters));
            if (!p.Dtype.IsFloatingPoint()) throw new ArgumentException($"AdamW updates floating-point parameters, got {p.Dtype}", nameof(parameters));
        }
        expAvg = new Tensor[this.parameters.Length];
        expAvgSq = new Tensor[this.parameters.Length];
        steps = new long[this.parameters.Length];
        for (var i = 0; i < this.parameters.Length; i++)
        {
            var p = this.parameters[i];
            // Owned by the optimiser, outside every scope (disposed with it).
            expAvg[i] = Tensor.Zeros(p.Shape, p.Dtype, p.Device).DetachFromScope();
            expAvgSq[i] = Tensor.Zeros(p.Shape, p.Dtype, p.Device).DetachFromScope();
        }
        all = [.. this.parameters, .. expAvg, .. expAvgSq];
    }

    public AdamWOptions Options { get; }

    /// <summary>Learning rate of the next step (starts at <see cref="AdamWOptions.LearningRate"/>; schedulers change it).</summary>
    public double LearningRate
    {
        get => learningRate;
        set
        {
            if (!(value >= 0) || double.IsInfinity(value))
                throw new ArgumentOutOfRangeException(nameof(value), value, "learning rate must be a finite number >= 0");
            learningRate = value;
        }
    }

    public IReadOnlyList<Tensor> Parameters => parameters;

    /// <summary>Steps taken by parameter <paramref name="index"/> (PyTorch's state['step']).</summary>
    public long StepCount(int index) => steps[index];

    public unsafe void Step()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        var n = parameters.Length;
        var lr = learningRate;
        var o = Options;
        var status = Tensor.WithHandles(all, raw =>
        {
            fixed (IntPtr* p = raw)
            fixed (long* s = steps)
            {
                return o.Fused
                    ? NativeMethods.pt_adamw_step_fused(p, p + n, p + 2 * n, s, n, lr, o.Beta1, o.Beta2, o.Eps, o.WeightDecay)
                    : NativeMethods.pt_adamw_step(p, p + n, p + 2 * n, s, n, lr, o.Beta1, o.Beta2, o.Eps, o.WeightDecay);
            }
        });
        Tensor.Check(status, "adamw.step");
    }

    /// <summary>Drops every gradient (set-to-none, PyTorch's zero_grad(set_to_none=True)).</summary>
    public void ZeroGrad()
    {
        foreach (var p in parameters) p.ClearGrad();
    }

    /// <summary>The optimiser state as named tensors, in parameter order: <c>{i}.exp_avg</c>,
    /// <c>{i}.exp_avg_sq</c> (copies) and <c>{i}.step</c> (int64 scalar). New tensors owned by the
    /// caller (or the current scope); write them with SafeTensorsFile.</summary>
    public Dictionary<string, Tensor> StateDict()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        var state = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        for (var i = 0; i < parameters.Length; i++)
        {
            state[$"{i}.exp_avg"] = expAvg[i].Clone();
            state[$"{i}.exp_avg_sq"] = expAvgSq[i].Clone();
            state[$"{i}.step"] = Tensor.Scalar(steps[i]);
        }
        return state;
    }

    /// <summary>
    /// Restores a state written by <see cref="StateDict"/> for the same parameter list. Everything is
    /// checked first (names, shapes, dtypes, step counts); on any problem nothing changes.
    /// </summary>
    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> state)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        var problems = new List<string>();
        var newSteps = new long[parameters.Length];
        var expected = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < parameters.Length; i++)
        {
            foreach (var (key, own) in new[] { ($"{i}.exp_avg", expAvg[i]), ($"{i}.exp_avg_sq", expAvgSq[i]) })
            {
                expected.Add(key);
                if (!state.TryGetValue(key, out var t)) problems.Add($"'{key}' is missing");
                else if (!t.Shape.SequenceEqual(own.Shape))
                    problems.Add($"'{key}' has shape [{string.Join(", ", t.Shape)}], parameter {i} has [{string.Join(", ", own.Shape)}]");
                else if (!t.Dtype.IsFloatingPoint()) problems.Add($"'{key}' is {t.Dtype}, not floating point");
            }
            var stepKey = $"{i}.step";
            expected.Add(stepKey);
            if (!state.TryGetValue(stepKey, out var step)) problems.Add($"'{stepKey}' is missing");
            else if (step.NumberOfElements != 1 || step.Dtype.IsFloatingPoint() || step.Dtype == ScalarType.Bool)
                problems.Add($"'{stepKey}' must be one integer, got {step}");
            else if ((newSteps[i] = step.ToInt64()) < 0) problems.Add($"'{stepKey}' is negative ({newSteps[i]})");
        }
        var unexpected = state.Keys.Where(k => !expected.Contains(k)).ToList();
        if (unexpected.Count > 0)
            problems.Add($"unexpected entries (the state is for {parameters.Length} parameters?): {string.Join(", ", unexpected.Take(10))}");
        if (problems.Count > 0)
            throw new InvalidDataException($"cannot load AdamW state: {string.Join("; ", problems)}");
        for (var i = 0; i < parameters.Length; i++)
        {
            expAvg[i].CopyFrom(state[$"{i}.exp_avg"]);
            expAvgSq[i].CopyFrom(state[$"{i}.exp_avg_sq"]);
        }
        Array.Copy(newSteps, steps, steps.Length);
    }

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        foreach (var t in expAvg) t.Dispose();
        foreach (var t in expAvgSq) t.Dispose();
    }
}
