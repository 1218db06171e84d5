namespace PrefOnline.Learning.Training;

/// <summary>Totals over a learner's life (checkpointed with it, so they survive restarts).</summary>
/// <param name="Updates">Calls of Update.</param>
/// <param name="UpdatesApplied">Updates that changed the weights (at least one inner step applied).</param>
/// <param name="StepsApplied">Inner gradient steps applied.</param>
/// <param name="StepsSkipped">Inner steps skipped by the NaN/Inf guard.</param>
/// <param name="EmptyUpdates">Updates with nothing to learn from.</param>
/// <param name="InvalidItems">Rollouts and pairs dropped as unusable (invalid fields, token ids outside the vocabulary).</param>
/// <param name="Rollouts">Rollouts trained on (each draw counts).</param>
/// <param name="HumanPairs">Human pairs trained on.</param>
/// <param name="TokensProcessed">Tokens through the policy's forward and backward, over all inner steps.</param>
public readonly record struct LearnerCounters(
    long Updates,
    long UpdatesApplied,
    long StepsApplied,
    long StepsSkipped,
    long EmptyUpdates,
    long InvalidItems,
    long Rollouts,
    long HumanPairs,
    long TokensProcessed);
