using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Tensors.Serialization;

/// <summary>A validated safetensors header. <see cref="DataStart"/> is the file offset of the byte buffer.</summary>
public sealed record SafeTensorsHeader(IReadOnlyList<SafeTensorsEntry> Entries, IReadOnlyDictionary<string, string> Metadata, long DataStart);

/// <summary>One tensor's description; [Begin, End) is relative to the byte buffer.</summary>
public sealed record SafeTensorsEntry(string Name, ScalarType Dtype, long[] Shape, long Begin, long End);
