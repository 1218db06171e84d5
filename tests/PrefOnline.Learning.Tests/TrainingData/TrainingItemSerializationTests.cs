using System.Collections.Immutable;
using PrefOnline.Learning.Replay;
using PrefOnline.Learning.TrainingData;

namespace PrefOnline.Learning.Tests.TrainingData;

public sealed class TrainingItemSerializationTests
{
    private static Rollout MakeRollout(int i) => new()
    {
        Id = $"r-{i}",
        PromptId = $"p-{i % 3}",
        Prompt = "Summarise: the cat sat on the mat ✓",
        Completion = i % 2 == 0 ? "A cat sat." : "",
        PromptTokens = [1, 2, 3, i],
        CompletionTokens = [7, 8, 9],
        BehaviourLogProbs = [-0.5f, -1.25f, -3e-5f],
        Reward = 0.1 * i - 0.3,
        RewardSource = (RewardSource)(i % 3),
        UpdateCount = i / 2,
        GeneratedAt = new DateTimeOffset(2025, 3, 1, 12, 0, i % 60, TimeSpan.FromHours(2)),
        ScoredAt = new DateTimeOffset(2025, 3, 1, 12, 1, 0, TimeSpan.Zero).AddTicks(i),
    };

    private static PreferencePair MakePair(int i) => new()
    {
        Id = $"pair-{i}",
        PromptId = i % 2 == 0 ? null : $"p-{i}",
        Prompt = "Which is better?",
        Chosen = "this one",
        Rejected = $"that one {i}",
        ChosenTokens = i % 2 == 0 ? [] : [4, 5],
        Source = i % 2 == 0 ? PairSource.Human : PairSource.OnPolicy,
        ChosenRolloutId = i % 2 == 0 ? null : $"r-{i}",
        RejectedRolloutId = i % 2 == 0 ? null : $"r-{i + 1}",
        RewardGap = i % 2 == 0 ? null : 0.25 * i,
        UpdateCount = i,
        ReceivedAt = new DateTimeOffset(2025, 1, 2, 3, 4, 5, TimeSpan.FromMinutes(-330)),
    };

    [Fact]
    public void Rollouts_round_trip_exactly()
    {
        for (var i = 0; i < 6; i++)
        {
            var original = MakeRollout(i);
            var copy = RoundTrip(original, RolloutSerializer.Instance, out var bytes, out var again);
            Assert.Equal(original, copy);
            Assert.Equal(original.GeneratedAt.Offset, copy.GeneratedAt.Offset);
            Assert.Equal(bytes, again);
        }
        Assert.NotEqual(MakeRollout(1), MakeRollout(1) with { CompletionTokens = [7, 8, 10] });
        Assert.Equal(-0.5 - 1.25 - 3e-5, MakeRollout(0).BehaviourLogProb, 6);
    }

    [Fact]
    public void Preference_pairs_round_trip_exactly()
    {
        for (var i = 0; i < 4; i++)
        {
            var original = MakePair(i);
            var copy = RoundTrip(original, PreferencePairSerializer.Instance, out var bytes, out var again);
            Assert.Equal(original, copy);
            Assert.Equal(bytes, again);
        }
    }

    [Fact]
    public void A_buffer_of_rollouts_snapshots_to_identical_bytes_and_detects_damage()
    {
        var buffer = new ReplayBuffer<Rollout>(new ReplayLimits { Capacity = 8, Eviction = EvictionPolicy.Reservoir, MaxReuse = 3, MaxStaleness = 8, FreshFraction = 0.5, Seed = 11 });
        for (var i = 0; i < 20; i++) buffer.Add(MakeRollout(i), i / 2);
        buffer.Draw(4, 9);
        using var stream = new MemoryStream();
        buffer.WriteSnapshot(stream, RolloutSerializer.Instance);
        var bytes = stream.ToArray();
        var restored = ReplayBuffer<Rollout>.ReadSnapshot(new MemoryStream(bytes), RolloutSerializer.Instance);
        Assert.Equal(buffer.Snapshot(), restored.Snapshot());
        using var again = new MemoryStream();
        restored.WriteSnapshot(again, RolloutSerializer.Instance);
        Assert.Equal(bytes, again.ToArray());
        Assert.Equal(buffer.Draw(5, 9).Entries, restored.Draw(5, 9).Entries);            // same generator state

        var damaged = bytes.ToArray();
        damaged[damaged.Length / 2] ^= 0x40;
        Assert.Contains("checksum", Assert.Throws<InvalidDataException>(() => ReplayBuffer<Rollout>.ReadSnapshot(new MemoryStream(damaged), RolloutSerializer.Instance)).Message);
        Assert.Throws<InvalidDataException>(() => ReplayBuffer<Rollout>.ReadSnapshot(new MemoryStream(bytes[..^40]), RolloutSerializer.Instance));
        Assert.Throws<InvalidDataException>(() => ReplayBuffer<Rollout>.ReadSnapshot(new MemoryStream("not a snapshot"u8.ToArray()), RolloutSerializer.Instance));
    }

    [Fact]
    public void Invalid_items_are_refused()
    {
        Assert.Throws<ArgumentException>(() => (MakeRollout(0) with { BehaviourLogProbs = [-1f] }).Validate());
        Assert.Throws<ArgumentException>(() => (MakeRollout(0) with { Reward = double.NaN }).Validate());
        Assert.Throws<ArgumentException>(() => (MakeRollout(0) with { BehaviourLogProbs = [0.5f, -1f, -1f] }).Validate());
        Assert.Throws<ArgumentException>(() => (MakeRollout(0) with { CompletionTokens = default }).Validate());
        Assert.Throws<ArgumentException>(() => (MakePair(0) with { Rejected = "this one" }).Validate());
        Assert.Throws<ArgumentException>(() => (MakePair(1) with { RewardGap = -1 }).Validate());

        // A stored item that does not validate fails the read as corrupt data, not as a crash later.
        var bad = MakeRollout(0) with { Reward = double.PositiveInfinity };
        using var stream = new MemoryStream();
        using (var w = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true)) RolloutSerializer.Instance.Write(w, bad);
        stream.Position = 0;
        using var r = new BinaryReader(stream);
        Assert.Throws<InvalidDataException>(() => RolloutSerializer.Instance.Read(r));
    }

    [Fact]
    public void A_length_beyond_the_data_is_corrupt_not_a_huge_allocation()
    {
        using var stream = new MemoryStream();
        using (var w = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            w.Write((byte)1);
            w.Write(int.MaxValue);                                 // the id claims 2 GB
        }
        stream.Position = 0;
        using var r = new BinaryReader(stream);
        Assert.Throws<InvalidDataException>(() => RolloutSerializer.Instance.Read(r));
    }

    private static T RoundTrip<T>(T item, IReplayItemSerializer<T> serializer, out byte[] bytes, out byte[] again)
    {
        using var first = new MemoryStream();
        using (var w = new BinaryWriter(first, System.Text.Encoding.UTF8, leaveOpen: true)) serializer.Write(w, item);
        bytes = first.ToArray();
        using var reader = new BinaryReader(new MemoryStream(bytes));
        var copy = serializer.Read(reader);
        Assert.Equal(bytes.Length, reader.BaseStream.Position);
        using var second = new MemoryStream();
        using (var w = new BinaryWriter(second, System.Text.Encoding.UTF8, leaveOpen: true)) serializer.Write(w, copy);
        again = second.ToArray();
        return copy;
    }
}
