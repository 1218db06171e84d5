using PrefOnline.Streaming.Kafka;

namespace PrefOnline.Streaming.Tests.Kafka;

public sealed class KafkaSettingsTests
{
    [Theory]
    [InlineData("sasl.password", true)]
    [InlineData("sasl.username", true)]
    [InlineData("sasl.jaas.config", true)]
    [InlineData("ssl.key.password", true)]
    [InlineData("ssl.keystore.password", true)]
    [InlineData("ssl.key.pem", true)]
    [InlineData("sasl.oauthbearer.client.secret", true)]
    [InlineData("SASL.PASSWORD", true)]
    [InlineData("my.api.token", true)]
    [InlineData("bootstrap.servers", false)]
    [InlineData("security.protocol", false)]
    [InlineData("linger.ms", false)]
    public void Secrets_are_recognised(string name, bool sensitive) => Assert.Equal(sensitive, KafkaSettings.IsSensitive(name));

    [Fact]
    public void Descriptions_never_contain_secret_values()
    {
        var description = KafkaSettings.Describe(new Dictionary<string, string>
        {
            ["sasl.password"] = "hunter2",
            ["ssl.key.password"] = "s3cret",
            ["sasl.username"] = "alice",
            ["security.protocol"] = "SASL_SSL",
        });
        Assert.DoesNotContain("hunter2", description);
        Assert.DoesNotContain("s3cret", description);
        Assert.DoesNotContain("alice", description);
        Assert.Contains("security.protocol=SASL_SSL", description);
        Assert.Contains("sasl.password=***", description);
    }

    [Fact]
    public void The_source_fixes_manual_commits_and_passes_everything_else_through()
    {
        var options = new KafkaSourceOptions
        {
            BootstrapServers = "b:9092",
            GroupId = "g",
            Topics = { "t" },
            Settings = { ["security.protocol"] = "SASL_SSL", ["sasl.mechanism"] = "PLAIN", ["sasl.password"] = "x", ["auto.offset.reset"] = "latest" },
        };
        Assert.Empty(options.Problems());
        var settings = options.BuildClientSettings();
        Assert.Equal("false", settings["enable.auto.commit"]);
        Assert.Equal("false", settings["enable.auto.offset.store"]);
        Assert.Equal("SASL_SSL", settings["security.protocol"]);
        Assert.Equal("x", settings["sasl.password"]);
        Assert.Equal("latest", settings["auto.offset.reset"]);
        Assert.Equal("b:9092", settings["bootstrap.servers"]);
        Assert.Equal("g", settings["group.id"]);
    }

    [Fact]
    public void Contradicting_a_fixed_setting_is_refused_with_the_reason_and_without_leaking_secrets()
    {
        var source = new KafkaSourceOptions { BootstrapServers = "b:9092", Topics = { "t" }, Settings = { ["enable.auto.commit"] = "true", ["group.id"] = "x" } };
        var problems = source.Problems();
        Assert.Contains(problems, p => p.Contains("enable.auto.commit") && p.Contains("durable"));
        Assert.Contains(problems, p => p.Contains("group.id") && p.Contains("GroupId"));
        Assert.Throws<ArgumentException>(() => source.BuildClientSettings());

        var sink = new KafkaSinkOptions { BootstrapServers = "b:9092", Settings = { ["enable.idempotence"] = "false", ["acks"] = "1" } };
        Assert.Equal(2, sink.Problems().Count);
        var fine = new KafkaSinkOptions { BootstrapServers = "b:9092", Settings = { ["acks"] = "-1", ["enable.idempotence"] = "TRUE" } };
        Assert.Empty(fine.Problems());
        Assert.Equal("all", fine.BuildClientSettings()["acks"]);
        Assert.Equal("murmur2_random", fine.BuildClientSettings()["partitioner"]);
    }

    [Fact]
    public void Missing_and_out_of_range_options_are_listed_one_line_each()
    {
        var problems = new KafkaSourceOptions { ChannelCapacity = 0, PollTimeout = TimeSpan.Zero }.Problems();
        Assert.Contains(problems, p => p.StartsWith("BootstrapServers"));
        Assert.Contains(problems, p => p.StartsWith("Topics"));
        Assert.Contains(problems, p => p.StartsWith("ChannelCapacity"));
        Assert.Contains(problems, p => p.StartsWith("PollTimeout"));
        var sink = new KafkaSinkOptions { BootstrapServers = "b", Resilience = { MaxRetries = -1, FailureRatio = 2 } }.Problems();
        Assert.Contains(sink, p => p.Contains("MaxRetries"));
        Assert.Contains(sink, p => p.Contains("FailureRatio"));
    }
}
