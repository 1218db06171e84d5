namespace PrefOnline.Worker.Checkpoints;

/// <summary>
/// One named file of a draft and the function that creates it at a given path; or, with <paramref name="SharedSource"/>,
/// a file stored once as a content-addressed blob and linked into the version (<see cref="CheckpointBlobs"/>).
/// </summary>
internal sealed record CheckpointArtefact(string Name, Func<string, CancellationToken, ValueTask> WriteToPath, string? SharedSource = null);
