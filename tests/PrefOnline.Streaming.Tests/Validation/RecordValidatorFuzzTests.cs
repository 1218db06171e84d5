using System.Diagnostics;
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using Microsoft.FSharp.Core;
using PrefOnline.Streaming.Contracts;
using PrefOnline.Streaming.Tests.Corpus;
using PrefOnline.Streaming.Validation;
using Xunit.Abstractions;

namespace PrefOnline.Streaming.Tests.Validation;

/// <summary>
/// Property-based fuzzing of <see cref="RecordValidator"/> (issue 11): 1,000,000 inputs per run across three
/// generators — random bytes (150,000), random JSON (150,000: token soup and well-formed random records), and
/// mutations of every valid contract example (700,000: byte and bit flips, truncations, deletions, duplicated
/// ranges, splices of two examples, escapes such as <c>\ud800</c> and <c>\udc00</c> inserted into keys and values,
/// values replaced by deep nesting, huge or tiny numbers and odd literals). Each input is validated under the
/// default limits or under lenient ones (unknown fields ignored, depth 256, a rating scale). The properties:
/// validation never throws and never needs its last line of defence (<c>validator-error</c> means an unanticipated
/// exception inside it: a bug); a refusal carries a known reason and a one-line detail; and every accepted record
/// re-serialises with <see cref="RecordSerializer"/> to bytes that validate again to an equal record. Seeded: a run
/// is reproducible, and a failure names the input's bytes.
/// </summary>
public sealed class RecordValidatorFuzzTests(ITestOutputHelper output)
{
    private const int RandomByteInputs = 150_000;
    private const int RandomJsonInputs = 150_000;
    private const int MutationInputs = 700_000;
    private const int InputsPerCase = 16;

    private static readonly RecordValidator Strict = new(new ValidationLimits { DuplicateWindowSize = 0 }, SchemaNames.All);

    private static readonly RecordValidator Lenient = new(
        new ValidationLimits { DuplicateWindowSize = 0, UnknownFields = UnknownFieldPolicy.Ignore, MaxJsonDepth = 256, MaxRecordBytes = 1 << 20 }.WithRatingScale(-10, 10),
        SchemaNames.All);

    /// <summary>Valid examples of every contract: the documented ones (src/PrefOnline.Streaming/README.md, the records' doc comments), the corpus's good records, and serialised records using every optional field.</summary>
    public static IReadOnlyList<byte[]> Examples { get; } = BuildExamples();

    [Fact]
    public void Every_example_is_valid_and_every_schema_has_one()
    {
        var schemas = new HashSet<string>();
        foreach (var example in Examples)
        {
            var result = Strict.Validate(example);
            Assert.True(result.IsValid, $"{Encoding.UTF8.GetString(example)}: {result.Failure}");
            schemas.Add(result.Record.Schema);
        }
        Assert.Equal(SchemaNames.All.Order(), schemas.Order());
    }

    [Fact]
    public void Random_bytes_never_throw_and_never_fault_the_validator()
    {
        var cases =
            from lenient in Gen.Elements(false, true)
            from printable in Gen.Elements(false, true)
            from seed in Gen.Choose(0, int.MaxValue)
            select new FuzzCase($"{(printable ? "JSON-alphabet" : "random")} bytes, seed {seed}", seed, lenient,
                random => RandomBytes(random, random.Next(0, 301), printable));
        Run(nameof(Random_bytes_never_throw_and_never_fault_the_validator), cases, RandomByteInputs, 20240611);
    }

    [Fact]
    public void Random_json_never_throws_and_never_faults_the_validator()
    {
        // Half token soup (JSON's own pieces in any order: mostly malformed), half well-formed random records
        // (random schemas, the contract's field names and odd keys, values of every type and shape), which get
        // past the parser into the schema and field checks.
        var cases =
            from lenient in Gen.Elements(false, true)
            from soup in Gen.Elements(false, true)
            from size in Gen.Choose(1, 48)
            from seed in Gen.Choose(0, int.MaxValue)
            select soup
                ? new FuzzCase($"token soup of up to {size} tokens, seed {seed}", seed, lenient, random => TokenSoup(random, random.Next(1, size + 1)))
                : new FuzzCase($"random record of up to {size} members, seed {seed}", seed, lenient, random => RandomRecord(random, size));
        Run(nameof(Random_json_never_throws_and_never_faults_the_validator), cases, RandomJsonInputs, 20240612);
    }

