using Microsoft.Extensions.Logging;
using PrefOnline.Streaming.Contracts;
using PrefOnline.Streaming.Transport;
using PrefOnline.Worker.Checkpoints;
using PrefOnline.Worker.Serving;

namespace PrefOnline.Worker.Pipeline;

/// <summary>
/// Publishes <c>prefonline.policy.v1</c> events: "serve version V, whose weights are at uri, sha256".
/// All events share one key so they stay in order in one partition. Transient failures (broker down)
/// are retried with back-off until the event is durable or the caller gives up. Once it is, the version goes to the
/// serving stack's publishers (<see cref="ServingHandOff"/>, <c>Serving:Publishers</c>), in the background.
/// </summary>
public sealed class PolicyPublisher(IRecordSink sink, string topic, ILogger logger, TimeProvider time, ServingHandOff? serving = null)
{
    private static readonly byte[] Key = "prefonline.policy"u8.ToArray();

    public string Topic { get; } = topic;

    /// <summary>The last event made durable (null before the first).</summary>
    public PolicyEvent? Last { get; private set; }

    /// <summary>Publishes <paramref name="policyEvent"/>, which names the policy of <paramref name="checkpoint"/>, then hands that version to the serving stack.</summary>
    public async Task PublishAsync(PolicyEvent policyEvent, Checkpoint checkpoint, CancellationToken cancellationToken)
    {
        var record = new OutgoingRecord(Topic, Key, RecordSerializer.Serialize(policyEvent));
        var backoff = TimeSpan.FromMilliseconds(200);
        while (true)
        {
            try
            {
                // WaitAsync: the Kafka client waits for the delivery report (up to Kafka:DeliveryTimeout) whatever the token says.
                await sink.ProduceAsync(record, cancellationToken).WaitAsync(cancellationToken).ConfigureAwait(false);
                Last = policyEvent;
                serving?.Announce(ServedVersion.Of(policyEvent, checkpoint));
                logger.LogInformation("Published policy {Kind} v{Version} ({Uri}, sha256 {Sha})", policyEvent.Kind.ToString().ToLowerInvariant(), policyEvent.Version, policyEvent.Uri, policyEvent.Sha256[..12]);
                return;
            }
            catch (StreamingException e) when (e.IsTransient)
            {
                logger.LogWarning("Policy event v{Version} not delivered yet ({Error}); retrying in {Backoff}", policyEvent.Version, e.Message, backoff);
                await Task.Delay(backoff, time, cancellationToken).ConfigureAwait(false);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.FromSeconds(10).Ticks));
            }
        }
    }
}
