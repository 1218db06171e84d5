using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Tensors.Serialization;

/// <summary>A safetensors file that breaks the format; the message names the file and the first problem.</summary>
public sealed class SafeTensorsFormatException(string path, string problem)
    : IOException($"{path}: not a valid safetensors file: {problem}")
{
    public string Problem { get; } = problem;
}
