using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Optimization;

/// <summary>
/// TorchSharp's AdamW (torch.optim.AdamW's single-tensor update, amsgrad off):
///   p ← p·(1 − lr·λ);  m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;
///   p ← p − lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε),
/// with what the learners need around it: options validated once, a settable learning rate, gradients
/// dropped to none (not zeroed) between steps, and the state (m, v, t per parameter) exported and
/// restored by name for checkpoints, so a resumed run continues bit for bit. The moments live on the
/// parameters' device in their dtype. A parameter without a gradient is skipped (no decay, no step
/// count), as in PyTorch.
/// </summary>
public sealed class AdamWOptimizer : IDisposable
{
    private readonly AdamW optimizer;
    private readonly Parameter[] parameters;
    private bool disposed;

    public AdamWOptimizer(IEnumerable<Parameter> parameters, AdamWOptions options)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        this.parameters = parameters.ToArray();
        var seen = new HashSet<Parameter>(ReferenceEqualityComparer.Instance);
        foreach (var p in this.parameters)
        {
            ArgumentNullException.ThrowIfNull(p, nameof(parameters));
            if (!seen.Add(p)) throw new ArgumentException("a parameter appears twice in the list (tied weights must be passed once)", nameof(parameters));
            if (!is_floating_point(p.dtype)) throw new ArgumentException($"AdamW updates floating-point parameters, got {p.dtype}", nameof(parameters));
        }
        optimizer = optim.AdamW(this.parameters, options.LearningRate, options.Beta1, options.Beta2, options.Eps, options.WeightDecay);
    }

    public AdamWOptions Options { get; }

    public IReadOnlyList<Parameter> Parameters => parameters;

    /// <summary>Learning rate of the next step (starts at <see cref="AdamWOptions.LearningRate"/>; schedules change it).</summary>
    public double LearningRate
    {
        get => optimizer.ParamGroups.First().LearningRate;
        set
        {
            if (!(value >= 0) || double.IsInfinity(value))
                throw new ArgumentOutOfRangeException(nameof(value), value, "learning rate must be a finite number >= 0");
            foreach (var group in optimizer.ParamGroups) group.LearningRate = value;
        }
    }

    /// <summary>Steps taken by parameter <paramref name="index"/> (PyTorch's state['step']).</summary>
    public long StepCount(int index) => States()[index].step;

    public void Step()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        using var scope = NewDisposeScope();
        optimizer.step();
    }

    /// <summary>Drops every gradient (set-to-none, PyTorch's zero_grad(set_to_none=True)): no gradient
    /// memory is held between steps.</summary>
    public void ZeroGrad()
    {
        foreach (var p in parameters) p.grad = null;
    }

    /// <summary>The optimizer state as named tensors, in parameter order: <c>{i}.exp_avg</c>,
    /// <c>{i}.exp_avg_sq</c> (copies) and <c>{i}.step</c> (int64 scalar). New tensors in the caller's
    /// dispose scope; write them with SafeTensorsFile.</summary>
    public Dictionary<string, Tensor> StateDict()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        var states = States();
        var state = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        for (var i = 0; i < parameters.Length; i++)
        {
            state[$"{i}.exp_avg"] = states[i].exp_avg.detach().clone();
            state[$"{i}.exp_avg_sq"] = states[i].exp_avg_sq.detach().clone();
            state[$"{i}.step"] = tensor(states[i].step);
        }
        return state;
    }

    /// <summary>
    /// Restores a state written by <see cref="StateDict"/> for the same parameter list (values convert to
    /// the parameters' device and dtype). Everything is checked first (names, shapes, dtypes, step counts);
    /// on any problem nothing changes.
    /// </summary>
    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> state)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        var states = States();
        var problems = new List<string>();
        var newSteps = new long[parameters.Length];
        var expected = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < parameters.Length; i++)
        {
            foreach (var (key, own) in new[] { ($"{i}.exp_avg", states[i].exp_avg), ($"{i}.exp_avg_sq", states[i].exp_avg_sq) })
            {
                expected.Add(key);
                if (!state.TryGetValue(key, out var t)) problems.Add($"'{key}' is missing");
                else if (!t.shape.SequenceEqual(own.shape))
                    problems.Add($"'{key}' has shape [{string.Join(", ", t.shape)}], parameter {i} has [{string.Join(", ", own.shape)}]");
                else if (!is_floating_point(t.dtype)) problems.Add($"'{key}' is {t.dtype}, not floating point");
            }
            var stepKey = $"{i}.step";
            expected.Add(stepKey);
            if (!state.TryGetValue(stepKey, out var step)) problems.Add($"'{stepKey}' is missing");
            else if (step.numel() != 1 || is_floating_point(step.dtype) || step.dtype == ScalarType.Bool)
                problems.Add($"'{stepKey}' must be one integer, got {step.dtype} [{string.Join(", ", step.shape)}]");
            else if ((newSteps[i] = step.ToInt64()) < 0) problems.Add($"'{stepKey}' is negative ({newSteps[i]})");
        }
        var unexpected = state.Keys.Where(k => !expected.Contains(k)).ToList();
        if (unexpected.Count > 0)
            problems.Add($"unexpected entries (the state is for {parameters.Length} parameters?): {string.Join(", ", unexpected.Take(10))}");
        if (problems.Count > 0)
            throw new InvalidDataException($"cannot load AdamW state: {string.Join("; ", problems)}");
        using var noGrad = no_grad();
        for (var i = 0; i < parameters.Length; i++)
        {
            states[i].exp_avg.copy_(state[$"{i}.exp_avg"]);
            states[i].exp_avg_sq.copy_(state[$"{i}.exp_avg_sq"]);
            states[i].step = newSteps[i];
        }
    }

    /// <summary>TorchSharp's per-parameter states, in parameter order (created with the optimizer).</summary>
    private AdamW.State[] States() => optimizer.state_dict().State.Cast<AdamW.State>().ToArray();

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        optimizer.Dispose();
    }
}