    [Fact]
    public void Mutations_of_every_contract_example_never_throw_and_accepted_ones_round_trip()
    {
        var mutated = new int[Examples.Count];
        var cases =
            from example in Gen.Choose(0, Examples.Count - 1)
            from lenient in Gen.Elements(false, true)
            from seed in Gen.Choose(0, int.MaxValue)
            select new FuzzCase($"mutations of example {example}, seed {seed}", seed, lenient, random =>
            {
                mutated[example]++;
                return Mutate(Examples[example], Mutations(random));
            });
        var accepted = Run(nameof(Mutations_of_every_contract_example_never_throw_and_accepted_ones_round_trip), cases, MutationInputs, 20240613);
        // Every example was mutated many times, and enough mutants stayed valid for the round-trip half of the property to mean something.
        Assert.True(mutated.Min() >= 10_000, $"mutants per example: {string.Join(", ", mutated)}");
        Assert.True(accepted > MutationInputs / 50, $"only {accepted} of {MutationInputs} mutated examples were accepted");
    }

    /// <summary>
    /// Checks <paramref name="inputs"/> inputs: FsCheck draws <see cref="FuzzCase"/>s under a fixed seed, each expanding into
    /// <see cref="InputsPerCase"/> inputs from a generator seeded by the case (FsCheck's own bookkeeping costs about
    /// as much per case as validating a record, so one input per case would make the harness the bulk of the run).
    /// Returns how many inputs were accepted.
    /// </summary>
    private int Run(string name, Gen<FuzzCase> cases, int inputs, ulong seed)
    {
        Assert.Equal(0, inputs % InputsPerCase);
        var checkedInputs = 0;
        var accepted = 0;
        var reasons = new Dictionary<string, int>();
        var config = Config.QuickThrowOnFailure
            .WithMaxTest(inputs / InputsPerCase)
            .WithQuietOnSuccess(true)
            .WithReplay(FSharpOption<FsCheck.Replay>.Some(new FsCheck.Replay(new Rnd(seed), FSharpOption<int>.None)));
        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        Check.One(config, Prop.ForAll(cases.ToArbitrary(), (FuzzCase fuzzCase) =>
        {
            var random = new Random(fuzzCase.Seed);
            for (var i = 0; i < InputsPerCase; i++)
            {
                var index = i;
                var input = new FuzzInput(() => $"{fuzzCase}, input {index}", fuzzCase.Make(random), fuzzCase.Lenient);
                checkedInputs++;
                var reason = CheckOne(input);
                if (reason is null) accepted++;
                else reasons[reason] = reasons.GetValueOrDefault(reason) + 1;
            }
        }));
        clock.Stop();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime - cpuBefore; // the process's, so other tests running beside this one count too
        Assert.Equal(inputs, checkedInputs);
        output.WriteLine($"{name}: {checkedInputs:N0} inputs ({accepted:N0} accepted) in {clock.Elapsed.TotalSeconds:0.00} s ({cpu.TotalSeconds:0.00} s CPU), {checkedInputs / clock.Elapsed.TotalSeconds:N0} inputs/s");
        output.WriteLine("  refused: " + string.Join(", ", reasons.OrderByDescending(r => r.Value).Select(r => $"{r.Key} {r.Value:N0}")));
        return accepted;
    }

