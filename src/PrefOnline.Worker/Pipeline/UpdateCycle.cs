using PrefOnline.Learning.Guardrails;
using PrefOnline.Learning.Training;

namespace PrefOnline.Worker.Pipeline;

/// <summary>
/// One learner update as the learner stage sees it: what the learner did, the guardrail's verdict
/// (null when nothing was evaluated: an empty batch), and whether the state now holds the update
/// (<see cref="Accepted"/>: its weights are the new <see cref="PolicyVersion"/>, to be checkpointed and published)
/// or must be reloaded from a checkpoint (<see cref="NeedsReload"/>: weights changed but the update was refused).
/// </summary>
public sealed record UpdateCycle(LearnerUpdate Update, GuardrailDecision? Decision, bool Accepted, bool NeedsReload, long PolicyVersion, TimeSpan Duration);
