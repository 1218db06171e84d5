namespace PrefOnline.Streaming.Transport;

/// <summary>
/// Produces records to any topic (Kafka or embedded: same contract). A returned task completes only
/// when the record is durably written (Kafka: acks=all, idempotent, so internal retries never create
/// duplicates or reorder a partition).
/// </summary>
public interface IRecordSink : IAsyncDisposable
{
    BrokerReachability Reachability { get; }

    /// <summary>Produces one record and waits until it is durable.</summary>
    /// <exception cref="StreamingException">Delivery failed after the sink's retries, or the sink's circuit is open
    /// (<see cref="StreamingException.IsTransient"/> says whether trying again later can succeed).</exception>
    Task<DeliveredRecord> ProduceAsync(OutgoingRecord record, CancellationToken cancellationToken);

    /// <summary>Waits until every record produced so far is delivered or failed.</summary>
    Task FlushAsync(CancellationToken cancellationToken);
}
