using System.Text;
using PrefOnline.Streaming.Contracts;
using PrefOnline.Streaming.Tests.Corpus;
using PrefOnline.Streaming.Transport;
using PrefOnline.Streaming.Validation;

namespace PrefOnline.Streaming.Tests.Validation;

public sealed class RecordValidatorTests
{
    private static RecordValidator PromptValidator(ValidationLimits? limits = null) => new(limits ?? new ValidationLimits(), SchemaNames.PromptTopic);

    private static RecordValidator FeedbackValidator(ValidationLimits? limits = null) => new(limits ?? new ValidationLimits(), SchemaNames.FeedbackTopic);

    private static ValidationResult Validate(RecordValidator validator, string json) => validator.Validate(Encoding.UTF8.GetBytes(json));

    public static TheoryData<BadRecord> BadRecords()
    {
        var data = new TheoryData<BadRecord>();
        foreach (var bad in BadRecordCorpus.Bad) data.Add(bad);
        return data;
    }

    [Fact]
    public void The_corpus_holds_at_least_25_kinds_of_bad_records_covering_every_reason_code()
    {
        Assert.True(BadRecordCorpus.Bad.Count >= 25, $"only {BadRecordCorpus.Bad.Count} bad records");
        var covered = BadRecordCorpus.Bad.Select(b => b.Reason).ToHashSet();
        // validator-error has no input by design (one would be a validator bug): see A_validator_fault_is_refused_as_validator_error.
        var uncovered = ReasonCodes.All.Where(code => code != ReasonCodes.ValidatorError && !covered.Contains(code)).ToArray();
        Assert.True(uncovered.Length == 0, "reason codes without a corpus entry: " + string.Join(", ", uncovered));
        Assert.Equal(BadRecordCorpus.Bad.Count, BadRecordCorpus.Bad.Select(b => b.Name).Distinct().Count());
    }

