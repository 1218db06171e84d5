using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Experiments.Bandit;

/// <summary>
/// One seed's bandit: the reference policy (a histogram of tanh(Cauchy(−0.7, 0.4)) samples over the
/// bins of [−1, 1], exactly utils.ContinuousSampledCategorical), the reward of each bin, and the
/// context vectors of the training and evaluation states. The reference does not depend on the
/// context; the policy sees it and must learn to ignore it.
/// </summary>
public sealed class BanditEnvironment : IDisposable
{
    public const double CauchyLocation = -0.7;
    public const double CauchyScale = 0.4;

    private readonly Dictionary<BanditMode, Tensor> trainStates;

    private BanditEnvironment(double[] referenceProbabilities, double[] rewards, Tensor evalStates, Dictionary<BanditMode, Tensor> trainStates)
    {
        ReferenceProbabilities = referenceProbabilities;
        Rewards = rewards;
        EvalStates = evalStates;
        this.trainStates = trainStates;
        ReferenceReward = referenceProbabilities.Zip(rewards, (p, r) => p * r).Sum();
        ReferenceLogProbs = tensor(referenceProbabilities.Select(p => (float)Math.Log(p)).ToArray()).DetachFromDisposeScope();
        ReferenceProbs = tensor(referenceProbabilities.Select(p => (float)p).ToArray()).DetachFromDisposeScope();
        RewardVector = tensor(rewards.Select(r => (float)r).ToArray()).DetachFromDisposeScope();
    }

    /// <summary>π_ref(a) per bin (sums to 1).</summary>
    public IReadOnlyList<double> ReferenceProbabilities { get; }

    /// <summary>r(a) per bin.</summary>
    public IReadOnlyList<double> Rewards { get; }

    /// <summary>E_{a ~ π_ref}[r(a)]: ≈ 0.039 at c = 70, ≈ 0.377 at c = 20.</summary>
    public double ReferenceReward { get; }

    /// <summary>(A,) log π_ref, float32.</summary>
    public Tensor ReferenceLogProbs { get; }

    /// <summary>(A,) π_ref, float32.</summary>
    public Tensor ReferenceProbs { get; }

    /// <summary>(A,) r(a), float32.</summary>
    public Tensor RewardVector { get; }

    /// <summary>(E, D) held-out contexts the reward is reported on.</summary>
    public Tensor EvalStates { get; }

    /// <summary>(S, D) the contexts a mode trains on (and the pre-fit uses).</summary>
    public Tensor TrainStates(BanditMode mode) => trainStates[mode];

    /// <summary>r(a) = exp(−((a − c)/w)²), a a bin index (reward_4 / reward_5 of the official code).</summary>
    public static double Reward(int action, int peak, double width)
    {
        var z = (action - peak) / width;
        return Math.Exp(-z * z);
    }

    /// <summary>Builds seed <paramref name="seed"/>'s bandit. Each piece (reference samples, evaluation
    /// states, on-policy states, offline states) has its own generator derived from the seed, so changing
    /// one size (say, fewer held-out states in <c>--quick</c>) leaves every other piece unchanged.</summary>
    public static BanditEnvironment Create(BanditOptions options, int seed)
    {
        ArgumentNullException.ThrowIfNull(options);
        using var scope = NewDisposeScope();
        using var referenceGenerator = new Generator(BanditExperiment.DeriveSeed(seed, "reference"));
        var uniforms = rand([options.ReferenceSamples], dtype: ScalarType.Float64, generator: referenceGenerator).data<double>().ToArray();
        var counts = new long[options.Bins];
        foreach (var u in uniforms)
        {
            // Inverse-CDF Cauchy draw, squashed by tanh onto [−1, 1].
            var y = Math.Tanh(CauchyLocation + CauchyScale * Math.Tan(Math.PI * (u - 0.5)));
            counts[BinOf(y, options.Bins)]++;
        }
        var empty = Array.FindIndex(counts, c => c == 0);
        if (empty >= 0)
            throw new InvalidOperationException($"the reference histogram has an empty bin ({empty}): π_ref would be 0 there and KL(π‖π_ref) infinite; use more reference samples");
        var probabilities = counts.Select(c => (double)c / options.ReferenceSamples).ToArray();
        var rewards = Enumerable.Range(0, options.Bins).Select(a => Reward(a, options.Peak, options.Width)).ToArray();

        Tensor States(string purpose, int count)
        {
            using var generator = new Generator(BanditExperiment.DeriveSeed(seed, purpose));
            return rand([count, options.ContextDimension], generator: generator).DetachFromDisposeScope();
        }

        var train = new Dictionary<BanditMode, Tensor>
        {
            [BanditMode.OnPolicy] = States("on-policy-states", options.OnPolicyStates),
            [BanditMode.Offline] = States("offline-states", options.OfflineStates),
        };
        return new BanditEnvironment(probabilities, rewards, States("eval-states", options.EvalStates), train);
    }

    /// <summary>numpy.histogram's binning of [−1, 1]: half-open bins, the last one closed.</summary>
    public static int BinOf(double y, int bins)
    {
        var bin = (int)Math.Floor((y + 1.0) / 2.0 * bins);
        return Math.Clamp(bin, 0, bins - 1);
    }

    public void Dispose()
    {
        ReferenceLogProbs.Dispose();
        ReferenceProbs.Dispose();
        RewardVector.Dispose();
        EvalStates.Dispose();
        foreach (var t in trainStates.Values) t.Dispose();
    }
}
