using System.Security.Cryptography;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using PrefOnline.Learning.Models.Checkpoints;
using PrefOnline.Learning.Tokenization;
using PrefOnline.Streaming.Contracts;
using PrefOnline.Streaming.Intake;
using PrefOnline.Streaming.Transport;
using PrefOnline.Tensors;
using TorchSharp;
using static TorchSharp.torch;
using PrefOnline.Tensors.Serialization;
using PrefOnline.Worker.Observability;
using PrefOnline.Worker.PolicyDistribution;

namespace PrefOnline.Worker.Pipeline;

/// <summary>
/// Role generator: reads the policy topic from its beginning (its own consumer group per process, never
/// committed) and, whenever it has caught up with what is there, loads the policy the newest event names —
/// publish or rollback alike, since a rollback event names the version to serve now. The file behind the
/// event's uri — <c>file://</c> on a mounted checkpoint volume, or <c>http(s)://</c> served by the learner
/// and downloaded (<see cref="PolicyDownloader"/>) — is checked against the event's SHA-256 before it is
/// loaded; a missing, unreachable or mismatching file is refused with a log line and the current policy stays.
/// A record on the policy topic that is not a valid policy event never gets here: the intake skips it and counts
/// it (<c>prefonline_skipped_records_total</c>), so the version being served stays too.
/// </summary>
public sealed class PolicyFollowerStage(ChannelReader<ValidatedRecord> events, OffsetTracker tracker, FollowedPolicy policy, TensorThread thread, PrefOnlineMetrics metrics, PipelineStatus status, ILogger logger,
    PolicyDownloader? downloader = null)
{
    public long Loads { get; private set; }

    public long Refused { get; private set; }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        try
        {
            while (await events.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                PolicyEvent? newest = null;
                while (events.TryRead(out var record))
                {
                    newest = (PolicyEvent)record.Record;
                    tracker.Complete(record.Source);
                }
                if (newest is null || (newest.Sha256 == policy.Sha256 && newest.Version == policy.Version)) continue;
                // Reading the topic from its start, a drain may end on an old publish event: never step back
                // to it (a rollback event is the only way to a lower version).
                if (newest.Kind == PolicyEventKind.Publish && policy.Loaded.IsCompleted && newest.Version < policy.Version) continue;
                await LoadAsync(newest, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    private async Task LoadAsync(PolicyEvent policyEvent, CancellationToken cancellationToken)
    {
        var uri = new Uri(policyEvent.Uri);
        string path;
        if (uri.Scheme is "http" or "https")
        {
            if (downloader is null) throw new InvalidOperationException("an http(s) policy event needs a PolicyDownloader");
            try
            {
                path = await downloader.DownloadAsync(policyEvent, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is PolicyDownloadException or IOException)
            {
                Refused++;
                logger.LogError("Policy v{Version} could not be fetched: {Error}; the current policy stays until the next event", policyEvent.Version, e.Message);
                return;
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested && e is not OutOfMemoryException)
            {
                Refused++;
                logger.LogError(e, "Policy v{Version} could not be fetched: unexpected {ExceptionType}; the current policy stays until the next event", policyEvent.Version, e.GetType().FullName);
                return;
            }
        }
        else if (uri.IsFile)
        {
            path = uri.LocalPath;
        }
        else
        {
            Refused++;
            logger.LogError("Policy v{Version} is at {Uri}: only file:// (a mounted checkpoint volume) and http(s):// (the learner, Worker:PolicyBaseUrl) are supported", policyEvent.Version, policyEvent.Uri);
            return;
        }
        if (!File.Exists(path))
        {
            Refused++;
            logger.LogError("Policy v{Version}: {Path} does not exist (checkpoint volume not mounted here, or the version was deleted by retention)", policyEvent.Version, path);
            return;
        }
        string actual;
        try
        {
            // Device files (file:///dev/zero) report length 0 and would hash forever; no weights file is empty.
            if (new FileInfo(path).Length == 0) throw new IOException("empty, or not a regular file");
            await using var file = File.OpenRead(path);
            actual = Convert.ToHexStringLower(await SHA256.HashDataAsync(file, cancellationToken).ConfigureAwait(false));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Refused++;
            logger.LogError("Policy v{Version}: {Path} cannot be read ({Error}); refused", policyEvent.Version, path, e.Message);
            return;
        }
        if (!string.Equals(actual, policyEvent.Sha256, StringComparison.OrdinalIgnoreCase))
        {
            Refused++;
            logger.LogError("Policy v{Version}: {Path} has SHA-256 {Actual}, the event says {Expected}; refused", policyEvent.Version, path, actual, policyEvent.Sha256);
            return;
        }
        try
        {
            await thread.RunAsync(() =>
            {
                var model = PolicyCheckpoint.LoadWeightsFile(path);
                ITokenizer tokenizer;
                try
                {
                    tokenizer = TokenizerLoader.FromDirectory(Path.GetDirectoryName(path)!);
                }
                catch
                {
                    model.Dispose();
                    throw;
                }
                policy.Adopt(model, tokenizer, policyEvent.Version, actual);
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is InvalidCheckpointException or TokenizerFormatException or IOException or InvalidDataException or System.Runtime.InteropServices.ExternalException or SafeTensorsFormatException)
        {
            Refused++;
            logger.LogError("Policy v{Version} at {Path} does not load: {Error}", policyEvent.Version, path, e.Message);
            return;
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested && e is not OutOfMemoryException)
        {
            // Last line of defence, as for records: whatever a policy file holds, the generator keeps serving the
            // version it has rather than stopping (a restart would read the same event again).
            Refused++;
            logger.LogError(e, "Policy v{Version} at {Path} does not load: unexpected {ExceptionType}; the current policy stays", policyEvent.Version, path, e.GetType().FullName);
            return;
        }
        Loads++;
        metrics.SetPolicyVersion(policyEvent.Version);
        status.SetPolicyVersion(policyEvent.Version);
        logger.LogInformation("Now generating with policy v{Version} ({Kind} event, {Path})", policyEvent.Version, policyEvent.Kind.ToString().ToLowerInvariant(), path);
    }
}
