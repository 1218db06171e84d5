namespace PrefOnline.Worker.Serving;

/// <summary>
/// The bearer token a vllm or sglang publisher sends (<c>Authorization: Bearer …</c>; vLLM's <c>--api-key</c>, SGLang's
/// <c>--api-key</c>/<c>--admin-api-key</c>), from a file (a mounted Secret) or an environment variable, never from plain
/// configuration. Read again before every hand-off, so a rotated Secret takes effect without a restart. Never logged
/// (<see cref="ToString"/> is <c>***</c>).
/// </summary>
public sealed class ServingToken
{
    private const int MaxBytes = 4096;

    private readonly string? file;
    private readonly string? variable;

    private ServingToken(string? file, string? variable)
    {
        this.file = file;
        this.variable = variable;
    }

    /// <summary>The publisher's token source; null when it has none.</summary>
    public static ServingToken? From(ServingPublisherOptions options) =>
        !string.IsNullOrWhiteSpace(options.TokenFile) ? new ServingToken(options.TokenFile, null)
        : !string.IsNullOrWhiteSpace(options.TokenVariable) ? new ServingToken(null, options.TokenVariable)
        : null;

    /// <summary>Null when the token can be read now, else why not (for the start-up check).</summary>
    public string? Problem() => Read().Problem;

    /// <summary>The token to send now.</summary>
    /// <exception cref="InvalidOperationException">It cannot be read (a hand-off failure that retrying may cure: a Secret being mounted).</exception>
    public string Current()
    {
        var (token, problem) = Read();
        return token ?? throw new InvalidOperationException($"the serving token cannot be read: {problem}");
    }

    public override string ToString() => "***";

    private (string? Token, string? Problem) Read()
    {
        string text;
        if (variable is not null)
        {
            text = Environment.GetEnvironmentVariable(variable) ?? "";
            if (text.Trim().Length == 0) return (null, $"the environment variable {variable} is not set or empty");
        }
        else
        {
            try
            {
                var info = new FileInfo(file!);
                if (!info.Exists) return (null, $"{file} does not exist");
                if (info.Length > MaxBytes) return (null, $"{file} is {info.Length} bytes, too large for a token");
                text = File.ReadAllText(file!);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return (null, $"{file} cannot be read ({e.Message})");
            }
        }
        var token = text.Trim();
        if (token.Length == 0) return (null, $"{file ?? variable} holds no token");
        // A header value must not carry line breaks or other control characters (header injection).
        if (token.Any(c => char.IsControl(c) || c == ' ' || c > '~')) return (null, $"the token in {file ?? variable} holds spaces, control or non-ASCII characters");
        return (token, null);
    }
}
