namespace PrefOnline.Worker.Demo;

/// <summary>A completion shown on the console and in the report, with its hidden utility to the simulated users.</summary>
public sealed record DemoSample(string Prompt, string Completion, double Utility);
