using Microsoft.Extensions.Configuration;

namespace PrefOnline.Worker.Hosting;

/// <summary>
/// The configuration of <c>prefonline run</c>, lowest precedence first: <c>appsettings.json</c> next to the
/// binary (a copy of the repository's config/appsettings.json) → <c>--config FILE</c> → environment variables
/// <c>PREFONLINE__Section__Key</c> → command-line flags (<c>--role</c>, <c>--duration</c>, <c>--checkpoint-dir</c>, <c>--port</c>).
/// </summary>
public static class WorkerConfiguration
{
    public const string EnvironmentPrefix = "PREFONLINE__";
    public const string DefaultFileName = "appsettings.json";

    /// <exception cref="FileNotFoundException">--config names a file that does not exist.</exception>
    /// <exception cref="InvalidDataException">A JSON file does not parse (the message names it).</exception>
    public static IConfigurationRoot Build(string? configFile, IReadOnlyDictionary<string, string?> overrides, string? baseDirectory = null)
    {
        var builder = new ConfigurationBuilder();
        var defaults = Path.Combine(baseDirectory ?? AppContext.BaseDirectory, DefaultFileName);
        builder.AddJsonFile(defaults, optional: true, reloadOnChange: false);
        if (!string.IsNullOrWhiteSpace(configFile))
        {
            var path = Path.GetFullPath(configFile);
            if (!File.Exists(path)) throw new FileNotFoundException($"--config {configFile}: no such file", configFile);
            builder.AddJsonFile(path, optional: false, reloadOnChange: false);
        }
        builder.AddEnvironmentVariables(EnvironmentPrefix);
        builder.AddInMemoryCollection(overrides);
        try
        {
            return builder.Build();
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException(e.InnerException is { } inner ? $"{e.Message} {inner.Message}" : e.Message, e);
        }
    }
}
