namespace PrefOnline.Worker.Pipeline;

/// <summary>
/// A private scratch directory for the run: checkpoint artefacts are staged here (bytes fixed before the
/// store copies them, so a retried write writes the same bytes), and run-constant files such as the
/// reference weights and tokenizer files live here once. Deleted when disposed.
/// </summary>
public sealed class StagingArea : IDisposable
{
    private long next;

    public StagingArea(string? parent = null)
    {
        var root = string.IsNullOrWhiteSpace(parent) ? Path.GetTempPath() : parent;
        Root = Path.Combine(root, $"prefonline-staging-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Root);
    }

    public string Root { get; }

    /// <summary>A new empty directory inside the area.</summary>
    public string NewDirectory(string prefix)
    {
        var path = Path.Combine(Root, $"{prefix}-{Interlocked.Increment(ref next):D6}");
        Directory.CreateDirectory(path);
        return path;
    }

    /// <summary>Deletes a staged directory (best effort: a leftover is removed with the area).</summary>
    public static void Delete(string directory)
    {
        try
        {
            if (Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    public void Dispose() => Delete(Root);
}
