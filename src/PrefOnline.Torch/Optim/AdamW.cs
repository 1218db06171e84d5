using PrefOnline.Torch.Interop;

namespace PrefOnline.Torch.Optim;

/// <summary>
/// torch.optim.AdamW (decoupled weight decay), the same update as PyTorch 1.13 with amsgrad off:
///   p ← p·(1 − lr·λ);  m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;
///   p ← p − lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε).
/// The whole step over every parameter is one native call. State (m, v, t per parameter) is exposed
/// by name for checkpoints.
/// </summary>
public sealed class AdamW : IDisposable
{
    private readonly Tensor[] parameters;
    private readonly Tensor[] expAvg;
    private readonly Tensor[] expAvgSq;
    private readonly long[] steps;

    public AdamW(IReadOnlyList<Tensor> parameters, AdamWOptions options)
    {
        options.Validate();
        Options = options;
        this.parameters = parameters.ToArray();
        expAvg = new Tensor[this.parameters.Length];
        expAvgSq = new Tensor[this.parameters.Length];
        steps = new long[this.parameters.Length];
        for (var i = 0; i < this.parameters.Length; i++)
        {
            expAvg[i] = this.parameters[i].Detach().ZerosLike().DetachFromScope();
            expAvgSq[i] = this.parameters[i].Detach().ZerosLike().DetachFromScope();
        }
    }

    public AdamWOptions Options { get; }

    /// <summary>Learning rate; schedulers change it between steps.</summary>
    public double LearningRate { get; set; } = double.NaN;

    public IReadOnlyList<Tensor> Parameters => parameters;

    public unsafe void Step()
    {
        var lr = double.IsNaN(LearningRate) ? Options.LearningRate : LearningRate;
        var all = parameters.Concat(expAvg).Concat(expAvgSq).ToArray();
        var n = parameters.Length;
        var status = Tensor.WithHandles(all, raw =>
        {
            fixed (IntPtr* p = raw)
            fixed (long* s = steps)
                return NativeMethods.pt_adamw_step(p, p + n, p + 2 * n, s, n, lr, Options.Beta1, Options.Beta2, Options.Eps, Options.WeightDecay);
        });
        Tensor.Check(status, "adamw.step");
    }

    public void ZeroGrad()
    {
        foreach (var p in parameters) p.ClearGrad();
    }

    /// <summary>The optimiser state as named tensors, in parameter order: <c>{i}.exp_avg</c>,
    /// <c>{i}.exp_avg_sq</c> and <c>{i}.step</c> (int64 scalar). New tensors owned by the caller.</summary>
    public Dictionary<string, Tensor> StateDict()
    {
        var state = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        for (var i = 0; i < parameters.Length; i++)
        {
            state[$"{i}.exp_avg"] = expAvg[i].Clone();
            state[$"{i}.exp_avg_sq"] = expAvgSq[i].Clone();
            state[$"{i}.step"] = Tensor.Scalar(steps[i]);
        }
        return state;
    }

    /// <summary>Restores a state written by <see cref="StateDict"/> for the same parameter list.</summary>
    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> state)
    {
        var newSteps = new long[parameters.Length];
        for (var i = 0; i < parameters.Length; i++)
        {
            foreach (var key in new[] { $"{i}.exp_avg", $"{i}.exp_avg_sq", $"{i}.step" })
                if (!state.ContainsKey(key)) throw new InvalidDataException($"optimizer state lacks '{key}' ({parameters.Length} parameters expected)");
            if (!state[$"{i}.exp_avg"].Shape.SequenceEqual(expAvg[i].Shape) || !state[$"{i}.exp_avg_sq"].Shape.SequenceEqual(expAvgSq[i].Shape))
                throw new InvalidDataException($"optimizer state for parameter {i} has the wrong shape");
            newSteps[i] = state[$"{i}.step"].ToInt64();
        }
        if (state.Count != parameters.Length * 3)
            throw new InvalidDataException($"optimizer state holds {state.Count / 3} parameters, the model has {parameters.Length}");
        for (var i = 0; i < parameters.Length; i++)
        {
            expAvg[i].CopyFrom(state[$"{i}.exp_avg"]);
            expAvgSq[i].CopyFrom(state[$"{i}.exp_avg_sq"]);
        }
        Array.Copy(newSteps, steps, steps.Length);
    }

    public void Dispose()
    {
        foreach (var t in expAvg) t.Dispose();
        foreach (var t in expAvgSq) t.Dispose();
    }
}
