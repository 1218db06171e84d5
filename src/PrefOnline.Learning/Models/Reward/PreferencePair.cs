namespace PrefOnline.Learning.Models.Reward;

/// <summary>One human (or simulated) judgement: for <see cref="Prompt"/>, <see cref="Chosen"/> was preferred over <see cref="Rejected"/>.</summary>
public sealed record PreferencePair(string Prompt, string Chosen, string Rejected);
