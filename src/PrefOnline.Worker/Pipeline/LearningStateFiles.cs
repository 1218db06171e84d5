using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using PrefOnline.Learning.Guardrails;
using PrefOnline.Learning.Models;
using PrefOnline.Learning.Models.Adapters;
using PrefOnline.Learning.Models.Checkpoints;
using PrefOnline.Learning.Models.LogProbs;
using PrefOnline.Learning.Models.Reward;
using PrefOnline.Learning.Online;
using PrefOnline.Learning.Replay;
using PrefOnline.Learning.Tokenization;
using PrefOnline.Learning.Training;
using PrefOnline.Learning.Training.Reward;
using PrefOnline.Learning.TrainingData;
using PrefOnline.Streaming.Transport;
using PrefOnline.Streaming.Validation;
using PrefOnline.Tensors;
using PrefOnline.Tensors.Serialization;
using PrefOnline.Worker.Checkpoints;
using PrefOnline.Worker.Observability;
using PreferencePair = PrefOnline.Learning.TrainingData.PreferencePair;

namespace PrefOnline.Worker.Pipeline;

/// <summary>
/// Builds a <see cref="LearningState"/> (fresh from an initial policy, or from a checkpoint) and stages
/// its snapshot as files. Run every method on the tensor thread.
/// </summary>
public sealed class LearningStateFiles(
    LearningStateSettings settings, TensorThread thread, Guardrail guardrail, PrefOnlineMetrics metrics, StagingArea staging, TimeProvider time, ILogger logger)
{
    private const string WorkerFormat = "prefonline.worker.v1";
    private string? tokenizerDirectory;

    /// <summary>
    /// A first state around <paramref name="policy"/> (ownership passes to the state): the reference is a
    /// frozen copy of it — or, with <c>Learner:Adapter</c>, the policy's own base with fresh LoRA adapters
    /// attached and switched off (no copy) — the reward model's trunk a copy too (or <c>Model:InitialRewardModel</c>;
    /// with <c>Learner:Adapter</c> and no initial reward model, the trunk stays frozen at the base and trains its own
    /// LoRA adapters, same options as the policy's, and its score head),
    /// nothing trained, nothing absorbed, policy version 0 until the first checkpoint names it.
    /// </summary>
    public LearningState CreateFresh(PolicyModel policy, ITokenizer tokenizer)
    {
        thread.VerifyAccess();
        policy.Place(settings.Model.Placement);  // reference and reward model are copies of it: they follow
        var referenceFile = Path.Combine(staging.NewDirectory("reference"), StateFiles.Reference);
        PolicyCheckpoint.SaveWeightsFile(referenceFile, policy);
        var lora = settings.Learner.Adapter;
        ReferenceModel? reference = null;
        RewardModel? rewardModel = null;
        RewardTrainer? trainer = null;
        Learner? learner = null;
        try
        {
            rewardModel = !string.IsNullOrWhiteSpace(settings.Model.InitialRewardModel)
                ? RewardCheckpoint.Load(settings.Model.InitialRewardModel, policy.Config, policy.Placement)
                : lora is null ? RewardModel.FromPolicy(policy, settings.Model.Seed) : RewardModel.FromPolicyWithAdapters(policy, lora, settings.Model.Seed);
            // Adapters are attached after the reward model copied the plain trunk; the Learner finds them and trains them alone.
            reference = lora is null ? new ReferenceModel(policy) : ReferenceModel.BaseOf(LoraAdapters.Attach(policy, lora, settings.Learner.Seed).Policy);
            trainer = new RewardTrainer(rewardModel, tokenizer, settings.Reward);
            learner = new Learner(policy, reference, tokenizer, settings.Learner);
            SaveTokenizer(tokenizer);
            return new LearningState(settings, new OnlineLearner(settings.Online, thread, guardrail, metrics, time,
                policy, tokenizer, reference, rewardModel, trainer, learner,
                new ReplayBuffer<Rollout>(settings.Replay.RolloutLimits), new ReplayBuffer<PreferencePair>(settings.Replay.HumanPairLimits),
                new PendingJoins(), 0, new Dictionary<long, long>(), new OnlineLearnerCounters()), referenceFile, logger);
        }
        catch
        {
            learner?.Dispose();
            trainer?.Dispose();
            rewardModel?.Dispose();
            reference?.Dispose();
            policy.Adapters?.Dispose();
            throw;
        }
    }

    /// <summary>Rebuilds the state a checkpoint holds. A checkpoint whose content does not load is refused with <see cref="InvalidDataException"/>.</summary>
    public LearningState Load(Checkpoint checkpoint)
    {
        thread.VerifyAccess();
        var directory = checkpoint.DirectoryPath;
        // A LoRA version holds no policy.safetensors: its policy is the base (reference.safetensors) with its adapter.
        var policyFile = checkpoint.Contains(PeftAdapter.WeightsFile) ? PeftAdapter.WeightsFile : StateFiles.Policy;
        var rewardFile = checkpoint.Contains(StateFiles.RewardAdapter) ? StateFiles.RewardAdapter : StateFiles.RewardModel;
        foreach (var required in new[] { policyFile, StateFiles.Reference, rewardFile, StateFiles.LearnerOptimizer, StateFiles.LearnerState, StateFiles.Worker })
        {
            if (!checkpoint.Contains(required))
                throw new InvalidDataException($"checkpoint {checkpoint} has no {required}: it was not written by the PrefOnline learner (holds {string.Join(", ", checkpoint.FileNames)})");
        }

        ITokenizer tokenizer;
        try
        {
            tokenizer = TokenizerLoader.FromDirectory(directory);
        }
        catch (TokenizerFormatException e)
        {
            throw new InvalidDataException($"checkpoint {checkpoint}: tokenizer: {e.Message}", e);
        }
        var referenceFile = Path.Combine(staging.NewDirectory("reference"), StateFiles.Reference);
        File.Copy(checkpoint.GetPath(StateFiles.Reference), referenceFile);

        var owned = new List<IDisposable>();
        try
        {
            var (policy, reference) = LoadPolicyAndReference(checkpoint, referenceFile, owned);
            var rewardModel = Own(owned, LoadRewardModel(checkpoint, rewardFile, policy));
            var trainer = Own(owned, new RewardTrainer(rewardModel, tokenizer, settings.Reward));
            if (checkpoint.Contains(StateFiles.RewardOptimizer) && checkpoint.Contains(StateFiles.RewardTrainerState))
            {
                using var rewardState = TrainingState.Load(checkpoint.GetPath(StateFiles.RewardOptimizer), checkpoint.GetPath(StateFiles.RewardTrainerState));
                trainer.ImportState(rewardState);
            }
            var learner = Own(owned, new Learner(policy, reference, tokenizer, settings.Learner));
            using (var learnerState = TrainingState.Load(checkpoint.GetPath(StateFiles.LearnerOptimizer), checkpoint.GetPath(StateFiles.LearnerState)))
                learner.ImportState(learnerState);

            var replay = ReadBuffer(checkpoint, StateFiles.Replay, RolloutSerializer.Instance, settings.Replay.RolloutLimits);
            var humanPairs = ReadBuffer(checkpoint, StateFiles.HumanPairs, PreferencePairSerializer.Instance, settings.Replay.HumanPairLimits);
            var pending = new PendingJoins();
            if (checkpoint.Contains(StateFiles.Pending))
            {
                using var stream = checkpoint.OpenRead(StateFiles.Pending);
                using var reader = new BinaryReader(stream);
                pending = PendingJoins.Read(reader, time.GetTimestamp() + (long)(settings.Scoring.LabelWait.TotalSeconds * time.TimestampFrequency));
            }
            var (policyVersion, versions, counters, observation) = ReadWorkerFile(checkpoint);
            SaveTokenizer(tokenizer);
            return new LearningState(settings, new OnlineLearner(settings.Online, thread, guardrail, metrics, time,
                policy, tokenizer, reference, rewardModel, trainer, learner, replay, humanPairs, pending, policyVersion, versions, counters), referenceFile, logger)
            {
                Observation = observation,
            };
        }
        catch (Exception e) when (e is InvalidCheckpointException or SafeTensorsFormatException or JsonException or KeyNotFoundException or EndOfStreamException or IOException or ArgumentException or System.Runtime.InteropServices.ExternalException)
        {
            foreach (var item in Enumerable.Reverse(owned)) item.Dispose();
            throw new InvalidDataException($"checkpoint {checkpoint} in {checkpoint.DirectoryPath} verified but its content does not load: {e.Message}", e);
        }
        catch
        {
            foreach (var item in Enumerable.Reverse(owned)) item.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The policy and its frozen reference as <paramref name="checkpoint"/> holds them. Full fine-tuning: the policy
    /// from policy.safetensors, the reference a copy of reference.safetensors. LoRA: the policy is the base
    /// (reference.safetensors) with the checkpoint's PEFT adapter loaded onto it — an adapter trained on other base
    /// weights is refused by its sha256 — and the reference that base with the adapter off (versions of older builds also
    /// hold the merged weights as policy.safetensors; they are not read). A checkpoint of the other kind than <c>Learner:Adapter</c> asks for
    /// is refused: its optimizer state belongs to other parameters.
    /// </summary>
    private (PolicyModel Policy, ReferenceModel Reference) LoadPolicyAndReference(Checkpoint checkpoint, string referenceFile, List<IDisposable> owned)
    {
        var hasAdapter = checkpoint.Contains(PeftAdapter.ConfigFile) && checkpoint.Contains(PeftAdapter.WeightsFile);
        if (settings.Learner.Adapter is null)
        {
            if (hasAdapter)
                throw new InvalidDataException($"checkpoint {checkpoint} holds a LoRA adapter ({PeftAdapter.ConfigFile}), but Learner:Adapter is not set: set the same Learner:Adapter keys to resume it, or start a full fine-tune from a merged checkpoint (`prefonline merge`)");
            var policy = Own(owned, LoadPolicy(checkpoint.GetPath(StateFiles.Policy)));
            using var referenceWeights = LoadPolicy(referenceFile);
            return (policy, Own(owned, new ReferenceModel(referenceWeights)));
        }
        if (!hasAdapter)
            throw new InvalidDataException($"checkpoint {checkpoint} holds no LoRA adapter ({PeftAdapter.ConfigFile}, {PeftAdapter.WeightsFile}): it was written by a full fine-tune, but Learner:Adapter is set; remove the Learner:Adapter keys to resume it, or start LoRA from its policy.safetensors as Model:InitialPolicy in a new checkpoint directory");
        var adapted = Own(owned, LoadPolicy(referenceFile));
        PeftAdapter.Load(checkpoint.DirectoryPath, adapted);  // owned by the policy from here on
        return (adapted, Own(owned, ReferenceModel.BaseOf(adapted)));
    }

    /// <summary>
    /// The reward model as <paramref name="checkpoint"/> holds it, whatever the configuration asks for a fresh start (its
    /// optimizer state belongs to that form): a LoRA run's adapters + head (reward_adapter.safetensors) on the frozen base —
    /// <paramref name="policy"/>'s base weights, i.e. reference.safetensors — or a whole reward.safetensors (full
    /// fine-tuning, a LoRA run started from <c>Model:InitialRewardModel</c>, or a LoRA checkpoint of an older build, which
    /// goes on training the whole reward model as it did: logged, since its versions stay large).
    /// </summary>
    private RewardModel LoadRewardModel(Checkpoint checkpoint, string rewardFile, PolicyModel policy)
    {
        if (rewardFile == StateFiles.RewardAdapter)
        {
            var lora = settings.Learner.Adapter
                ?? throw new InvalidDataException($"checkpoint {checkpoint} holds a LoRA reward model ({StateFiles.RewardAdapter}), but Learner:Adapter is not set");
            return RewardCheckpoint.LoadAdapter(checkpoint.GetPath(StateFiles.RewardAdapter), policy, lora);
        }
        if (settings.Learner.Adapter is not null && string.IsNullOrWhiteSpace(settings.Model.InitialRewardModel))
            logger.LogWarning("Checkpoint {Version} holds a whole reward model ({File}, written by an older build): it goes on training every reward weight and every version stores it whole; start a new checkpoint directory for a LoRA reward model", checkpoint.ToString(), StateFiles.RewardModel);
        return RewardCheckpoint.Load(checkpoint.GetPath(StateFiles.RewardModel), policy.Config, policy.Placement);
    }

    /// <summary>
    /// Writes the whole state into a new staging directory, with the offsets of <paramref name="trackers"/>
    /// read in the same work item (so they are exactly what the files hold) and, read after them, the
    /// duplicate-id <paramref name="windows"/> (every id the offsets cover was registered before its record was
    /// absorbed). Takes the audit entries; a checkpoint that then fails gives them back with <see cref="Unstage"/>.
    /// A failure here (the staging volume is full) deletes what was staged and changes nothing in the state.
    /// </summary>
    public StagedCheckpoint Stage(LearningState state, IEnumerable<OffsetTracker> trackers, bool policyChanged, IReadOnlyDictionary<string, double> metricsToRecord,
                                  IReadOnlyList<(string Topic, DuplicateIdWindow Window)>? windows = null)
    {
        thread.VerifyAccess();
        state.Enter();
        var directory = staging.NewDirectory("checkpoint");
        try
        {
            return StageInto(directory, state, trackers, policyChanged, metricsToRecord, windows ?? []);
        }
        catch
        {
            StagingArea.Delete(directory);
            throw;
        }
    }

    /// <summary>A staged checkpoint was not written: its audit entries go back to the state, for the next one.</summary>
    public void Unstage(LearningState state, StagedCheckpoint staged)
    {
        thread.VerifyAccess();
        state.Enter();
        state.Audit?.Return(staged.Audit);
    }

    /// <summary>The duplicate-id windows a checkpoint saved (topic → entries), empty for checkpoints of older builds.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<SeenId>> ReadDuplicateWindows(Checkpoint checkpoint)
    {
        if (!checkpoint.Contains(StateFiles.DuplicateIds)) return new Dictionary<string, IReadOnlyList<SeenId>>();
        using var stream = checkpoint.OpenRead(StateFiles.DuplicateIds);
        try
        {
            return DuplicateWindowFile.Read(stream);
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"checkpoint {checkpoint}: {StateFiles.DuplicateIds}: {e.Message}", e);
        }
    }

    private StagedCheckpoint StageInto(string directory, LearningState state, IEnumerable<OffsetTracker> trackers, bool policyChanged, IReadOnlyDictionary<string, double> metricsToRecord,
                                       IReadOnlyList<(string Topic, DuplicateIdWindow Window)> windows)
    {
        var files = new Dictionary<string, string>(StringComparer.Ordinal);
        string At(string name) => files[name] = Path.Combine(directory, name);
        var offsets = trackers.SelectMany(t => t.Snapshot()).ToList();
        if (windows.Count > 0) DuplicateWindowFile.Write(At(StateFiles.DuplicateIds), windows, offsets);

        var shared = StagePolicyFiles(directory, state, files);
        if (state.RewardModel.Adapters is not null) RewardCheckpoint.SaveAdapter(At(StateFiles.RewardAdapter), state.RewardModel);
        else RewardCheckpoint.Save(At(StateFiles.RewardModel), state.RewardModel);
        using (var rewardState = state.RewardTrainer.ExportState()) rewardState.Save(At(StateFiles.RewardOptimizer), At(StateFiles.RewardTrainerState));
        using (var learnerState = state.Learner.ExportState()) learnerState.Save(At(StateFiles.LearnerOptimizer), At(StateFiles.LearnerState));
        using (var stream = File.Create(At(StateFiles.Replay))) state.Replay.WriteSnapshot(stream, RolloutSerializer.Instance);
        using (var stream = File.Create(At(StateFiles.HumanPairs))) state.HumanPairs.WriteSnapshot(stream, PreferencePairSerializer.Instance);
        using (var stream = File.Create(At(StateFiles.Pending)))
        using (var writer = new BinaryWriter(stream))
            state.Pending.Write(writer);
        File.WriteAllText(At(StateFiles.Worker), WorkerJson(state));
        IReadOnlyList<AbsorbedLabel> audited = [];
        if (state.Audit is { } audit)
        {
            audited = audit.Take();
            try
            {
                File.WriteAllBytes(At(LabelAudit.FileName), LabelAudit.Serialize(audited));
            }
            catch
            {
                audit.Return(audited);
                throw;
            }
        }

        var recorded = new Dictionary<string, double>(metricsToRecord, StringComparer.Ordinal)
        {
            ["policy_version"] = state.PolicyVersion,
            ["updates"] = state.Learner.Counters.UpdatesApplied,
            ["replay_size"] = state.Replay.Count,
            ["pending_rollouts"] = state.Pending.RolloutCount,
            ["labels_absorbed"] = state.Counters.PairsAbsorbed + state.Counters.RatingsAbsorbed,
        };
        if (state.RewardTrainer.HeldOutAccuracy is { } accuracy) recorded["reward_model_accuracy"] = accuracy;
        return new StagedCheckpoint(directory, files, offsets, recorded, state.PolicyVersion, policyChanged, audited, shared);
    }

    /// <summary>
    /// Stages only what consumers need to load the current policy — the weights (or the LoRA adapter), the base
    /// (reference.safetensors) and the tokenizer — for a publish-only version between two checkpoints
    /// (<c>Checkpoints:Interval</c>). No offsets (the version carries those of the checkpoint it follows), no learner
    /// state, no audit entries.
    /// </summary>
    public StagedCheckpoint StagePolicy(LearningState state, IReadOnlyDictionary<string, double> metricsToRecord)
    {
        thread.VerifyAccess();
        state.Enter();
        var directory = staging.NewDirectory("published");
        try
        {
            var files = new Dictionary<string, string>(StringComparer.Ordinal);
            var shared = StagePolicyFiles(directory, state, files);
            var recorded = new Dictionary<string, double>(metricsToRecord, StringComparer.Ordinal)
            {
                ["policy_version"] = state.PolicyVersion,
                ["updates"] = state.Learner.Counters.UpdatesApplied,
            };
            return new StagedCheckpoint(directory, files, [], recorded, state.PolicyVersion, PolicyChanged: true, [], shared);
        }
        catch
        {
            StagingArea.Delete(directory);
            throw;
        }
    }

    /// <summary>
    /// The policy's files into <paramref name="files"/> (name → staged path): policy.safetensors, or for LoRA the adapter
    /// (PEFT layout, with the base's sha256) — megabytes; consumers (restarts, generators, `generate`, the serving export)
    /// load base + adapter (StoredPolicy.LoadWeights), no merged copy of the model is written per version — plus
    /// reference.safetensors and the tokenizer files, which never change and are returned as the shared names.
    /// </summary>
    private HashSet<string> StagePolicyFiles(string directory, LearningState state, Dictionary<string, string> files)
    {
        if (state.Policy.Adapters is { } adapters)
        {
            var adapterDirectory = Path.Combine(directory, "adapter");
            PeftAdapter.Save(adapterDirectory, adapters);
            files[PeftAdapter.ConfigFile] = Path.Combine(adapterDirectory, PeftAdapter.ConfigFile);
            files[PeftAdapter.WeightsFile] = Path.Combine(adapterDirectory, PeftAdapter.WeightsFile);
        }
        else
        {
            PolicyCheckpoint.SaveWeightsFile(files[StateFiles.Policy] = Path.Combine(directory, StateFiles.Policy), state.Policy);
        }
        files[StateFiles.Reference] = state.ReferenceFile;
        var shared = new HashSet<string>(StringComparer.Ordinal) { StateFiles.Reference };
        foreach (var file in Directory.EnumerateFiles(tokenizerDirectory ?? throw new InvalidOperationException("tokenizer not staged")))
        {
            files[Path.GetFileName(file)] = file;
            shared.Add(Path.GetFileName(file));
        }
        return shared;
    }

    private void SaveTokenizer(ITokenizer tokenizer)
    {
        if (tokenizerDirectory is not null) return;
        var directory = staging.NewDirectory("tokenizer");
        TokenizerLoader.Save(tokenizer, directory);
        tokenizerDirectory = directory;
    }

    private PolicyModel LoadPolicy(string path) => PolicyCheckpoint.LoadWeightsFile(path, placement: settings.Model.Placement);

    private static T Own<T>(List<IDisposable> owned, T item) where T : IDisposable
    {
        owned.Add(item);
        return item;
    }

    /// <summary>
    /// The buffer as checkpointed; when the configured limits differ from the checkpoint's, its items are
    /// moved into a buffer with the configured ones (their use counts restart: they count as fresh).
    /// </summary>
    private ReplayBuffer<T> ReadBuffer<T>(Checkpoint checkpoint, string name, IReplayItemSerializer<T> serializer, ReplayLimits configured)
    {
        if (!checkpoint.Contains(name)) return new ReplayBuffer<T>(configured);
        ReplayBuffer<T> restored;
        using (var stream = checkpoint.OpenRead(name)) restored = ReplayBuffer<T>.ReadSnapshot(stream, serializer);
        if (restored.Options == configured) return restored;
        logger.LogWarning("Replay settings changed since checkpoint {Version} ({Name}): moving {Count} items into a buffer with the configured limits", checkpoint.ToString(), name, restored.Count);
        var rebuilt = new ReplayBuffer<T>(configured);
        foreach (var entry in restored.Snapshot()) rebuilt.Add(entry.Item, entry.UpdateCount);
        return rebuilt;
    }

    private static string WorkerJson(LearningState state)
    {
        var map = new JsonObject();
        foreach (var (external, internalVersion) in state.VersionMap) map[external.ToString(System.Globalization.CultureInfo.InvariantCulture)] = internalVersion;
        var root = new JsonObject
        {
            ["format"] = WorkerFormat,
            ["policy_version"] = state.PolicyVersion,
            ["learner_version"] = state.Learner.UpdateCount,
            ["version_map"] = map,
            ["counters"] = JsonSerializer.SerializeToNode(state.Counters, CountersJson),
            ["observation"] = state.Observation.ToJson(),
        };
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    private static (long PolicyVersion, Dictionary<long, long> Versions, OnlineLearnerCounters Counters, LabelObservationFilter Observation) ReadWorkerFile(Checkpoint checkpoint)
    {
        var text = File.ReadAllText(checkpoint.GetPath(StateFiles.Worker));
        var root = JsonNode.Parse(text) as JsonObject ?? throw new InvalidDataException($"{StateFiles.Worker} is not a JSON object");
        if (root["format"]?.GetValue<string>() != WorkerFormat) throw new InvalidDataException($"{StateFiles.Worker} is not in format {WorkerFormat}");
        var policyVersion = root["policy_version"]?.GetValue<long>() ?? throw new InvalidDataException($"{StateFiles.Worker} lacks policy_version");
        var versions = new Dictionary<long, long>();
        if (root["version_map"] is JsonObject map)
        {
            foreach (var (key, value) in map)
                versions[long.Parse(key, System.Globalization.CultureInfo.InvariantCulture)] = value!.GetValue<long>();
        }
        var counters = root["counters"].Deserialize<OnlineLearnerCounters>(CountersJson) ?? new OnlineLearnerCounters();
        return (policyVersion, versions, counters, LabelObservationFilter.FromJson(root["observation"]));
    }

    private static readonly JsonSerializerOptions CountersJson = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
}
