using Microsoft.Extensions.Logging;
using PrefOnline.Streaming.Metrics;
using PrefOnline.Worker.Transport;

namespace PrefOnline.Worker.Tests.Transport;

/// <summary>
/// Issue 15 item 3: what weakens transport security is said loudly when the Kafka transport starts — an error line for
/// every accepted setting that switches off the brokers' certificate checks (only possible with Kafka:AllowUnverifiedTls;
/// without it the configuration check refuses them, see ConfigurationCheckTests), a warning for a protocol without TLS.
/// Nothing connects: the producer is only created.
/// </summary>
public sealed class KafkaTransportSecurityTests
{
    [Fact]
    public async Task Accepted_settings_that_switch_off_certificate_checks_are_logged_as_errors_and_plaintext_as_a_warning()
    {
        var options = new KafkaOptions
        {
            BootstrapServers = "127.0.0.1:1",
            SecurityProtocol = "SASL_PLAINTEXT",
            SaslMechanism = "PLAIN",
            SaslUsername = "user",
            SaslPassword = "hunter2-never-logged",
            AllowUnverifiedTls = true,
            Settings = new Dictionary<string, string> { ["enable.ssl.certificate.verification"] = "false" },
            ProducerSettings = new Dictionary<string, string> { ["ssl.endpoint.identification.algorithm"] = "none" },
        };
        var logs = new CapturingLoggerProvider();
        using (var loggers = LoggerFactory.Create(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Trace)))
        using (var metrics = new StreamingMetrics())
        {
            await using var transport = new KafkaStreamTransport(options, 256 * 1024, metrics, loggers);
        }
        var errors = logs.Lines.Where(l => l.Level == LogLevel.Error && l.Text.StartsWith("INSECURE:", StringComparison.Ordinal)).Select(l => l.Text).ToList();
        Assert.Equal(2, errors.Count);
        Assert.Contains(errors, e => e.Contains("Kafka:Settings:enable.ssl.certificate.verification=false", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("Kafka:ProducerSettings:ssl.endpoint.identification.algorithm=none", StringComparison.Ordinal));
        Assert.All(errors, e => Assert.Contains("Kafka:AllowUnverifiedTls is true", e, StringComparison.Ordinal));
        Assert.Single(logs.Lines, l => l.Level == LogLevel.Warning && l.Text.Contains("SASL_PLAINTEXT: records and the SASL password travel unencrypted", StringComparison.Ordinal));
        Assert.DoesNotContain(logs.Lines, l => l.Text.Contains("hunter2", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_verified_tls_connection_logs_nothing_of_the_kind()
    {
        var options = new KafkaOptions { BootstrapServers = "127.0.0.1:1", SecurityProtocol = "SSL" };
        var logs = new CapturingLoggerProvider();
        using (var loggers = LoggerFactory.Create(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Trace)))
        using (var metrics = new StreamingMetrics())
        {
            await using var transport = new KafkaStreamTransport(options, 256 * 1024, metrics, loggers);
        }
        Assert.DoesNotContain(logs.Lines, l => l.Text.Contains("INSECURE", StringComparison.Ordinal) || l.Text.Contains("unencrypted", StringComparison.Ordinal));
        // Issue 13 item 8: the start says which librdkafka runs, and it is the redist's 2.16, not a system library.
        var client = Assert.Single(logs.Lines, l => l.Level == LogLevel.Information && l.Text.StartsWith("Kafka client: Confluent.Kafka 2.16.", StringComparison.Ordinal)).Text;
        Assert.Contains(", librdkafka 2.16.", client, StringComparison.Ordinal);
        Assert.EndsWith("centos8-librdkafka.so)", client, StringComparison.Ordinal);
    }

    [Fact]
    public void Kerberos_is_refused_at_start_because_the_bundled_librdkafka_has_no_GSSAPI()
    {
        var options = new KafkaOptions { BootstrapServers = "broker:9093", SecurityProtocol = "SASL_SSL", SaslMechanism = "gssapi", SaslUsername = "u", SaslPassword = "p" };
        var problem = Assert.Single(KafkaOptionsValidator.Problems(options));
        Assert.StartsWith("Kafka:SaslMechanism GSSAPI (Kerberos) is not supported", problem, StringComparison.Ordinal);
        foreach (var mechanism in new[] { "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER" })
            Assert.Empty(KafkaOptionsValidator.Problems(new KafkaOptions { BootstrapServers = "broker:9093", SecurityProtocol = "SASL_SSL", SaslMechanism = mechanism, SaslUsername = "u", SaslPassword = "p" }));
    }

    private sealed class CapturingLoggerProvider : ILoggerProvider
    {
        private readonly List<(LogLevel Level, string Text)> lines = [];

        public IReadOnlyList<(LogLevel Level, string Text)> Lines
        {
            get
            {
                lock (lines) return lines.ToList();
            }
        }

        public ILogger CreateLogger(string categoryName) => new Logger(this);

        public void Dispose()
        {
        }

        private sealed class Logger(CapturingLoggerProvider owner) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                lock (owner.lines) owner.lines.Add((logLevel, formatter(state, exception)));
            }
        }
    }
}
