using System.Text.Json;

namespace PrefOnline.Streaming.Kafka;

/// <summary>Reads broker connection states out of librdkafka's statistics JSON (statistics.interval.ms).</summary>
internal static class BrokerStatistics
{
    /// <summary>
    /// True when at least one real broker (source "configured" or "learned", not the internal or logical
    /// ones) is in state "UP"; false when there are real brokers and none is up; null when the document
    /// names no real broker or cannot be read.
    /// </summary>
    public static bool? AnyBrokerUp(string json)
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            if (!document.RootElement.TryGetProperty("brokers", out var brokers) || brokers.ValueKind != JsonValueKind.Object) return null;
            var sawReal = false;
            foreach (var broker in brokers.EnumerateObject())
            {
                var source = broker.Value.TryGetProperty("source", out var s) ? s.GetString() : null;
                if (source is not ("configured" or "learned")) continue;
                sawReal = true;
                if (broker.Value.TryGetProperty("state", out var state) && state.GetString() == "UP") return true;
            }
            return sawReal ? false : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
