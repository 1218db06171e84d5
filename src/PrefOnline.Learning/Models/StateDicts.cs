using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Models;

/// <summary>
/// Copying named tensors into a module's state dict (torch's load_state_dict), stricter than
/// TorchSharp's: every problem is reported at once, and nothing is copied unless all checks pass (a
/// half-loaded model is worse than an error). Values are converted to the module's dtype and device
/// (float16 weights into a float32 model is a normal load; integers into floats is a wrong file).
/// </summary>
public static class StateDicts
{
    /// <param name="strict">The names must match exactly; shapes must always match.</param>
    public static void Load(nn.Module module, IReadOnlyDictionary<string, Tensor> source, bool strict = true)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(source);
        var own = module.state_dict();
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
            if (value is null || value.IsInvalid)
            {
                problems.Add($"{name}: the source tensor is {(value is null ? "null" : "disposed")}");
                continue;
            }
            if (!target.shape.SequenceEqual(value.shape))
                problems.Add($"{name}: shape [{string.Join(", ", value.shape)}] does not match the model's [{string.Join(", ", target.shape)}]");
            else if (is_floating_point(value.dtype) != is_floating_point(target.dtype))
                problems.Add($"{name}: dtype {value.dtype} cannot be loaded into the model's {target.dtype}");
        }
        if (problems.Count > 0)
            throw new InvalidDataException($"cannot load state into {module.GetType().Name}: {string.Join("; ", problems)}");
        using var noGrad = no_grad();
        foreach (var (name, target) in own)
            if (source.TryGetValue(name, out var value)) target.copy_(value);
    }

    /// <summary>Freezes (or unfreezes) every parameter: a frozen module records no autograd graph.</summary>
    public static void SetRequiresGrad(nn.Module module, bool requiresGrad)
    {
        foreach (var p in module.parameters()) p.requires_grad = requiresGrad;
    }

    /// <summary>Parameters (tied weights once).</summary>
    public static long ParameterCount(nn.Module module) => module.parameters().Sum(p => p.numel());

    // A GPT-2 checkpoint can hold hundreds of names; the first 20 tell what went wrong.
    private static string NameList(IReadOnlyList<string> names) =>
        string.Join(", ", names.Take(20)) + (names.Count > 20 ? $", … ({names.Count - 20} more)" : "");
}
