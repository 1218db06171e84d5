using System.Diagnostics;
using PrefOnline.Torch.Modules;
using PrefOnline.Torch.Optim;
using PrefOnline.Torch.Tests.Helpers;

namespace PrefOnline.Torch.Tests;

/// <summary>
/// The lifetime guarantee, measured: 10,000 training steps of a small MLP (forward, backward, AdamW),
/// each inside a DisposeScope, must not grow the process (resident memory within 5% after warm-up)
/// and must leave exactly the tensors it started with. Runs alone: RSS is process-wide.
/// </summary>
[Collection(SerialCollection.Name)]
public class MemoryTests
{
    // Long enough for the GC's generation budgets and glibc's arenas to reach their steady size.
    private const int WarmupSteps = 2000;
    private const int Steps = 10_000;

    private static long ResidentBytes()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;  // kB
        throw new InvalidOperationException("/proc/self/status has no VmRSS line");
    }

    [Fact]
    public void Ten_thousand_training_steps_in_scopes_do_not_grow_memory_or_leak_tensors()
    {
        LiveTensorCounter.SettleFinalizers();
        var liveBefore = TorchRuntime.LiveTensors;

        using var generator = new Generator(11);
        var first = new Linear(16, 64, generator: generator);
        var second = new Linear(64, 4, generator: generator);
        var optimizer = new AdamW([.. first.Parameters(), .. second.Parameters()], new AdamWOptions { LearningRate = 1e-3 });
        var x = Tensor.Randn([32, 16], generator).DetachFromScope();
        var y = Tensor.Randn([32, 4], generator).DetachFromScope();

        double Step()
        {
            using var scope = DisposeScope.Enter();
            optimizer.ZeroGrad();
            var hidden = first.Forward(x).Relu();
            var loss = Functional.MseLoss(second.Forward(hidden), y);
            loss.Backward();
            GradientTools.ClipGradNorm(optimizer.Parameters, 1.0);
            optimizer.Step();
            return loss.ToDouble();
        }

        var initialLoss = 0.0;
        for (var i = 0; i < WarmupSteps; i++)
        {
            var l = Step();
            if (i == 0) initialLoss = l;
        }
        LiveTensorCounter.SettleFinalizers();
        var liveAfterWarmup = TorchRuntime.LiveTensors;
        var rssAfterWarmup = ResidentBytes();
        var committedAfterWarmup = GC.GetGCMemoryInfo().TotalCommittedBytes;

        var clock = Stopwatch.StartNew();
        var finalLoss = 0.0;
        for (var i = 0; i < Steps; i++) finalLoss = Step();
        clock.Stop();

        LiveTensorCounter.SettleFinalizers();
        var rssAfter = ResidentBytes();
        var growth = (double)(rssAfter - rssAfterWarmup) / rssAfterWarmup;
        var committed = GC.GetGCMemoryInfo().TotalCommittedBytes;
        Assert.True(growth < 0.05,
            $"resident memory grew {growth:P1} over {Steps} steps ({rssAfterWarmup / 1048576.0:F1} MiB -> {rssAfter / 1048576.0:F1} MiB, " +
            $"of which the managed heap {committedAfterWarmup / 1048576.0:F1} -> {committed / 1048576.0:F1} MiB; {clock.Elapsed.TotalSeconds:F1} s)");
        Assert.True(liveAfterWarmup == TorchRuntime.LiveTensors,
            $"{TorchRuntime.LiveTensors - liveAfterWarmup} native tensors more than after warm-up");
        Assert.True(finalLoss < initialLoss / 2, $"the MLP did not learn (loss {initialLoss} -> {finalLoss}): the steps did not do real work");

        optimizer.Dispose();
        first.Dispose();
        second.Dispose();
        x.Dispose();
        y.Dispose();
        Assert.Equal(liveBefore, TorchRuntime.LiveTensors);
    }

    [Fact]
    public void Without_a_scope_the_same_loop_would_leak_which_is_what_the_test_above_would_catch()
    {
        // The counter the memory test relies on does see undisposed tensors.
        LiveTensorCounter.SettleFinalizers();
        var before = TorchRuntime.LiveTensors;
        var kept = MakeWithUndisposedIntermediates();
        Assert.True(TorchRuntime.LiveTensors >= before + 200);
        foreach (var t in kept) t.Dispose();
        LiveTensorCounter.SettleFinalizers();  // the Ones() intermediates were never disposed: the finalizer frees them
        Assert.Equal(before, TorchRuntime.LiveTensors);
    }

    // Not inlined, so the intermediates are unreachable once it returns (even in a Debug build).
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static List<Tensor> MakeWithUndisposedIntermediates()
    {
        var kept = new List<Tensor>();
        for (var i = 0; i < 100; i++) kept.Add(Tensor.Ones([4]) * 2.0);
        return kept;
    }
}
