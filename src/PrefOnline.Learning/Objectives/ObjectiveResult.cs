using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Objectives;

/// <summary>
/// A scalar loss to back-propagate (owned by the caller's current <see cref="DisposeScope"/>) and the
/// named diagnostics the learner exports as metrics. Names are stable: <see cref="DiagnosticNames"/>.
/// </summary>
public sealed record ObjectiveResult(Tensor Loss, IReadOnlyDictionary<string, double> Diagnostics);
