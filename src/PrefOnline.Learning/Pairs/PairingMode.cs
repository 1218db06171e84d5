namespace PrefOnline.Learning.Pairs;

/// <summary>How pairs are formed from the K scored samples of one prompt.</summary>
public enum PairingMode
{
    /// <summary>One pair per prompt: the best sample against the worst (Best-of-N, negative-gradient SFT,
    /// and the usual online-DPO recipe).</summary>
    BestVsWorst,

    /// <summary>Every pair of samples whose rewards differ by at least the minimum gap: K(K−1)/2 at
    /// most per prompt. What the paper's bandit code does for DPO and IPO.</summary>
    AllPairs,
}
