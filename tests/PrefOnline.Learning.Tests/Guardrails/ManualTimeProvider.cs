namespace PrefOnline.Learning.Tests.Guardrails;

/// <summary>
/// A clock the test moves by hand (holds, pauses and cool-downs without sleeping). Both of a
/// <see cref="TimeProvider"/>'s clocks move with it: the wall clock and the timestamps that elapsed times are measured
/// with (one timestamp tick = one <see cref="TimeSpan"/> tick).
/// </summary>
internal sealed class ManualTimeProvider(DateTimeOffset start) : TimeProvider
{
    private DateTimeOffset now = start;

    public override DateTimeOffset GetUtcNow() => now;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp() => now.UtcTicks;

    public void Advance(TimeSpan by) => now += by;
}
