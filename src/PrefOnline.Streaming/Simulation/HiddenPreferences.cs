using System.Globalization;

namespace PrefOnline.Streaming.Simulation;

/// <summary>
/// Parses preference specs from configuration:
/// <c>length:N[:charsPerNat]</c>, <c>shorter[:charsPerNat]</c>, <c>longer[:charsPerNat]</c>, <c>contains:PATTERN</c>,
/// <c>avoids:PATTERN</c> (e.g. <c>"length:4"</c>, <c>"shorter"</c>, <c>"longer:4"</c>, <c>"contains:!"</c>).
/// </summary>
public static class HiddenPreferences
{
    /// <summary>The default: answers of 4 characters preferred, 4 characters per nat (see <see cref="LengthPreference"/>).</summary>
    public const string DefaultSpec = "length:4";

    private const string Forms = "length:N[:charsPerNat], shorter[:charsPerNat], longer[:charsPerNat], contains:PATTERN or avoids:PATTERN";

    /// <exception cref="FormatException">The spec is not one of the forms above (the message lists them).</exception>
    public static IHiddenPreference Parse(string spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var colon = spec.IndexOf(':');
        var kind = (colon < 0 ? spec : spec[..colon]).Trim().ToLowerInvariant();
        var argument = colon < 0 ? null : spec[(colon + 1)..];
        switch (kind)
        {
            case "length":
                var parts = argument?.Split(':') ?? [];
                if (parts.Length is < 1 or > 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var target) || target > 100_000)
                    throw new FormatException($"preference '{spec}': give the preferred length in characters after the colon, e.g. length:4 (0 to 100000)");
                return LengthPreference.Target(target, parts.Length == 2 ? CharsPerNat(spec, parts[1]) : LengthPreference.DefaultTargetCharsPerNat);
            case "shorter":
            case "longer":
                return new LengthPreference(kind == "shorter", argument is null ? LengthPreference.DefaultCharsPerNat : CharsPerNat(spec, argument));
            case "contains":
            case "avoids":
                if (string.IsNullOrEmpty(argument)) throw new FormatException($"preference '{spec}': give the pattern after the colon, e.g. {kind}:!");
                return new PatternPreference(argument, prefer: kind == "contains");
            default:
                throw new FormatException($"unknown preference '{spec}'; use {Forms}");
        }
    }

    private static double CharsPerNat(string spec, string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && double.IsFinite(value) && value > 0
            ? value
            : throw new FormatException($"preference '{spec}': chars-per-nat must be a positive number");
}
