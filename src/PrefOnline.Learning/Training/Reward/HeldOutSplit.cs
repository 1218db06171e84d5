using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace PrefOnline.Learning.Training.Reward;

/// <summary>
/// Which labels are held out from reward-model training: decided by a hash of the label's id alone,
/// so the split is the same on every replica, after every restart and for every redelivery of a
/// record (string.GetHashCode is randomised per process and could not be used).
/// </summary>
public static class HeldOutSplit
{
    private const string Salt = "prefonline.reward.heldout.v1:";

    /// <summary>True for a deterministic <paramref name="fraction"/> of ids: the first 8 bytes of
    /// SHA-256(salt ++ id), read as a fraction of 2⁶⁴, fall below it.</summary>
    public static bool IsHeldOut(string id, double fraction)
    {
        ArgumentNullException.ThrowIfNull(id);
        if (!(fraction >= 0 && fraction <= 1)) throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "must be in [0, 1]");
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(Encoding.UTF8.GetBytes(Salt + id), hash);
        var position = BinaryPrimitives.ReadUInt64BigEndian(hash) / 18446744073709551616.0;   // in [0, 1)
        return position < fraction;
    }
}
