using System.Globalization;

namespace PrefOnline.Learning.Configuration;

/// <summary>
/// An options class that checks itself: one line per invalid setting, each naming its configuration key
/// ("Section:Key must ... (got X)"). The worker runs it once, before start (exit code 2 on any line).
/// </summary>
public interface IValidatedOptions
{
    IReadOnlyList<string> Problems();
}

/// <summary>Collects "Section:Key must ... (got X)" lines with invariant number formatting.</summary>
public sealed class ProblemList(string section)
{
    private readonly List<string> problems = [];

    public string Section { get; } = section;

    public IReadOnlyList<string> Items => problems;

    public void Add(string key, FormattableString rule) => problems.Add($"{Section}:{key} {rule.ToString(CultureInfo.InvariantCulture)}");

    public void AddRaw(string line) => problems.Add(line);

    public void Range(string key, int value, int min, int max)
    {
        if (value < min || value > max) Add(key, $"must be between {min} and {max} (got {value})");
    }

    public void Range(string key, long value, long min, long max)
    {
        if (value < min || value > max) Add(key, $"must be between {min} and {max} (got {value})");
    }

    public void Range(string key, double value, double min, double max, bool minExclusive = false)
    {
        var ok = double.IsFinite(value) && (minExclusive ? value > min : value >= min) && value <= max;
        if (!ok) Add(key, $"must be in {(minExclusive ? "(" : "[")}{min}, {max}] (got {value})");
    }

    public void Positive(string key, double value)
    {
        if (!(value > 0) || !double.IsFinite(value)) Add(key, $"must be a positive finite number (got {value})");
    }

    public void Duration(string key, TimeSpan value, TimeSpan min, TimeSpan max)
    {
        if (value < min || value > max) Add(key, $"must be between {min:c} and {max:c} (got {value:c})");
    }

    /// <summary>Runs a component's own validation that throws and turns its message into a line under <paramref name="key"/>.</summary>
    public void From(string key, Action validate)
    {
        try
        {
            validate();
        }
        catch (ArgumentException e)
        {
            var message = e.Message;
            var paramSuffix = e.ParamName is null ? null : $" (Parameter '{e.ParamName}')";
            if (paramSuffix is not null && message.EndsWith(paramSuffix, StringComparison.Ordinal)) message = message[..^paramSuffix.Length];
            problems.Add($"{Section}:{key}: {message.ReplaceLineEndings(" ")}");
        }
    }
}
