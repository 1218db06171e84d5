using System.Text;
using PrefOnline.Streaming.Validation;

namespace PrefOnline.Streaming.Tests.Corpus;

/// <summary>Which input topic a corpus entry is produced to (the validator differs by accepted schemas).</summary>
public enum CorpusTopic
{
    Prompts,
    Feedback,
}

/// <summary>One bad record: a name, its exact bytes, the topic it goes to and the reason it must be refused with.</summary>
public sealed record BadRecord(string Name, byte[] Bytes, CorpusTopic Topic, string Reason)
{
    public override string ToString() => Name;
}

/// <summary>A good record that must pass untouched.</summary>
public sealed record GoodRecord(string Name, byte[] Bytes, CorpusTopic Topic)
{
    public override string ToString() => Name;
}

/// <summary>
/// The bad-record corpus shared by the validator unit tests and the Kafka dead-letter integration test
/// (linked into both projects). Every entry is refused under <see cref="ValidationLimits"/> defaults.
/// Ids are unique across the whole corpus so that only the deliberate duplicate trips the window.
/// </summary>
public static class BadRecordCorpus
{
    private const string Prompt = "prefonline.prompt.v1";
    private const string Preference = "prefonline.preference.v1";
    private const string Rating = "prefonline.rating.v1";

    public static IReadOnlyList<GoodRecord> Good { get; } =
    [
        new("prompt", Utf8($$"""{"schema":"{{Prompt}}","id":"good-p-1","prompt":"Tell me a joke."}"""), CorpusTopic.Prompts),
        new("prompt with meta and unicode", Utf8($$$$"""{"schema":"{{{{Prompt}}}}","id":"good-p-2","prompt":"Grüße, 世界 😀","meta":{"user":"u7","tags":["a","b"],"score":3.5,"nested":{"ok":true}}}"""), CorpusTopic.Prompts),
        new("prompt with escapes", Utf8($$"""{"schema":"{{Prompt}}","id":"good-p-3","prompt":"line1\nline2 \"quoted\" \ud83d\ude00 \u00e9"}"""), CorpusTopic.Prompts),
        new("prompt with whitespace and empty text", Utf8($$""" { "prompt" : "" , "id" : "good-p-4" , "schema" : "{{Prompt}}" } """), CorpusTopic.Prompts),
        new("preference", Utf8($$"""{"schema":"{{Preference}}","id":"good-l-1","prompt":"Hi","chosen":"Hello!","rejected":"Go away."}"""), CorpusTopic.Feedback),
        new("preference with rollout ids", Utf8($$"""{"schema":"{{Preference}}","id":"good-l-2","prompt":"Hi","chosen":"Hey","rejected":"Hm","rollout_ids":["r-1","r-2"]}"""), CorpusTopic.Feedback),
        new("rating", Utf8($$"""{"schema":"{{Rating}}","id":"good-l-3","prompt":"Hi","completion":"Hello!","reward":0.75,"rollout_id":"r-3"}"""), CorpusTopic.Feedback),
        // Within the worker's default rating scale (Reward:RatingMin/RatingMax, -10..10), which its intake enforces too.
        new("rating with exponent and negative reward", Utf8($$"""{"schema":"{{Rating}}","id":"good-l-4","prompt":"Hi","completion":"Hello!","reward":-1.5e0}"""), CorpusTopic.Feedback),
    ];

    public static IReadOnlyList<BadRecord> Bad { get; } = Build();

