namespace PrefOnline.Streaming.Simulation;

/// <summary>
/// The simulated users' hidden taste: a latent utility of a completion, in nats (logit units), so a
/// Bradley–Terry user with temperature T prefers a over b with probability σ((U(a) − U(b)) / T) and a
/// rating user reports U plus noise. Implementations must be pure and thread-safe.
/// </summary>
public interface IHiddenPreference
{
    /// <summary>A short description for logs and the console (e.g. "shorter (8 chars/nat)").</summary>
    string Description { get; }

    /// <summary>Latent utility of <paramref name="completion"/> as an answer to <paramref name="prompt"/>, in nats.</summary>
    double Utility(string prompt, string completion);
}
