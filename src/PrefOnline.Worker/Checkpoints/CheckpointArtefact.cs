namespace PrefOnline.Worker.Checkpoints;

/// <summary>One named file of a draft and the function that creates it at a given path.</summary>
internal sealed record CheckpointArtefact(string Name, Func<string, CancellationToken, ValueTask> WriteToPath);
