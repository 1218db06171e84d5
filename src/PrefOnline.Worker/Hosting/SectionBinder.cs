using System.Text.RegularExpressions;
using Microsoft.Extensions.Configuration;

namespace PrefOnline.Worker.Hosting;

/// <summary>
/// Binds a configuration section strictly and reports every problem on its own line instead of stopping
/// at the first: a value that does not convert (<c>Learner:BatchSize: 'abc' is not a valid Int32</c>) and a key
/// no setting has (<c>Learner:BachSize is not a known setting</c> — a typo would otherwise be ignored silently).
/// The offending key is dropped and binding retried until the rest binds.
/// </summary>
public static partial class SectionBinder
{
    private const int MaxRounds = 200;

    public static T Bind<T>(IConfiguration configuration, string section, List<string> problems) where T : class, new()
    {
        var values = configuration.GetSection(section).AsEnumerable(makePathsRelative: false)
            .Where(kv => kv.Value is not null)
            .ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.OrdinalIgnoreCase);
        for (var round = 0; round < MaxRounds; round++)
        {
            var copy = new ConfigurationBuilder().AddInMemoryCollection(values).Build();
            try
            {
                return copy.GetSection(section).Get<T>(o => o.ErrorOnUnknownConfiguration = true) ?? new T();
            }
            catch (InvalidOperationException e)
            {
                var (key, line) = Explain(e, values.Keys);
                problems.Add(line);
                if (key is null || !values.Remove(key)) return new T();
                // Remove the whole subtree of an unknown object-valued key as well.
                foreach (var child in values.Keys.Where(k => k.StartsWith(key + ":", StringComparison.OrdinalIgnoreCase)).ToList()) values.Remove(child);
            }
        }
        problems.Add($"{section}: too many invalid settings to list");
        return new T();
    }

    private static (string? Key, string Line) Explain(InvalidOperationException e, IEnumerable<string> keys)
    {
        // Inside a list (Serving:Publishers:0:Type) the binder wraps the conversion failure in a general one: read the chain.
        var conversion = ConversionPattern().Match(e.Message);
        for (var inner = e.InnerException; !conversion.Success && inner is not null; inner = inner.InnerException) conversion = ConversionPattern().Match(inner.Message);
        if (conversion.Success)
        {
            var type = conversion.Groups["type"].Value;
            var shortType = type[(type.LastIndexOf('.') + 1)..];
            var hint = shortType switch
            {
                "TimeSpan" => " (use hh:mm:ss, e.g. 00:00:30)",
                "Boolean" => " (use true or false)",
                _ when type.Contains("Nullable", StringComparison.Ordinal) && type.Contains("TimeSpan", StringComparison.Ordinal) => " (use hh:mm:ss, e.g. 00:00:30)",
                _ => "",
            };
            var key = conversion.Groups["key"].Value;
            var enumType = AppDomain.CurrentDomain.GetAssemblies().Select(a => a.GetType(type, throwOnError: false)).FirstOrDefault(t => t is { IsEnum: true });
            if (enumType is not null) return (key, $"{key}: '{conversion.Groups["value"].Value}' must be one of {string.Join(", ", Enum.GetNames(enumType))}");
            return (key, $"{key}: '{conversion.Groups["value"].Value}' is not a valid {FriendlyType(shortType)}{hint}");
        }
        var unknown = UnknownPattern().Match(e.Message);
        if (unknown.Success)
        {
            var name = unknown.Groups["names"].Value.Split(',', StringSplitOptions.TrimEntries)[0].Trim('\'');
            var key = keys.Where(k => k.Split(':')[^1].Equals(name, StringComparison.OrdinalIgnoreCase) || k.Contains(":" + name + ":", StringComparison.OrdinalIgnoreCase))
                .Select(k => k[..(k.IndexOf(":" + name, StringComparison.OrdinalIgnoreCase) + name.Length + 1)])
                .OrderBy(k => k.Length)
                .FirstOrDefault();
            return (key, $"{key ?? name} is not a known setting (check the spelling; config/README.md lists every key)");
        }
        return (null, e.Message);
    }

    private static string FriendlyType(string type) => type switch
    {
        "Int32" or "Int64" or "UInt64" or "UInt32" => "whole number",
        "Double" or "Single" => "number",
        "Boolean" => "true/false value",
        "TimeSpan" => "duration",
        _ when type.StartsWith("Nullable", StringComparison.Ordinal) => "value",
        _ => type,
    };

    [GeneratedRegex("Failed to convert configuration value '(?<value>.*)' at '(?<key>[^']+)' to type '(?<type>[^']+)'", RegexOptions.Singleline)]
    private static partial Regex ConversionPattern();

    [GeneratedRegex("were not found on the instance of [^:]+: (?<names>.+)$", RegexOptions.Singleline)]
    private static partial Regex UnknownPattern();
}
