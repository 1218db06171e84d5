namespace PrefOnline.Learning.Guardrails;

/// <summary>
/// Rolling accuracy of the reward model on live human preference pairs: for each incoming pair, did
/// the reward model (before training on it) score <c>chosen</c> above <c>rejected</c>? A falling
/// accuracy means the reward model no longer predicts what users prefer, and every policy update it
/// scores pushes the policy the wrong way. Not thread-safe (the <see cref="Guardrail"/> serialises access).
/// </summary>
public sealed class RewardModelAccuracyMonitor
{
    private readonly bool[] window;
    private int next;
    private int count;
    private int correct;

    public RewardModelAccuracyMonitor(int windowSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(windowSize, 1);
        window = new bool[windowSize];
    }

    /// <summary>Pairs currently in the window.</summary>
    public int Count => count;

    /// <summary>Fraction correct over the window; NaN when empty.</summary>
    public double Accuracy => count == 0 ? double.NaN : (double)correct / count;

    public void Observe(bool rewardModelAgreed)
    {
        if (count == window.Length)
        {
            if (window[next]) correct--;
        }
        else
        {
            count++;
        }
        window[next] = rewardModelAgreed;
        if (rewardModelAgreed) correct++;
        next = (next + 1) % window.Length;
    }

    public void Reset()
    {
        Array.Clear(window);
        next = 0;
        count = 0;
        correct = 0;
    }
}
