namespace PrefOnline.Streaming.Simulation;

/// <summary>The opposite taste: U' = −U (the default shifted preference, the starkest drift).</summary>
public sealed class ReversedPreference(IHiddenPreference inner) : IHiddenPreference
{
    public IHiddenPreference Inner { get; } = inner ?? throw new ArgumentNullException(nameof(inner));

    public string Description => $"reverse of {Inner.Description}";

    public double Utility(string prompt, string completion) => -Inner.Utility(prompt, completion);
}
