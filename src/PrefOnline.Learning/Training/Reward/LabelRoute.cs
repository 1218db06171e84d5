namespace PrefOnline.Learning.Training.Reward;

/// <summary>Where an incoming label went.</summary>
public enum LabelRoute
{
    /// <summary>Queued for training (then kept in the replay window).</summary>
    Training,

    /// <summary>Kept aside to measure the reward model on (never trained on).</summary>
    HeldOut,

    /// <summary>Refused: invalid (empty id, identical texts, non-finite or out-of-scale rating).</summary>
    Rejected,
}
