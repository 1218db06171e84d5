using PrefOnline.Learning.Training;
using PrefOnline.Learning.Training.Reward;

namespace PrefOnline.Worker.Pipeline;

/// <summary>
/// The artefacts of a learner checkpoint (next to the store's manifest.json). Weights are safetensors
/// in Hugging Face layouts, so PyTorch/transformers read them directly; the policy file carries its
/// config.json in the metadata, so <c>policy.safetensors</c> alone is a loadable policy (what policy
/// events point to).
/// </summary>
public static class StateFiles
{
    /// <summary>The policy's weights (GPT2LMHeadModel names, config in the metadata).</summary>
    public const string Policy = "policy.safetensors";

    /// <summary>The frozen reference of the KL leash (the run's initial policy), same layout.</summary>
    public const string Reference = "reference.safetensors";

    /// <summary>The reward model (GPT2ForSequenceClassification names plus score.bias).</summary>
    public const string RewardModel = "reward.safetensors";

    /// <summary>A LoRA run's reward model: its adapters and score head only (RewardCheckpoint.SaveAdapter); the frozen trunk is the base, reference.safetensors.</summary>
    public const string RewardAdapter = "reward_adapter.safetensors";

    public const string RewardOptimizer = RewardTrainer.StateTensorsFileName;
    public const string RewardTrainerState = RewardTrainer.StateJsonFileName;
    public const string LearnerOptimizer = Learner.StateTensorsFileName;
    public const string LearnerState = Learner.StateJsonFileName;

    /// <summary>Scored rollouts (ReplayBuffer snapshot with its generator state and a SHA-256 trailer).</summary>
    public const string Replay = "replay.bin";

    /// <summary>Human preference pairs awaiting direct training (ReplayBuffer snapshot).</summary>
    public const string HumanPairs = "human_pairs.bin";

    /// <summary>Rollouts waiting for labels, with the labels already joined to them.</summary>
    public const string Pending = "pending.bin";

    /// <summary>The worker's own state: published policy version, version map, counters, the guardrail's label filter after a rollback.</summary>
    public const string Worker = "worker.json";

    /// <summary>The duplicate-id windows of the input topics (<see cref="DuplicateWindowFile"/>): exactly-once across restarts includes duplicates.</summary>
    public const string DuplicateIds = "duplicate-ids.bin";
}
