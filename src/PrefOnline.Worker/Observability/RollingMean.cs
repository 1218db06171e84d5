namespace PrefOnline.Worker.Observability;

/// <summary>Thread-safe mean of the last N finite values (the "rolling" in <c>prefonline_reward</c>).</summary>
public sealed class RollingMean
{
    private readonly object gate = new();
    private readonly double[] window;
    private int next;
    private int count;
    private double sum;

    public RollingMean(int windowSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(windowSize, 1);
        window = new double[windowSize];
    }

    /// <summary>Mean of the window, or null before the first value.</summary>
    public double? Mean
    {
        get
        {
            lock (gate) return count == 0 ? null : sum / count;
        }
    }

    /// <summary>Adds a value; non-finite values are ignored (returns false).</summary>
    public bool Add(double value)
    {
        if (!double.IsFinite(value)) return false;
        lock (gate)
        {
            if (count == window.Length) sum -= window[next];
            else count++;
            window[next] = value;
            sum += value;
            next = (next + 1) % window.Length;
            // Re-sum once per lap so floating-point error from the running add/subtract cannot accumulate.
            if (next == 0) sum = window.Sum();
            return true;
        }
    }
}
