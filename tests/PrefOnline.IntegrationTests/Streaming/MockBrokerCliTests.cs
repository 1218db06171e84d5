using System.Diagnostics;
using System.Text;
using PrefOnline.Streaming.Kafka;
using PrefOnline.Streaming.Tests.Support;
using PrefOnline.Streaming.Transport;
using static PrefOnline.IntegrationTests.Streaming.KafkaTestKit;

namespace PrefOnline.IntegrationTests.Streaming;

/// <summary>The real <c>prefonline</c> binary's <c>mock-broker</c> verb as a separate process, driven by kcat and our clients.</summary>
[Collection(KafkaCollection.Name)]
public sealed class MockBrokerCliTests
{
    private static System.Diagnostics.Process StartBinary(params string[] arguments)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "prefonline.dll"));
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        return System.Diagnostics.Process.Start(start) ?? throw new InvalidOperationException("cannot start prefonline");
    }

    [Fact]
    public async Task Mock_broker_verb_serves_kcat_and_our_clients_then_exits_cleanly_on_sigterm()
    {
        var kcat = ExternalTools.Kcat;
        using var broker = StartBinary("mock-broker", "--topics", "e2e.in:2,e2e.out:1");
        try
        {
            using var cts = new CancellationTokenSource(TestTimeout);
            var first = await broker.StandardOutput.ReadLineAsync(cts.Token) ?? throw new InvalidOperationException("no output: " + await broker.StandardError.ReadToEndAsync());
            Assert.StartsWith("bootstrap.servers=127.0.0.1:", first);
            var bootstrap = first["bootstrap.servers=".Length..];

            // kcat -> our source
            await ExternalTools.RunAsync(kcat, ["-P", "-b", bootstrap, "-t", "e2e.in", "-K", ":"], TestTimeout, stdin: "a:1\nb:2\nc:3\n");
            await using (var source = KafkaRecordSource.Start(Source(bootstrap, "g", "e2e.in"), new OffsetTracker()))
            {
                var records = await Eventually.ReadAsync(source.Records, 3, TestTimeout);
                Assert.Equal(["1", "2", "3"], records.Select(r => Encoding.UTF8.GetString(r.Value)).Order());
            }

            // our sink -> kcat
            await using (var sink = KafkaRecordSink.Create(Sink(bootstrap)))
            {
                await sink.ProduceAsync(new OutgoingRecord("e2e.out", null, "hello from prefonline"u8.ToArray()), CancellationToken.None);
            }
            var output = await ExternalTools.RunAsync(kcat, ["-C", "-b", bootstrap, "-t", "e2e.out", "-o", "beginning", "-e", "-q"], TestTimeout);
            Assert.Equal("hello from prefonline", output.Trim());

            await ExternalTools.RunAsync("kill", ["-TERM", broker.Id.ToString()], TestTimeout);
            await broker.WaitForExitAsync(cts.Token);
            Assert.Equal(0, broker.ExitCode);
        }
        finally
        {
            if (!broker.HasExited) broker.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public async Task A_fixed_port_gives_a_stable_bootstrap_address()
    {
        var kcat = ExternalTools.Kcat;
        var port = FreePort();
        using var broker = StartBinary("mock-broker", "--port", port.ToString(), "--topics", "fixed:1");
        try
        {
            using var cts = new CancellationTokenSource(TestTimeout);
            Assert.Equal($"bootstrap.servers=127.0.0.1:{port}", await broker.StandardOutput.ReadLineAsync(cts.Token));
            await ExternalTools.RunAsync(kcat, ["-P", "-b", $"127.0.0.1:{port}", "-t", "fixed"], TestTimeout, stdin: "x\n");
            var output = await ExternalTools.RunAsync(kcat, ["-C", "-b", $"127.0.0.1:{port}", "-t", "fixed", "-o", "beginning", "-e", "-q"], TestTimeout);
            Assert.Equal("x", output.Trim());
        }
        finally
        {
            broker.Kill(entireProcessTree: true);
            await broker.WaitForExitAsync();
        }
    }

    [Fact]
    public async Task Outages_can_be_scripted_on_stdin_and_clients_recover()
    {
        using var broker = StartBinary("mock-broker", "--topics", "t:1");
        try
        {
            using var cts = new CancellationTokenSource(TestTimeout);
            var bootstrap = (await broker.StandardOutput.ReadLineAsync(cts.Token))!["bootstrap.servers=".Length..];
            await broker.StandardOutput.ReadLineAsync(cts.Token); // topic line
            await using var sink = KafkaRecordSink.Create(Sink(bootstrap));
            await sink.ProduceAsync(new OutgoingRecord("t", null, "a"u8.ToArray()), CancellationToken.None);

            await broker.StandardInput.WriteLineAsync("down");
            Assert.Equal("ok down -1", await broker.StandardOutput.ReadLineAsync(cts.Token));
            await Eventually.TrueAsync(() => sink.Reachability == BrokerReachability.Unreachable, TestTimeout, "the sink sees the outage");
            var pending = sink.ProduceAsync(new OutgoingRecord("t", null, "b"u8.ToArray()), CancellationToken.None);

            await broker.StandardInput.WriteLineAsync("up");
            Assert.Equal("ok up -1", await broker.StandardOutput.ReadLineAsync(cts.Token));
            Assert.Equal(1, (await pending.WaitAsync(TestTimeout)).Offset);
            await broker.StandardInput.WriteLineAsync("explode");
            Assert.StartsWith("error unknown command", await broker.StandardOutput.ReadLineAsync(cts.Token));
        }
        finally
        {
            broker.Kill(entireProcessTree: true);
            await broker.WaitForExitAsync();
        }
    }

    [Fact]
    public async Task Bad_arguments_fail_with_one_clear_line()
    {
        using var broker = StartBinary("mock-broker", "--topics", "bad:zero");
        using var cts = new CancellationTokenSource(TestTimeout);
        await broker.WaitForExitAsync(cts.Token);
        var stderr = await broker.StandardError.ReadToEndAsync(cts.Token);
        Assert.Equal(2, broker.ExitCode);
        Assert.Equal("prefonline: --topics: 'bad:zero' is not name[:partitions] with 1..1000 partitions", stderr.Trim());
    }

    private static int FreePort()
    {
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
