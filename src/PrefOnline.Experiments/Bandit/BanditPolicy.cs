using TorchSharp;
using static TorchSharp.torch;
using TorchSharp.Modules;

namespace PrefOnline.Experiments.Bandit;

/// <summary>
/// The bandit's policy, bandit_agents.CategoricalActor: context (D) → Linear 50 → LayerNorm → ReLU →
/// Linear 256 → ReLU → Linear 256 → ReLU → Linear A logits. Weights Xavier-uniform with gain 0.01 and
/// zero biases (utils.weight_init), so it starts near uniform and the pre-fit shapes it.
/// </summary>
public sealed class BanditPolicy : nn.Module<Tensor, Tensor>
{
    public const int FeatureWidth = 50;
    public const int HiddenWidth = 256;
    public const double InitGain = 1e-2;

    private Linear input;
    private LayerNorm norm;
    private Linear hidden1;
    private Linear hidden2;
    private Linear output;

    public BanditPolicy(int contextDimension, int actions, Generator generator) : base(nameof(BanditPolicy))
    {
        ContextDimension = contextDimension;
        Actions = actions;
        input = nn.Linear(contextDimension, FeatureWidth);
        norm = nn.LayerNorm(FeatureWidth);
        hidden1 = nn.Linear(FeatureWidth, HiddenWidth);
        hidden2 = nn.Linear(HiddenWidth, HiddenWidth);
        output = nn.Linear(HiddenWidth, actions);
        RegisterComponents();
        using var noGrad = no_grad();
        // torch.nn.Linear's own init first (U(±1/√in) for weight, then bias), drawn from the seeded
        // generator so the stream of draws is the reference's; then utils.weight_init on top.
        foreach (var layer in new[] { input, hidden1, hidden2, output })
        {
            var fanIn = layer.weight!.shape[1];
            layer.weight.uniform_(-1 / Math.Sqrt(fanIn), 1 / Math.Sqrt(fanIn), generator);
            layer.bias!.uniform_(-1 / Math.Sqrt(fanIn), 1 / Math.Sqrt(fanIn), generator);
        }
        foreach (var layer in new[] { input, hidden1, hidden2, output })
        {
            var shape = layer.weight!.shape;                                  // [out, in]
            var bound = InitGain * Math.Sqrt(6.0 / (shape[0] + shape[1]));
            layer.weight.uniform_(-bound, bound, generator);
            layer.bias!.fill_(0);
        }
    }

    public int ContextDimension { get; }

    public int Actions { get; }

    /// <summary>(S, D) contexts → (S, A) logits.</summary>
    public override Tensor forward(Tensor states)
    {
        using var scope = NewDisposeScope();
        var h = norm.forward(input.forward(states)).relu();                   // (S, 50)
        h = hidden1.forward(h).relu();                                         // (S, 256)
        h = hidden2.forward(h).relu();                                         // (S, 256)
        return output.forward(h).MoveToOuterDisposeScope();                    // (S, A)
    }

    /// <summary>A new policy with a copy of these weights.</summary>
    public BanditPolicy Copy()
    {
        using var generator = new Generator(0);
        var copy = new BanditPolicy(ContextDimension, Actions, generator);
        PrefOnline.Learning.Models.StateDicts.Load(copy, state_dict());
        return copy;
    }
}
