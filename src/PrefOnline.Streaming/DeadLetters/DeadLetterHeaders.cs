namespace PrefOnline.Streaming.DeadLetters;

/// <summary>
/// Header names of a dead-letter record on <c>prefonline.dlq</c> (src/PrefOnline.Streaming/README.md). Values are UTF-8 text;
/// numbers are decimal. The record's key and value are the original's, byte for byte, and the
/// original's own headers come first, so a consumer reading the LAST header of a name gets ours.
/// </summary>
public static class DeadLetterHeaders
{
    /// <summary>The stable reason code (<see cref="Validation.ReasonCodes"/>).</summary>
    public const string Reason = "reason";

    /// <summary>One line for humans (what exactly was wrong; never the payload itself beyond a short excerpt).</summary>
    public const string Detail = "detail";

    public const string SourceTopic = "source-topic";
    public const string SourcePartition = "source-partition";
    public const string SourceOffset = "source-offset";

    /// <summary>The original record's timestamp, Unix milliseconds.</summary>
    public const string SourceTimestamp = "source-timestamp";

    /// <summary>Present only on a pointer dead letter, written when the original could not be forwarded (e.g. too large for the dead-letter topic): what was left out and why. The value is then empty, the original headers are not copied (nor a key over 1 KiB), and the original stays readable at its source position.</summary>
    public const string ForwardError = "forward-error";

    /// <summary>Longest <see cref="Detail"/> value, in characters.</summary>
    public const int MaxDetailLength = 512;
}
