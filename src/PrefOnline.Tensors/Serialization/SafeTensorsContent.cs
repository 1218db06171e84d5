using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Tensors.Serialization;

/// <summary>Tensors loaded from a safetensors file; disposing it frees them all.</summary>
public sealed class SafeTensorsContent(IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string> metadata) : IDisposable
{
    public IReadOnlyDictionary<string, Tensor> Tensors { get; } = tensors;

    public IReadOnlyDictionary<string, string> Metadata { get; } = metadata;

    public void Dispose()
    {
        foreach (var t in Tensors.Values) t.Dispose();
    }
}
