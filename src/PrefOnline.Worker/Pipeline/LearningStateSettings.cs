using PrefOnline.Learning.Online;
using PrefOnline.Learning.Replay;
using PrefOnline.Learning.Training.Reward;
using PrefOnline.Learning.Training;
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
    LearnerOptions Learner,
    RewardTrainerOptions Reward)
{
    /// <summary>What the online learner reads of these sections.</summary>
    public OnlineLearnerSettings Online => new(Learner, Reward, Replay, Scoring.LabelWait, Scoring.RewardBatchSize, Model.Decoders);
}
