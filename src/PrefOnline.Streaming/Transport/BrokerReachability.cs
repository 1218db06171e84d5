namespace PrefOnline.Streaming.Transport;

/// <summary>Whether a transport can currently talk to its broker (feeds /readyz).</summary>
public enum BrokerReachability
{
    /// <summary>No evidence yet either way (just started).</summary>
    Unknown = 0,

    /// <summary>At least one broker connection is up.</summary>
    Reachable = 1,

    /// <summary>All broker connections are down; the client keeps reconnecting by itself.</summary>
    Unreachable = 2,
}
