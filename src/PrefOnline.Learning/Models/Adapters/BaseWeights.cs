using System.Security.Cryptography;
using System.Text;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Models.Adapters;

/// <summary>
/// The identity of the base weights an adapter belongs to: a sha256 of the policy's base state dict by
/// content, so it is the same however the checkpoint was stored (one file or shards, with or without
/// GPT-2's <c>transformer.</c> prefix, float32 or bfloat16 on disk once loaded to the same placement).
/// Hashed per tensor in ordinal name order: the UTF-8 name, a 0 byte, the rank and each dimension as
/// little-endian int64, then the values as little-endian float32 (every supported dtype converts exactly
/// or is float32 already).
/// </summary>
public static class BaseWeights
{
    private const long ChunkElements = 1L << 26;   // 256 MiB of float32

    public static string Sha256(PolicyModel policy)
    {
        ArgumentNullException.ThrowIfNull(policy);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> number = stackalloc byte[8];
        foreach (var (name, tensor) in policy.state_dict().OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            hash.AppendData(Encoding.UTF8.GetBytes(name));
            hash.AppendData([0]);
            BitConverter.TryWriteBytes(number, (long)tensor.dim());
            hash.AppendData(number);
            foreach (var dimension in tensor.shape)
            {
                BitConverter.TryWriteBytes(number, dimension);
                hash.AppendData(number);
            }
            using var scope = NewDisposeScope();
            // A contiguous float32 CPU copy (the tensor itself when it already is one), read in place in
            // chunks: a span holds at most 2 GiB.
            var flat = tensor.detach().to(ScalarType.Float32, CPU).contiguous().flatten();
            for (long start = 0; start < flat.numel(); start += ChunkElements)
            {
                using var chunk = flat.narrow(0, start, Math.Min(ChunkElements, flat.numel() - start));
                hash.AppendData(chunk.bytes);
            }
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }
}