    private static IReadOnlyList<BadRecord> Build()
    {
        var list = new List<BadRecord>();
        void Add(string name, byte[] bytes, CorpusTopic topic, string reason) => list.Add(new BadRecord(name, bytes, topic, reason));
        void AddJson(string name, string json, CorpusTopic topic, string reason) => Add(name, Utf8(json), topic, reason);

        // ---- bytes
        Add("empty record", [], CorpusTopic.Prompts, ReasonCodes.EmptyRecord);
        Add("oversized record", Utf8($$"""{"schema":"{{Prompt}}","id":"bad-big","prompt":"{{new string('x', 300_000)}}"}"""), CorpusTopic.Prompts, ReasonCodes.RecordTooLarge);
        Add("binary garbage", SeededBytes(1, 64, firstByte: 0x00), CorpusTopic.Prompts, ReasonCodes.BinaryData);
        Add("gzip bytes", [0x1F, 0x8B, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x4B, 0x4C, 0x4A, 0x06, 0x00], CorpusTopic.Feedback, ReasonCodes.BinaryData);
        Add("NUL byte inside a string", Concat(Utf8($$"""{"schema":"{{Prompt}}","id":"bad-nul","prompt":"a"""), [0x00], Utf8("\"}")), CorpusTopic.Prompts, ReasonCodes.BinaryData);
        Add("invalid UTF-8 byte 0xFF", Concat(Utf8($$"""{"schema":"{{Prompt}}","id":"bad-ff","prompt":"a"""), [0xFF], Utf8("\"}")), CorpusTopic.Prompts, ReasonCodes.InvalidUtf8);
        Add("overlong UTF-8 encoding of '/'", Concat(Utf8($$"""{"schema":"{{Prompt}}","id":"bad-overlong","prompt":"a"""), [0xC0, 0xAF], Utf8("\"}")), CorpusTopic.Prompts, ReasonCodes.InvalidUtf8);
        Add("UTF-8 encoded surrogate (CESU-8)", Concat(Utf8($$"""{"schema":"{{Prompt}}","id":"bad-cesu","prompt":"a"""), [0xED, 0xA0, 0x80], Utf8("\"}")), CorpusTopic.Prompts, ReasonCodes.InvalidUtf8);
        Add("truncated UTF-8 sequence at the end", Concat(Utf8($$"""{"schema":"{{Prompt}}","id":"bad-trunc","prompt":"a"}"""), [0xE2, 0x82]), CorpusTopic.Prompts, ReasonCodes.InvalidUtf8);
        AddJson("lone high surrogate escape", $$"""{"schema":"{{Prompt}}","id":"bad-lone-hi","prompt":"a\ud800b"}""", CorpusTopic.Prompts, ReasonCodes.LoneSurrogate);
        AddJson("lone low surrogate escape in meta", $$$"""{"schema":"{{{Prompt}}}","id":"bad-lone-lo","prompt":"a","meta":{"k":"\udc00"}}""", CorpusTopic.Prompts, ReasonCodes.LoneSurrogate);
        // In a KEY (issue 11: System.Text.Json's ValueTextEquals threw on these and crash-looped the worker).
        AddJson("lone low surrogate escape in a key", """{"\udc00":0}""", CorpusTopic.Feedback, ReasonCodes.LoneSurrogate);
        AddJson("lone high surrogate escape in a key", $$"""{"schema":"{{Prompt}}","id":"bad-lone-key","prompt":"a","\ud800x":1}""", CorpusTopic.Prompts, ReasonCodes.LoneSurrogate);

        // ---- JSON structure
        AddJson("whitespace only", "   \n ", CorpusTopic.Prompts, ReasonCodes.InvalidJson);
        AddJson("truncated JSON", $$"""{"schema":"{{Prompt}}","id":"bad-cut","prompt":"a" """, CorpusTopic.Prompts, ReasonCodes.InvalidJson);
        AddJson("trailing comma", $$"""{"schema":"{{Prompt}}","id":"bad-comma","prompt":"a",}""", CorpusTopic.Prompts, ReasonCodes.InvalidJson);
        AddJson("comment", $$"""{"schema":"{{Prompt}}", /* hi */ "id":"bad-comment","prompt":"a"}""", CorpusTopic.Prompts, ReasonCodes.InvalidJson);
        AddJson("trailing data", $$"""{"schema":"{{Prompt}}","id":"bad-trail","prompt":"a"} {}""", CorpusTopic.Prompts, ReasonCodes.InvalidJson);
        AddJson("single quotes", """{'schema':'prefonline.prompt.v1','id':'bad-quote','prompt':'a'}""", CorpusTopic.Prompts, ReasonCodes.InvalidJson);
        Add("UTF-8 byte order mark", Concat([0xEF, 0xBB, 0xBF], Utf8($$"""{"schema":"{{Prompt}}","id":"bad-bom","prompt":"a"}""")), CorpusTopic.Prompts, ReasonCodes.InvalidJson);
        AddJson("top-level array", """[{"schema":"prefonline.prompt.v1"}]""", CorpusTopic.Prompts, ReasonCodes.NotAnObject);
        AddJson("top-level string", "\"hello\"", CorpusTopic.Feedback, ReasonCodes.NotAnObject);
        AddJson("top-level null", "null", CorpusTopic.Feedback, ReasonCodes.NotAnObject);
        AddJson("meta nested 20 levels", $$"""{"schema":"{{Prompt}}","id":"bad-deep","prompt":"a","meta":{{Nest(19)}}}""", CorpusTopic.Prompts, ReasonCodes.TooDeep);
        AddJson("100,000 nested arrays", new string('[', 100_000) + new string(']', 100_000), CorpusTopic.Prompts, ReasonCodes.TooDeep);
        AddJson("duplicate key", $$"""{"schema":"{{Prompt}}","id":"bad-dup-a","prompt":"a","id":"bad-dup-b"}""", CorpusTopic.Prompts, ReasonCodes.DuplicateKey);
        AddJson("duplicate key via escape", $$"""{"schema":"{{Prompt}}","id":"bad-dup-c","prompt":"a","\u0069d":"bad-dup-d"}""", CorpusTopic.Prompts, ReasonCodes.DuplicateKey);
        AddJson("duplicate key inside meta", $$$"""{"schema":"{{{Prompt}}}","id":"bad-dup-e","prompt":"a","meta":{"k":1,"k":2}}""", CorpusTopic.Prompts, ReasonCodes.DuplicateKey);

        // ---- numbers
        AddJson("reward NaN literal", $$"""{"schema":"{{Rating}}","id":"bad-nan","prompt":"a","completion":"b","reward":NaN}""", CorpusTopic.Feedback, ReasonCodes.NonFiniteNumber);
        AddJson("reward Infinity literal", $$"""{"schema":"{{Rating}}","id":"bad-inf","prompt":"a","completion":"b","reward":Infinity}""", CorpusTopic.Feedback, ReasonCodes.NonFiniteNumber);
        AddJson("reward -Infinity literal", $$"""{"schema":"{{Rating}}","id":"bad-ninf","prompt":"a","completion":"b","reward": -Infinity}""", CorpusTopic.Feedback, ReasonCodes.NonFiniteNumber);
        AddJson("reward \"NaN\" string", $$"""{"schema":"{{Rating}}","id":"bad-snan","prompt":"a","completion":"b","reward":"NaN"}""", CorpusTopic.Feedback, ReasonCodes.NonFiniteNumber);
        AddJson("reward \"-Infinity\" string", $$"""{"schema":"{{Rating}}","id":"bad-sinf","prompt":"a","completion":"b","reward":"-Infinity"}""", CorpusTopic.Feedback, ReasonCodes.NonFiniteNumber);
        AddJson("reward overflowing exponent 1e999", $$"""{"schema":"{{Rating}}","id":"bad-exp","prompt":"a","completion":"b","reward":1e999}""", CorpusTopic.Feedback, ReasonCodes.NonFiniteNumber);
        AddJson("reward beyond the limit", $$"""{"schema":"{{Rating}}","id":"bad-huge","prompt":"a","completion":"b","reward":1e7}""", CorpusTopic.Feedback, ReasonCodes.OutOfRange);

        // ---- schema
        AddJson("missing schema", """{"id":"bad-noschema","prompt":"a"}""", CorpusTopic.Prompts, ReasonCodes.MissingSchema);
        AddJson("schema is a number", """{"schema":1,"id":"bad-schemanum","prompt":"a"}""", CorpusTopic.Prompts, ReasonCodes.WrongType);
        AddJson("unknown schema version", """{"schema":"prefonline.prompt.v2","id":"bad-v2","prompt":"a"}""", CorpusTopic.Prompts, ReasonCodes.UnknownSchema);
        AddJson("rating on the prompts topic", $$"""{"schema":"{{Rating}}","id":"bad-wrongtopic","prompt":"a","completion":"b","reward":1}""", CorpusTopic.Prompts, ReasonCodes.UnexpectedSchema);
        AddJson("unknown field (typo)", $$"""{"schema":"{{Rating}}","id":"bad-typo","prompt":"a","completion":"b","rewrad":1}""", CorpusTopic.Feedback, ReasonCodes.UnknownField);
        AddJson("field of another schema", $$"""{"schema":"{{Prompt}}","id":"bad-foreign","prompt":"a","reward":1}""", CorpusTopic.Prompts, ReasonCodes.UnknownField);
        AddJson("missing prompt", $$"""{"schema":"{{Prompt}}","id":"bad-noprompt"}""", CorpusTopic.Prompts, ReasonCodes.MissingField);
        AddJson("missing rejected", $$"""{"schema":"{{Preference}}","id":"bad-norej","prompt":"a","chosen":"b"}""", CorpusTopic.Feedback, ReasonCodes.MissingField);

        // ---- fields
        AddJson("id is a number", $$"""{"schema":"{{Prompt}}","id":42,"prompt":"a"}""", CorpusTopic.Prompts, ReasonCodes.WrongType);
        AddJson("prompt is null", $$"""{"schema":"{{Prompt}}","id":"bad-nullprompt","prompt":null}""", CorpusTopic.Prompts, ReasonCodes.WrongType);
        AddJson("reward is a numeric string", $$"""{"schema":"{{Rating}}","id":"bad-strnum","prompt":"a","completion":"b","reward":"0.5"}""", CorpusTopic.Feedback, ReasonCodes.WrongType);
        AddJson("chosen is an object", $$"""{"schema":"{{Preference}}","id":"bad-objchosen","prompt":"a","chosen":{"t":"b"},"rejected":"c"}""", CorpusTopic.Feedback, ReasonCodes.WrongType);
        AddJson("meta is a string", $$"""{"schema":"{{Prompt}}","id":"bad-metastr","prompt":"a","meta":"x"}""", CorpusTopic.Prompts, ReasonCodes.WrongType);
        AddJson("empty id", $$"""{"schema":"{{Prompt}}","id":"","prompt":"a"}""", CorpusTopic.Prompts, ReasonCodes.InvalidId);
        AddJson("id with a control character", $$"""{"schema":"{{Prompt}}","id":"bad\u0007bell","prompt":"a"}""", CorpusTopic.Prompts, ReasonCodes.InvalidId);
        AddJson("id too long", $$"""{"schema":"{{Prompt}}","id":"{{new string('i', 300)}}","prompt":"a"}""", CorpusTopic.Prompts, ReasonCodes.IdTooLong);
        AddJson("prompt text too long", $$"""{"schema":"{{Prompt}}","id":"bad-longtext","prompt":"{{new string('t', 40_000)}}"}""", CorpusTopic.Prompts, ReasonCodes.TextTooLong);
        AddJson("meta too large", $$$"""{"schema":"{{{Prompt}}}","id":"bad-bigmeta","prompt":"a","meta":{"blob":"{{{new string('m', 5000)}}}"}}""", CorpusTopic.Prompts, ReasonCodes.MetaTooLarge);
        AddJson("rollout_ids with one id", $$"""{"schema":"{{Preference}}","id":"bad-oneid","prompt":"a","chosen":"b","rejected":"c","rollout_ids":["r-1"]}""", CorpusTopic.Feedback, ReasonCodes.InvalidValue);
        AddJson("rollout_ids naming one rollout twice", $$"""{"schema":"{{Preference}}","id":"bad-sameids","prompt":"a","chosen":"b","rejected":"c","rollout_ids":["r-1","r-1"]}""", CorpusTopic.Feedback, ReasonCodes.InvalidValue);
        AddJson("identical chosen and rejected", $$"""{"schema":"{{Preference}}","id":"bad-identical","prompt":"a","chosen":"same","rejected":"same"}""", CorpusTopic.Feedback, ReasonCodes.IdenticalPair);
        AddJson("duplicate id", $$"""{"schema":"{{Preference}}","id":"good-l-1","prompt":"Hi","chosen":"Hello again!","rejected":"Go away."}""", CorpusTopic.Feedback, ReasonCodes.DuplicateId);
        return list;
    }

    /// <summary>UTF-8 bytes of <paramref name="text"/>.</summary>
    public static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);

    private static byte[] Concat(params byte[][] parts) => parts.SelectMany(p => p).ToArray();

    private static string Nest(int depth) => new string('[', depth) + new string(']', depth) is var arrays ? "{\"a\":" + arrays + "}" : "";

    private static byte[] SeededBytes(int seed, int length, byte firstByte)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        bytes[0] = firstByte;
        return bytes;
    }
}
