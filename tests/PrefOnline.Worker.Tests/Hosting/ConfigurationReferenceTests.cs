using System.Collections;
using System.Globalization;
using System.Reflection;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Configuration;
using PrefOnline.Worker.Hosting;

namespace PrefOnline.Worker.Tests.Hosting;

/// <summary>
/// config/README.md is the operator's reference: every key <c>prefonline run</c> binds must be listed there,
/// with the default the code really has. These tests walk the bound settings by reflection, so a new option
/// or a changed default that the reference misses fails here.
/// </summary>
public sealed partial class ConfigurationReferenceTests
{
    [Fact]
    public void EveryBindableKeyIsDocumentedAndNothingElseIs()
    {
        var documented = DocumentedDefaults();
        var keys = Leaves().Select(l => l.Key).ToList();
        Assert.True(keys.Count > 150, $"only {keys.Count} keys found: the reflection walk is broken");
        var missing = keys.Where(k => !documented.ContainsKey(k)).ToList();
        Assert.True(missing.Count == 0, "config/README.md lacks: " + string.Join(", ", missing));
        var stale = documented.Keys.Where(k => !keys.Contains(k, StringComparer.Ordinal)).ToList();
        Assert.True(stale.Count == 0, "config/README.md documents keys the worker does not bind: " + string.Join(", ", stale));
    }

    [Fact]
    public void EveryDocumentedDefaultIsTheCodesDefault()
    {
        var documented = DocumentedDefaults();
        var wrong = new List<string>();
        foreach (var (key, value) in Leaves())
        {
            if (!documented.TryGetValue(key, out var cell)) continue; // reported by the other test
            if (!Matches(value, cell)) wrong.Add($"{key}: README says '{cell}', the code '{Describe(value)}'");
        }
        Assert.True(wrong.Count == 0, string.Join(Environment.NewLine, wrong));
    }

    [Fact]
    public void TheShippedAppSettingsAreValid()
    {
        var configuration = new ConfigurationBuilder().AddJsonFile(Path.Combine(Root(), "config", "appsettings.json")).Build();
        var (_, problems) = ConfigurationCheck.Check(configuration);
        Assert.Empty(problems);
    }

    private static bool Matches(object? value, string cell)
    {
        switch (value)
        {
            case null:
                return cell == "(unset)";
            case bool b:
                return cell == (b ? "true" : "false");
            case Enum e:
                return string.Equals(cell, e.ToString(), StringComparison.OrdinalIgnoreCase);
            case TimeSpan t:
                return TimeSpan.TryParse(cell, CultureInfo.InvariantCulture, out var parsed) && parsed == t;
            case string s:
                return cell == s;
            case IEnumerable sequence:
                return cell == "(empty)" && !sequence.GetEnumerator().MoveNext();
            default:
                var number = Convert.ToDouble(value, CultureInfo.InvariantCulture);
                return double.TryParse(cell.Replace(",", "", StringComparison.Ordinal), NumberStyles.Float, CultureInfo.InvariantCulture, out var documented)
                       && Math.Abs(documented - number) <= 1e-12 * Math.Max(1, Math.Abs(number));
        }
    }

    private static string Describe(object? value) => value switch
    {
        null => "(unset)",
        TimeSpan t => t.ToString("c", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    /// <summary>Every leaf key (Section:Key[:Sub...]) of the default settings, with its default value.</summary>
    private static IEnumerable<(string Key, object? Value)> Leaves()
    {
        var (settings, problems) = ConfigurationCheck.Check(new ConfigurationBuilder().Build());
        Assert.Empty(problems);
        foreach (var section in typeof(WorkerSettings).GetConstructors().Single().GetParameters())
        {
            var value = typeof(WorkerSettings).GetProperty(section.Name!)!.GetValue(settings)!;
            foreach (var leaf in Walk(section.Name!, value)) yield return leaf;
        }
    }

    private static IEnumerable<(string Key, object? Value)> Walk(string prefix, object node)
    {
        foreach (var property in node.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (property.SetMethod is not { IsPublic: true } || property.GetIndexParameters().Length > 0) continue;
            var key = $"{prefix}:{property.Name}";
            var value = property.GetValue(node);
            if (IsLeaf(property.PropertyType))
            {
                yield return (key, value);
                // A list of option objects (Serving:Publishers): its items' keys are documented as Section:List:N:Key.
                if (ItemType(property.PropertyType) is { } item)
                    foreach (var leaf in Walk($"{key}:N", Activator.CreateInstance(item)!)) yield return leaf;
            }
            else if (value is not null)
                foreach (var leaf in Walk(key, value)) yield return leaf;
            // An optional subsection, off until one of its keys is set (Learner:Adapter): its keys with their defaults once on.
            else if (property.PropertyType.GetConstructor(Type.EmptyTypes) is not null)
                foreach (var leaf in Walk(key, Activator.CreateInstance(property.PropertyType)!)) yield return leaf;
        }
    }

    /// <summary>The element type of a <c>List&lt;T&gt;</c> of option objects (a class with a parameterless constructor), else null.</summary>
    private static Type? ItemType(Type type) =>
        type.IsGenericType && type.GetGenericTypeDefinition() == typeof(List<>) && type.GetGenericArguments()[0] is { IsClass: true } item
        && item != typeof(string) && item.GetConstructor(Type.EmptyTypes) is not null
            ? item
            : null;

    private static bool IsLeaf(Type type)
    {
        var t = Nullable.GetUnderlyingType(type) ?? type;
        return t.IsPrimitive || t.IsEnum || t == typeof(string) || t == typeof(TimeSpan) || t == typeof(decimal)
               || typeof(IEnumerable).IsAssignableFrom(t);
    }

    /// <summary>Key → default cell of every table row "| `Key` | `default` | meaning |" (section rows excluded).</summary>
    private static Dictionary<string, string> DocumentedDefaults()
    {
        var rows = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in File.ReadLines(Path.Combine(Root(), "config", "README.md")))
        {
            var match = Row().Match(line);
            if (match.Success && match.Groups["default"].Value != "(section)") rows[match.Groups["key"].Value] = match.Groups["default"].Value.Trim('`');
        }
        return rows;
    }

    [GeneratedRegex(@"^\| `(?<key>[A-Za-z]+(:[A-Za-z]+)+)` \| (?<default>[^|]+?) \|")]
    private static partial Regex Row();

    private static string Root()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "PrefOnline.sln"))) return dir.FullName;
        throw new InvalidOperationException("PrefOnline.sln not found above " + AppContext.BaseDirectory);
    }
}
