using System.Net;
using System.Net.Sockets;

namespace PrefOnline.MockKafka;

/// <summary>
/// A fixed 127.0.0.1 port in front of a mock cluster, which only binds ephemeral ports. Kafka clients use
/// a bootstrap address only to fetch metadata, then connect to the brokers' advertised addresses (the
/// mock's real ports) directly, so forwarding the bootstrap connections is enough to give scripts and
/// config files a stable <c>bootstrap.servers</c>.
/// </summary>
public sealed class BootstrapForwarder : IAsyncDisposable
{
    private readonly TcpListener listener;
    private readonly IPEndPoint target;
    private readonly CancellationTokenSource stopping = new();
    private readonly Task acceptLoop;

    private BootstrapForwarder(TcpListener listener, IPEndPoint target)
    {
        this.listener = listener;
        this.target = target;
        acceptLoop = Task.Run(AcceptAsync);
    }

    /// <summary>The forwarder's address (127.0.0.1:port).</summary>
    public string Address => ((IPEndPoint)listener.LocalEndpoint).ToString();

    /// <summary>Listens on 127.0.0.1:<paramref name="port"/> (0: any free port) and forwards every connection to the first of <paramref name="bootstrapServers"/>.</summary>
    /// <exception cref="SocketException">The port is in use.</exception>
    public static BootstrapForwarder Start(int port, string bootstrapServers)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(port);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        var first = bootstrapServers.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)[0];
        var target = IPEndPoint.Parse(first);
        var listener = new TcpListener(IPAddress.Loopback, port);
        listener.Start();
        return new BootstrapForwarder(listener, target);
    }

    public async ValueTask DisposeAsync()
    {
        await stopping.CancelAsync().ConfigureAwait(false);
        listener.Stop();
        try
        {
            await acceptLoop.ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
        stopping.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!stopping.IsCancellationRequested)
        {
            var client = await listener.AcceptTcpClientAsync(stopping.Token).ConfigureAwait(false);
            _ = Task.Run(() => ForwardAsync(client));
        }
    }

    private async Task ForwardAsync(TcpClient client)
    {
        using (client)
        using (var upstream = new TcpClient())
        {
            try
            {
                await upstream.ConnectAsync(target, stopping.Token).ConfigureAwait(false);
                var a = client.GetStream();
                var b = upstream.GetStream();
                // Either direction ending (or the forwarder stopping) closes both sockets.
                await Task.WhenAny(a.CopyToAsync(b, stopping.Token), b.CopyToAsync(a, stopping.Token)).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
            {
                // A dropped client or the broker going down: the client reconnects by itself.
            }
        }
    }
}
