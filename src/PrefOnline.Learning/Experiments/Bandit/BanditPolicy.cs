using PrefOnline.Torch;
using PrefOnline.Torch.Modules;

namespace PrefOnline.Learning.Experiments.Bandit;

/// <summary>
/// The bandit's policy, bandit_agents.CategoricalActor: context (D) → Linear 50 → LayerNorm → ReLU →
/// Linear 256 → ReLU → Linear 256 → ReLU → Linear A logits. Weights Xavier-uniform with gain 0.01 and
/// zero biases (utils.weight_init), so it starts near uniform and the pre-fit shapes it.
/// </summary>
public sealed class BanditPolicy : Module
{
    public const int FeatureWidth = 50;
    public const int HiddenWidth = 256;
    public const double InitGain = 1e-2;

    private readonly Linear input;
    private readonly LayerNorm norm;
    private readonly Linear hidden1;
    private readonly Linear hidden2;
    private readonly Linear output;

    public BanditPolicy(int contextDimension, int actions, Generator generator)
    {
        ContextDimension = contextDimension;
        Actions = actions;
        input = RegisterModule("input", new Linear(contextDimension, FeatureWidth, generator: generator));
        norm = RegisterModule("norm", new LayerNorm(FeatureWidth));
        hidden1 = RegisterModule("hidden1", new Linear(FeatureWidth, HiddenWidth, generator: generator));
        hidden2 = RegisterModule("hidden2", new Linear(HiddenWidth, HiddenWidth, generator: generator));
        output = RegisterModule("output", new Linear(HiddenWidth, actions, generator: generator));
        foreach (var layer in new[] { input, hidden1, hidden2, output })
        {
            var shape = layer.Weight.Shape;                                   // [out, in]
            var bound = InitGain * Math.Sqrt(6.0 / (shape[0] + shape[1]));
            layer.Weight.UniformInPlace(-bound, bound, generator);
            layer.Bias!.Fill(0);
        }
    }

    public int ContextDimension { get; }

    public int Actions { get; }

    /// <summary>(S, D) contexts → (S, A) logits.</summary>
    public Tensor Forward(Tensor states)
    {
        using var scope = DisposeScope.Enter();
        var h = norm.Forward(input.Forward(states)).Relu();                   // (S, 50)
        h = hidden1.Forward(h).Relu();                                         // (S, 256)
        h = hidden2.Forward(h).Relu();                                         // (S, 256)
        return output.Forward(h).MoveToOuterScope();                           // (S, A)
    }

    /// <summary>A new policy with a copy of these weights.</summary>
    public BanditPolicy Clone()
    {
        using var generator = new Generator(0);
        var copy = new BanditPolicy(ContextDimension, Actions, generator);
        copy.LoadStateDict(StateDict());
        return copy;
    }
}
