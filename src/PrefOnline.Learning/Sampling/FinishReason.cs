using System.Text.Json.Serialization;

namespace PrefOnline.Learning.Sampling;

/// <summary>Why a completion ended. The JSON names are the ones serving stacks use.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<FinishReason>))]
public enum FinishReason
{
    /// <summary>The policy sampled the end-of-sequence token (kept as the completion's last token).</summary>
    [JsonStringEnumMemberName("eos")] EndOfSequence,

    /// <summary>The text reached one of the stop strings (cut before it).</summary>
    [JsonStringEnumMemberName("stop")] StopString,

    /// <summary>It reached the maximum number of new tokens.</summary>
    [JsonStringEnumMemberName("length")] Length,
}