    /// <summary>The property for one input; null when the record was accepted (and round-tripped), else the reason it was refused.</summary>
    private static string? CheckOne(FuzzInput input)
    {
        var validator = input.Lenient ? Lenient : Strict;
        ValidationResult result;
        try
        {
            result = validator.Validate(input.Bytes);
        }
        catch (Exception e)
        {
            throw new Xunit.Sdk.XunitException($"{input}: Validate threw {e}");
        }
        if (!result.IsValid)
        {
            var failure = result.Failure;
            if (failure.Reason == ReasonCodes.ValidatorError) throw new Xunit.Sdk.XunitException($"{input}: {failure.Detail}\n{failure.Exception}");
            if (!ReasonCodes.All.Contains(failure.Reason)) throw new Xunit.Sdk.XunitException($"{input}: unknown reason {failure.Reason}");
            if (string.IsNullOrWhiteSpace(failure.Detail) || failure.Detail.Contains('\n') || failure.Detail.Contains('\r'))
                throw new Xunit.Sdk.XunitException($"{input}: the detail is not one line: '{failure.Detail}'");
            return failure.Reason;
        }
        byte[] again;
        try
        {
            again = RecordSerializer.Serialize(result.Record);
        }
        catch (Exception e)
        {
            throw new Xunit.Sdk.XunitException($"{input}: accepted as {result.Record}, but it does not serialise: {e}");
        }
        var second = validator.Validate(again);
        if (!second.IsValid) throw new Xunit.Sdk.XunitException($"{input}: accepted, re-serialised as {Escape(again)}, then refused: {second.Failure}");
        if (!SameRecord(result.Record, second.Record)) throw new Xunit.Sdk.XunitException($"{input}: accepted as {result.Record}, re-serialised and re-validated as {second.Record}");
        return null;
    }

    private static bool SameRecord(StreamRecord a, StreamRecord b) => (a, b) switch
    {
        (PromptRecord x, PromptRecord y) => x.Id == y.Id && x.Prompt == y.Prompt && x.MetaJson == y.MetaJson,
        (PreferenceRecord x, PreferenceRecord y) => x == y,
        (RatingRecord x, RatingRecord y) => x == y,
        (RolloutRecord x, RolloutRecord y) => x == y,
        (PolicyEvent x, PolicyEvent y) => x.Kind == y.Kind && x.Version == y.Version && x.FromVersion == y.FromVersion && x.Reason == y.Reason && x.Uri == y.Uri
                                          && x.Sha256 == y.Sha256 && x.Created == y.Created && x.Created.Offset == y.Created.Offset
                                          && x.Metrics.Count == y.Metrics.Count && x.Metrics.All(m => y.Metrics.TryGetValue(m.Key, out var v) && v.Equals(m.Value))
                                          && x.Files.Count == y.Files.Count && x.Files.All(f => y.Files.TryGetValue(f.Key, out var h) && h == f.Value),
        _ => false,
    };

    // ---- inputs ------------------------------------------------------------------------------------

    /// <summary>What FsCheck draws: a generator's settings and the seed its <see cref="InputsPerCase"/> inputs come from.</summary>
    public sealed record FuzzCase(string Description, int Seed, bool Lenient, Func<Random, byte[]> Make)
    {
        public override string ToString() => $"{Description}, {(Lenient ? "lenient" : "default")} limits";
    }

    /// <summary>One fuzz input; printed (how it was made, then its bytes escaped) when a property fails, so the failure can be replayed by hand.</summary>
    /// <param name="Origin">Describes the input only when asked: formatting a million descriptions would cost more than validating.</param>
    public sealed record FuzzInput(Func<string> Origin, byte[] Bytes, bool Lenient)
    {
        public override string ToString() => $"[{Origin()}] {Escape(Bytes)}";
    }

    public enum MutationKind
    {
        SetByte, FlipBit, Truncate, DeleteRange, DuplicateRange, InsertPayload, InsertEscapeAfterQuote, ReplaceValue, NestValue, Splice,
    }

    /// <summary>One mutation; A, B, C are raw draws each kind maps onto positions, lengths and payload choices.</summary>
    public readonly record struct Mutation(MutationKind Kind, int A, int B, int C)
    {
        public override string ToString() => $"{Kind}({A},{B},{C})";
    }

    /// <summary>1 to 6 mutations, most often one (so many mutants stay valid and exercise the round trip).</summary>
    private static Mutation[] Mutations(Random random)
    {
        var roll = random.Next(7);
        var count = roll < 4 ? 1 : roll < 6 ? 2 : random.Next(3, 7);
        var mutations = new Mutation[count];
        for (var i = 0; i < count; i++) mutations[i] = new Mutation(MutationKinds[random.Next(MutationKinds.Length)], random.Next(), random.Next(), random.Next());
        return mutations;
    }

    private static readonly MutationKind[] MutationKinds = Enum.GetValues<MutationKind>();

