using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using PrefOnline.Streaming.Contracts;
using PrefOnline.Streaming.Transport;
using PrefOnline.Streaming.Validation;

namespace PrefOnline.Streaming.Simulation;

/// <summary>
/// A simulated user population for the demo and tests: it produces prompts at a steady rate, reads the
/// rollouts the worker publishes, and labels them according to a hidden preference with label noise
/// (<see cref="SimulatedLabeler"/>), optionally shifting that preference at a configured time or label
/// count (drift). Transport-agnostic: it talks through an <see cref="IRecordSink"/> and an
/// <see cref="IRecordSource"/> it subscribes itself.
/// </summary>
/// <example>
/// <code>
/// var users = new SimulatedUsers(options, broker.CreateSink(),
///     resume => broker.Subscribe(new EmbeddedSourceOptions { GroupId = "simulated-users", Topics = { "prefonline.rollouts" } }, resume));
/// var run = users.RunAsync(stoppingToken);   // until cancelled
/// </code>
/// </example>
public sealed class SimulatedUsers
{
    private const int RecentWindow = 256;
    private const int MaxTrackedVersions = 1000;
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan CommitInterval = TimeSpan.FromSeconds(5);

    private readonly SimulatedUsersOptions options;
    private readonly IRecordSink sink;
    private readonly Func<IResumeOffsetProvider, IRecordSource> subscribeToRollouts;
    private readonly ILogger logger;
    private readonly TimeProvider time;
    private readonly IHiddenPreference initialPreference;
    private readonly IHiddenPreference shiftedPreference;
    private readonly string idPrefix;
    private readonly Lock statsGate = new();
    private readonly Queue<double> recent = new();
    private readonly SortedDictionary<long, (long Count, double Sum)> byVersion = new();
    private double recentSum;
    private long promptsProduced;
    private long rolloutsSeen;
    private long invalidRollouts;
    private long pairsProduced;
    private long ratingsProduced;
    private volatile bool shifted;
    private int running;

    /// <param name="subscribeToRollouts">Creates the rollout source with the given resume-offset provider (the simulator tracks its own progress).</param>
    /// <exception cref="ArgumentException">The options are invalid (every problem is listed).</exception>
    public SimulatedUsers(SimulatedUsersOptions options, IRecordSink sink, Func<IResumeOffsetProvider, IRecordSource> subscribeToRollouts, ILogger<SimulatedUsers>? logger = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var problems = options.Problems();
        if (problems.Count > 0) throw new ArgumentException("invalid simulated users options: " + string.Join("; ", problems), nameof(options));
        this.options = options;
        this.sink = sink ?? throw new ArgumentNullException(nameof(sink));
        this.subscribeToRollouts = subscribeToRollouts ?? throw new ArgumentNullException(nameof(subscribeToRollouts));
        this.logger = (ILogger?)logger ?? NullLogger.Instance;
        time = timeProvider ?? TimeProvider.System;
        initialPreference = HiddenPreferences.Parse(options.Preference);
        shiftedPreference = options.ShiftedPreference is { } spec ? HiddenPreferences.Parse(spec) : new ReversedPreference(initialPreference);
        var runId = options.RunId ?? time.GetUtcNow().UtcDateTime.ToString("yyyyMMddHHmmss", CultureInfo.InvariantCulture);
        idPrefix = $"{options.IdPrefix}-{runId}";
    }

    /// <summary>The preference labels follow right now.</summary>
    public IHiddenPreference CurrentPreference => shifted ? shiftedPreference : initialPreference;

    /// <summary>Prefix of every id this run produces (<c>{IdPrefix}-{RunId}</c>).</summary>
    public string IdPrefix => idPrefix;

    public SimulationStatistics GetStatistics()
    {
        lock (statsGate)
        {
            return new SimulationStatistics(
                Interlocked.Read(ref promptsProduced), Interlocked.Read(ref rolloutsSeen), Interlocked.Read(ref invalidRollouts),
                Interlocked.Read(ref pairsProduced), Interlocked.Read(ref ratingsProduced),
                recent.Count > 0 ? recentSum / recent.Count : null, recent.Count, shifted, CurrentPreference.Description,
                byVersion.ToDictionary(v => v.Key, v => new UtilitySummary(v.Value.Count, v.Value.Sum / v.Value.Count)));
        }
    }

