using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using PrefOnline.Learning.Models.Checkpoints;
using PrefOnline.Learning.Tokenization;
using PrefOnline.Streaming.Contracts;
using PrefOnline.Streaming.Intake;
using PrefOnline.Streaming.Metrics;
using PrefOnline.Streaming.Transport;
using PrefOnline.Tensors;
using TorchSharp;
using static TorchSharp.torch;
using PrefOnline.Tensors.Serialization;
using PrefOnline.Worker.Observability;
using PrefOnline.Worker.Checkpoints;
using PrefOnline.Worker.PolicyDistribution;

namespace PrefOnline.Worker.Pipeline;

/// <summary>
/// Role generator: reads the policy topic from its beginning (its own consumer group per process, never
/// committed) and, whenever it has caught up with what is there, loads the policy the newest event names —
/// publish or rollback alike, since a rollback event names the version to serve now. The event is trusted only as
/// far as it can be verified (<see cref="PolicyFetcher"/>): its uri must point at this generator's learner
/// (<c>Worker:PolicyBaseUrl</c>) or its mounted checkpoint directory, it must list the SHA-256 of every file, and each
/// file is fetched into the download directory and checked before anything is loaded. An event that fails any of this,
/// or whose files do not load, is refused: logged with its position, counted in
/// <c>prefonline_skipped_records_total{topic,reason}</c> (skipped, not dead-lettered, like every refused policy-topic
/// record: docs/OPERATIONS.md, "Failure policy"), and the version being served stays. A record that is not a valid
/// policy event never gets here: the intake skips and counts it.
/// </summary>
public sealed class PolicyFollowerStage(ChannelReader<ValidatedRecord> events, OffsetTracker tracker, FollowedPolicy policy, TensorThread thread, PrefOnlineMetrics metrics,
    StreamingMetrics streamingMetrics, PipelineStatus status, ILogger logger, PolicyFetcher fetcher)
{
    public long Loads { get; private set; }

    public long Refused { get; private set; }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        try
        {
            while (await events.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                ValidatedRecord? newest = null;
                while (events.TryRead(out var record))
                {
                    newest = record;
                    tracker.Complete(record.Source);
                }
                if (newest is null) continue;
                var policyEvent = (PolicyEvent)newest.Record;
                if (policyEvent.Sha256 == policy.Sha256 && policyEvent.Version == policy.Version) continue;
                // Reading the topic from its start, a drain may end on an old publish event: never step back
                // to it (a rollback event is the only way to a lower version).
                if (policyEvent.Kind == PolicyEventKind.Publish && policy.Loaded.IsCompleted && policyEvent.Version < policy.Version) continue;
                await LoadAsync(policyEvent, newest.Source, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    private async Task LoadAsync(PolicyEvent policyEvent, ConsumedRecord source, CancellationToken cancellationToken)
    {
        string directory;
        try
        {
            directory = await fetcher.FetchAsync(policyEvent, cancellationToken).ConfigureAwait(false);
        }
        catch (PolicyRefusedException e)
        {
            Refuse(policyEvent, source, e.Reason, e.Message);
            return;
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested && e is not OutOfMemoryException)
        {
            logger.LogError(e, "Policy v{Version} at {Source}: fetching it failed unexpectedly ({ExceptionType})", policyEvent.Version, source.ToString(), e.GetType().FullName);
            Refuse(policyEvent, source, PolicyRefusalReasons.FetchFailed, $"unexpected {e.GetType().Name}: {e.Message}");
            return;
        }
        using var discard = new Discarding(fetcher, directory); // loaded or refused, the files are not needed afterwards
        try
        {
            await thread.RunAsync(() =>
            {
                var model = StoredPolicy.LoadWeights(directory); // policy.safetensors, or a LoRA version's base + adapter, merged
                ITokenizer tokenizer;
                try
                {
                    tokenizer = TokenizerLoader.FromDirectory(directory);
                }
                catch
                {
                    model.Dispose();
                    throw;
                }
                policy.Adopt(model, tokenizer, policyEvent.Version, policyEvent.Sha256);
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is InvalidCheckpointException or TokenizerFormatException or IOException or InvalidDataException or System.Runtime.InteropServices.ExternalException or SafeTensorsFormatException)
        {
            Refuse(policyEvent, source, PolicyRefusalReasons.LoadFailed, $"its verified files do not load: {e.Message}");
            return;
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested && e is not OutOfMemoryException)
        {
            // Last line of defence, as for records: whatever a policy file holds, the generator keeps serving the
            // version it has rather than stopping (a restart would read the same event again).
            logger.LogError(e, "Policy v{Version} at {Source}: loading it failed unexpectedly ({ExceptionType})", policyEvent.Version, source.ToString(), e.GetType().FullName);
            Refuse(policyEvent, source, PolicyRefusalReasons.LoadFailed, $"unexpected {e.GetType().Name}: {e.Message}");
            return;
        }
        Loads++;
        metrics.SetPolicyVersion(policyEvent.Version);
        status.SetPolicyVersion(policyEvent.Version);
        logger.LogInformation("Now generating with policy v{Version} ({Kind} event at {Source}; {Files} files verified)",
            policyEvent.Version, policyEvent.Kind.ToString().ToLowerInvariant(), source.ToString(), policyEvent.Files.Count);
    }

    private readonly struct Discarding(PolicyFetcher owner, string directory) : IDisposable
    {
        public void Dispose() => owner.Discard(directory);
    }

    private void Refuse(PolicyEvent policyEvent, ConsumedRecord source, string reason, string detail)
    {
        Refused++;
        streamingMetrics.CountSkippedAfterAcceptance(source.Topic, reason);
        var serving = policy.Loaded.IsCompleted ? $"policy v{policy.Version} stays" : "still waiting for a first policy";
        logger.LogError("Refused policy v{Version} at {Source} as {Reason}: {Detail}; {Serving} (skipped, not dead-lettered: docs/OPERATIONS.md, \"Failure policy\")",
            policyEvent.Version, source.ToString(), reason, detail, serving);
    }
}
