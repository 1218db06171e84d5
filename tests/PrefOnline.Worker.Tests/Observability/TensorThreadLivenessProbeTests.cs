using PrefOnline.Tensors;
using TorchSharp;
using static TorchSharp.torch;
using PrefOnline.Worker.Observability.Health;

namespace PrefOnline.Worker.Tests.Observability;

/// <summary>The liveness probe against a real <see cref="TensorThread"/>: busy is alive, stuck past the stall timeout is not.</summary>
public sealed class TensorThreadLivenessProbeTests
{
    [Fact]
    public async Task ARealTensorThreadIsAliveBusyThenStuckThenAliveAgain()
    {
        using var thread = new TensorThread("probe-test", intraOpThreads: 1);
        var clock = new Clock();
        var probe = new TensorThreadLivenessProbe(thread, TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(60), clock);
        Assert.True((await probe.CheckAsync(CancellationToken.None)).Healthy);

        using var release = new ManualResetEventSlim();
        var longUpdate = thread.RunAsync(() => release.Wait(TimeSpan.FromMinutes(2)));
        var busy = await probe.CheckAsync(CancellationToken.None);
        Assert.True(busy.Healthy, busy.Reason);
        Assert.StartsWith("busy:", busy.Reason);

        clock.Advance(TimeSpan.FromSeconds(61));
        var stuck = await probe.CheckAsync(CancellationToken.None);
        Assert.False(stuck.Healthy);
        Assert.Contains("stall timeout 60 s", stuck.Reason);

        release.Set();
        Assert.True(await longUpdate);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        ProbeResult after;
        while (!(after = await probe.CheckAsync(CancellationToken.None)).Healthy || after.Reason != "answered a ping")
            Assert.True(DateTime.UtcNow < deadline, after.Reason);
    }

    [Fact]
    public async Task AStoppedTensorThreadIsDead()
    {
        var thread = new TensorThread("probe-stopped", intraOpThreads: 1);
        thread.Dispose();
        var probe = new TensorThreadLivenessProbe(thread, TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(60));
        var result = await probe.CheckAsync(CancellationToken.None);
        Assert.False(result.Healthy);
        Assert.Contains("stopped", result.Reason);
    }

    private sealed class Clock : TimeProvider
    {
        private DateTimeOffset now = DateTimeOffset.UnixEpoch;

        public override DateTimeOffset GetUtcNow() => now;

        public void Advance(TimeSpan by) => now += by;
    }
}
