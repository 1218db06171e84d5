using FsCheck;
using FsCheck.Fluent;
using Microsoft.FSharp.Core;
using PrefOnline.Learning.Replay;

namespace PrefOnline.Learning.Tests.Replay;

/// <summary>
/// Replay-buffer invariants as FsCheck properties over random option sets and random operation
/// sequences (add at the current or an older policy version, publish a new version, draw, expire,
/// snapshot-and-restore), checked after every operation against a simple model of what was added.
/// </summary>
public sealed class ReplayBufferPropertyTests
{
    /// <summary>Seeded, so a failure replays identically.</summary>
    private static readonly Config Checks = Config.QuickThrowOnFailure
        .WithMaxTest(300)
        .WithReplay(FSharpOption<FsCheck.Replay>.Some(new FsCheck.Replay(new Rnd(20240601UL), FSharpOption<int>.None)));

    public abstract record Op;

    public sealed record AddOp(int Age) : Op;          // an item from (current − Age) policy version

    public sealed record PublishOp : Op;               // the learner publishes a new policy version

    public sealed record DrawOp(int BatchSize) : Op;

    public sealed record ExpireOp : Op;

    public sealed record SnapshotOp : Op;              // write a snapshot, continue with the restored copy

    public sealed record Scenario(ReplayLimits Options, IReadOnlyList<Op> Ops)
    {
        public override string ToString() => $"{Options} ops=[{string.Join(", ", Ops)}]";
    }

    private static readonly Gen<ReplayLimits> OptionsGen =
        from capacity in Gen.Choose(1, 24)
        from reservoir in Gen.Elements(false, true)
        from maxReuse in Gen.Choose(1, 5)
        from staleness in Gen.Choose(0, 4)
        from freshPercent in Gen.Elements(0, 25, 50, 70, 100)
        from seed in Gen.Choose(1, 1_000_000)
        select new ReplayLimits
        {
            Capacity = capacity,
            Eviction = reservoir ? EvictionPolicy.Reservoir : EvictionPolicy.Fifo,
            MaxReuse = maxReuse,
            MaxStaleness = staleness,
            FreshFraction = freshPercent / 100.0,
            Seed = (ulong)seed,
        };

    private static readonly Gen<Op> OpGen = Gen.Frequency(
        (10, Gen.Choose(0, 3).Select(a => (Op)new AddOp(a))),
        (2, Gen.Constant((Op)new PublishOp())),
        (5, Gen.Choose(1, 12).Select(b => (Op)new DrawOp(b))),
        (1, Gen.Constant((Op)new ExpireOp())),
        (1, Gen.Constant((Op)new SnapshotOp())));

    private static readonly Arbitrary<Scenario> Scenarios =
        (from options in OptionsGen
         from ops in Gen.ListOf(OpGen, 120)
         select new Scenario(options, ops.ToList())).ToArbitrary();

    [Fact]
    public void Invariants_hold_after_every_operation()
    {
        Check.One(Checks, Prop.ForAll(Scenarios, scenario =>
        {
            Run(scenario);
            return true;
        }));
    }