    /// <summary>A well-formed JSON object: usually a known schema, then members with contract or odd keys and values of any shape.</summary>
    private static byte[] RandomRecord(Random random, int maxMembers)
    {
        var text = new StringBuilder("{");
        if (random.Next(5) > 0) text.Append("\"schema\":").Append(Schemas[random.Next(Schemas.Length)]);
        var members = random.Next(0, Math.Min(maxMembers, 12) + 1);
        for (var i = 0; i < members; i++)
        {
            if (text.Length > 1) text.Append(',');
            text.Append(random.Next(10) > 0 ? FieldKeys[random.Next(FieldKeys.Length)] : OddKeys[random.Next(OddKeys.Length)]).Append(':');
            AppendValue(text, random, depth: 1);
        }
        return Encoding.UTF8.GetBytes(text.Append('}').ToString());
    }

    private static void AppendValue(StringBuilder text, Random random, int depth)
    {
        switch (random.Next(depth > 20 ? 2 : 4))
        {
            case 0:
            case 1:
                text.Append(Encoding.UTF8.GetString(Values[random.Next(Values.Length)]));
                return;
            case 2:
            {
                text.Append('[');
                for (var i = random.Next(0, 4); i > 0; i--)
                {
                    AppendValue(text, random, depth + 1);
                    if (i > 1) text.Append(',');
                }
                text.Append(']');
                return;
            }
            default:
            {
                text.Append('{');
                for (var i = random.Next(0, 4); i > 0; i--)
                {
                    text.Append(random.Next(10) > 0 ? FieldKeys[random.Next(FieldKeys.Length)] : OddKeys[random.Next(OddKeys.Length)]).Append(':');
                    AppendValue(text, random, depth + 1);
                    if (i > 1) text.Append(',');
                }
                text.Append('}');
                return;
            }
        }
    }

    private static readonly string[] Schemas = [.. SchemaNames.All.Select(s => $"\"{s}\""), "\"prefonline.rating.v2\"", "\"\"", "1", "null"];

    private static readonly string[] FieldKeys =
    [
        .. new[] { "schema", "id", "prompt", "meta", "chosen", "rejected", "rollout_ids", "completion", "reward", "rollout_id", "prompt_id", "policy_version", "logprob",
            "kind", "version", "from_version", "reason", "uri", "sha256", "created", "metrics", "finish_reason" }.Select(k => $"\"{k}\""),
    ];

    private static readonly string[] OddKeys = ["\"\"", "\"x\"", "\"\\u0069d\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud83d\\ude00\"", "\"id\\u0000\"", "\"é\"", "\"rewrad\"", "\"\\\"\""];

    private static byte[] TokenSoup(Random random, int count)
    {
        var text = new StringBuilder();
        for (var i = 0; i < count; i++) text.Append(Tokens[random.Next(Tokens.Length)]);
        return Encoding.UTF8.GetBytes(text.ToString());
    }

