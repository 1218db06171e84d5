using System.Globalization;
using System.Text.RegularExpressions;

namespace PrefOnline.Streaming.Contracts;

/// <summary>
/// Invariants shared by record constructors and the validator, so the two can never disagree.
/// </summary>
internal static partial class ContractRules
{
    /// <summary>Hard ceiling for ids whatever the configured limit (ids are keys, not payload).</summary>
    public const int AbsoluteMaxIdLength = 1024;

    /// <summary>Hard ceiling for policy URIs.</summary>
    public const int MaxUriLength = 2048;

    /// <summary>Most entries of a policy event's <c>files</c> map (a policy is its weights and a handful of tokenizer files).</summary>
    public const int MaxPolicyFiles = 32;

    /// <summary>Longest file name in a policy event's <c>files</c> map.</summary>
    public const int MaxFileNameLength = 128;

    /// <summary>Returns null when <paramref name="id"/> is a valid id, else why not.</summary>
    public static string? CheckId(string? id)
    {
        if (id is null) return "is missing";
        if (id.Length == 0) return "is empty";
        if (id.Length > AbsoluteMaxIdLength) return $"is longer than {AbsoluteMaxIdLength} characters";
        if (string.IsNullOrWhiteSpace(id)) return "is blank";
        // Control characters (C0, DEL, C1) make ids unprintable; unpaired surrogates make them unencodable.
        foreach (var c in id)
        {
            if (char.IsControl(c)) return "contains a control character";
        }
        return IsValidUtf16(id) ? null : "contains an unpaired surrogate";
    }

    public static string RequireId(string? id, string paramName)
    {
        var problem = CheckId(id);
        return problem is null ? id! : throw new ArgumentException($"{paramName} {problem}", paramName);
    }

    public static string RequireText(string? text, string paramName) => text ?? throw new ArgumentNullException(paramName);

    public static double RequireFinite(double value, string paramName) =>
        double.IsFinite(value) ? value : throw new ArgumentOutOfRangeException(paramName, value, $"{paramName} must be a finite number");

    /// <summary>True when every surrogate in <paramref name="text"/> is part of a proper pair.</summary>
    public static bool IsValidUtf16(ReadOnlySpan<char> text)
    {
        var i = text.IndexOfAnyInRange('\uD800', '\uDFFF');
        if (i < 0) return true;
        for (; i < text.Length; i++)
        {
            var c = text[i];
            if (char.IsHighSurrogate(c))
            {
                if (i + 1 >= text.Length || !char.IsLowSurrogate(text[i + 1])) return false;
                i++;
            }
            else if (char.IsLowSurrogate(c))
            {
                return false;
            }
        }
        return true;
    }

    public static bool IsSha256Hex(string value)
    {
        if (value.Length != 64) return false;
        foreach (var c in value)
        {
            if (!char.IsAsciiHexDigit(c)) return false;
        }
        return true;
    }

    /// <summary>
    /// Returns null when <paramref name="name"/> is a plain file name a policy event may list — 1..128 of letters,
    /// digits, '.', '_' and '-', starting with a letter or digit (so never a path, never "..", never hidden) — else why not.
    /// </summary>
    public static string? CheckFileName(string name)
    {
        if (name.Length == 0) return "is empty";
        if (name.Length > MaxFileNameLength) return $"is longer than {MaxFileNameLength} characters";
        if (!char.IsAsciiLetterOrDigit(name[0])) return "must start with a letter or digit";
        foreach (var c in name)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-')) return "may hold only letters, digits, '.', '_' and '-' (a plain file name, no path)";
        }
        return null;
    }

    /// <summary>An absolute URI with an explicit scheme (on Unix, .NET would also call a bare "/path" absolute).</summary>
    public static bool IsAbsoluteUri(string value) =>
        value.Length is > 0 and <= MaxUriLength
        && Uri.TryCreate(value, UriKind.Absolute, out var uri)
        && value.StartsWith(uri.Scheme + ":", StringComparison.OrdinalIgnoreCase);

    /// <summary>Parses an RFC 3339 timestamp with an explicit offset (e.g. 2024-05-01T12:00:00.123Z).</summary>
    public static bool TryParseTimestamp(string value, out DateTimeOffset timestamp)
    {
        timestamp = default;
        return value.Length <= 40
               && Rfc3339().IsMatch(value)
               && DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.None, out timestamp);
    }

    [GeneratedRegex(@"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})$", RegexOptions.CultureInvariant)]
    private static partial Regex Rfc3339();
}
