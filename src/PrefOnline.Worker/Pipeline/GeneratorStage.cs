using System.Globalization;
using System.Text;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using PrefOnline.Learning.Sampling;
using PrefOnline.Streaming.Contracts;
using PrefOnline.Streaming.Intake;
using PrefOnline.Streaming.Transport;
using PrefOnline.Worker.Observability;

namespace PrefOnline.Worker.Pipeline;

/// <summary>
/// Prompts → K completions each from the current policy → rollout records on the rollouts topic (keyed
/// by prompt id, so a prompt's samples share a partition) → <c>onPublished</c> (role all: the group joins
/// the learning state and its prompts count as absorbed; role generator: the prompts are absorbed once
/// their rollouts are durable). Prompts are batched: the first one waits, then up to
/// <see cref="GenerationOptions.MaxPromptsPerBatch"/> more are taken within <see cref="GenerationOptions.BatchWindow"/>.
/// Before generating, <c>waitForRoom</c> applies backpressure (the sample budget).
/// </summary>
public sealed class GeneratorStage(
    ChannelReader<ValidatedRecord> prompts,
    GenerationOptions options,
    IRolloutGenerator generator,
    IRecordSink sink,
    string rolloutsTopic,
    Func<GeneratedBatch, CancellationToken, Task> onPublished,
    Func<int, CancellationToken, Task> waitForRoom,
    PrefOnlineMetrics metrics,
    ILogger logger,
    TimeProvider time)
{
    /// <summary>Distinguishes rollout ids of this process from those of earlier runs (ids must be unique per topic).</summary>
    private static readonly string RunTag = Convert.ToHexString(BitConverter.GetBytes(Random.Shared.Next())).ToLowerInvariant()[..6];

    private long batches;

    /// <summary>Batches published so far.</summary>
    public long Batches => Interlocked.Read(ref batches);

    /// <summary>
    /// Runs until <paramref name="stop"/> (checked between batches: a batch in flight is finished, published
    /// and handed on) or <paramref name="abort"/> (gives up at once), or until the prompt channel completes.
    /// </summary>
    public async Task RunAsync(CancellationToken stop, CancellationToken abort)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(stop, abort);
        try
        {
            while (!stop.IsCancellationRequested)
            {
                var batch = await NextBatchAsync(linked.Token).ConfigureAwait(false);
                if (batch.Count == 0) return; // channel completed
                await waitForRoom(batch.Count * options.SamplesPerPrompt, linked.Token).ConfigureAwait(false);
                await GenerateAndPublishAsync(batch, stop, abort).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (linked.IsCancellationRequested)
        {
        }
    }

    private async Task<List<PromptWork>> NextBatchAsync(CancellationToken cancellationToken)
    {
        var batch = new List<PromptWork>(options.MaxPromptsPerBatch);
        if (!await prompts.WaitToReadAsync(cancellationToken).ConfigureAwait(false)) return batch;
        var deadline = time.GetTimestamp() + (long)(options.BatchWindow.TotalSeconds * time.TimestampFrequency);
        while (batch.Count < options.MaxPromptsPerBatch)
        {
            if (prompts.TryRead(out var record))
            {
                batch.Add(new PromptWork((PromptRecord)record.Record, record.Source));
                continue;
            }
            var remaining = TimeSpan.FromSeconds((deadline - time.GetTimestamp()) / (double)time.TimestampFrequency);
            if (batch.Count > 0 && remaining <= TimeSpan.Zero) break;
            var more = prompts.WaitToReadAsync(cancellationToken).AsTask();
            if (await Task.WhenAny(more, Task.Delay(remaining > TimeSpan.Zero ? remaining : TimeSpan.Zero, time, cancellationToken)).ConfigureAwait(false) != more) break;
            if (!await more.ConfigureAwait(false)) break; // completed
        }
        return batch;
    }

    private async Task GenerateAndPublishAsync(List<PromptWork> work, CancellationToken stop, CancellationToken abort)
    {
        var number = Interlocked.Increment(ref batches);
        var seed = unchecked(options.Seed * 0x9E3779B97F4A7C15UL + (ulong)number);
        var generated = await generator.GenerateAsync(work, options.ToSamplingOptions(seed), abort).ConfigureAwait(false);
        if (generated is null)
        {
            logger.LogDebug("No policy may be sampled right now; {Count} prompts stay unabsorbed and will be read again", work.Count);
            return;
        }
        var withIds = generated.Prompts.Select(p => p with { RolloutIds = Enumerable.Range(0, p.Completions.Count).Select(k => RolloutId(p.Work.Prompt.Id, generated.PolicyVersion, k, number)).ToList() }).ToList();
        generated = generated with { Prompts = withIds };
        var produce = new List<Task>();
        foreach (var prompt in generated.Prompts)
        {
            var key = Encoding.UTF8.GetBytes(prompt.Work.Prompt.Id);
            for (var k = 0; k < prompt.Completions.Count; k++)
            {
                var completion = prompt.Completions[k];
                var record = new RolloutRecord(prompt.RolloutIds[k], prompt.Work.Prompt.Id, prompt.Work.Prompt.Prompt, completion.Text, generated.PolicyVersion, Math.Min(0, completion.LogProb),
                    completion.FinishReason switch
                    {
                        FinishReason.EndOfSequence => RolloutRecord.EndOfSequence,
                        FinishReason.StopString => RolloutRecord.StopString,
                        _ => RolloutRecord.Length,
                    });
                produce.Add(ProduceDurablyAsync(new OutgoingRecord(rolloutsTopic, key, RecordSerializer.Serialize(record)), stop, abort));
            }
        }
        await Task.WhenAll(produce).ConfigureAwait(false);
        metrics.AddGeneratedTokens(generated.CompletionTokens);
        await onPublished(generated, abort).ConfigureAwait(false);
    }

    /// <summary>
    /// Rollouts must be durable before their prompt counts as absorbed: transient failures (broker down) are
    /// retried until they succeed or the worker stops. A stop ends the retrying (not an attempt in flight): the
    /// batch's prompts then stay unabsorbed and are generated again after the restart, so a clean stop during
    /// a broker outage does not wait out the whole grace period.
    /// </summary>
    private async Task ProduceDurablyAsync(OutgoingRecord record, CancellationToken stop, CancellationToken abort)
    {
        var backoff = TimeSpan.FromMilliseconds(200);
        while (true)
        {
            try
            {
                // WaitAsync: the Kafka client keeps waiting for the delivery report (up to Kafka:DeliveryTimeout)
                // whatever the token says; a stop that gives up on the batch must not wait for it.
                await sink.ProduceAsync(record, abort).WaitAsync(abort).ConfigureAwait(false);
                return;
            }
            catch (StreamingException e) when (e.IsTransient)
            {
                stop.ThrowIfCancellationRequested();
                logger.LogWarning("Rollout not delivered yet ({Error}); retrying in {Backoff}", e.Message, backoff);
                using var either = CancellationTokenSource.CreateLinkedTokenSource(stop, abort);
                await Task.Delay(backoff, time, either.Token).ConfigureAwait(false);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.FromSeconds(5).Ticks));
            }
        }
    }

    /// <summary>
    /// <c>{prompt id}.v{version}.s{k}.{run}{batch}</c>: readable, unique per topic (the run tag and batch number
    /// separate re-generations of one prompt), within the 256-character id limit (long prompt ids are cut).
    /// </summary>
    public static string RolloutId(string promptId, long version, int sample, long batch)
    {
        var suffix = string.Create(CultureInfo.InvariantCulture, $".v{version}.s{sample}.{RunTag}{batch:x}");
        var room = 200 - suffix.Length;
        var head = promptId.Length <= room ? promptId : promptId[..room];
        return head + suffix;
    }
}
