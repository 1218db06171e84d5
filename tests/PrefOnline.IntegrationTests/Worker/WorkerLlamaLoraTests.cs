using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using PrefOnline.Cli;
using PrefOnline.IntegrationTests.Process;
using PrefOnline.IntegrationTests.Streaming;
using PrefOnline.Learning.Models;
using PrefOnline.Learning.Models.Adapters;
using PrefOnline.Learning.Models.Checkpoints;
using PrefOnline.Learning.Models.LogProbs;
using PrefOnline.Learning.Optimization;
using PrefOnline.Experiments.Length;
using PrefOnline.Worker.Demo;
using PrefOnline.Streaming.Contracts;
using PrefOnline.Streaming.Simulation;
using PrefOnline.Streaming.Validation;
using PrefOnline.Tensors;
using PrefOnline.Worker.Hosting;
using PrefOnline.Worker.Serving;
using PrefOnline.Worker.Tests.Serving;
using Xunit.Abstractions;
using static PrefOnline.IntegrationTests.Worker.WorkerCluster;
using static TorchSharp.torch;

namespace PrefOnline.IntegrationTests.Worker;

/// <summary>
/// Issue 14 item 5 on the mock cluster: the whole worker on <c>prefonline init --arch llama --preset tiny</c>'s checkpoint
/// (Llama 3 style tokenizer.json), briefly fitted on the demo's alphabet answers, training a LoRA adapter
/// (<c>Learner:Adapter</c>), with simulated users who prefer shorter answers labelling its fresh rollouts. Their reward
/// rises; every version the worker announces is a LoRA version; the vllm publisher hands each one to an in-test stand-in
/// of vLLM's runtime LoRA API, and every directory it names holds an adapter that loads onto the unchanged base.
/// </summary>
[Collection(KafkaCollection.Name)]
public sealed class WorkerLlamaLoraTests(ITestOutputHelper output)
{
    /// <summary>Generous for a loaded 2-core machine; a quiet one needs well under a minute of it.</summary>
    private static readonly TimeSpan Deadline = TimeSpan.FromMinutes(4);

    /// <summary>Rollouts in the early and in the late window of the users' reward.</summary>
    private const int Window = 48;

    /// <summary>How much the users' mean reward (one per 8 characters shorter) must rise from the first window to the last.</summary>
    private const double Rise = 0.5;

    private const int SamplesPerPrompt = 4;

    /// <summary>Steps of the initial policy's fit (batches of 32 answers).</summary>
    private const int FitSteps = 80;

    [Fact]
    public async Task A_llama_worker_training_lora_on_kafka_raises_its_users_reward_and_hands_each_adapter_to_vllm()
    {
        var clock = Stopwatch.StartNew();
        await using var server = await FakeServingServer.StartAsync();
        await using var cluster = WorkerCluster.Start();
        var exports = Path.Combine(Path.GetTempPath(), "prefonline-llama-lora-vllm-" + Guid.NewGuid().ToString("N")[..12]);
        try
        {
            await using var worker = await WorkerUnderTest.StartAsync(cluster, output, Settings(server.Address, exports), initialPolicy: InitLlamaAsync);
            await using var rollouts = new TopicTail(cluster.BootstrapServers, Rollouts, InputPartitions);
            await using var policy = new TopicTail(cluster.BootstrapServers, WorkerCluster.Policy, 1);
            await worker.WaitReadyAsync(Deadline);
            var readyAt = clock.Elapsed;

            var users = new ShorterAnswerUsers(cluster, rollouts);
            double early = double.NaN, late = double.NaN;
            await using (var stop = new BackgroundLoops())
            {
                var asking = stop.Start(t => cluster.AskAsync("llama-p", new DemoPolicyOptions().Corpus().Prompts, TimeSpan.FromMilliseconds(125), t)); // the alphabet prompts the policy was fitted on, 8 a second
                var labelling = stop.Start(users.RunAsync);
                try
                {
                    await Poll.UntilAsync(async () =>
                    {
                        worker.AssertRunning();
                        if (labelling.IsCompleted) await labelling; // a rollout that broke the contract failed the users' loop
                        (early, late) = users.Reward(Window);
                        return late >= early + Rise;
                    }, Deadline, $"the users' mean reward rising by {Rise} from the first {Window} rollouts to the last {Window}",
                        () => $"first {early:0.###}, last {late:0.###} over {users.Rollouts} rollouts");
                }
                finally
                {
                    // Also on failure: nothing may produce through the cluster's producer once the cluster is disposed.
                    await stop.CancelAsync();
                    await asking;
                    await labelling;
                }
            }
            var learnedAt = clock.Elapsed;
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"users' reward (minus the answer's length in characters / 8): first {Window} rollouts {early:0.###}, last {Window} {late:0.###} ({users.Rollouts} rollouts, {users.Labels} labels, rollouts up to policy v{users.NewestPolicyVersion})"));

