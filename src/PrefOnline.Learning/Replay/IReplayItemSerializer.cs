namespace PrefOnline.Learning.Replay;

/// <summary>
/// Writes and reads one replay item for checkpoints. Must be exact and deterministic: reading what was
/// written gives an equal item, and writing an equal item gives the same bytes (little-endian, no
/// timestamps of its own, no dictionary ordering left to chance).
/// </summary>
public interface IReplayItemSerializer<T>
{
    void Write(BinaryWriter writer, T item);

    /// <summary>Reads one item; throws <see cref="InvalidDataException"/> on malformed input.</summary>
    T Read(BinaryReader reader);
}
