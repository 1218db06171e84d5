using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace PrefOnline.Learning.Models.Adapters;

/// <summary>
/// The low-rank pair of one adapted projection W (in → out), as PEFT's lora.Linear holds it: lora_A
/// [r, in], initialised kaiming-uniform with a = √5 (U(−1/√in, 1/√in), PEFT's default), and lora_B
/// [out, r], zero, so the adapted projection starts equal to W. The update is (α/r)·B·A, whatever the
/// layout of W (GPT-2's Conv1D holds W as [in, out]; PEFT calls that fan_in_fan_out).
/// </summary>
internal sealed class LoraLayer : nn.Module
{
    // Field names are PEFT's (lora_A.weight / lora_B.weight once the PEFT prefix is added).
    private Parameter lora_A;
    private Parameter lora_B;

    /// <param name="init">Draws A; null leaves A uninitialised because saved values are about to be copied in.</param>
    public LoraLayer(long inFeatures, long outFeatures, int rank, Generator? init) : base(nameof(LoraLayer))
    {
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        var a = empty(rank, inFeatures);
        if (init is not null)
        {
            // kaiming_uniform_(a=√5): gain √(2/(1+5)), bound gain·√(3/fan_in) = 1/√in.
            var bound = 1.0 / Math.Sqrt(inFeatures);
            a.uniform_(-bound, bound, init);
        }
        lora_A = new Parameter(a);
        lora_B = new Parameter(zeros(outFeatures, rank));
        RegisterComponents();
    }

    public long InFeatures { get; }

    public long OutFeatures { get; }

    /// <summary>[r, in].</summary>
    public Parameter A => lora_A;

    /// <summary>[out, r].</summary>
    public Parameter B => lora_B;

    /// <summary>(..., in) → (..., out): scale · x Aᵀ Bᵀ (x already through dropout).</summary>
    public Tensor Delta(Tensor x, double scale)
    {
        using var scope = NewDisposeScope();
        var low = F.linear(x, lora_A);                       // (..., r)
        return F.linear(low, lora_B).mul(scale).MoveToOuterDisposeScope(); // (..., out)
    }

    /// <summary>scale · B A, [out, in] (torch.nn.Linear's weight layout).</summary>
    public Tensor DeltaWeight(double scale)
    {
        using var scope = NewDisposeScope();
        return lora_B.matmul(lora_A).mul(scale).MoveToOuterDisposeScope();
    }
}
