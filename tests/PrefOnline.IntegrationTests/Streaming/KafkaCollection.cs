namespace PrefOnline.IntegrationTests.Streaming;

/// <summary>
/// Kafka tests run one after another: each starts librdkafka threads and relies on timeouts measured in
/// seconds, and on a 2-core machine parallel runs starve each other into false failures.
/// </summary>
[CollectionDefinition(Name)]
public sealed class KafkaCollection
{
    public const string Name = "Kafka (mock cluster, sequential)";
}
