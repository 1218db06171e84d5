using PrefOnline.Tensors;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Models.Adapters;

/// <summary>
/// LoRA adapters attached to a <see cref="PolicyModel"/> (or to a <see cref="Reward.RewardModel"/>'s trunk, see
/// <see cref="AttachToReward"/>): every targeted projection W (GPT-2's Conv1D,
/// the Llama family's Linear) gets a <see cref="LoraLayer"/> whose update is added by a forward hook,
/// y = W(x) + (α/r) · dropout(x) · Aᵀ · Bᵀ. The base weights are frozen (requires_grad off) and stay
/// the policy's own; only <see cref="TrainableParameters"/> train. <see cref="Disable"/> (or
/// <see cref="PolicyModel.WithoutAdapters"/>) runs the base model alone — the KL reference is the same
/// weights with the adapters off, never a second copy.
/// </summary>
/// <remarks>
/// The policy owns its adapters (<see cref="PolicyModel.Adapters"/>): placing the policy moves them,
/// disposing it disposes them (hooks removed, parameters freed). <see cref="MergeAndDetach"/> folds them
/// into the base weights and leaves a plain model. Module paths (<see cref="Paths"/>) are the policy's
/// own state-dict prefixes (GPT-2: h.0.attn.c_attn; Llama: model.layers.0.self_attn.q_proj); on a reward model
/// the reward model's (transformer.h.0.attn.c_attn; model.layers.0.self_attn.q_proj), and its score head stays
/// trainable beside the adapters.
/// </remarks>
public sealed class LoraAdapters : IDisposable
{
    private readonly nn.Module host;             // the adapted model: a policy, or a reward model
    private readonly PolicyModel? policy;        // the host when it is a policy
    private readonly Reward.RewardModel? reward; // the host when it is a reward model
    private readonly List<Site> sites;
    private readonly SeededDropout dropout;
    private readonly List<LoraLayer> layers;   // one per site; their native parameters move with the policy and are freed on Dispose
    private int disabledDepth;
    private string? baseSha256;
    private bool detached;

    private LoraAdapters(nn.Module host, LoraOptions options, IReadOnlyList<string> targets, List<Site> sites, Generator? init, ulong dropoutSeed)
    {
        this.host = host;
        policy = host as PolicyModel;
        reward = host as Reward.RewardModel;
        this.sites = sites;
        Options = options with { TargetModules = targets };
        dropout = new SeededDropout(dropoutSeed);
        using (no_grad())
            layers = sites.Select(s => new LoraLayer(s.InFeatures, s.OutFeatures, options.Rank, init)).ToList();
    }

    /// <summary>The options in force, <see cref="LoraOptions.TargetModules"/> resolved (never empty).</summary>
    public LoraOptions Options { get; }

    /// <summary>The policy these adapters belong to (adapters of a reward model have none).</summary>
    public PolicyModel Policy => policy ?? throw new InvalidOperationException("these adapters belong to a reward model, not a policy");

    /// <summary>The adapted projections' module paths in the policy's state dict, in model order.</summary>
    public IReadOnlyList<string> Paths => sites.Select(s => s.Path).ToList();

    /// <summary>False inside a <see cref="Disable"/> scope: the policy computes its base model alone.</summary>
    public bool Enabled => disabledDepth == 0;

    /// <summary>GPT-2 stores its projections as [in, out] (Conv1D): PEFT's fan_in_fan_out.</summary>
    public bool FanInFanOut => sites.Count > 0 && sites[0].IsConv1D;

    /// <summary>The generator adapter dropout draws from (its state belongs in a training checkpoint).</summary>
    public Generator DropoutGenerator => dropout.Generator;

