using System.Security.Cryptography;
using System.Text;

namespace PrefOnline.Worker.Checkpoints;

/// <summary>
/// manifest.sha256 in the format of sha256sum: "&lt;64 hex&gt;  manifest.json\n". The manifest holds the
/// offsets a restart seeks to; a flipped digit there would silently re-apply or skip input, so the
/// manifest is checked like every artefact. (Deliberate tampering that rewrites both files is not
/// detectable without a signature; accidental damage is.)
/// </summary>
internal static class ManifestChecksum
{
    public static byte[] Format(byte[] manifestBytes) =>
        Encoding.ASCII.GetBytes($"{Convert.ToHexStringLower(SHA256.HashData(manifestBytes))}  {CheckpointLayout.ManifestFileName}\n");

    /// <summary>Null when <paramref name="checksumFile"/> matches the manifest bytes, else what is wrong.</summary>
    public static string? Problem(byte[] manifestBytes, byte[] checksumFile)
    {
        var text = Encoding.ASCII.GetString(checksumFile).Trim();
        var expected = text.Split(' ', 2)[0];
        if (expected.Length != 64 || !expected.All(c => c is (>= '0' and <= '9') or (>= 'a' and <= 'f')))
            return $"{CheckpointLayout.ManifestChecksumFileName}: not a sha256sum line";
        var actual = Convert.ToHexStringLower(SHA256.HashData(manifestBytes));
        return actual == expected
            ? null
            : $"{CheckpointLayout.ManifestFileName}: sha256 mismatch with {CheckpointLayout.ManifestChecksumFileName} (the manifest was edited or damaged)";
    }
}
