using System.Security.Cryptography;
using System.Text;

namespace PrefOnline.Worker.Checkpoints;

/// <summary>
/// A stable fingerprint of the settings a state was trained under, for the manifest's <c>config_hash</c>:
/// "sha256:" + hex of the sorted <c>key=value</c> lines. Pass the sections that shape the model
/// (e.g. <c>configuration.GetSection("Learning").AsEnumerable()</c>), not the Kafka credentials.
/// Keys compare ordinally and case-insensitively (configuration keys are case-insensitive); section
/// entries without a value are left out, so equal settings give equal hashes however they were loaded.
/// </summary>
public static class CheckpointConfigHash
{
    public const string Prefix = "sha256:";

    public static string Compute(IEnumerable<KeyValuePair<string, string?>> settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var text = new StringBuilder();
        foreach (var (key, value) in settings.Where(s => s.Value is not null).OrderBy(s => s.Key.ToLowerInvariant(), StringComparer.Ordinal))
            text.Append(key.ToLowerInvariant()).Append('=').Append(value).Append('\n');
        return Prefix + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }
}
