using PrefOnline.Tensors;
namespace PrefOnline.Cli;

/// <summary>
/// The failure policy of every CLI verb: an expected failure (bad argument, bad checkpoint, bad file)
/// prints one clear line to stderr and exits non-zero, never a stack trace. Unexpected exceptions
/// print their type and message too, with the stack only when PREFONLINE_DEBUG=1.
/// </summary>
public static class CliAction
{
    public const int UsageError = 2;
    public const int Failure = 1;

    public static async Task<int> RunAsync(Func<CancellationToken, Task<int>> action, CancellationToken cancellationToken)
    {
        try
        {
            return await action(cancellationToken);
        }
        catch (CliException e)
        {
            await Console.Error.WriteLineAsync($"prefonline: {e.Message}");
            return e.ExitCode;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await Console.Error.WriteLineAsync("prefonline: cancelled");
            return 130;
        }
        catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException or UnauthorizedAccessException or System.Runtime.InteropServices.ExternalException or TorchEngineException
                                      or System.Text.Json.JsonException or FormatException or InvalidOperationException or KeyNotFoundException)
        {
            await Console.Error.WriteLineAsync($"prefonline: {e.Message}");
            if (Environment.GetEnvironmentVariable("PREFONLINE_DEBUG") == "1") await Console.Error.WriteLineAsync(e.ToString());
            return Failure;
        }
    }
}

/// <summary>An expected CLI failure with its exit code; the message is the one line the user sees.</summary>
public sealed class CliException(string message, int exitCode = CliAction.Failure) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}
