using PrefOnline.Worker.Hosting;
using PrefOnline.Worker.Models;

namespace PrefOnline.Worker.Pipeline;

/// <summary>The validated configuration sections the learning state is built from.</summary>
public sealed record LearningStateSettings(
    WorkerOptions Worker,
    ModelOptions Model,
    GenerationOptions Generation,
    ScoringOptions Scoring,
    ReplayOptions Replay,
    LearnerServiceOptions Learner,
    RewardTrainingOptions Reward);