    /// <summary>Plays a scenario, asserting every invariant on the way (an assertion failure fails the property).</summary>
    private static void Run(Scenario scenario)
    {
        var o = scenario.Options;
        var buffer = new ReplayBuffer<int>(o);
        var version = 0L;
        var nextId = 0;
        var offered = 0;
        var uses = new Dictionary<int, int>();                 // item id → times drawn, over the whole history
        var versionOf = new Dictionary<int, long>();

        foreach (var op in scenario.Ops)
        {
            switch (op)
            {
                case AddOp add:
                {
                    var id = nextId++;
                    var itemVersion = Math.Max(0, version - add.Age);
                    versionOf[id] = itemVersion;
                    offered++;
                    var accepted = buffer.Add(id, itemVersion);
                    if (o.Eviction == EvictionPolicy.Fifo) Assert.True(accepted);
                    break;
                }
                case PublishOp:
                    version++;
                    break;
                case ExpireOp:
                    buffer.ExpireStale(version);
                    Assert.All(buffer.Snapshot(), e => Assert.True(version - e.UpdateCount <= o.MaxStaleness));
                    break;
                case SnapshotOp:
                {
                    using var stream = new MemoryStream();
                    buffer.WriteSnapshot(stream, Int32Serializer.Instance);
                    var bytes = stream.ToArray();
                    var restored = ReplayBuffer<int>.ReadSnapshot(new MemoryStream(bytes), Int32Serializer.Instance);
                    using var again = new MemoryStream();
                    restored.WriteSnapshot(again, Int32Serializer.Instance);
                    Assert.Equal(bytes, again.ToArray());                                    // byte-for-byte stable
                    Assert.Equal(buffer.Snapshot(), restored.Snapshot());
                    Assert.Equal(buffer.Counters, restored.Counters);
                    buffer = restored;                                                       // the rest runs on the copy
                    break;
                }
                case DrawOp draw:
                {
                    var eligible = buffer.Snapshot().Where(e => version - e.UpdateCount <= o.MaxStaleness).ToList();
                    var freshAvailable = eligible.Count(e => e.Uses == 0);
                    var expected = ReplayBuffer<int>.Split(draw.BatchSize, freshAvailable, eligible.Count - freshAvailable, o.FreshFraction);
                    var newestFresh = eligible.Where(e => e.Uses == 0).OrderByDescending(e => e.Sequence).Take(expected.Fresh).Select(e => e.Item).ToList();

                    var batch = buffer.Draw(draw.BatchSize, version);

                    // Mix: exactly the planned split; fresh items are the newest never-drawn ones.
                    Assert.Equal(expected, (batch.Fresh, batch.Replayed));
                    Assert.Equal(Math.Min(draw.BatchSize, eligible.Count), batch.Count);
                    Assert.Equal(newestFresh, batch.Entries.Take(batch.Fresh).Select(e => e.Item));
                    Assert.All(batch.Entries.Take(batch.Fresh), e => Assert.Equal(1, e.Uses));
                    Assert.All(batch.Entries.Skip(batch.Fresh), e => Assert.True(e.Uses >= 2));
                    Assert.Equal(batch.Count, batch.Entries.Select(e => e.Item).Distinct().Count());   // no duplicates in a batch

                    foreach (var e in batch.Entries)
                    {
                        // Staleness limit respected by everything drawn; versions are the ones it was added with.
                        Assert.True(version - e.UpdateCount <= o.MaxStaleness, $"stale item {e.Item} (v{e.UpdateCount}) drawn at v{version}");
                        Assert.Equal(versionOf[e.Item], e.UpdateCount);
                        uses[e.Item] = uses.GetValueOrDefault(e.Item) + 1;
                        Assert.Equal(uses[e.Item], e.Uses);
                        Assert.True(uses[e.Item] <= o.MaxReuse, $"item {e.Item} drawn {uses[e.Item]} times, limit {o.MaxReuse}");
                    }
                    break;
                }
            }

            // After every operation: bounded, bookkeeping consistent.
            var snapshot = buffer.Snapshot();
            Assert.True(snapshot.Count <= o.Capacity, $"{snapshot.Count} items above capacity {o.Capacity}");
            Assert.Equal(snapshot.Count, buffer.Count);
            Assert.All(snapshot, e => Assert.True(e.Uses < o.MaxReuse));
            Assert.Equal(snapshot.Count, snapshot.Select(e => e.Item).Distinct().Count());
            var c = buffer.Counters;
            Assert.Equal(offered, c.Added + c.Rejected);
            Assert.Equal(snapshot.Count, c.Added - c.Evicted - c.Expired - c.Exhausted);
            Assert.Equal(uses.Values.Sum(), c.DrawnFresh + c.DrawnReplayed);
            Assert.Equal(uses.Values.Count(u => u >= o.MaxReuse), c.Exhausted);
            if (o.Eviction == EvictionPolicy.Fifo)
            {
                // FIFO keeps arrival order and evicts the oldest first.
                Assert.Equal(snapshot.OrderBy(e => e.Sequence).Select(e => e.Sequence), snapshot.Select(e => e.Sequence));
            }
        }
    }

