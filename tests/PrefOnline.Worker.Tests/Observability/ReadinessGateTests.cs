using PrefOnline.Worker.Observability.Health;

namespace PrefOnline.Worker.Tests.Observability;

public sealed class ReadinessGateTests
{
    [Fact]
    public async Task ALiveReasonIsReadAtEachCheckSoReadyzNamesThePolicyServedNow()
    {
        var gate = new ReadinessGate("model", "no policy loaded yet");
        Assert.False((await gate.CheckAsync(CancellationToken.None)).Healthy);
        var version = 1;
        gate.MarkReady(() => $"serving policy v{version}");
        Assert.Equal("serving policy v1", (await gate.CheckAsync(CancellationToken.None)).Reason);
        version = 74;
        Assert.Equal("serving policy v74", (await gate.CheckAsync(CancellationToken.None)).Reason);
        gate.MarkNotReady("reloading");
        var down = await gate.CheckAsync(CancellationToken.None);
        Assert.False(down.Healthy);
        Assert.Equal("reloading", down.Reason);
    }
}