    /// <summary>
    /// Attaches fresh adapters to <paramref name="policy"/> (which must have none): A drawn from
    /// <paramref name="seed"/>, B zero, so the policy computes exactly what it did; its base parameters
    /// are frozen. Unknown target names or a rank wider than a projection fail with every problem listed.
    /// </summary>
    public static LoraAdapters Attach(PolicyModel policy, LoraOptions options, ulong seed)
    {
        using var init = new Generator(seed);
        return Attach(policy, options, init, dropoutSeed: seed ^ 0x9E3779B97F4A7C15UL);
    }

    /// <summary><see cref="Attach(PolicyModel, LoraOptions, ulong)"/> with A left uninitialised: values
    /// are about to be copied in (a saved adapter).</summary>
    internal static LoraAdapters AttachForLoad(PolicyModel policy, LoraOptions options) => Attach(policy, options, init: null, dropoutSeed: 0);

    /// <summary>
    /// Attaches fresh adapters to <paramref name="reward"/>'s trunk (which must have none), as
    /// <see cref="Attach(PolicyModel, LoraOptions, ulong)"/> does to a policy: the trunk is frozen, the adapters
    /// and the score head train. The reward model owns them (<see cref="Reward.RewardModel.Adapters"/>).
    /// </summary>
    /// <param name="init">Draws A; null leaves A uninitialised because saved values are about to be copied in.</param>
    public static LoraAdapters AttachToReward(Reward.RewardModel reward, LoraOptions options, Generator? init, ulong dropoutSeed) =>
        Attach(reward, options, init, dropoutSeed);

    private static LoraAdapters Attach(nn.Module host, LoraOptions options, Generator? init, ulong dropoutSeed)
    {
        ArgumentNullException.ThrowIfNull(host);
        ArgumentNullException.ThrowIfNull(options);
        options.Validated();
        var (config, existing) = host switch
        {
            PolicyModel p => (p.Config, p.Adapters),
            Reward.RewardModel r => (r.Config, r.Adapters),
            _ => throw new ArgumentException($"{host.GetType().Name} cannot take LoRA adapters", nameof(host)),
        };
        if (existing is not null) throw new InvalidOperationException("the model already has adapters attached: dispose or merge them first");
        var projections = Projections(host);
        var known = projections.Select(p => p.Name).Distinct(StringComparer.Ordinal).ToList();
        var targets = options.TargetModules.Count == 0 ? known : options.TargetModules;
        var problems = new List<string>();
        var unknown = targets.Where(t => !known.Contains(t, StringComparer.Ordinal)).ToList();
        if (unknown.Count > 0)
            problems.Add($"TargetModules: {string.Join(", ", unknown)} {(unknown.Count == 1 ? "is not a projection" : "are not projections")} of this {config.ModelType} model (it has {string.Join(", ", known)})");
        var sites = projections.Where(p => targets.Contains(p.Name, StringComparer.Ordinal)).ToList();
        var narrowest = sites.Count == 0 ? 0 : sites.Min(s => Math.Min(s.InFeatures, s.OutFeatures));
        if (sites.Count > 0 && options.Rank > narrowest)
            problems.Add($"Rank: {options.Rank} exceeds the narrowest targeted projection's width {narrowest}");
        if (problems.Count > 0) throw new ArgumentException("invalid LoRA options:" + Environment.NewLine + string.Join(Environment.NewLine, problems));

        var adapters = new LoraAdapters(host, options, targets.ToList(), sites, init, dropoutSeed);
        try
        {
            adapters.PlacedAt(host is PolicyModel p ? p.Placement : ((Reward.RewardModel)host).Placement);
            for (var i = 0; i < sites.Count; i++) sites[i].Hook = sites[i].Module.register_forward_hook(adapters.HookFor(i));
            if (adapters.policy is not null) adapters.policy.Adapters = adapters;
            else adapters.reward!.Adapters = adapters;
            return adapters;
        }
        catch
        {
            adapters.Dispose();
            throw;
        }
    }

