using Microsoft.Extensions.Options;
using PrefOnline.Streaming.Kafka;

namespace PrefOnline.Worker.Transport;

/// <summary>One line per invalid <c>Kafka:*</c> setting. The sources' and sink's own checks (reserved
/// librdkafka keys, resilience limits) are reported here too, under their keys, before anything connects.</summary>
public sealed class KafkaOptionsValidator : IValidateOptions<KafkaOptions>
{
    private static readonly string[] Protocols = ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"];

    public ValidateOptionsResult Validate(string? name, KafkaOptions options)
    {
        var problems = Problems(options);
        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }

    public static IReadOnlyList<string> Problems(KafkaOptions options)
    {
        const string s = KafkaOptions.SectionName;
        var problems = new List<string>();
        var topics = options.Topics ?? new KafkaTopicsOptions();
        foreach (var (key, value) in new[] { ("Prompts", topics.Prompts), ("Feedback", topics.Feedback), ("Rollouts", topics.Rollouts), ("Policy", topics.Policy), ("DeadLetter", topics.DeadLetter) })
        {
            if (string.IsNullOrWhiteSpace(value)) problems.Add($"{s}:Topics:{key} must name a topic");
            else if (value.Length > 249 || value.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-')))
                problems.Add($"{s}:Topics:{key} must be a Kafka topic name (up to 249 of a-z A-Z 0-9 . _ -) (got '{value}')");
        }
        var distinct = topics.All.Where(t => !string.IsNullOrWhiteSpace(t)).Distinct(StringComparer.Ordinal).Count();
        if (distinct < topics.All.Count(t => !string.IsNullOrWhiteSpace(t))) problems.Add($"{s}:Topics must name five different topics (got {string.Join(", ", topics.All)})");
        if (string.IsNullOrWhiteSpace(options.ConsumerGroup)) problems.Add($"{s}:ConsumerGroup must not be empty");
        if (options.ChannelCapacity is < 1 or > 1_000_000) problems.Add($"{s}:ChannelCapacity must be between 1 and 1000000 (got {options.ChannelCapacity})");
        if (options.MaxBufferedBytes < 0) problems.Add($"{s}:MaxBufferedBytes must be 0 (16 x Validation:MaxRecordBytes) or a number of bytes (got {options.MaxBufferedBytes})");
        foreach (var (section, settings) in new[] { ("Settings", options.Settings), ("ConsumerSettings", options.ConsumerSettings), ("ProducerSettings", options.ProducerSettings) })
        {
            if (options.AllowUnverifiedTls || settings is null) continue;
            foreach (var (name, value, why) in KafkaSettings.CertificateCheckDisabled(settings))
                problems.Add($"{s}:{section}:{name}={value} is refused: {why}, so whoever sits between the worker and the brokers can read and forge every record; remove it (give the brokers' CA in {s}:SslCaLocation), or set {s}:AllowUnverifiedTls=true to accept the risk (logged as an error at every start)");
        }

        var protocol = options.SecurityProtocol?.Trim().ToUpperInvariant() ?? "";
        if (!Protocols.Contains(protocol)) problems.Add($"{s}:SecurityProtocol must be one of {string.Join(", ", Protocols)} (got '{options.SecurityProtocol}')");
        if (options.IsEmbedded) return problems; // the remaining keys only matter when a broker is configured

        if (protocol.StartsWith("SASL", StringComparison.Ordinal))
        {
            if (string.IsNullOrWhiteSpace(options.SaslMechanism)) problems.Add($"{s}:SaslMechanism is required with SecurityProtocol {protocol}");
            else if (string.Equals(options.SaslMechanism.Trim(), "GSSAPI", StringComparison.OrdinalIgnoreCase))
                problems.Add($"{s}:SaslMechanism GSSAPI (Kerberos) is not supported: the bundled librdkafka (librdkafka.redist's glibc build) has no Cyrus SASL; use PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER");
            if (string.IsNullOrEmpty(options.SaslUsername)) problems.Add($"{s}:SaslUsername is required with SecurityProtocol {protocol}");
            if (string.IsNullOrEmpty(options.SaslPassword)) problems.Add($"{s}:SaslPassword is required with SecurityProtocol {protocol} (give it through an environment variable from a Secret)");
        }
        foreach (var (key, path) in new[] { ("SslCaLocation", options.SslCaLocation), ("SslCertificateLocation", options.SslCertificateLocation), ("SslKeyLocation", options.SslKeyLocation) })
        {
            if (!string.IsNullOrWhiteSpace(path) && !File.Exists(path)) problems.Add($"{s}:{key} {path} does not exist");
        }
        if (string.IsNullOrWhiteSpace(options.SslCertificateLocation) != string.IsNullOrWhiteSpace(options.SslKeyLocation))
            problems.Add($"{s}:SslCertificateLocation and {s}:SslKeyLocation must be given together (mutual TLS)");

        foreach (var problem in options.SourceOptions(options.ConsumerGroup + ".check", [topics.Feedback], new Streaming.Validation.ValidationLimits().MaxRecordBytes).Problems()) problems.Add($"{s}: consumer: {problem}");
        foreach (var problem in options.SinkOptions().Problems()) problems.Add($"{s}: producer: {problem}");
        return problems;
    }
}
