namespace PrefOnline.Worker.Hosting;

/// <summary>What one <c>prefonline run</c> process does (docs/ARCHITECTURE.md, "Roles and the pipeline").</summary>
public enum WorkerRole
{
    /// <summary>Everything in one process: prompts → generation → scoring → replay → updates → checkpoints → policy events.
    /// Rollouts are still published for external labelers. The only role the embedded transport supports.</summary>
    All,

    /// <summary>Prompts in, rollouts out; follows the policy topic to load each new version. Scales out (one consumer group splits the prompt partitions).</summary>
    Generator,

    /// <summary>Rollouts and feedback in; scoring, replay, updates, guardrails, checkpoints; policy events out. Single replica: it owns the checkpoint store.</summary>
    Learner,
}
