using PrefOnline.Learning.Objectives;

namespace PrefOnline.Learning.Tests.Objectives;

public sealed class KlControllerTests
{
    [Fact]
    public void Adaptive_controller_moves_proportionally_and_clips_the_error()
    {
        var c = new AdaptiveKlController(initialCoefficient: 0.2, targetKl: 6, horizon: 10_000);
        c.Update(observedKl: 6.6, samples: 1000);                  // e = 0.1 → ×(1 + 0.1·0.1)
        Assert.Equal(0.2 * 1.01, c.Coefficient, 14);
        c.Update(observedKl: 600, samples: 1000);                  // e clipped to 0.2 → ×1.02
        Assert.Equal(0.2 * 1.01 * 1.02, c.Coefficient, 14);
        c.Update(observedKl: 0, samples: 1000);                    // e = −1 clipped to −0.2 → ×0.98
        Assert.Equal(0.2 * 1.01 * 1.02 * 0.98, c.Coefficient, 14);
        var before = c.Coefficient;
        c.Update(observedKl: 6, samples: 1000);                    // on target: unchanged
        Assert.Equal(before, c.Coefficient);
    }

    [Fact]
    public void Adaptive_controller_settles_where_the_kl_meets_the_target()
    {
        // A policy whose KL falls as the penalty grows: KL(β) = 10/β, so the target 5 is met at β = 2.
        var c = new AdaptiveKlController(initialCoefficient: 0.1, targetKl: 5, horizon: 1000);
        for (var i = 0; i < 3000; i++) c.Update(10 / c.Coefficient, samples: 100);
        Assert.Equal(2.0, c.Coefficient, 2);
    }

    [Fact]
    public void Coefficients_are_validated_and_restorable()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdaptiveKlController(0, 6, 10_000));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdaptiveKlController(0.1, -1, 10_000));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdaptiveKlController(0.1, 6, 0));
        Assert.Throws<ArgumentException>(() => new AdaptiveKlController(0.1, 6, 100).Update(double.NaN, 10));
        var c = new AdaptiveKlController(0.1, 6, 100);
        c.Restore(0.37);
        Assert.Equal(0.37, c.Coefficient);
        Assert.Throws<ArgumentOutOfRangeException>(() => new FixedKlController(-1));
        var f = new FixedKlController(0.05);
        f.Update(1e6, 1000);
        Assert.Equal(0.05, f.Coefficient);
    }

    [Fact]
    public void A_batch_larger_than_the_horizon_never_flips_the_sign()
    {
        var c = new AdaptiveKlController(0.1, 6, 10);
        c.Update(0, samples: 1000);                                // factor would be 1 − 0.2·100 < 0
        Assert.True(c.Coefficient > 0);
    }
}
