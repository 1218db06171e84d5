using FsCheck;
using FsCheck.Fluent;
using PrefOnline.Streaming.Contracts;
using PrefOnline.Streaming.Validation;

namespace PrefOnline.Streaming.Tests.Contracts;

public sealed class RecordSerializerTests
{
    // Text drawn from ASCII (including quotes, backslashes, control characters), accented letters,
    // CJK and emoji (surrogate pairs), so escaping and UTF-8 encoding are both exercised.
    private static readonly string[] Pieces = ["a", "Z", " ", "\"", "\\", "/", "\n", "\t", "\u0001", "\u007f", "é", "ß", "世", "界", "😀", "𝄞", "{", "}", "[", ":", ","];

    private static Gen<string> Text(int maxPieces) =>
        Gen.Choose(0, maxPieces).SelectMany(n => Gen.ArrayOf(Gen.Elements(Pieces), n)).Select(p => string.Concat(p));

    private static Gen<string> Id() =>
        Gen.Choose(1, 24).SelectMany(n => Gen.ArrayOf(Gen.Elements("a", "b", "7", "-", "_", ".", "é", "😀"), n)).Select(p => string.Concat(p));

    private static Gen<double> Finite() =>
        Gen.Choose(-1_000_000, 1_000_000).SelectMany(i => Gen.Choose(0, 6).Select(scale => i / Math.Pow(10, scale)));

    private static Gen<StreamRecord> Records() => Gen.OneOf(
        Id().SelectMany(id => Text(8).Select(prompt => (StreamRecord)new PromptRecord(id, prompt, id.Length % 2 == 0 ? "{\"k\":[1,\"v\"]}" : null))),
        Id().SelectMany(id => Text(8).SelectMany(chosen => Text(8).Where(r => r != chosen).Select(rejected => (StreamRecord)new PreferenceRecord(id, "p", chosen, rejected, id.Length % 2 == 0 ? new PreferenceRolloutIds(id + "-a", id + "-b") : null)))),
        Id().SelectMany(id => Text(8).SelectMany(completion => Finite().Select(reward => (StreamRecord)new RatingRecord(id, "p", completion, reward, id.Length % 3 == 0 ? "r-" + id : null)))),
        Id().SelectMany(id => Text(8).SelectMany(completion => Gen.Choose(0, int.MaxValue).SelectMany(version => Finite().SelectMany(x => Gen.Elements<string?>(null, "eos", "stop", "length").Select(finish => (StreamRecord)new RolloutRecord(id, "p-" + id, "prompt", completion, version, -Math.Abs(x), finish)))))));

    [Fact]
    public void Every_record_round_trips_through_bytes_and_the_validator()
    {
        var validator = new RecordValidator(new ValidationLimits { DuplicateWindowSize = 0 }, SchemaNames.All);
        Prop.ForAll(Records().ToArbitrary(), record =>
        {
            var result = validator.Validate(RecordSerializer.Serialize(record));
            return result.IsValid && Equal(record, result.Record);
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void A_policy_event_round_trips_in_both_kinds()
    {
        var validator = new RecordValidator(new ValidationLimits(), SchemaNames.PolicyTopic);
        var created = new DateTimeOffset(2024, 5, 1, 12, 0, 0, 123, TimeSpan.Zero);
        var publish = PolicyEvent.Publish(3, "file:///ckpt/v000003", new string('F', 64), created, new Dictionary<string, double> { ["reward"] = 0.5, ["kl"] = 0.01 });
        var back = Assert.IsType<PolicyEvent>(validator.Validate(RecordSerializer.Serialize(publish)).Record);
        Assert.Equal(publish.Version, back.Version);
        Assert.Equal(new string('f', 64), back.Sha256);
        Assert.Equal(created, back.Created);
        Assert.Equal(0.01, back.Metrics["kl"]);

        var rollback = PolicyEvent.Rollback(4, 3, "reward drift", "file:///ckpt/v000003", new string('a', 64), created, new Dictionary<string, double>());
        var json = System.Text.Encoding.UTF8.GetString(RecordSerializer.Serialize(rollback));
        Assert.Contains("\"kind\":\"rollback\"", json);
        Assert.Contains("\"from_version\":4", json);
        var parsed = Assert.IsType<PolicyEvent>(validator.Validate(RecordSerializer.Serialize(rollback)).Record);
        Assert.Equal((PolicyEventKind.Rollback, 3L, 4L, "reward drift"), (parsed.Kind, parsed.Version, parsed.FromVersion!.Value, parsed.Reason));
    }

    [Fact]
    public void Schema_comes_first_and_non_ascii_is_written_as_utf8()
    {
        var json = System.Text.Encoding.UTF8.GetString(RecordSerializer.Serialize(new PromptRecord("p-1", "café 世界 😀")));
        Assert.Equal("{\"schema\":\"prefonline.prompt.v1\",\"id\":\"p-1\",\"prompt\":\"café 世界 \\uD83D\\uDE00\"}", json);
    }

    [Fact]
    public void Constructors_refuse_what_the_contract_forbids()
    {
        Assert.Throws<ArgumentException>(() => new PromptRecord("", "p"));
        Assert.Throws<ArgumentException>(() => new PromptRecord("a\u0001", "p"));
        Assert.Throws<ArgumentException>(() => new PromptRecord("p", "x", "[1]"));
        Assert.Throws<ArgumentException>(() => new PreferenceRecord("l", "p", "same", "same"));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RatingRecord("l", "p", "c", double.NaN));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RolloutRecord("r", "p", "p", "c", 1, 0.1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RolloutRecord("r", "p", "p", "c", 1, -0.1, "tired"));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RolloutRecord("r", "p", "p", "c", -1, -0.1));
        Assert.Throws<ArgumentException>(() => new PreferenceRolloutIds("r", "r"));
        Assert.Throws<ArgumentException>(() => PolicyEvent.Rollback(3, 3, "why", "file:///x", new string('a', 64), DateTimeOffset.UtcNow, new Dictionary<string, double>()));
        Assert.Throws<ArgumentException>(() => PolicyEvent.Publish(1, "/no/scheme", new string('a', 64), DateTimeOffset.UtcNow, new Dictionary<string, double>()));
        Assert.Throws<ArgumentOutOfRangeException>(() => PolicyEvent.Publish(1, "file:///x", new string('a', 64), DateTimeOffset.UtcNow, new Dictionary<string, double> { ["kl"] = double.PositiveInfinity }));
        Assert.Throws<ArgumentException>(() => RecordSerializer.Serialize(new PromptRecord("p", "broken \ud800 text")));
    }

    private static bool Equal(StreamRecord expected, StreamRecord actual) => (expected, actual) switch
    {
        (PromptRecord a, PromptRecord b) => a.Id == b.Id && a.Prompt == b.Prompt && a.MetaJson == b.MetaJson,
        (PreferenceRecord a, PreferenceRecord b) => a.Id == b.Id && a.Prompt == b.Prompt && a.Chosen == b.Chosen && a.Rejected == b.Rejected && a.RolloutIds == b.RolloutIds,
        (RatingRecord a, RatingRecord b) => a.Id == b.Id && a.Prompt == b.Prompt && a.Completion == b.Completion && a.Reward.Equals(b.Reward) && a.RolloutId == b.RolloutId,
        (RolloutRecord a, RolloutRecord b) => a == b,
        _ => false,
    };
}
