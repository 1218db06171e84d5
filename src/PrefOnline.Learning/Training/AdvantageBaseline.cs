namespace PrefOnline.Learning.Training;

/// <summary>How REINFORCE and PPO turn rewards into advantages (A = r − baseline).</summary>
public enum AdvantageBaseline
{
    /// <summary>RLOO (Ahmadian et al. 2024): within each prompt's group of samples in the batch,
    /// A_i = r_i − mean of the others. Stateless and unbiased; a prompt with a single sample in the
    /// batch gets A = 0 (it has nothing to be compared with). The default: the worker samples K ≥ 2 per prompt.</summary>
    LeaveOneOut,

    /// <summary>A running mean (and standard deviation) of every reward seen, or an exponential moving
    /// average with <see cref="LearnerOptions.BaselineDecay"/>. Part of the learner's checkpointed state.</summary>
    MovingAverage,
}