            // Every version after the loaded one is a LoRA version: its event lists PEFT's adapter files, and vLLM was
            // asked to load it under the stable adapter name from a directory holding that adapter.
            var events = WorkerEndToEndTests.PolicyEvents(await policy.WaitForAsync(r => r.Count >= 2, Deadline, "the loaded version's and a learned version's policy events"));
            var learned = events.Where(e => e.Version > events[0].Version).ToList();
            Assert.NotEmpty(learned);
            Assert.All(learned, e => Assert.Equal(ServingExportKind.Adapter, VersionExporter.KindOf(e.Files.Keys)));
            var newest = learned.Max(e => e.Version);
            await server.WaitForAsync(r => r.Any(x => x.Path == "/v1/load_lora_adapter" && x.Field("lora_path")!.EndsWith(Version(newest), StringComparison.Ordinal)),
                $"vLLM asked to load v{newest}", Deadline);
            var loads = server.Requests.Where(r => r.Path == "/v1/load_lora_adapter").ToList();
            Assert.All(server.Requests, r => Assert.Contains(r.Path, new[] { "/v1/load_lora_adapter", "/v1/unload_lora_adapter" }));
            Assert.All(server.Requests, r => Assert.Equal("prefonline", r.Field("lora_name")));

            // Each directory vLLM was asked to load holds a PEFT adapter that loads onto the initial policy: the base the
            // adapter was trained on (adapter_config.json's base hash, checked by the load) is the initial weights, so
            // only the adapter changed; a learned version's adapter has moved B away from its zero init.
            using var thread = new TensorThread("it-llama-lora-check", 1);
            var trained = await thread.RunAsync(() =>
            {
                using var scope = NewDisposeScope();
                using var basePolicy = PolicyCheckpoint.LoadModel(Path.Combine(worker.Root, "initial-policy"));
                var baseSha = BaseWeights.Sha256(basePolicy);
                var moved = 0;
                foreach (var load in loads)
                {
                    var directory = load.Field("lora_path")!;
                    var config = JsonNode.Parse(File.ReadAllText(Path.Combine(directory, PeftAdapter.ConfigFile)))!;
                    Assert.Equal("LORA", config["peft_type"]!.GetValue<string>());
                    Assert.Equal(baseSha, config[PeftAdapter.BaseHashKey]!.GetValue<string>());
                    using var adapters = PeftAdapter.Load(directory, basePolicy);
                    if (adapters.Pairs().Any(p => p.B.abs().max().item<float>() > 0)) moved++;
                }
                Assert.Equal(baseSha, BaseWeights.Sha256(basePolicy)); // loading and disposing adapters leaves the base as it was
                return moved;
            }, CancellationToken.None);
            Assert.True(trained > 0, $"no adapter handed to vLLM has a trained B ({loads.Count} loads)");
            Assert.Contains(loads, l => l.Field("lora_path")!.EndsWith(Version(newest), StringComparison.Ordinal));

