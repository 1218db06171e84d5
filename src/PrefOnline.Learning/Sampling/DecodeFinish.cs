namespace PrefOnline.Learning.Sampling;

/// <summary>Why a decoded row stopped (the numbers are part of the contract with native decoder backends).</summary>
public enum DecodeFinish
{
    /// <summary>It reached the maximum number of new tokens.</summary>
    Length = 0,

    /// <summary>It sampled the end-of-sequence token (which is the row's last token).</summary>
    EndOfSequence = 1,

    /// <summary>The bytes of its tokens came to contain one of the stop sequences.</summary>
    StopSequence = 2,
}
