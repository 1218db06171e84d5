using System.Globalization;
using System.Text;
using Confluent.Kafka;
using PrefOnline.Streaming.Kafka;
using Xunit.Abstractions;
using static PrefOnline.IntegrationTests.Process.KafkaWorkerSetup;
using static PrefOnline.IntegrationTests.Process.MockBrokerProcess;

namespace PrefOnline.IntegrationTests.Process;

/// <summary>
/// Issue 15 item 5 on the real binary: a generator's prompt topic flooded with records one byte over
/// <c>Validation:MaxRecordBytes</c> (64 KiB here, to keep the run short). Every one of them must be dead-lettered (as a
/// pointer: their content is never read into memory) while the process's peak resident memory — the kernel's VmHWM, reset
/// after a warm-up, so the peak between two samples is not missed — stays within a stated bound over its warm baseline:
/// the worst case the source computes for its own settings (<see cref="KafkaSourceMemory"/>) plus a fixed allowance for
/// the runtime (GC budget, thread stacks, JIT of the paths the flood takes, the producer of the dead letters).
/// The flood is 128 MiB, far more than the bound, and is produced as fast as the broker takes it; the mock broker keeps
/// about 5 MB per partition, so it is spread over 32 partitions (4.2 MB each: nothing is dropped before it is read).
/// Before issue 15 the same flood could sit in librdkafka's 64 MiB prefetch queue plus 2,304 copied values per source.
/// </summary>
[Collection(ProcessCollection.Name)]
public sealed class ConsumerMemoryFloodTests(ITestOutputHelper output)
{
    private const int RecordLimit = 64 * 1024;
    private const int Partitions = 32;
    private const int PerPartition = 64;
    private const int Flood = Partitions * PerPartition;
    private const int WarmUpOversized = 8;

    /// <summary>What the runtime may add over the consumer's own worst case while it works through the flood.</summary>
    private const long RuntimeAllowanceBytes = 48L << 20;

    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    [Fact]
    public async Task A_flood_of_records_just_over_the_limit_is_dead_lettered_in_full_while_resident_memory_stays_bounded()
    {
        await using var workspace = new TestWorkspace("consumer-memory-flood", output);
        var (_, bootstrap) = await MockBrokerProcess.StartAsync(workspace, $"{Prompts}:{Partitions},{Feedback}:1,{Rollouts}:4,{Policy}:1,{DeadLetter}:1");
        var kcat = new Kcat(bootstrap);
        var initial = await InitPolicyAsync(workspace);
        var configuration = Configuration(bootstrap, initial);
        configuration["Worker"]!["Role"] = "generator";
        configuration["Kafka"]!["DeliveryTimeout"] = "00:00:05";
        configuration["Validation"] = new System.Text.Json.Nodes.JsonObject { ["MaxRecordBytes"] = RecordLimit };
        var generator = WorkerProcess.Start(workspace, "generator", configuration, workspace.ScratchPath("no-volume"));
        await generator.WaitReadyAsync(Timeout);
        string Tail() => generator.Process.Tail();

        // Warm-up: the valid path and the dead-letter path of oversized records, so their first-use costs (JIT, buffers,
        // the dead-letter producer) are in the baseline, not counted against the flood.
        await kcat.ProduceAsync(Prompts, Enumerable.Range(0, 16).Select(i => ($"w{i}", Prompt($"w{i}", "a:"))));
        await Poll.UntilAsync(async () => (await kcat.ReadAllAsync(Rollouts)).Count >= 32, Timeout, "rollouts for the warm-up prompts", Tail);
        await ProduceAsync(bootstrap, WarmUpOversized, "warm");
        await Poll.UntilAsync(async () => await DeadLettered(generator) == WarmUpOversized, Timeout, "the warm-up's oversized records dead-lettered", Tail);

        var pid = generator.Process.Id;
        var baseline = Status(pid, "VmRSS");
        await File.WriteAllTextAsync($"/proc/{pid}/clear_refs", "5"); // VmHWM := VmRSS: the peak from here on
        var memory = new KafkaSourceOptions { BootstrapServers = bootstrap, Topics = [Prompts], MaxRecordBytes = RecordLimit }.Memory();
        var bound = memory.WorstCaseBytes(brokers: 1) + RuntimeAllowanceBytes;
        workspace.Log($"baseline RSS {Mib(baseline)} MiB; the prompt source's worst case {memory.Describe(1)}; stated bound: baseline + {Mib(bound)} MiB");

        using var sampling = new CancellationTokenSource();
        long sampledPeak = baseline;
        var sampler = Task.Run(async () =>
        {
            while (!sampling.IsCancellationRequested)
            {
                try
                {
                    sampledPeak = Math.Max(sampledPeak, Status(pid, "VmRSS"));
                    await Task.Delay(50, sampling.Token);
                }
                catch (Exception e) when (e is OperationCanceledException or IOException)
                {
                    return;
                }
            }
        });
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await ProduceAsync(bootstrap, Flood, "flood");
        var produced = clock.Elapsed;
        await Poll.UntilAsync(async () => await DeadLettered(generator) == WarmUpOversized + Flood, Timeout, $"all {Flood} flood records dead-lettered", Tail);
        var drained = clock.Elapsed;
        await sampling.CancelAsync();
        await sampler;
        var peak = Math.Max(Status(pid, "VmHWM"), sampledPeak);
        workspace.Log($"flood of {Flood} x {RecordLimit + 1} bytes ({Mib((long)Flood * (RecordLimit + 1))} MiB) produced in {produced.TotalSeconds:0.0} s, all dead-lettered after {drained.TotalSeconds:0.0} s; " +
                      $"RSS peak {Mib(peak)} MiB = baseline + {Mib(peak - baseline)} MiB (bound: + {Mib(bound)} MiB)");
        Assert.True(peak - baseline <= bound, $"resident memory grew by {Mib(peak - baseline)} MiB, more than the stated {Mib(bound)} MiB");

        // Every flood record is in the dead-letter topic as a pointer to its position: empty value, reason, size in detail.
        var letters = (await kcat.ReadAllAsync(DeadLetter)).Where(l => l.Headers.GetValueOrDefault("source-topic") == Prompts).ToList();
        Assert.Equal(WarmUpOversized + Flood, letters.Count);
        Assert.All(letters, l =>
        {
            Assert.Equal("record-too-large", l.Headers["reason"]);
            Assert.Equal("", l.Value);
            Assert.Contains("never read into memory", l.Headers["forward-error"], StringComparison.Ordinal);
        });
        Assert.Equal(WarmUpOversized + Flood, letters.Select(l => (l.Headers["source-partition"], l.Headers["source-offset"])).Distinct().Count());

        // Still serving: ready, and a valid prompt after the flood is answered.
        Assert.Equal(System.Net.HttpStatusCode.OK, (await generator.ReadinessAsync())?.Status);
        await kcat.ProduceAsync(Prompts, [("after", Prompt("after-flood", "b:"))]);
        await Poll.UntilAsync(async () => (await kcat.ReadAllAsync(Rollouts)).Count(r => r.Value.Contains("\"prompt_id\":\"after-flood\"", StringComparison.Ordinal)) == 2,
            Timeout, "rollouts for a prompt after the flood", Tail);
        await generator.Process.TerminateAsync();
        Assert.Equal(0, await generator.Process.WaitForExitAsync(TimeSpan.FromSeconds(60)));
    }

