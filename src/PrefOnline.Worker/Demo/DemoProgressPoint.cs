namespace PrefOnline.Worker.Demo;

/// <summary>One row of the demo's progress: the users' hidden utility of recent rollouts, and the learner's state, at <paramref name="Seconds"/> since start.</summary>
public sealed record DemoProgressPoint(double Seconds, long PolicyVersion, double? UsersReward, double? Kl, long Labels, long Updates);
