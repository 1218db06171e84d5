namespace PrefOnline.IntegrationTests.Process;

/// <summary>One line a child process printed, with its arrival time (UTC) and stream (out or err).</summary>
public sealed record OutputLine(DateTimeOffset At, string Stream, string Text);