    [Fact]
    public void The_readme_states_the_corpus_size_exactly()
    {
        var readme = File.ReadAllText(Path.Combine(RepositoryRoot(), "README.md"));
        var match = System.Text.RegularExpressions.Regex.Match(readme, @"a corpus of (\d+) kinds of bad\s+records");
        Assert.True(match.Success, "README.md no longer says how many kinds of bad records the corpus holds");
        Assert.Equal(BadRecordCorpus.Bad.Count, int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public void The_contracts_readme_lists_every_reason_code()
    {
        var readme = File.ReadAllText(Path.Combine(RepositoryRoot(), "src", "PrefOnline.Streaming", "README.md"));
        var missing = ReasonCodes.All.Where(code => !readme.Contains($"`{code}`", StringComparison.Ordinal)).ToArray();
        Assert.True(missing.Length == 0, "src/PrefOnline.Streaming/README.md lacks: " + string.Join(", ", missing));
    }

    public static TheoryData<string, string> SurrogateKeys() => new()
    {
        { "prompts", """{"\udc00":0}""" },
        { "feedback", """{"\udc00":0}""" },
        { "rollouts", """{"\udc00":0}""" },
        { "policy", """{"\udc00":0}""" },
        { "feedback", """{"\ud800":0}""" },
        { "prompts", """{"schema":"prefonline.prompt.v1","id":"k-1","prompt":"a","\ud800\u0041":1}""" },
        { "prompts", """{"schema":"prefonline.prompt.v1","\uDC00id":"k-2","prompt":"a"}""" },
        { "feedback", """{"\ud800\ud800":0,"schema":"prefonline.rating.v1"}""" },
        { "policy", """{"schema":"prefonline.policy.v1","version":1,"uri":"file:///x","sha256":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","created":"2024-05-01T12:00:00Z","metrics":{"\udc00":1}}""" },
    };

    [Theory]
    [MemberData(nameof(SurrogateKeys))]
    public void A_lone_surrogate_escape_in_a_key_is_refused_as_lone_surrogate_on_every_topic(string topic, string json)
    {
        var schemas = topic switch
        {
            "prompts" => SchemaNames.PromptTopic,
            "feedback" => SchemaNames.FeedbackTopic,
            "rollouts" => SchemaNames.RolloutTopic,
            _ => SchemaNames.PolicyTopic,
        };
        foreach (var unknown in new[] { UnknownFieldPolicy.Reject, UnknownFieldPolicy.Ignore })
        {
            var result = Validate(new RecordValidator(new ValidationLimits { UnknownFields = unknown }, schemas), json);
            Assert.False(result.IsValid);
            Assert.Equal(ReasonCodes.LoneSurrogate, result.Failure!.Reason);
            Assert.Contains("key", result.Failure.Detail);
        }
    }

    [Fact]
    public void Escaped_keys_that_decode_to_proper_text_are_matched_by_their_decoded_name()
    {
        var prompt = Assert.IsType<PromptRecord>(Validate(PromptValidator(), """{"\u0073chema":"prefonline.prompt.v1","i\u0064":"e-1","prompt":"a"}""").Record);
        Assert.Equal("e-1", prompt.Id);
        Assert.Equal(ReasonCodes.UnknownField, Validate(PromptValidator(), """{"schema":"prefonline.prompt.v1","id":"e-2","prompt":"a","\ud83d\ude00":1}""").Failure!.Reason);
        var lenient = PromptValidator(new ValidationLimits { UnknownFields = UnknownFieldPolicy.Ignore });
        Assert.True(Validate(lenient, """{"schema":"prefonline.prompt.v1","id":"e-3","prompt":"a","\ud83d\ude00":1}""").IsValid);
        Assert.Equal(ReasonCodes.DuplicateKey, Validate(lenient, """{"schema":"prefonline.prompt.v1","id":"e-4","prompt":"a","\ud83d\ude00":1,"😀":2}""").Failure!.Reason);
    }

    [Fact]
    public void A_validator_fault_is_refused_as_validator_error_and_never_thrown()
    {
        // The duplicate window's clock stands in for any bug inside validation: it throws while a valid record is checked.
        var validator = new RecordValidator(new ValidationLimits(), SchemaNames.PromptTopic, new FaultyClock());
        var result = Validate(validator, """{"schema":"prefonline.prompt.v1","id":"p-1","prompt":"a"}""");
        Assert.False(result.IsValid);
        Assert.Equal(ReasonCodes.ValidatorError, result.Failure!.Reason);
        Assert.Contains(nameof(InvalidOperationException), result.Failure.Detail);
        Assert.IsType<InvalidOperationException>(result.Failure.Exception);
        // The next record is judged normally: the per-thread parse state was reset.
        Assert.Equal(ReasonCodes.InvalidJson, Validate(validator, "{").Failure!.Reason);
    }

    [Fact]
    public void Ratings_outside_the_configured_rating_scale_are_out_of_range_and_its_ends_are_inside()
    {
        string Rating(string id, string reward) => $$"""{"schema":"prefonline.rating.v1","id":"{{id}}","prompt":"p","completion":"c","reward":{{reward}}}""";
        var scaled = FeedbackValidator(new ValidationLimits().WithRatingScale(1, 5));
        Assert.True(Validate(scaled, Rating("s-1", "1")).IsValid);
        Assert.True(Validate(scaled, Rating("s-2", "5")).IsValid);
        Assert.True(Validate(scaled, Rating("s-3", "3.25")).IsValid);
        var above = Validate(scaled, Rating("s-4", "5.000001")).Failure!;
        Assert.Equal(ReasonCodes.OutOfRange, above.Reason);
        Assert.Contains("rating scale [1, 5]", above.Detail);
        Assert.Equal(ReasonCodes.OutOfRange, Validate(scaled, Rating("s-5", "0")).Failure!.Reason);
        Assert.Equal(ReasonCodes.OutOfRange, Validate(scaled, Rating("s-6", "-1e5")).Failure!.Reason);
        // Preferences carry no rating; without a scale only |reward| <= MaxAbsReward applies.
        Assert.True(Validate(scaled, """{"schema":"prefonline.preference.v1","id":"s-7","prompt":"p","chosen":"a","rejected":"b"}""").IsValid);
        Assert.True(Validate(FeedbackValidator(), Rating("s-8", "-1e5")).IsValid);
        Assert.Null(new ValidationLimits().GetRatingScale());
    }

    [Fact]
    public void An_invalid_rating_scale_is_refused_at_construction()
    {
        Assert.Contains(new ValidationLimits().WithRatingScale(5, 5).Problems(), p => p.Contains("rating scale"));
        Assert.Contains(new ValidationLimits().WithRatingScale(0, double.PositiveInfinity).Problems(), p => p.Contains("rating scale"));
        Assert.Throws<ArgumentException>(() => FeedbackValidator(new ValidationLimits().WithRatingScale(double.NaN, 1)));
        var limits = new ValidationLimits { MaxIdLength = 7 }.WithRatingScale(-2, 2);
        Assert.Equal((7, (-2.0, 2.0)), (limits.MaxIdLength, limits.GetRatingScale()!.Value));
        Assert.Equal(limits.GetRatingScale(), limits.Clone().GetRatingScale());
    }

    [Theory]
    [MemberData(nameof(BadRecords))]
    public void Every_bad_record_is_refused_with_its_reason(BadRecord bad)
    {
        // Fresh validators per record, fed the good records first (the duplicate-id entry needs them).
        var validators = new Dictionary<CorpusTopic, RecordValidator> { [CorpusTopic.Prompts] = PromptValidator(), [CorpusTopic.Feedback] = FeedbackValidator() };
        foreach (var good in BadRecordCorpus.Good) Assert.True(validators[good.Topic].Validate(good.Bytes).IsValid);

        var result = validators[bad.Topic].Validate(bad.Bytes);

        Assert.False(result.IsValid, $"{bad.Name} was accepted");
        Assert.Equal(bad.Reason, result.Failure!.Reason);
        Assert.False(string.IsNullOrWhiteSpace(result.Failure.Detail));
        Assert.DoesNotContain('\n', result.Failure.Detail);
        Assert.True(result.Failure.Detail.Length < 600, "details stay one short line");
    }

    [Fact]
    public void Every_good_record_is_accepted()
    {
        var validators = new Dictionary<CorpusTopic, RecordValidator> { [CorpusTopic.Prompts] = PromptValidator(), [CorpusTopic.Feedback] = FeedbackValidator() };
        foreach (var good in BadRecordCorpus.Good)
        {
            var result = validators[good.Topic].Validate(good.Bytes);
            Assert.True(result.IsValid, $"{good.Name}: {result.Failure}");
        }
    }

    [Fact]
    public void A_prompt_is_parsed_with_unicode_escapes_and_raw_meta()
    {
        var result = Validate(PromptValidator(), """{"schema":"prefonline.prompt.v1","id":"p-1","prompt":"caf\u00e9 \ud83d\ude00","meta":{"user":"u7","n":[1,2]}}""");
        var prompt = Assert.IsType<PromptRecord>(result.Record);
        Assert.Equal("p-1", prompt.Id);
        Assert.Equal("café 😀", prompt.Prompt);
        Assert.Equal("""{"user":"u7","n":[1,2]}""", prompt.MetaJson);
    }

    [Fact]
    public void A_preference_and_a_rating_are_parsed_on_the_feedback_topic()
    {
        var validator = FeedbackValidator();
        var preference = Assert.IsType<PreferenceRecord>(Validate(validator, """{"schema":"prefonline.preference.v1","id":"l-1","prompt":"p","chosen":"a","rejected":"b","rollout_ids":["r-1","r-2"]}""").Record);
        Assert.Equal(new PreferenceRolloutIds("r-1", "r-2"), preference.RolloutIds);
        var rating = Assert.IsType<RatingRecord>(Validate(validator, """{"schema":"prefonline.rating.v1","id":"l-2","prompt":"p","completion":"c","reward":-0.25,"rollout_id":null}""").Record);
        Assert.Equal(-0.25, rating.Reward);
        Assert.Null(rating.RolloutId);
    }

    [Fact]
    public void A_rollout_is_parsed_and_its_logprob_and_version_are_range_checked()
    {
        var validator = new RecordValidator(new ValidationLimits(), SchemaNames.RolloutTopic);
        var rollout = Assert.IsType<RolloutRecord>(Validate(validator, """{"schema":"prefonline.rollout.v1","id":"r-1","prompt_id":"p-1","prompt":"p","completion":"c","policy_version":7,"logprob":-12.5}""").Record);
        Assert.Equal(7, rollout.PolicyVersion);
        Assert.Equal(-12.5, rollout.Logprob);

        Assert.Equal(ReasonCodes.OutOfRange, Validate(validator, """{"schema":"prefonline.rollout.v1","id":"r-2","prompt_id":"p-1","prompt":"p","completion":"c","policy_version":7,"logprob":0.5}""").Failure!.Reason);
        Assert.Equal(ReasonCodes.OutOfRange, Validate(validator, """{"schema":"prefonline.rollout.v1","id":"r-3","prompt_id":"p-1","prompt":"p","completion":"c","policy_version":-1,"logprob":-1}""").Failure!.Reason);
        Assert.Equal(ReasonCodes.WrongType, Validate(validator, """{"schema":"prefonline.rollout.v1","id":"r-4","prompt_id":"p-1","prompt":"p","completion":"c","policy_version":1.5,"logprob":-1}""").Failure!.Reason);
        Assert.Equal(ReasonCodes.MissingField, Validate(validator, """{"schema":"prefonline.rollout.v1","id":"r-5","prompt":"p","completion":"c","policy_version":1,"logprob":-1}""").Failure!.Reason);
    }

    [Fact]
    public void A_rollouts_optional_finish_reason_says_whether_the_policy_chose_to_end()
    {
        var validator = new RecordValidator(new ValidationLimits(), SchemaNames.RolloutTopic);
        RolloutRecord Parse(string id, string finish) =>
            Assert.IsType<RolloutRecord>(Validate(validator, $$"""{"schema":"prefonline.rollout.v1","id":"{{id}}","prompt_id":"p-1","prompt":"p","completion":"c","policy_version":1,"logprob":-1{{finish}}}""").Record);
        Assert.True(Parse("f-1", "").EndedWithEndOfSequence);                          // older producers: eos
        Assert.True(Parse("f-2", ""","finish_reason":"eos" """.TrimEnd()).EndedWithEndOfSequence);
        Assert.False(Parse("f-3", ""","finish_reason":"length" """.TrimEnd()).EndedWithEndOfSequence);
        Assert.False(Parse("f-4", ""","finish_reason":"stop" """.TrimEnd()).EndedWithEndOfSequence);
        Assert.Equal(ReasonCodes.InvalidValue, Validate(validator, """{"schema":"prefonline.rollout.v1","id":"f-5","prompt_id":"p-1","prompt":"p","completion":"c","policy_version":1,"logprob":-1,"finish_reason":"tired"}""").Failure!.Reason);
        Assert.Equal(ReasonCodes.WrongType, Validate(validator, """{"schema":"prefonline.rollout.v1","id":"f-6","prompt_id":"p-1","prompt":"p","completion":"c","policy_version":1,"logprob":-1,"finish_reason":3}""").Failure!.Reason);
    }

    [Fact]
    public void Policy_events_publish_and_rollback_are_parsed_and_checked()
    {
        var validator = new RecordValidator(new ValidationLimits(), SchemaNames.PolicyTopic);
        var sha = new string('a', 64);
        var publish = Assert.IsType<PolicyEvent>(Validate(validator, $$$"""{"schema":"prefonline.policy.v1","version":12,"uri":"file:///ckpt/v000012","sha256":"{{{sha}}}","created":"2024-05-01T12:00:00.5Z","metrics":{"reward":0.6,"kl":1e-3}}""").Record);
        Assert.Equal(PolicyEventKind.Publish, publish.Kind);
        Assert.Equal(12, publish.Version);
        Assert.Equal(0.001, publish.Metrics["kl"]);
        Assert.Equal(new DateTimeOffset(2024, 5, 1, 12, 0, 0, 500, TimeSpan.Zero), publish.Created);

        var rollback = Assert.IsType<PolicyEvent>(Validate(validator, $$$"""{"schema":"prefonline.policy.v1","kind":"rollback","version":11,"from_version":12,"reason":"kl budget","uri":"file:///ckpt/v000011","sha256":"{{{sha}}}","created":"2024-05-01T12:00:00+02:00","metrics":{}}""").Record);
        Assert.Equal(PolicyEventKind.Rollback, rollback.Kind);
        Assert.Equal(12, rollback.FromVersion);
        Assert.Equal("kl budget", rollback.Reason);

        string Policy(string extra) => $$$"""{"schema":"prefonline.policy.v1",{{{extra}}}"uri":"file:///x","sha256":"{{{sha}}}","created":"2024-05-01T12:00:00Z","metrics":{}}""";
        Assert.Equal(ReasonCodes.OutOfRange, Validate(validator, Policy("\"version\":11,\"kind\":\"rollback\",\"from_version\":10,\"reason\":\"r\",")).Failure!.Reason);
        Assert.Equal(ReasonCodes.MissingField, Validate(validator, Policy("\"kind\":\"rollback\",\"version\":11,\"reason\":\"r\",")).Failure!.Reason);
        Assert.Equal(ReasonCodes.UnknownField, Validate(validator, Policy("\"version\":11,\"from_version\":12,")).Failure!.Reason);
        Assert.Equal(ReasonCodes.InvalidValue, Validate(validator, Policy("\"version\":1,\"kind\":\"promote\",")).Failure!.Reason);
        Assert.Equal(ReasonCodes.OutOfRange, Validate(validator, Policy("\"version\":0,")).Failure!.Reason);
        Assert.Equal(ReasonCodes.InvalidValue, Validate(validator, $$$"""{"schema":"prefonline.policy.v1","version":1,"uri":"/relative/path","sha256":"{{{sha}}}","created":"2024-05-01T12:00:00Z","metrics":{}}""").Failure!.Reason);
        Assert.Equal(ReasonCodes.InvalidValue, Validate(validator, """{"schema":"prefonline.policy.v1","version":1,"uri":"file:///x","sha256":"abc","created":"2024-05-01T12:00:00Z","metrics":{}}""").Failure!.Reason);
        Assert.Equal(ReasonCodes.InvalidValue, Validate(validator, $$$"""{"schema":"prefonline.policy.v1","version":1,"uri":"file:///x","sha256":"{{{sha}}}","created":"yesterday","metrics":{}}""").Failure!.Reason);
        Assert.Equal(ReasonCodes.WrongType, Validate(validator, $$$"""{"schema":"prefonline.policy.v1","version":1,"uri":"file:///x","sha256":"{{{sha}}}","created":"2024-05-01T12:00:00Z","metrics":{"kl":"high"}}""").Failure!.Reason);
        Assert.Equal(ReasonCodes.DuplicateKey, Validate(validator, $$$"""{"schema":"prefonline.policy.v1","version":1,"uri":"file:///x","sha256":"{{{sha}}}","created":"2024-05-01T12:00:00Z","metrics":{"kl":1,"kl":2}}""").Failure!.Reason);
    }

    [Fact]
    public void A_policy_events_files_map_names_plain_files_with_their_sha256_and_round_trips()
    {
        var validator = new RecordValidator(new ValidationLimits(), SchemaNames.PolicyTopic);
        var sha = new string('a', 64);
        var other = "0123456789ABCDEF" + new string('b', 48);
        string Policy(string files) => $$$"""{"schema":"prefonline.policy.v1","version":3,"uri":"http://learner:8081/policy/7/policy.safetensors","sha256":"{{{sha}}}","created":"2024-05-01T12:00:00Z","metrics":{}{{{files}}}}""";
        var parsed = Assert.IsType<PolicyEvent>(Validate(validator, Policy($$$""","files":{"policy.safetensors":"{{{sha}}}","vocab.json":"{{{other}}}","merges.txt":"{{{sha}}}"}""")).Record);
        Assert.Equal(3, parsed.Files.Count);
        Assert.Equal(other.ToLowerInvariant(), parsed.Files["vocab.json"]);
        var again = Assert.IsType<PolicyEvent>(validator.Validate(RecordSerializer.Serialize(parsed)).Record);
        Assert.Equal(parsed.Files.OrderBy(f => f.Key), again.Files.OrderBy(f => f.Key));
        // Absent (an older publisher) or null: no files.
        Assert.Empty(Assert.IsType<PolicyEvent>(Validate(validator, Policy("")).Record).Files);
        Assert.Empty(Assert.IsType<PolicyEvent>(Validate(validator, Policy(",\"files\":null")).Record).Files);
        Assert.DoesNotContain("\"files\"", Encoding.UTF8.GetString(RecordSerializer.Serialize(PolicyEvent.Publish(1, "file:///x", sha, DateTimeOffset.UnixEpoch, new Dictionary<string, double>()))), StringComparison.Ordinal);

        Assert.Equal(ReasonCodes.WrongType, Validate(validator, Policy(",\"files\":[]")).Failure!.Reason);
        Assert.Equal(ReasonCodes.WrongType, Validate(validator, Policy(",\"files\":{\"vocab.json\":1}")).Failure!.Reason);
        Assert.Equal(ReasonCodes.InvalidValue, Validate(validator, Policy(",\"files\":{\"vocab.json\":\"abc\"}")).Failure!.Reason);
        foreach (var name in new[] { "../etc/passwd", "dir/vocab.json", ".hidden", "", "vocab json", "a\\b", "%2e%2e" })
        {
            var refused = Validate(validator, Policy($$$""","files":{"{{{name}}}":"{{{sha}}}"}"""));
            Assert.Equal(ReasonCodes.InvalidValue, refused.Failure!.Reason);
        }
        Assert.Equal(ReasonCodes.DuplicateKey, Validate(validator, Policy($$$""","files":{"a":"{{{sha}}}","a":"{{{sha}}}"}""")).Failure!.Reason);
        var many = string.Join(",", Enumerable.Range(0, 33).Select(i => $"\"f{i}\":\"{sha}\""));
        Assert.Equal(ReasonCodes.InvalidValue, Validate(validator, Policy($",\"files\":{{{many}}}")).Failure!.Reason);
        // Not part of any other contract.
        Assert.Equal(ReasonCodes.UnknownField, Validate(PromptValidator(), """{"schema":"prefonline.prompt.v1","id":"p","prompt":"a","files":{}}""").Failure!.Reason);
    }

    [Fact]
    public void Depth_exactly_at_the_limit_passes_and_one_more_level_is_too_deep()
    {
        var limits = new ValidationLimits { MaxJsonDepth = 5 };
        // Levels: record object (1), meta (2), three arrays (3..5).
        Assert.True(Validate(PromptValidator(limits), """{"schema":"prefonline.prompt.v1","id":"p","prompt":"a","meta":{"x":[[[1]]]}}""").IsValid);
        Assert.Equal(ReasonCodes.TooDeep, Validate(PromptValidator(limits), """{"schema":"prefonline.prompt.v1","id":"p","prompt":"a","meta":{"x":[[[[1]]]]}}""").Failure!.Reason);
    }

    [Fact]
    public void A_million_nested_brackets_are_refused_without_overflowing_the_stack()
    {
        var limits = new ValidationLimits { MaxRecordBytes = 4_000_000 };
        var json = "{\"schema\":\"prefonline.prompt.v1\",\"id\":\"p\",\"prompt\":\"a\",\"meta\":{\"x\":" + new string('[', 1_000_000) + new string(']', 1_000_000) + "}}";
        Assert.Equal(ReasonCodes.TooDeep, Validate(PromptValidator(limits), json).Failure!.Reason);
    }

    [Fact]
    public void Size_limits_apply_at_their_boundaries()
    {
        var limits = new ValidationLimits { MaxTextChars = 10, MaxIdLength = 4, MaxMetaBytes = 9 };
        var validator = PromptValidator(limits);
        Assert.True(Validate(validator, """{"schema":"prefonline.prompt.v1","id":"abcd","prompt":"0123456789","meta":{"a":"b"}}""").IsValid);
        Assert.Equal(ReasonCodes.TextTooLong, Validate(validator, """{"schema":"prefonline.prompt.v1","id":"abce","prompt":"0123456789X"}""").Failure!.Reason);
        Assert.Equal(ReasonCodes.IdTooLong, Validate(validator, """{"schema":"prefonline.prompt.v1","id":"abcde","prompt":"a"}""").Failure!.Reason);
        Assert.Equal(ReasonCodes.MetaTooLarge, Validate(validator, """{"schema":"prefonline.prompt.v1","id":"abcf","prompt":"a","meta":{"a":"bc"}}""").Failure!.Reason);

        var bytes = new ValidationLimits { MaxRecordBytes = 64 };
        var json = """{"schema":"prefonline.prompt.v1","id":"x","prompt":"aaaaaaaaaa"}""";
        Assert.Equal(64, Encoding.UTF8.GetByteCount(json));
        Assert.True(Validate(PromptValidator(bytes), json).IsValid);
        Assert.Equal(ReasonCodes.RecordTooLarge, Validate(PromptValidator(bytes), json.Replace("aaa\"", "aaaa\"")).Failure!.Reason);
    }

    [Fact]
    public void Unknown_fields_are_ignored_when_the_policy_says_so_but_still_checked()
    {
        var lenient = PromptValidator(new ValidationLimits { UnknownFields = UnknownFieldPolicy.Ignore });
        var prompt = Assert.IsType<PromptRecord>(Validate(lenient, """{"schema":"prefonline.prompt.v1","id":"p","prompt":"a","trace":{"id":"t-1","spans":[1,2]},"reward":3}""").Record);
        Assert.Equal("p", prompt.Id);
        Assert.Equal(ReasonCodes.DuplicateKey, Validate(lenient, """{"schema":"prefonline.prompt.v1","id":"q","prompt":"a","trace":1,"trace":2}""").Failure!.Reason);
        Assert.Equal(ReasonCodes.NonFiniteNumber, Validate(lenient, """{"schema":"prefonline.prompt.v1","id":"r","prompt":"a","trace":1e400}""").Failure!.Reason);
        Assert.Equal(ReasonCodes.LoneSurrogate, Validate(lenient, """{"schema":"prefonline.prompt.v1","id":"s","prompt":"a","trace":"\ud800"}""").Failure!.Reason);
        Assert.Equal(ReasonCodes.UnknownField, Validate(PromptValidator(), """{"schema":"prefonline.prompt.v1","id":"t","prompt":"a","trace":1}""").Failure!.Reason);
    }

    [Fact]
    public void A_redelivery_at_the_same_position_is_not_a_duplicate_but_the_same_id_elsewhere_is()
    {
        var validator = PromptValidator();
        var bytes = Encoding.UTF8.GetBytes("""{"schema":"prefonline.prompt.v1","id":"p-1","prompt":"a"}""");
        var partition = new TopicPartitionId("prefonline.prompts", 0);
        Assert.True(validator.Validate(bytes, new RecordPosition(partition, 5)).IsValid);
        Assert.True(validator.Validate(bytes, new RecordPosition(partition, 5)).IsValid);
        var duplicate = validator.Validate(bytes, new RecordPosition(partition, 9));
        Assert.Equal(ReasonCodes.DuplicateId, duplicate.Failure!.Reason);
        Assert.Contains("prefonline.prompts[0]@5", duplicate.Failure.Detail);
    }

    [Fact]
    public void A_refused_record_does_not_enter_the_duplicate_window()
    {
        var validator = PromptValidator();
        Assert.False(Validate(validator, """{"schema":"prefonline.prompt.v1","id":"p-1","prompt":"a","bogus":1}""").IsValid);
        Assert.True(Validate(validator, """{"schema":"prefonline.prompt.v1","id":"p-1","prompt":"a"}""").IsValid);
    }

    [Fact]
    public void Duplicate_detection_can_be_disabled()
    {
        var validator = PromptValidator(new ValidationLimits { DuplicateWindowSize = 0 });
        Assert.True(Validate(validator, """{"schema":"prefonline.prompt.v1","id":"p-1","prompt":"a"}""").IsValid);
        Assert.True(Validate(validator, """{"schema":"prefonline.prompt.v1","id":"p-1","prompt":"a"}""").IsValid);
    }

    [Fact]
    public void Invalid_limits_and_unknown_schemas_are_refused_at_construction_with_every_problem_listed()
    {
        var e = Assert.Throws<ArgumentException>(() => new RecordValidator(new ValidationLimits { MaxJsonDepth = 1, MaxTextChars = 0 }, SchemaNames.All));
        Assert.Contains("MaxJsonDepth", e.Message);
        Assert.Contains("MaxTextChars", e.Message);
        Assert.Throws<ArgumentException>(() => new RecordValidator(new ValidationLimits(), ["prefonline.prompt.v9"]));
        Assert.Throws<ArgumentException>(() => new RecordValidator(new ValidationLimits(), []));
    }

    internal static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "PrefOnline.sln"))) return dir.FullName;
        throw new InvalidOperationException("PrefOnline.sln not found above " + AppContext.BaseDirectory);
    }

    /// <summary>A clock whose timestamps throw: a fault inside validation that no check anticipates.</summary>
    private sealed class FaultyClock : TimeProvider
    {
        public override long GetTimestamp() => throw new InvalidOperationException("the test clock is broken");
    }
}
