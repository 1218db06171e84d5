using System.Text;

namespace PrefOnline.Worker.Checkpoints;

/// <summary>
/// <c>latest</c> and <c>good</c> are small text files holding one directory name ("v000009\n"), replaced
/// atomically: write <c>.latest.tmp</c>, fsync it, rename(2) it over <c>latest</c>, fsync the root.
/// A file rather than a symlink because: its content is validated on read (a symlink to garbage is
/// just "missing"); it survives tar, kubectl cp, object-store sync and volumes without symlinks intact;
/// and nothing can follow it by accident (<c>rm -rf latest/</c>). Scripts still get the path with
/// <c>$(cat latest)</c>. A crash leaves either the old or the new pointer, never a mix.
/// </summary>
internal static class PointerFile
{
    private const int MaxPointerBytes = 64;

    public static (long? Version, string? Problem) Read(string root, string pointer)
    {
        var path = Path.Combine(root, pointer);
        byte[] bytes;
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            if (file.Length > MaxPointerBytes) return (null, $"'{pointer}' pointer is {file.Length} bytes, not a version name");
            bytes = new byte[file.Length];
            file.ReadExactly(bytes);
        }
        catch (FileNotFoundException)
        {
            return (null, null);
        }
        // Tolerate what a hand edit adds: surrounding whitespace, a trailing newline, a UTF-8 byte-order mark.
        var text = Encoding.UTF8.GetString(bytes).Trim().TrimStart('\uFEFF').Trim();
        return CheckpointVersion.TryParseDirectoryName(text, out var version)
            ? (version, null)
            : (null, $"'{pointer}' pointer does not name a version (content: '{Printable(text)}')");
    }

    public static void WriteAtomic(string root, string pointer, long version)
    {
        var temp = Path.Combine(root, CheckpointLayout.PointerTempName(pointer));
        using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            file.Write(Encoding.UTF8.GetBytes(CheckpointVersion.DirectoryName(version) + "\n"));
            file.Flush(flushToDisk: true);
        }
        File.Move(temp, Path.Combine(root, pointer), overwrite: true); // rename(2): atomic replacement
        PosixFileSystem.Fsync(root, isDirectory: true);
    }

    private static string Printable(string text)
    {
        var shown = text.Length > 32 ? text[..32] + "…" : text;
        return new string(shown.Select(c => char.IsControl(c) ? '?' : c).ToArray());
    }
}
