using TorchSharp;
using static TorchSharp.torch;
using PrefOnline.Tensors.Serialization;

namespace PrefOnline.Learning.Training;

/// <summary>
/// A trainer's resumable state for the checkpoint store: named tensors (optimizer moments and step
/// counts, generator states) for a safetensors file, and a small JSON document for everything else
/// (counters, controller and baseline state, labels). Owns its tensors: dispose it when written.
/// </summary>
public sealed class TrainingState : IDisposable
{
    /// <param name="tensors">Taken over by this state (moved out of any scope).</param>
    public TrainingState(IReadOnlyDictionary<string, Tensor> tensors, string json)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentNullException.ThrowIfNull(json);
        foreach (var t in tensors.Values) t.DetachFromDisposeScope();
        Tensors = tensors;
        Json = json;
    }

    public IReadOnlyDictionary<string, Tensor> Tensors { get; }

    public string Json { get; }

    /// <summary>Writes the tensors (safetensors, atomically renamed into place) and the JSON (UTF-8).</summary>
    public void Save(string tensorsPath, string jsonPath)
    {
        SafeTensorsFile.Write(tensorsPath, Tensors.OrderBy(kv => kv.Key, StringComparer.Ordinal));
        File.WriteAllText(jsonPath, Json);
    }

    /// <summary>Reads a state written by <see cref="Save"/>; throws <see cref="SafeTensorsFormatException"/>
    /// or <see cref="IOException"/> when a file is missing or damaged.</summary>
    public static TrainingState Load(string tensorsPath, string jsonPath)
    {
        var json = File.ReadAllText(jsonPath);
        var content = SafeTensorsFile.Read(tensorsPath);
        return new TrainingState(content.Tensors, json);
    }

    public void Dispose()
    {
        foreach (var t in Tensors.Values) t.Dispose();
    }
}
