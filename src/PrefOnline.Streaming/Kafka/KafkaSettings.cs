namespace PrefOnline.Streaming.Kafka;

/// <summary>
/// Helpers for librdkafka property dictionaries: building a client configuration from pass-through
/// settings plus the properties this library fixes, and redacting secrets before anything is logged.
/// </summary>
public static class KafkaSettings
{
    private static readonly string[] SensitiveFragments = ["password", "secret", "key", "token", "credential"];

    /// <summary>
    /// True for properties whose values must never be logged: names containing password, secret, key,
    /// token or credential, and every <c>sasl.*</c> property (e.g. sasl.jaas.config, sasl.oauthbearer.config).
    /// Errs on the side of hiding (ssl.key.location is hidden too).
    /// </summary>
    public static bool IsSensitive(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name.StartsWith("sasl.", StringComparison.OrdinalIgnoreCase)) return true;
        foreach (var fragment in SensitiveFragments)
        {
            if (name.Contains(fragment, StringComparison.OrdinalIgnoreCase)) return true;
        }
        return false;
    }

    /// <summary>
    /// The settings among <paramref name="settings"/> that switch off the broker's TLS certificate check, each with why:
    /// <c>enable.ssl.certificate.verification</c> set to anything librdkafka does not read as true (it reads
    /// true, t and 1), and <c>ssl.endpoint.identification.algorithm</c> set to anything but https. With either, whoever
    /// sits between the worker and the brokers can read and forge every record (and the SASL credentials).
    /// </summary>
    public static IReadOnlyList<(string Name, string Value, string Why)> CertificateCheckDisabled(IEnumerable<KeyValuePair<string, string>> settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var found = new List<(string, string, string)>();
        foreach (var (rawName, rawValue) in settings)
        {
            var name = rawName?.Trim() ?? "";
            var value = (rawValue ?? "").Trim();
            if (name.Equals("enable.ssl.certificate.verification", StringComparison.OrdinalIgnoreCase)
                && !(value.Equals("true", StringComparison.OrdinalIgnoreCase) || value.Equals("t", StringComparison.OrdinalIgnoreCase) || value == "1"))
                found.Add((name, value, "the brokers' certificates are not verified"));
            else if (name.Equals("ssl.endpoint.identification.algorithm", StringComparison.OrdinalIgnoreCase) && !value.Equals("https", StringComparison.OrdinalIgnoreCase))
                found.Add((name, value, "the brokers' host names are not checked against their certificates"));
        }
        return found;
    }

    /// <summary>A copy with every sensitive value replaced by <c>***</c>, sorted by name; safe to log.</summary>
    public static IReadOnlyDictionary<string, string> Redact(IEnumerable<KeyValuePair<string, string>> settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var redacted = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, value) in settings) redacted[name] = IsSensitive(name) ? "***" : value;
        return redacted;
    }

    /// <summary>One line "name=value, ..." with secrets redacted.</summary>
    public static string Describe(IEnumerable<KeyValuePair<string, string>> settings) =>
        string.Join(", ", Redact(settings).Select(p => $"{p.Key}={p.Value}"));

    /// <summary>
    /// Merges pass-through <paramref name="settings"/>, <paramref name="defaults"/> (used only when the
    /// caller did not set the property) and <paramref name="fixedSettings"/> (which the caller may omit or
    /// repeat with the same value, but never contradict). Problems are added to <paramref name="problems"/>.
    /// </summary>
    internal static Dictionary<string, string> Merge(
        IReadOnlyDictionary<string, string> settings,
        IReadOnlyDictionary<string, string> defaults,
        IReadOnlyDictionary<string, (string Value, string Why)> fixedSettings,
        List<string> problems)
    {
        var merged = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, value) in settings)
        {
            if (string.IsNullOrWhiteSpace(name))
            {
                problems.Add("a Kafka setting has an empty name");
                continue;
            }
            merged[name.Trim()] = value ?? "";
        }
        foreach (var (name, value) in defaults) merged.TryAdd(name, value);
        foreach (var (name, (value, why)) in fixedSettings)
        {
            if (merged.TryGetValue(name, out var given) && !string.Equals(given, value, StringComparison.OrdinalIgnoreCase) && !Equivalent(name, given, value))
            {
                problems.Add($"Kafka setting {name}={(IsSensitive(name) ? "***" : given)} is not allowed: it is fixed to {value} ({why})");
            }
            merged[name] = value;
        }
        return merged;
    }

    private static bool Equivalent(string name, string given, string required) =>
        name == "acks" && required == "all" && given.Trim() == "-1";
}