    private static byte[] Mutate(byte[] example, IEnumerable<Mutation> mutations)
    {
        var bytes = new List<byte>(example);
        foreach (var m in mutations)
        {
            int At(int draw) => bytes.Count == 0 ? 0 : draw % (bytes.Count + 1);
            switch (m.Kind)
            {
                case MutationKind.SetByte when bytes.Count > 0:
                    bytes[m.A % bytes.Count] = (byte)m.B;
                    break;
                case MutationKind.FlipBit when bytes.Count > 0:
                    bytes[m.A % bytes.Count] ^= (byte)(1 << (m.B % 8));
                    break;
                case MutationKind.Truncate:
                    bytes.RemoveRange(At(m.A), bytes.Count - At(m.A));
                    break;
                case MutationKind.DeleteRange:
                {
                    var start = At(m.A);
                    bytes.RemoveRange(start, Math.Min(bytes.Count - start, 1 + m.B % 16));
                    break;
                }
                case MutationKind.DuplicateRange:
                {
                    var start = At(m.A);
                    var range = bytes.GetRange(start, Math.Min(bytes.Count - start, 1 + m.B % 64));
                    bytes.InsertRange(At(m.C), range);
                    break;
                }
                case MutationKind.InsertPayload:
                    bytes.InsertRange(At(m.A), Payloads[m.B % Payloads.Length]);
                    break;
                case MutationKind.InsertEscapeAfterQuote:
                {
                    // Right after a quote: the first character of a key or a string value (or just after one).
                    var quotes = Positions(bytes, (byte)'"');
                    var at = quotes.Count == 0 ? At(m.A) : quotes[m.A % quotes.Count] + 1;
                    bytes.InsertRange(at, Encoding.UTF8.GetBytes(Escapes[m.B % Escapes.Length]));
                    break;
                }
                case MutationKind.ReplaceValue:
                {
                    var value = ValueAfterColon(bytes, m.A);
                    if (value is not { } v) break;
                    bytes.RemoveRange(v.Start, v.Length);
                    bytes.InsertRange(v.Start, Values[m.B % Values.Length]);
                    break;
                }
                case MutationKind.NestValue:
                {
                    var value = ValueAfterColon(bytes, m.A);
                    if (value is not { } v) break;
                    var depth = 1 + m.B % 300;
                    var (open, close) = (m.C % 2 == 0) ? ("[", "]") : ("{\"n\":", "}");
                    bytes.InsertRange(v.Start + v.Length, Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat(close, depth))));
                    bytes.InsertRange(v.Start, Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat(open, depth))));
                    break;
                }
                case MutationKind.Splice:
                {
                    var other = Examples[m.B % Examples.Count];
                    var cut = At(m.A);
                    bytes.RemoveRange(cut, bytes.Count - cut);
                    bytes.AddRange(other.AsSpan(m.C % (other.Length + 1)).ToArray());
                    break;
                }
            }
        }
        return bytes.ToArray();
    }

    private static List<int> Positions(List<byte> bytes, byte value)
    {
        var positions = new List<int>();
        for (var i = 0; i < bytes.Count; i++)
        {
            if (bytes[i] == value) positions.Add(i);
        }
        return positions;
    }

    /// <summary>The value after the <paramref name="draw"/>-th colon (mod their count): a string, a number or a literal up to the next delimiter; containers are left whole.</summary>
    private static (int Start, int Length)? ValueAfterColon(List<byte> bytes, int draw)
    {
        var colons = Positions(bytes, (byte)':');
        if (colons.Count == 0) return null;
        var start = colons[draw % colons.Count] + 1;
        while (start < bytes.Count && bytes[start] == (byte)' ') start++;
        if (start >= bytes.Count) return null;
        var end = start;
        if (bytes[start] == (byte)'"')
        {
            end++;
            while (end < bytes.Count && bytes[end] != (byte)'"') end += bytes[end] == (byte)'\\' ? 2 : 1;
            end = Math.Min(end + 1, bytes.Count);
        }
        else if (bytes[start] is (byte)'{' or (byte)'[')
        {
            var depth = 0;
            var inString = false;
            for (; end < bytes.Count; end++)
            {
                var b = bytes[end];
                if (inString)
                {
                    if (b == (byte)'\\') end++;
                    else if (b == (byte)'"') inString = false;
                    continue;
                }
                if (b == (byte)'"') inString = true;
                else if (b is (byte)'{' or (byte)'[') depth++;
                else if (b is (byte)'}' or (byte)']' && --depth == 0)
                {
                    end++;
                    break;
                }
            }
        }
        else
        {
            while (end < bytes.Count && bytes[end] is not ((byte)',' or (byte)'}' or (byte)']')) end++;
        }
        return (start, Math.Min(end, bytes.Count) - start);
    }

    private static byte[] RandomBytes(Random random, int length, bool printable)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        if (printable)
        {
            // Mostly JSON's own characters, so inputs get past the byte checks into the parser.
            const string alphabet = "{}[]\":,\\ 0123456789.-+eEtrufalsn\"\"::uUdD";
            for (var i = 0; i < bytes.Length; i++) bytes[i] = (byte)alphabet[bytes[i] % alphabet.Length];
        }
        return bytes;
    }

    private static readonly string[] Escapes =
    [
        @"\ud800", @"\udc00", @"\uDBFF", @"\uDFFF", @"\ud800\ud800", @"\udc00\ud800", @"\ud83d\ude00", @"\ud83d", @"\u0000", @"\u001f", @"\u007f",
        @"\u0085", @"\u2028", @"\ufeff", @"\uffff", @"\u0041", @"\u0073", @"\u0069", @"\""", @"\\", @"\/", @"\b", @"\n", @"\t", @"\u", @"\u12", @"\x41", @"\",
    ];

    private static readonly byte[][] Payloads =
    [
        .. Escapes.Select(Encoding.UTF8.GetBytes),
        .. new[]
        {
            "\"", "{", "}", "[", "]", ":", ",", " ", "\t", "\n", "/*c*/", "//", "\uFEFF", "NaN", "-Infinity", "1e999", "-0", "00", ".5", "1.", "+1",
            ",\"extra\":1", ",\"id\":\"dup\"", ",\"schema\":\"prefonline.prompt.v1\"", "\"\":\"\"", "é", "😀", "\u200B",
        }.Select(Encoding.UTF8.GetBytes),
        [0x00], [0x1F], [0x7F], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xFF], [0xE2, 0x82], [0xEF, 0xBB, 0xBF],
    ];

    private static readonly byte[][] Values = new[]
    {
        // numbers: huge, tiny, beyond long and double, negative zero, exponents
        "1e999", "-1e999", "1e-999", "4.9e-324", "1.7976931348623157e308", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
        "-9223372036854775809", "123456789012345678901234567890", "-0", "0.0", "-0.0", "1E+2", "1e2", "1.5", "-1.5e-3", "10000000", "1e6", "-1e6", "1000001",
        "1e400", "0.1e1", "5", "-5", "11", "-11", "10", "-10", "2", "1", "0",
        // literals and other types
        "null", "true", "false", "NaN", "Infinity", "\"NaN\"", "\"-Infinity\"", "\"inf\"", "\"\"", "\" \"", "\"x\"", "[]", "{}", "[\"r-1\",\"r-2\"]",
        "[\"a\",\"a\"]", "[\"a\",\"b\",\"c\",\"d\"]", "[1,2]", "{\"a\":1}", "{\"a\":1,\"a\":2}", "{\"kl\":1e999}", "{\"\":1}",
        // strings that matter to particular fields
        "\"rollback\"", "\"publish\"", "\"eos\"", "\"length\"", "\"stop\"", "\"file:///tmp/x\"", "\"http://h/v/policy.safetensors\"", "\"/relative\"",
        "\"2024-05-01T12:00:00.123456789Z\"", "\"2024-05-01T12:00:00+14:00\"", "\"0001-01-01T00:00:00+01:00\"", "\"9999-12-31T23:59:59-01:00\"", "\"2024-02-30T00:00:00Z\"",
        "\"" + new string('a', 64) + "\"", "\"" + new string('F', 64) + "\"", "\"" + new string('g', 64) + "\"", "\"prefonline.rating.v1\"", "\"prefonline.policy.v1\"",
        "\"prefonline.prompt.v2\"", "\"id\\u0007\"", "\"\\ud800\"", "\"\\udc00x\"", "\"\\ud83d\\ude00\"", "\"a\\u0000b\"", "\"" + new string('i', 300) + "\"",
    }.Select(Encoding.UTF8.GetBytes).ToArray();

    private static readonly string[] Tokens =
    [
        "{", "}", "[", "]", ":", ",", " ", "\n", "\"", "\"schema\"", "\"id\"", "\"prompt\"", "\"chosen\"", "\"rejected\"", "\"completion\"", "\"reward\"",
        "\"rollout_id\"", "\"rollout_ids\"", "\"prompt_id\"", "\"policy_version\"", "\"logprob\"", "\"finish_reason\"", "\"meta\"", "\"kind\"", "\"version\"",
        "\"from_version\"", "\"reason\"", "\"uri\"", "\"sha256\"", "\"created\"", "\"metrics\"", "\"files\"", "\"vocab.json\"", "\"prefonline.prompt.v1\"", "\"prefonline.preference.v1\"",
        "\"prefonline.rating.v1\"", "\"prefonline.rollout.v1\"", "\"prefonline.policy.v1\"", "\"x\"", "\"y\"", "\"\"", "0", "1", "-1", "0.5", "-2.5",
        "1e999", "NaN", "true", "false", "null", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\":", "\"\\udc00\":", "\"\\u0069d\"", "\"file:///x\"",
        "\"" + new string('a', 64) + "\"", "\"2024-05-01T12:00:00Z\"", "\"rollback\"", "\"eos\"", "\\", "é", "😀",
    ];

    private static IReadOnlyList<byte[]> BuildExamples()
    {
        var sha = "3f" + new string('a', 62);
        var created = new DateTimeOffset(2024, 5, 1, 12, 0, 0, 123, TimeSpan.Zero);
        var documented = new[]
        {
            """{"schema":"prefonline.prompt.v1","id":"p-42","prompt":"Tell me a joke.","meta":{"user":"u7"}}""",
            """{"schema":"prefonline.rating.v1","id":"l-10","prompt":"Hi","completion":"Hello!","reward":0.8,"rollout_id":"r-1"}""",
            """{"schema":"prefonline.preference.v1","id":"l-11","prompt":"Hi","chosen":"Hello!","rejected":"Go away.","rollout_ids":["r-1","r-2"]}""",
            """{"schema":"prefonline.rollout.v1","id":"r-1","prompt_id":"p-42","prompt":"Tell me a joke.","completion":"Why did...","policy_version":12,"logprob":-14.25,"finish_reason":"eos"}""",
            $$$"""{"schema":"prefonline.policy.v1","kind":"publish","version":12,"uri":"file:///ckpt/v000012","sha256":"{{{sha}}}","created":"2024-05-01T12:00:00.000Z","metrics":{"reward":0.61,"kl":0.8}}""",
            $$$"""{"schema":"prefonline.policy.v1","kind":"rollback","version":11,"from_version":12,"reason":"kl budget exceeded","uri":"file:///ckpt/v000011","sha256":"{{{sha}}}","created":"2024-05-01T12:00:00.000Z","metrics":{}}""",
            $$$"""{"schema":"prefonline.policy.v1","kind":"publish","version":12,"uri":"http://learner:8081/policy/14/policy.safetensors","sha256":"{{{sha}}}","created":"2024-05-01T12:00:00.000Z","metrics":{},"files":{"policy.safetensors":"{{{sha}}}","tokenizer_config.json":"{{{sha}}}"}}""",
        }.Select(Encoding.UTF8.GetBytes);
        var serialised = new StreamRecord[]
        {
            new PromptRecord("p-é😀", "", """{"a":[1,{"b":null}],"c":"\u00e9"}"""),
            new PreferenceRecord("l-1", "line\nbreak \"quoted\"", "a\tb", "😀", new PreferenceRolloutIds("r-a", "r-b")),
            new RatingRecord("l-2", "p", "c", -1.5e-3),
            new RolloutRecord("r-2", "p-1", "p", "c", long.MaxValue, -0.0, "length"),
            new RolloutRecord("r-3", "p-1", "", "", 0, -1e300, "stop"),
            PolicyEvent.Publish(1, "http://learner:8080/policy/1/policy.safetensors", sha, created, new Dictionary<string, double> { ["reward"] = -1e-7, ["é"] = 3 }),
            PolicyEvent.Rollback(long.MaxValue, 1, "drift\u2028", "file:///v1", sha, created.ToOffset(TimeSpan.FromHours(2)), new Dictionary<string, double>()),
            PolicyEvent.Publish(2, "http://learner:8081/policy/2/policy.safetensors", sha, created, new Dictionary<string, double>(),
                new Dictionary<string, string> { ["policy.safetensors"] = sha, ["tokenizer_config.json"] = new string('0', 64), ["merges.txt"] = "A" + new string('b', 63) }),
        }.Select(RecordSerializer.Serialize);
        return [.. documented, .. BadRecordCorpus.Good.Select(g => g.Bytes), .. serialised];
    }

    private static string Escape(byte[] bytes)
    {
        var text = new StringBuilder(bytes.Length + 16);
        foreach (var b in bytes.Length <= 2048 ? bytes : bytes[..2048])
        {
            if (b is >= 0x20 and < 0x7F and not (byte)'\\') text.Append((char)b);
            else text.Append("\\x").Append(b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
        }
        return bytes.Length <= 2048 ? text.ToString() : $"{text}… ({bytes.Length} bytes)";
    }
}
