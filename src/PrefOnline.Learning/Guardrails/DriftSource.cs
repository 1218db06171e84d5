namespace PrefOnline.Learning.Guardrails;

/// <summary>Which reward stream a drift detector watches; the <c>source</c> label of the reward metrics.</summary>
public enum DriftSource
{
    /// <summary>On-policy rewards scored by the reward model (label value <c>model</c>).</summary>
    Model,
    /// <summary>Human ratings from the feedback topic (label value <c>human</c>).</summary>
    Human,
}
