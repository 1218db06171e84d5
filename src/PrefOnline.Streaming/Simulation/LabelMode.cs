namespace PrefOnline.Streaming.Simulation;

/// <summary>What feedback the simulated users give on a prompt's rollouts.</summary>
public enum LabelMode
{
    /// <summary>Preference pairs (<c>prefonline.preference.v1</c>) among a prompt's rollouts.</summary>
    Pairs = 0,

    /// <summary>Scalar ratings (<c>prefonline.rating.v1</c>) of each rollout.</summary>
    Ratings = 1,

    /// <summary>Both.</summary>
    Both = 2,
}
