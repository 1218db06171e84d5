namespace PrefOnline.Learning.Tests.Guardrails;

/// <summary>A clock the test moves by hand (holds, pauses and cool-downs without sleeping).</summary>
internal sealed class ManualTimeProvider(DateTimeOffset start) : TimeProvider
{
    private DateTimeOffset now = start;

    public override DateTimeOffset GetUtcNow() => now;

    public void Advance(TimeSpan by) => now += by;
}