    /// <summary>The parameters an optimizer should update: every lora_A and lora_B (look them up again
    /// after placing the policy: moving replaces parameter objects).</summary>
    public IReadOnlyList<Parameter> TrainableParameters() => layers.SelectMany(l => new[] { l.A, l.B }).ToList();

    /// <summary>Adapter parameters in total.</summary>
    public long ParameterCount => TrainableParameters().Sum(p => p.numel());

    /// <summary>Turns the adapters off until the returned scope is disposed (scopes nest).</summary>
    public IDisposable Disable()
    {
        ThrowIfDetached();
        disabledDepth++;
        return new DisabledScope(this);
    }

    /// <summary>A (the down projection, [r, in]) and B (the up projection, [out, r]) of each adapted
    /// path, as held (not copies).</summary>
    public IReadOnlyList<(string Path, Parameter A, Parameter B)> Pairs() =>
        sites.Select((s, i) => (s.Path, layers[i].A, layers[i].B)).ToList();

    /// <summary>
    /// sha256 of the base weights the adapters were attached to (see <see cref="BaseWeights.Sha256"/>),
    /// computed once: the base is frozen while adapters are attached.
    /// </summary>
    public string BaseWeightsSha256()
    {
        ThrowIfDetached();
        return baseSha256 ??= BaseWeights.Sha256(Policy);
    }

    /// <summary>
    /// Adds (α/r)·B·A into <paramref name="target"/>'s weights at the same paths (transposed for
    /// GPT-2's [in, out] Conv1D): a plain model computing what the adapted policy computes. The target
    /// must be another model of the same config (e.g. <see cref="PolicyModel.Copy"/> of the base).
    /// </summary>
    public void MergeInto(PolicyModel target)
    {
        ArgumentNullException.ThrowIfNull(target);
        ThrowIfDetached();
        if (ReferenceEquals(target, Policy)) throw new ArgumentException("merging into the adapted policy itself would count the update twice: use MergeAndDetach", nameof(target));
        if (target.Config != Policy.Config) throw new ArgumentException($"the target's config differs from the adapted policy's ({target.Config.ModelType})", nameof(target));
        var modules = target.named_modules().ToDictionary(m => m.name, m => m.module, StringComparer.Ordinal);
        var resolved = sites.Select(s => modules.TryGetValue(s.Path, out var m) && m is nn.Module<Tensor, Tensor> projection
            ? projection
            : throw new ArgumentException($"the target has no projection {s.Path}", nameof(target))).ToList();
        for (var i = 0; i < sites.Count; i++) AddUpdate(resolved[i], i);
    }

    /// <summary>Folds the update into the policy's own base weights, then detaches and disposes these
    /// adapters: the policy is a plain model again (its parameters trainable again).</summary>
    public void MergeAndDetach()
    {
        ThrowIfDetached();
        for (var i = 0; i < sites.Count; i++) AddUpdate(sites[i].Module, i);
        Dispose();
    }

    /// <summary>Moves the adapters where the host was just moved (called by the policy's or reward model's placement;
    /// moving replaces parameter objects, so the base is frozen again and the adapters — and a reward model's score
    /// head — made trainable again).</summary>
    internal void PlacedAt(TensorPlacement placement)
    {
        foreach (var layer in layers) layer.to(placement.Device, placement.Dtype);
        foreach (var p in TrainableParameters()) p.requires_grad = true;
        StateDicts.SetRequiresGrad(host, false);
        if (reward is not null) StateDicts.SetRequiresGrad(reward.Head, true);
    }

    /// <summary>Copies saved values into A and B (shapes checked by the caller).</summary>
    internal void Load(IReadOnlyList<(Tensor A, Tensor B)> values)
    {
        using var noGrad = no_grad();
        for (var i = 0; i < sites.Count; i++)
        {
            layers[i].A.copy_(values[i].A);
            layers[i].B.copy_(values[i].B);
        }
    }

