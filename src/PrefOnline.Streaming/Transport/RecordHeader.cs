namespace PrefOnline.Streaming.Transport;

/// <summary>A record header: a name and raw bytes (Kafka headers allow repeated names; order is kept).</summary>
public sealed record RecordHeader(string Name, byte[] Value)
{
    /// <summary>A header whose value is <paramref name="value"/> in UTF-8.</summary>
    public static RecordHeader Utf8(string name, string value) => new(name, System.Text.Encoding.UTF8.GetBytes(value));

    /// <summary>The value decoded as UTF-8 (invalid bytes become U+FFFD).</summary>
    public string ValueAsString() => System.Text.Encoding.UTF8.GetString(Value);
}
