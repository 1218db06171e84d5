using System.Text.Json;

namespace PrefOnline.Worker.Checkpoints;

/// <summary>Reads, writes (temp + fsync + rename + fsync root) and removes <c>rollback.request</c>.</summary>
internal static class RollbackRequestFile
{
    private const long MaxBytes = 64 * 1024;

    public static string PathIn(string root) => Path.Combine(root, CheckpointLayout.RollbackRequestFileName);

    public static bool Exists(string root) => File.Exists(PathIn(root));

    /// <summary>The pending request, or null; a file that is not a valid request gives its problem instead.</summary>
    public static (CheckpointRollbackRequest? Request, string? Problem) Read(string root)
    {
        const string name = CheckpointLayout.RollbackRequestFileName;
        byte[] bytes;
        try
        {
            var info = new FileInfo(PathIn(root));
            if (!info.Exists) return (null, null);
            if (info.Length > MaxBytes) return (null, $"{name}: {info.Length} bytes, not a rollback request");
            bytes = File.ReadAllBytes(info.FullName);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return (null, null);
        }
        try
        {
            var request = JsonSerializer.Deserialize<CheckpointRollbackRequest>(bytes, CheckpointJson.EventLine);
            if (request is null || request.To < CheckpointVersion.First || string.IsNullOrWhiteSpace(request.Reason))
                return (null, $"{name}: not a rollback request");
            return (request, null);
        }
        catch (JsonException e)
        {
            return (null, $"{name}: not a rollback request: {e.Message}");
        }
    }

    public static void WriteAtomic(string root, CheckpointRollbackRequest request)
    {
        var temp = Path.Combine(root, $"{CheckpointLayout.RollbackRequestTempPrefix}{Guid.NewGuid():N}");
        try
        {
            using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                file.Write(JsonSerializer.SerializeToUtf8Bytes(request, CheckpointJson.EventLine));
                file.WriteByte((byte)'\n');
                file.Flush(flushToDisk: true);
            }
            File.Move(temp, PathIn(root), overwrite: true);
            PosixFileSystem.Fsync(root, isDirectory: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    public static void Delete(string root)
    {
        File.Delete(PathIn(root));
        PosixFileSystem.Fsync(root, isDirectory: true);
    }
}
