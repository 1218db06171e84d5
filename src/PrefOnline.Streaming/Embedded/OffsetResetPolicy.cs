namespace PrefOnline.Streaming.Embedded;

/// <summary>Where an embedded consumer starts when neither the resume provider nor the group knows an offset, or the offset is out of range (Kafka's auto.offset.reset).</summary>
public enum OffsetResetPolicy
{
    /// <summary>The oldest retained record (nothing retained is skipped).</summary>
    Earliest = 0,

    /// <summary>The end of the partition (only records produced from now on).</summary>
    Latest = 1,
}