    /// <summary>Runs until <paramref name="cancellationToken"/> fires (then returns normally). Call once.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref running, 1) == 1) throw new InvalidOperationException("a SimulatedUsers instance runs once");
        logger.LogInformation("Simulated users {Run} start: {Rate} prompts/s, preference {Preference}, labels {Mode}, temperature {Temperature}",
            idPrefix, options.PromptsPerSecond, initialPreference.Description, options.LabelMode, options.Temperature);
        var tracker = new OffsetTracker();
        await using var rollouts = subscribeToRollouts(tracker);
        var started = time.GetTimestamp();
        try
        {
            await Task.WhenAll(ProducePromptsAsync(started, cancellationToken), LabelRolloutsAsync(rollouts, tracker, started, cancellationToken)).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        logger.LogInformation("Simulated users {Run} stopped: {Statistics}", idPrefix, GetStatistics());
    }

    // ---- prompts -------------------------------------------------------------------------------

    private async Task ProducePromptsAsync(long started, CancellationToken cancellationToken)
    {
        var random = new Random(options.Seed);
        long produced = 0;
        var maxBurst = Math.Max(1, (long)Math.Ceiling(options.PromptsPerSecond)); // never more than ~1 s of prompts at once after a stall
        using var timer = new PeriodicTimer(Tick, time);
        while (options.MaxPrompts is not { } max || produced < max)
        {
            var due = (long)(time.GetElapsedTime(started).TotalSeconds * options.PromptsPerSecond);
            if (options.MaxPrompts is { } cap) due = Math.Min(due, cap);
            if (due - produced > maxBurst) produced = due - maxBurst;
            while (produced < due)
            {
                produced++;
                var text = options.Prompts[random.Next(options.Prompts.Count)];
                var prompt = new PromptRecord($"{idPrefix}-p-{produced:D8}", text);
                await sink.ProduceAsync(new OutgoingRecord(options.PromptsTopic, null, RecordSerializer.Serialize(prompt)), cancellationToken).ConfigureAwait(false);
                Interlocked.Increment(ref promptsProduced);
            }
            if (!await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false)) return;
        }
    }

    // ---- labels --------------------------------------------------------------------------------

    private async Task LabelRolloutsAsync(IRecordSource rollouts, OffsetTracker tracker, long started, CancellationToken cancellationToken)
    {
        var labeler = new SimulatedLabeler(options, options.Seed + 1, idPrefix);
        var labelRandom = new Random(options.Seed + 2);
        var validator = new RecordValidator(new ValidationLimits { DuplicateWindowSize = 0 }, SchemaNames.RolloutTopic);
        var groups = new Dictionary<string, PendingGroup>(StringComparer.Ordinal);
        var groupOrder = new LinkedList<string>();
        var delayed = new PriorityQueue<IReadOnlyList<StreamRecord>, long>();
        var nextCommit = time.GetTimestamp();
        Task<bool>? waiting = null;
        using var timer = new PeriodicTimer(Tick, time);
        Task<bool>? tick = null;

        while (!cancellationToken.IsCancellationRequested)
        {
            waiting ??= rollouts.Records.WaitToReadAsync(cancellationToken).AsTask();
            tick ??= timer.WaitForNextTickAsync(cancellationToken).AsTask();
            var finished = await Task.WhenAny(waiting, tick).ConfigureAwait(false);
            if (finished == tick) tick = null;
            if (waiting.IsCompleted)
            {
                if (!await waiting.ConfigureAwait(false)) return; // the source closed
                waiting = null;
            }
            while (rollouts.Records.TryRead(out var record))
            {
                if (!tracker.Begin(record)) continue;
                var result = validator.Validate(record);
                tracker.Complete(record);
                if (!result.IsValid || result.Record is not RolloutRecord rollout)
                {
                    Interlocked.Increment(ref invalidRollouts);
                    logger.LogDebug("Simulated users ignore an invalid rollout at {Record}: {Failure}", record.ToString(), result.Failure);
                    continue;
                }
                Observe(rollout);
                if (!groups.TryGetValue(rollout.PromptId, out var group))
                {
                    group = new PendingGroup(time.GetTimestamp(), groupOrder.AddLast(rollout.PromptId));
                    groups[rollout.PromptId] = group;
                }
                group.Rollouts.Add(rollout);
                if (group.Rollouts.Count >= options.GroupSize) await CompleteGroupAsync(rollout.PromptId).ConfigureAwait(false);
                else if (groups.Count > options.MaxPendingGroups) await CompleteGroupAsync(groupOrder.First!.Value).ConfigureAwait(false);
            }

            // Incomplete groups whose time is up (oldest first).
            while (groupOrder.First is { } oldest && time.GetElapsedTime(groups[oldest.Value].FirstSeen) >= options.GroupTimeout)
            {
                await CompleteGroupAsync(oldest.Value).ConfigureAwait(false);
            }
            while (delayed.TryPeek(out var due, out var dueAt) && time.GetTimestamp() >= dueAt)
            {
                delayed.Dequeue();
                await ProduceLabelsAsync(due, started, cancellationToken).ConfigureAwait(false);
            }
            CheckTimeShift(started);
            if (time.GetTimestamp() >= nextCommit)
            {
                nextCommit = time.GetTimestamp() + (long)(CommitInterval.TotalSeconds * time.TimestampFrequency);
                await CommitQuietlyAsync(rollouts, tracker, cancellationToken).ConfigureAwait(false);
            }
        }

        async Task CompleteGroupAsync(string promptId)
        {
            var group = groups[promptId];
            groups.Remove(promptId);
            groupOrder.Remove(group.Node);
            if (labelRandom.NextDouble() >= options.LabelFraction) return;
            var labels = labeler.Label(group.Rollouts, CurrentPreference);
            if (labels.Count == 0) return;
            if (options.LabelDelay <= TimeSpan.Zero) await ProduceLabelsAsync(labels, started, cancellationToken).ConfigureAwait(false);
            else delayed.Enqueue(labels, time.GetTimestamp() + (long)(options.LabelDelay.TotalSeconds * time.TimestampFrequency));
        }
    }

    private async Task ProduceLabelsAsync(IReadOnlyList<StreamRecord> labels, long started, CancellationToken cancellationToken)
    {
        foreach (var label in labels)
        {
            await sink.ProduceAsync(new OutgoingRecord(options.FeedbackTopic, null, RecordSerializer.Serialize(label)), cancellationToken).ConfigureAwait(false);
            var total = label is PreferenceRecord ? Interlocked.Increment(ref pairsProduced) + Interlocked.Read(ref ratingsProduced) : Interlocked.Increment(ref ratingsProduced) + Interlocked.Read(ref pairsProduced);
            if (!shifted && options.ShiftAfterLabels is { } after && total >= after) Shift($"{total} labels produced");
        }
        CheckTimeShift(started);
    }

    private void CheckTimeShift(long started)
    {
        if (!shifted && options.ShiftAfter is { } after && time.GetElapsedTime(started) >= after) Shift($"{after} elapsed");
    }

    private void Shift(string why)
    {
        shifted = true;
        logger.LogWarning("Simulated users {Run} changed their preference ({Why}): {From} -> {To}", idPrefix, why, initialPreference.Description, shiftedPreference.Description);
    }

    private void Observe(RolloutRecord rollout)
    {
        var utility = CurrentPreference.Utility(rollout.Prompt, rollout.Completion);
        Interlocked.Increment(ref rolloutsSeen);
        lock (statsGate)
        {
            recent.Enqueue(utility);
            recentSum += utility;
            if (recent.Count > RecentWindow) recentSum -= recent.Dequeue();
            byVersion.TryGetValue(rollout.PolicyVersion, out var summary);
            byVersion[rollout.PolicyVersion] = (summary.Count + 1, summary.Sum + utility);
            while (byVersion.Count > MaxTrackedVersions) byVersion.Remove(byVersion.Keys.First());
        }
    }

    private async Task CommitQuietlyAsync(IRecordSource rollouts, OffsetTracker tracker, CancellationToken cancellationToken)
    {
        var offsets = tracker.Snapshot();
        if (offsets.Count == 0) return;
        try
        {
            await rollouts.CommitAsync(offsets, cancellationToken).ConfigureAwait(false);
        }
        catch (StreamingException e)
        {
            // The simulator's commits only serve lag monitoring; the next interval tries again.
            logger.LogDebug("Simulated users could not commit rollout offsets: {Error}", e.Message);
        }
    }

    private sealed class PendingGroup(long firstSeen, LinkedListNode<string> node)
    {
        public long FirstSeen { get; } = firstSeen;

        public LinkedListNode<string> Node { get; } = node;

        public List<RolloutRecord> Rollouts { get; } = new();
    }
}
