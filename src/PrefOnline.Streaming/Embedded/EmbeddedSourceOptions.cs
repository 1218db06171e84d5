namespace PrefOnline.Streaming.Embedded;

/// <summary>Configuration of one embedded consumer-group member.</summary>
public sealed class EmbeddedSourceOptions
{
    public string GroupId { get; set; } = "prefonline";

    public IList<string> Topics { get; set; } = new List<string>();

    /// <summary>Records buffered between the broker and the caller (default 1,024).</summary>
    public int ChannelCapacity { get; set; } = 1024;

    /// <summary>Start position when no offset is known or it is out of range (default earliest, as the Kafka source).</summary>
    public OffsetResetPolicy OffsetReset { get; set; } = OffsetResetPolicy.Earliest;

    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(GroupId)) problems.Add("GroupId is required");
        if (Topics.Count == 0 || Topics.Any(string.IsNullOrWhiteSpace)) problems.Add("Topics must list at least one non-empty topic name");
        if (ChannelCapacity < 1) problems.Add($"ChannelCapacity must be at least 1 (got {ChannelCapacity})");
        return problems;
    }
}
