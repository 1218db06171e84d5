using System.Diagnostics.Metrics;
using PrefOnline.Streaming.Embedded;
using PrefOnline.Streaming.Metrics;
using PrefOnline.Streaming.Tests.Support;
using PrefOnline.Streaming.Transport;

namespace PrefOnline.Streaming.Tests.Metrics;

public sealed class StreamingMetricsTests
{
    [Fact]
    public async Task Messages_and_lag_are_published_on_the_PrefOnline_meter_with_their_tags()
    {
        using var metrics = new StreamingMetrics();
        var counted = new List<(string Name, long Value, Dictionary<string, object?> Tags)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter == metrics.Meter) l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            lock (counted) counted.Add((instrument.Name, value, tags.ToArray().ToDictionary(t => t.Key, t => t.Value)));
        });
        listener.Start();
        Assert.Equal("PrefOnline", metrics.Meter.Name);

        metrics.CountAccepted("prefonline.feedback");
        metrics.CountDeadLetter("prefonline.feedback", "invalid-json");
        Assert.Contains(counted, c => c.Name == "prefonline_messages_total" && (string?)c.Tags["topic"] == "prefonline.feedback" && (string?)c.Tags["result"] == "ok" && c.Value == 1);
        Assert.Contains(counted, c => c.Name == "prefonline_messages_total" && (string?)c.Tags["topic"] == "prefonline.feedback" && (string?)c.Tags["result"] == "dead_letter" && c.Value == 1);
        Assert.Contains(counted, c => c.Name == "prefonline_dead_letters_total" && (string?)c.Tags["topic"] == "prefonline.feedback" && (string?)c.Tags["reason"] == "invalid-json" && c.Value == 1);
        Assert.DoesNotContain(counted, c => c.Name == "prefonline_messages_total" && (string?)c.Tags["result"] == "invalid-json");

        var broker = new EmbeddedBroker();
        broker.CreateTopic("t", 2);
        var sink = broker.CreateSink();
        for (var i = 0; i < 20; i++) await sink.ProduceAsync(new OutgoingRecord("t", [(byte)i], [1]), CancellationToken.None);
        await using var source = broker.Subscribe(new EmbeddedSourceOptions { GroupId = "g", Topics = { "t" }, ChannelCapacity = 1 }, new OffsetTracker(), metrics);
        await Eventually.TrueAsync(() => source.GetLag().Sum(l => l.Lag ?? 0) == 19, TimeSpan.FromSeconds(10), "one record in the channel");
        counted.Clear();
        listener.RecordObservableInstruments();
        var lag = counted.Where(c => c.Name == "prefonline_consumer_lag").ToArray();
        Assert.Equal(2, lag.Length);
        Assert.Equal(19, lag.Sum(l => l.Value));
        Assert.All(lag, l => Assert.Equal("t", l.Tags["topic"]));
        Assert.Equal(["0", "1"], lag.Select(l => (string)l.Tags["partition"]!).Order());
    }
}