    [Fact]
    public void A_restored_buffer_draws_exactly_what_the_original_would()
    {
        Check.One(Checks, Prop.ForAll(Scenarios, scenario =>
        {
            var original = new ReplayBuffer<int>(scenario.Options);
            var version = 0L;
            var id = 0;
            var half = scenario.Ops.Count / 2;
            ReplayBuffer<int>? copy = null;
            for (var i = 0; i < scenario.Ops.Count; i++)
            {
                if (i == half)
                {
                    using var stream = new MemoryStream();
                    original.WriteSnapshot(stream, Int32Serializer.Instance);
                    stream.Position = 0;
                    copy = ReplayBuffer<int>.ReadSnapshot(stream, Int32Serializer.Instance);
                }
                foreach (var b in copy is null ? [original] : new[] { original, copy })
                {
                    switch (scenario.Ops[i])
                    {
                        case AddOp add: b.Add(id, Math.Max(0, version - add.Age)); break;
                        case DrawOp draw when copy is not null && b == copy:
                            break;   // drawn below, in lockstep with the original
                        case DrawOp draw: b.Draw(draw.BatchSize, version); break;
                        case ExpireOp: b.ExpireStale(version); break;
                    }
                }
                if (copy is not null && scenario.Ops[i] is DrawOp d)
                {
                    // The original already drew above; the copy must draw the same entries.
                    var fromCopy = copy.Draw(d.BatchSize, version);
                    Assert.Equal(original.Snapshot(), copy.Snapshot());
                    Assert.Equal(original.Counters, copy.Counters);
                    _ = fromCopy;
                }
                if (scenario.Ops[i] is AddOp) id++;
                if (scenario.Ops[i] is PublishOp) version++;
            }
            return true;
        }));
    }

    [Fact]
    public void Mix_ratio_holds_over_many_draws_when_both_pools_suffice()
    {
        foreach (var fraction in new[] { 0.0, 0.3, 0.5, 0.8, 1.0 })
        {
            var buffer = new ReplayBuffer<int>(new ReplayLimits { Capacity = 10_000, Eviction = EvictionPolicy.Fifo, MaxReuse = 1_000, MaxStaleness = 1_000, FreshFraction = fraction, Seed = 3 });
            var id = 0;
            for (var i = 0; i < 200; i++) buffer.Add(id++, 0);
            buffer.Draw(200, 0);                                      // everything becomes replayable
            long fresh = 0, total = 0;
            for (var round = 0; round < 100; round++)
            {
                for (var i = 0; i < 40; i++) buffer.Add(id++, 0);     // 40 fresh per round, ≥ any fresh demand below
                var batch = buffer.Draw(32, 0);
                fresh += batch.Fresh;
                total += batch.Count;
            }
            Assert.Equal(3200, total);
            Assert.InRange(fresh / (double)total, fraction - 0.02, fraction + 0.02);
        }
    }

    [Fact]
    public void Memory_stays_bounded_whatever_the_input_rate()
    {
        foreach (var eviction in new[] { EvictionPolicy.Fifo, EvictionPolicy.Reservoir })
        {
            var buffer = new ReplayBuffer<int>(new ReplayLimits { Capacity = 100, Eviction = eviction, MaxReuse = 4, MaxStaleness = 8, FreshFraction = 0.5, Seed = 9 });
            for (var i = 0; i < 100_000; i++) buffer.Add(i, 0);
            Assert.Equal(100, buffer.Count);
            var c = buffer.Counters;
            Assert.Equal(100_000, c.Added + c.Rejected);
            if (eviction == EvictionPolicy.Fifo)
            {
                Assert.Equal(Enumerable.Range(99_900, 100), buffer.Snapshot().Select(e => e.Item));
            }
            else
            {
                // A uniform sample of 0..99,999: its mean is near 50,000 (std of the mean ≈ 2,900).
                Assert.InRange(buffer.Snapshot().Average(e => e.Item), 40_000, 60_000);
            }
        }
    }

    /// <summary>The simplest exact item serializer, for the properties.</summary>
    private sealed class Int32Serializer : IReplayItemSerializer<int>
    {
        public static Int32Serializer Instance { get; } = new();

        public void Write(BinaryWriter writer, int item) => writer.Write(item);

        public int Read(BinaryReader reader) => reader.ReadInt32();
    }
}
