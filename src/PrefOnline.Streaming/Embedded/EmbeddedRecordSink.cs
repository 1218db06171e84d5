using PrefOnline.Streaming.Transport;

namespace PrefOnline.Streaming.Embedded;

/// <summary>Produces into an <see cref="EmbeddedBroker"/> (obtain one from <see cref="EmbeddedBroker.CreateSink"/>). A record is durable (for the process's lifetime) as soon as the call returns.</summary>
public sealed class EmbeddedRecordSink : IRecordSink
{
    private readonly EmbeddedBroker broker;

    internal EmbeddedRecordSink(EmbeddedBroker broker) => this.broker = broker;

    public BrokerReachability Reachability => BrokerReachability.Reachable;

    /// <exception cref="StreamingException">The topic does not exist (not transient).</exception>
    public Task<DeliveredRecord> ProduceAsync(OutgoingRecord record, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(record);
        return broker.AppendAsync(record, cancellationToken);
    }

    public Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