    private static async Task<double> DeadLettered(WorkerProcess generator) =>
        await generator.MetricAsync("prefonline_dead_letters_total", ("topic", Prompts), ("reason", "record-too-large")) ?? 0;

    /// <summary>Produces <paramref name="count"/> prompt records one byte over the limit, evenly over the partitions, as fast as the broker takes them.</summary>
    private static Task ProduceAsync(string bootstrap, int count, string prefix) => Task.Run(() =>
    {
        KafkaNative.EnsureLoaded();
        using var producer = new ProducerBuilder<byte[], byte[]>(new ProducerConfig { BootstrapServers = bootstrap, LingerMs = 5, Acks = Acks.All }).Build();
        for (var i = 0; i < count; i++)
        {
            producer.Produce(new TopicPartition(Prompts, new Partition(i % Partitions)), new Message<byte[], byte[]> { Key = null!, Value = OversizedPrompt($"{prefix}-{i}") });
            if (i % 256 == 255) producer.Flush(Timeout); // keep the client's own queue small
        }
        if (producer.Flush(Timeout) > 0) throw new TimeoutException("the flood was not acknowledged");
    });

    /// <summary>A well-formed prompt record of exactly <see cref="RecordLimit"/> + 1 bytes: refused for its size alone.</summary>
    private static byte[] OversizedPrompt(string id)
    {
        var head = $"{{\"schema\":\"prefonline.prompt.v1\",\"id\":\"{id}\",\"prompt\":\"";
        const string tail = "\"}";
        return Encoding.UTF8.GetBytes(head + new string('x', RecordLimit + 1 - head.Length - tail.Length) + tail);
    }

    /// <summary>A value in bytes from /proc/PID/status (VmRSS: resident now; VmHWM: the peak since start or the last reset).</summary>
    private static long Status(int pid, string field)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (!line.StartsWith(field + ":", StringComparison.Ordinal)) continue;
            var kib = line[(field.Length + 1)..].Trim().Split(' ')[0];
            return long.Parse(kib, CultureInfo.InvariantCulture) * 1024;
        }
        throw new InvalidOperationException($"/proc/{pid}/status has no {field}");
    }

    private static string Mib(long bytes) => (bytes / 1048576.0).ToString("0.0", CultureInfo.InvariantCulture);
}
