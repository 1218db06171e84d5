namespace PrefOnline.Learning.Models.Checkpoints;

/// <summary>
/// Writes a directory so that readers see either the old one or the complete new one: the files go
/// into a hidden sibling temp directory, which is renamed into place. Replacing an existing
/// directory takes two renames (old aside, new in; Linux has no portable atomic swap of directories),
/// and a failure between them puts the old one back.
/// </summary>
internal static class AtomicDirectory
{
    public static void Write(string directory, Action<string> writeInto)
    {
        var target = Path.GetFullPath(directory).TrimEnd(Path.DirectorySeparatorChar);
        var parent = Path.GetDirectoryName(target) ?? throw new ArgumentException($"'{directory}' has no parent directory");
        var name = Path.GetFileName(target);
        if (string.IsNullOrEmpty(name)) throw new ArgumentException($"'{directory}' is not a directory path");
        if (File.Exists(target)) throw new IOException($"{target} exists and is a file, not a directory");
        Directory.CreateDirectory(parent);

        var suffix = $"{Environment.ProcessId}-{Guid.NewGuid():N}";
        var temp = Path.Combine(parent, $".{name}.tmp-{suffix}");
        Directory.CreateDirectory(temp);
        try
        {
            writeInto(temp);
            if (!Directory.Exists(target))
            {
                Directory.Move(temp, target);
                return;
            }
            var aside = Path.Combine(parent, $".{name}.old-{suffix}");
            Directory.Move(target, aside);
            try
            {
                Directory.Move(temp, target);
            }
            catch
            {
                Directory.Move(aside, target);
                throw;
            }
            Directory.Delete(aside, recursive: true);
        }
        finally
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
        }
    }

    /// <summary>Writes a small text file and forces it to disk before the directory is renamed.</summary>
    public static void WriteDurableText(string path, string text)
    {
        using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None);
        using (var writer = new StreamWriter(file, new System.Text.UTF8Encoding(false), leaveOpen: true)) writer.Write(text);
        file.Flush(flushToDisk: true);
    }
}
