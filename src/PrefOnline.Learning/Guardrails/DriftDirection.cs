namespace PrefOnline.Learning.Guardrails;

/// <summary>Direction of a mean shift. Flags, so options can say which directions trip (<see cref="Both"/>).</summary>
[Flags]
public enum DriftDirection
{
    None = 0,
    /// <summary>The stream's mean moved up.</summary>
    Up = 1,
    /// <summary>The stream's mean moved down.</summary>
    Down = 2,
    Both = Up | Down,
}
