namespace PrefOnline.Worker.PolicyDistribution;

/// <summary>A policy could not be fetched from the learner, or what arrived does not match its event.</summary>
public sealed class PolicyDownloadException(string message, Exception? inner = null) : Exception(message, inner);