    /// <summary>Each projection's in/out widths by path (what a saved adapter's shapes must match).</summary>
    internal IReadOnlyList<(string Path, long InFeatures, long OutFeatures)> Shapes() =>
        sites.Select(s => (s.Path, s.InFeatures, s.OutFeatures)).ToList();

    private void AddUpdate(nn.Module<Tensor, Tensor> projection, int index)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var weight = Weight(projection);
        var delta = layers[index].DeltaWeight(Options.Scale).to(weight.dtype, weight.device); // [out, in]
        if (projection is Conv1D) delta = delta.t();                                           // [in, out]
        weight.add_(delta);
    }

    private Func<nn.Module<Tensor, Tensor>, Tensor, Tensor, Tensor> HookFor(int index) => (module, input, output) =>
    {
        if (disabledDepth > 0) return null!; // TorchSharp keeps the module's own output when a hook returns null
        using var scope = NewDisposeScope();
        var x = dropout.Apply(input, Options.Dropout, module.training);                   // (..., in)
        return output.add(layers[index].Delta(x, Options.Scale)).MoveToOuterDisposeScope(); // (..., out)
    };

    /// <summary>The adaptable projections of <paramref name="host"/> in model order: every Conv1D and
    /// Linear except the LM head and a reward model's score head, with their widths.</summary>
    private static List<Site> Projections(nn.Module host)
    {
        var found = new List<Site>();
        foreach (var (path, module) in host.named_modules())
        {
            var name = path[(path.LastIndexOf('.') + 1)..];
            switch (module)
            {
                case Conv1D conv:
                    found.Add(new Site(path, name, conv, conv.InFeatures, conv.OutFeatures, IsConv1D: true));
                    break;
                case Linear linear when name != "lm_head" && !(host is Reward.RewardModel && path == "score"):
                    found.Add(new Site(path, name, linear, linear.in_features, linear.out_features, IsConv1D: false));
                    break;
            }
        }
        return found;
    }

    private static Parameter Weight(nn.Module<Tensor, Tensor> projection) => projection switch
    {
        Conv1D conv => conv.Weight,
        Linear linear => linear.weight!,
        _ => throw new InvalidOperationException($"{projection.GetType().Name} is not an adaptable projection"),
    };

    private void ThrowIfDetached() => ObjectDisposedException.ThrowIf(detached, this);

    /// <summary>Removes the hooks and frees the adapter parameters; the policy's base weights are
    /// trainable again (unless the policy itself is being disposed).</summary>
    public void Dispose()
    {
        if (!detached)
        {
            detached = true;
            foreach (var site in sites) site.Hook?.remove();
            if (policy is not null && ReferenceEquals(policy.Adapters, this))
            {
                policy.Adapters = null;
                StateDicts.SetRequiresGrad(policy, true);
            }
            else if (reward is not null && ReferenceEquals(reward.Adapters, this))
            {
                reward.Adapters = null;
                StateDicts.SetRequiresGrad(reward, true);
            }
            dropout.Dispose();
            foreach (var layer in layers) layer.Dispose();
        }
    }

    private sealed class Site(string path, string name, nn.Module<Tensor, Tensor> module, long inFeatures, long outFeatures, bool IsConv1D)
    {
        public string Path { get; } = path;
        public string Name { get; } = name;
        public nn.Module<Tensor, Tensor> Module { get; } = module;
        public long InFeatures { get; } = inFeatures;
        public long OutFeatures { get; } = outFeatures;
        public bool IsConv1D { get; } = IsConv1D;
        public nn.HookableModule<Func<nn.Module<Tensor, Tensor>, Tensor, Tensor>, Func<nn.Module<Tensor, Tensor>, Tensor, Tensor, Tensor>>.HookRemover? Hook { get; set; }
    }

    private sealed class DisabledScope(LoraAdapters owner) : IDisposable
    {
        private bool disposed;

        public void Dispose()
        {
            if (disposed) return;
            disposed = true;
            owner.disabledDepth--;
        }
    }
}
