namespace PrefOnline.Benchmarks;

/// <summary>The PyTorch reference process is missing, died, or reported an error (message says which and how to fix it).</summary>
public sealed class PythonReferenceException(string message) : InvalidOperationException(message);
