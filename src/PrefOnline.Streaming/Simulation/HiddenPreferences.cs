using System.Globalization;

namespace PrefOnline.Streaming.Simulation;

/// <summary>
/// Parses preference specs from configuration:
/// <c>shorter[:charsPerNat]</c>, <c>longer[:charsPerNat]</c>, <c>contains:PATTERN</c>, <c>avoids:PATTERN</c>
/// (e.g. <c>"shorter"</c>, <c>"longer:4"</c>, <c>"contains:!"</c>).
/// </summary>
public static class HiddenPreferences
{
    /// <summary>The default: shorter completions preferred, 8 characters per nat (see <see cref="LengthPreference"/>).</summary>
    public const string DefaultSpec = "shorter";

    /// <exception cref="FormatException">The spec is not one of the forms above (the message lists them).</exception>
    public static IHiddenPreference Parse(string spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var colon = spec.IndexOf(':');
        var kind = (colon < 0 ? spec : spec[..colon]).Trim().ToLowerInvariant();
        var argument = colon < 0 ? null : spec[(colon + 1)..];
        switch (kind)
        {
            case "shorter":
            case "longer":
                var charsPerNat = 8.0;
                if (argument is not null && (!double.TryParse(argument, NumberStyles.Float, CultureInfo.InvariantCulture, out charsPerNat) || !double.IsFinite(charsPerNat) || charsPerNat <= 0))
                {
                    throw new FormatException($"preference '{spec}': chars-per-nat must be a positive number");
                }
                return new LengthPreference(kind == "shorter", charsPerNat);
            case "contains":
            case "avoids":
                if (string.IsNullOrEmpty(argument)) throw new FormatException($"preference '{spec}': give the pattern after the colon, e.g. {kind}:!");
                return new PatternPreference(argument, prefer: kind == "contains");
            default:
                throw new FormatException($"unknown preference '{spec}'; use shorter[:charsPerNat], longer[:charsPerNat], contains:PATTERN or avoids:PATTERN");
        }
    }
}
