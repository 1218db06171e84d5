using PrefOnline.Learning.Objectives;

namespace PrefOnline.Learning.Tests.Objectives;

public sealed class BaselineTests
{
    [Fact]
    public void Leave_one_out_subtracts_the_mean_of_the_others_in_the_group()
    {
        // Group 7: (1, 2, 6) → 1 − 4 = −3, 2 − 3.5 = −1.5, 6 − 1.5 = 4.5. Group 3 (interleaved): (0, 10) → −10, 10. Group 9 alone → 0.
        var a = LeaveOneOutBaseline.Advantages([1, 0, 2, 10, 6, 5], [7, 3, 7, 3, 7, 9]);
        Assert.Equal(new[] { -3, -10, -1.5, 10, 4.5, 0 }, a);
        Assert.Throws<ArgumentException>(() => LeaveOneOutBaseline.Advantages([double.NaN], [0]));
        Assert.Throws<ArgumentException>(() => LeaveOneOutBaseline.Advantages([1, 2], [0]));
    }

    [Fact]
    public void Cumulative_baseline_matches_the_statistics_of_everything_seen()
    {
        var b = new MovingAverageBaseline(decay: null, normalizeByStd: true);
        b.Advantages([1, 2, 3]);
        var a = b.Advantages([4, 10]);
        // All seen: 1, 2, 3, 4, 10 → mean 4, population variance (9 + 4 + 1 + 0 + 36)/5 = 10.
        Assert.Equal(5, b.State.Count);
        Assert.Equal(4, b.State.Mean, 12);
        Assert.Equal(10, b.State.Variance, 12);
        Assert.Equal(0, a[0], 12);
        Assert.Equal(6 / (Math.Sqrt(10) + MovingAverageBaseline.Epsilon), a[1], 12);
    }

    [Fact]
    public void Ema_baseline_forgets_and_restores()
    {
        var b = new MovingAverageBaseline(decay: 0.5, normalizeByStd: false);
        b.Advantages([2]);                                // mean 2
        var a = b.Advantages([4]);                        // mean 2 + 0.5·2 = 3 → advantage 1
        Assert.Equal(3, b.State.Mean, 12);
        Assert.Equal(1, a[0], 12);
        var copy = new MovingAverageBaseline(decay: 0.5, normalizeByStd: false);
        copy.Restore(b.State);
        Assert.Equal(b.Advantages([5]), copy.Advantages([5]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new MovingAverageBaseline(decay: 1));
        Assert.Throws<ArgumentException>(() => b.Advantages([double.PositiveInfinity]));
    }
}
