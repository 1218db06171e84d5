namespace PrefOnline.Worker.Hosting;

/// <summary>The lower-case names of <see cref="WorkerRole"/> used on the command line and in <c>prefonline_build_info{role}</c>.</summary>
public static class WorkerRoles
{
    public const string All = "all";
    public const string Generator = "generator";
    public const string Learner = "learner";

    public static IReadOnlyList<string> Names { get; } = [All, Generator, Learner];

    public static string Name(WorkerRole role) => role switch
    {
        WorkerRole.All => All,
        WorkerRole.Generator => Generator,
        WorkerRole.Learner => Learner,
        _ => throw new ArgumentOutOfRangeException(nameof(role), role, "unknown role"),
    };

    /// <summary>Parses all|generator|learner (case-insensitive); null for anything else.</summary>
    public static WorkerRole? Parse(string? text) => text?.Trim().ToLowerInvariant() switch
    {
        All => WorkerRole.All,
        Generator => WorkerRole.Generator,
        Learner => WorkerRole.Learner,
        _ => null,
    };
}