            await worker.StopAsync();
            Assert.Equal(ExitStatus.Success, worker.Exit.Code);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"timeline: worker ready {readyAt.TotalSeconds:0.0} s, reward risen {learnedAt.TotalSeconds:0.0} s, total {clock.Elapsed.TotalSeconds:0.0} s; {learned.Count} LoRA versions announced (newest v{newest}), {loads.Count} adapter loads at vLLM ({trained} with a trained B)"));
        }
        finally
        {
            WorkerUnderTest.DeleteRoot(exports);
        }
    }

    private static string Version(long version) => Path.DirectorySeparatorChar + PrefOnline.Worker.Checkpoints.CheckpointVersion.DirectoryName(version);

    /// <summary>
    /// LoRA rank 8 on every projection with a learning rate ten times the full fine-tune's (only the adapter trains), an update
    /// every 16 fresh rollouts of at most 24 new tokens, and the vllm publisher (vLLM's runtime LoRA API at the stand-in server)
    /// keeping every version's directory.
    /// </summary>
    private static Dictionary<string, string?> Settings(Uri vllm, string exports) => new()
    {
        ["Generation:SamplesPerPrompt"] = SamplesPerPrompt.ToString(CultureInfo.InvariantCulture),
        ["Generation:MaxNewTokens"] = "24",
        ["Learner:Adapter:Rank"] = "8",
        ["Learner:Adapter:Alpha"] = "16",
        ["Learner:LearningRate"] = "1e-3",
        ["Learner:UpdateEverySamples"] = "16",
        ["Learner:BatchSize"] = "32",
        ["Learner:HumanPairsPerUpdate"] = "16",
        ["Learner:InnerSteps"] = "2",
        ["Learner:MaxSamplesAhead"] = "64",
        ["Scoring:LabelWait"] = "00:00:04", // each rollout waits for its users' rating (a few hops on a loaded machine): the fresh reward model knows nothing yet
        ["Serving:Publishers:0:Type"] = "vllm",
        ["Serving:Publishers:0:BaseUrl"] = vllm.ToString(),
        ["Serving:Publishers:0:Directory"] = exports,
        ["Serving:Publishers:0:KeepVersions"] = "1000", // every directory vLLM was sent is still there to be checked
    };

    /// <summary>
    /// <c>prefonline init --arch llama --preset tiny</c>'s checkpoint (seeded), then a short seeded fit on the embedded demo's
    /// alphabet answers (<see cref="LengthCorpus"/>: "c:" → "defgh…", ~12 letters, then the end-of-text token), as the demo
    /// fits its GPT-2. Without it there is nothing for an adapter to learn quickly: a random init's logits are nearly flat
    /// (N(0, 0.02²) tied embeddings), and no update of the projections can lift one token, or a class of tokens, by more than a
    /// fraction of a nat, so users' preferences over its uniform noise stay out of reach (measured: no rise in 4 minutes).
    /// </summary>
    private static async Task InitLlamaAsync(string directory)
    {
        using var thread = new TensorThread("it-init-llama", 1);
        await thread.RunAsync(() =>
        {
            var random = Path.Combine(Path.GetDirectoryName(directory)!, "init-llama");
            InitCommand.Write(random, InitCommand.Shape("llama", "tiny"), seed: 5);
            using var policy = PolicyCheckpoint.Load(random);
            var corpus = new DemoPolicyOptions().Corpus();
            var draw = new Random(3);
            using var optimizer = new AdamWOptimizer(policy.Model.parameters(), new AdamWOptions { LearningRate = 3e-3, WeightDecay = 0 });
            for (var step = 0; step < FitSteps; step++)
            {
                using var scope = NewDisposeScope();
                var answers = Enumerable.Range(0, 32).Select(_ =>
                {
                    var prompt = corpus.Prompts[draw.Next(corpus.Prompts.Count)];
                    return (prompt, LengthCorpus.Completion(prompt, corpus.LengthAt(draw.NextDouble())));
                }).ToList();
                using var batch = SequenceBatch.FromText(policy.Tokenizer, answers, policy.Config.ContextLength);
                var logProbs = SequenceLogProbs.Compute(policy.Model, batch, LogProbReduction.Sum);
                var loss = logProbs.Values.sum().neg() / logProbs.Mask.sum(); // mean token NLL
                optimizer.ZeroGrad();
                loss.backward();
                GradientClipping.ClipGradNorm(optimizer.Parameters, 1.0);
                optimizer.Step();
                optimizer.ZeroGrad();
            }
            PolicyCheckpoint.Save(directory, policy.Model, policy.Tokenizer);
        }, CancellationToken.None);
    }

    /// <summary>
    /// Users who prefer shorter answers (<see cref="LengthPreference"/>: utility minus the length in characters / 8; they always choose the shorter one): once all K samples of a
    /// prompt are on the rollouts topic (<see cref="RolloutLabeler"/>) they give a preference pair and rate each sample (utility + N(0, 0.25²),
    /// <see cref="SimulatedLabeler"/>, seeded). Their reward is their own ratings, in the order they were given.
    /// </summary>
    private sealed class ShorterAnswerUsers
    {
        private readonly SimulatedLabeler labeler = new(new SimulatedUsersOptions { LabelMode = LabelMode.Both, Temperature = 0, RatingNoiseStd = 0.25 }, seed: 29, idPrefix: "llama");
        private readonly IHiddenPreference shorter = new LengthPreference(preferShorter: true, charsPerNat: 8);
        private readonly List<double> ratings = [];
        private readonly RolloutLabeler users;

        public ShorterAnswerUsers(WorkerCluster cluster, TopicTail rollouts) =>
            users = new RolloutLabeler(cluster, rollouts, SamplesPerPrompt, group =>
            {
                var labels = labeler.Label(group, shorter);
                lock (ratings) ratings.AddRange(labels.OfType<RatingRecord>().Select(r => r.Reward));
                return labels;
            });

        public int Rollouts
        {
            get
            {
                lock (ratings) return ratings.Count;
            }
        }

        public int Labels => users.Produced.Count;

        public long NewestPolicyVersion => users.Rollouts.Select(r => r.PolicyVersion).DefaultIfEmpty(0).Max();

        /// <summary>Mean rating of the first and of the last <paramref name="window"/> rollouts (NaN until 2 windows arrived).</summary>
        public (double First, double Last) Reward(int window)
        {
            lock (ratings)
                return ratings.Count < 2 * window ? (double.NaN, double.NaN) : (ratings.Take(window).Average(), ratings.TakeLast(window).Average());
        }

        public Task RunAsync(CancellationToken stop) => users.RunAsync(stop);
    }
}
