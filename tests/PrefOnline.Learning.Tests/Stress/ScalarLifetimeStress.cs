using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using PrefOnline.Learning.Models;
using PrefOnline.Learning.Models.LogProbs;
using PrefOnline.Learning.Objectives;
using PrefOnline.Learning.Optimization;
using PrefOnline.Learning.Sampling;
using PrefOnline.Learning.Training;
using PrefOnline.Learning.TrainingData;
using PrefOnline.Tensors;
using TorchSharp;
using static PrefOnline.Learning.Tests.Training.LearnerFixtures;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Tests.Stress;

/// <summary>
/// The workload of <see cref="ScalarLifetimeStressTests"/>, run in a child process (a use-after-free may
/// kill the process; the test host must survive it): the worker's tensor loop in miniature on a tiny
/// GPT-2, on a <see cref="TensorThread"/> — on-policy sampling, then learner updates (every objective
/// family, KL penalty, clipping, AdamW with weight decay) — once quietly, then repeatedly while another
/// thread forces garbage collections and finalizers and makes native Scalars to be freed. Same seeds, so
/// every stressed repetition must reproduce the quiet one bit for bit. A native object freed by the
/// finalizer thread while libtorch still reads it shows as a different loss or weight, an
/// <c>ExternalException</c> ("Unknown scalar type") or a crash.
/// Prints one line per repetition, <c>quiet|stressed N FINGERPRINT</c>; exit code 0 when it ran to the end.
/// </summary>
internal static class ScalarLifetimeStress
{
    public const string Verb = "scalar-lifetime-stress";

    /// <summary>Set to 1 to run the child without the finalizer guard (a diagnostic, not a product setting).</summary>
    public const string UnguardedVariable = "PREFONLINE_SCALAR_STRESS_UNGUARDED";

    private static readonly string[] Objectives = [ObjectiveNames.Dpo, ObjectiveNames.Ppo, ObjectiveNames.Ipo, ObjectiveNames.Rwr, ObjectiveNames.ConservativeDpo];

    private static readonly string[] Prompts = ["q0:", "q1:", "q2:"];

    /// <summary><c>scalar-lifetime-stress SECONDS</c>: the quiet run, then stressed repetitions until
    /// SECONDS have passed (at least one).</summary>
    public static int Run(string[] args)
    {
        if (args.Length != 2 || !double.TryParse(args[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) || !(seconds > 0))
        {
            Console.Error.WriteLine($"usage: {Verb} SECONDS");
            return 2;
        }
        using var thread = new TensorThread("tensor", intraOpThreads: 2);
        if (Environment.GetEnvironmentVariable(UnguardedVariable) == "1") DisableFinalizerGuard(thread);
        var quiet = thread.RunAsync(Workload).GetAwaiter().GetResult();
        Console.WriteLine($"quiet 0 {quiet}");

        using var stop = new CancellationTokenSource();
        var collector = new Thread(() => CollectGarbage(stop.Token)) { Name = "gc-hammer", IsBackground = true };
        collector.Start();
        var clock = Stopwatch.StartNew();
        try
        {
            for (var repetition = 1; repetition == 1 || clock.Elapsed.TotalSeconds < seconds; repetition++)
                Console.WriteLine($"stressed {repetition} {thread.RunAsync(Workload).GetAwaiter().GetResult()}");
        }
        finally
        {
            stop.Cancel();
            collector.Join();
        }
        return 0;
    }

    /// <summary>Diagnostic only (<see cref="UnguardedVariable"/>=1): the finalizer thread frees at once, as
    /// unguarded TorchSharp does, to show that the stress reproduces the failure the guard prevents.</summary>
    private static unsafe void DisableFinalizerGuard(TensorThread thread)
    {
        thread.RunAsync(TorchEngine.EnsureLoaded).GetAwaiter().GetResult();
        ((delegate* unmanaged<int, void>)System.Runtime.InteropServices.NativeLibrary.GetExport(FinalizerGuard.Handle, "prefonline_guard_set_passthrough"))(1);
        Console.Error.WriteLine("finalizer guard disabled (diagnostic): the finalizer thread frees at once");
    }

    /// <summary>Full blocking collections back to back, finalizers run after each, and between them
    /// native Scalars nobody keeps, so the finalizer thread frees native memory all the time (and
    /// malloc hands freed blocks straight back out).</summary>
    private static void CollectGarbage(CancellationToken stop)
    {
        var round = 0;
        while (!stop.IsCancellationRequested)
        {
            for (var i = 0; i < 64; i++) _ = ((long)(round * 64 + i)).ToScalar();   // dropped at once: the finalizer frees them
            GC.Collect();
            GC.WaitForPendingFinalizers();
            round++;
        }
    }

    /// <summary>One deterministic pass; returns a fingerprint of every loss, gradient norm and the final weights.</summary>
    private static string Workload()
    {
        using var scope = NewDisposeScope();
        var trace = new List<string>();
        using var policy = Policy(seed: 4, dropout: 0.1);
        using var reference = new ReferenceModel(policy);
        using var sampler = PolicySampler.Create(policy, Tokenizer);
        var version = 0L;
        foreach (var objective in Objectives)
        {
            using var learner = new Learner(policy, reference, Tokenizer, Training.LearnerTests.ObjectiveFor(objective) with
            {
                LearningRate = 3e-3, WeightDecay = 0.05,
                KlCoefficient = 0.1, TargetKl = 0.5, KlHorizon = 100,
                MaxGradNorm = 0.5,
                InnerSteps = 2,
                Seed = 7,
            }, version);
            for (var update = 0; update < 2; update++)
            {
                var samples = sampler.Sample(Prompts, new SamplingOptions
                {
                    SamplesPerPrompt = 2, Temperature = 0.9, TopP = 0.95, MaxNewTokens = 12, Seed = (ulong)(100 * version + update),
                });
                var result = learner.Update(LearnerBatch.Of(samples.Select((s, i) => ToRollout(s, i, version))));
                trace.Add($"{objective}:{Bits(result.Loss)}:{Bits(result.GradNorm)}:{Bits(result.KlToReference)}:{string.Concat(samples.Select(s => s.Text))}");
                version = learner.UpdateCount;
            }
        }
        var digest = SHA256.HashData([.. System.Text.Encoding.UTF8.GetBytes(string.Join('|', trace)), .. WeightBytes(policy)]);
        return Convert.ToHexString(digest, 0, 12);
    }

    /// <summary>A sampled completion as a scored rollout; reward: shorter is better (the demo's users).</summary>
    private static Rollout ToRollout(SampledCompletion sample, int index, long version) => new()
    {
        Id = $"r{version}-{index}",
        PromptId = $"p{sample.PromptIndex}",
        Prompt = Prompts[sample.PromptIndex],
        Completion = sample.Text,
        PromptTokens = [.. sample.PromptTokens],
        CompletionTokens = [.. sample.Tokens],
        BehaviourLogProbs = [.. sample.SamplerLogProbs],
        Reward = -sample.Tokens.Length + 0.01 * sample.SampleIndex,
        RewardSource = RewardSource.Programmatic,
        UpdateCount = version,
        GeneratedAt = Time,
        ScoredAt = Time,
    };

    private static string Bits(double? value) => value is { } v ? BitConverter.DoubleToInt64Bits(v).ToString("x16", CultureInfo.InvariantCulture) : "-";
}
