using Confluent.Kafka;
using Microsoft.Extensions.Logging;
using PrefOnline.Streaming.Transport;

namespace PrefOnline.Streaming.Kafka;

/// <summary>
/// What a Kafka client knows about its brokers, from librdkafka's error, statistics and log
/// callbacks, for /readyz. Shared by the source and the sink so both judge reachability alike; a
/// change is logged once (warning when lost, information when back), never per callback.
/// </summary>
internal sealed class BrokerReachabilityTracker(ILogger logger, string client)
{
    private int state = (int)BrokerReachability.Unknown;

    public BrokerReachability Current => (BrokerReachability)Volatile.Read(ref state);

    /// <summary>Traffic just flowed (a delivery, a fetched record): the broker is reachable.</summary>
    public void MarkReachable(string why)
    {
        if (Current != BrokerReachability.Reachable) Set(BrokerReachability.Reachable, why);
    }

    public void OnError(Error error)
    {
        if (error.Code == ErrorCode.Local_AllBrokersDown) Set(BrokerReachability.Unreachable, error.Reason);
    }

    /// <summary>librdkafka's periodic statistics JSON says whether any broker connection is up.</summary>
    public void OnStatistics(string json)
    {
        if (BrokerStatistics.AnyBrokerUp(json) is { } up)
            Set(up ? BrokerReachability.Reachable : BrokerReachability.Unreachable, up ? "a broker connection is up" : "no broker connection is up");
    }

    public void Set(BrokerReachability value, string why)
    {
        var previous = (BrokerReachability)Interlocked.Exchange(ref state, (int)value);
        if (previous == value) return;
        if (value == BrokerReachability.Unreachable) logger.LogWarning("{Client}: broker unreachable ({Why}); reconnecting by itself", client, why);
        else logger.LogInformation("{Client}: broker reachable ({Why})", client, why);
    }

    /// <summary>Forwards a librdkafka log line at the matching level.</summary>
    public static void ForwardLog(ILogger logger, LogMessage message)
    {
        var level = message.Level switch
        {
            SyslogLevel.Emergency or SyslogLevel.Alert or SyslogLevel.Critical or SyslogLevel.Error => LogLevel.Error,
            SyslogLevel.Warning => LogLevel.Warning,
            SyslogLevel.Notice or SyslogLevel.Info => LogLevel.Information,
            _ => LogLevel.Debug,
        };
        logger.Log(level, "librdkafka {Facility}: {Message}", message.Facility, message.Message);
    }
}
