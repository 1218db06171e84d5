namespace PrefOnline.IntegrationTests.Process;

/// <summary>One record as kcat printed it.</summary>
public sealed record KcatRecord(string Topic, int Partition, long Offset, string Key, IReadOnlyDictionary<string, string> Headers, string Value);
