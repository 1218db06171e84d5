using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using PrefOnline.Streaming.Intake;

namespace PrefOnline.Worker.Pipeline;

/// <summary>
/// One input topic's front door inside a pipeline epoch: runs a <see cref="ValidatingIntake"/> (replays
/// skipped, bad records dead-lettered with their reason, counted) and hands valid records to a bounded
/// channel. When the channel is full the intake stops reading, the source's own bounded buffer fills,
/// and the consumer stops fetching: backpressure all the way to the broker.
/// </summary>
public sealed class IntakeStage(string name, ValidatingIntake intake, int capacity, ILogger logger)
{
    private readonly Channel<ValidatedRecord> channel = Channel.CreateBounded<ValidatedRecord>(new BoundedChannelOptions(capacity)
    {
        SingleWriter = true,
        FullMode = BoundedChannelFullMode.Wait,
    });

    public string Name { get; } = name;

    public ChannelReader<ValidatedRecord> Records => channel.Reader;

    /// <summary>Reads until cancelled (intake stops) or the source ends; then completes the channel.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var record in intake.ReadAllAsync(cancellationToken).ConfigureAwait(false))
                await channel.Writer.WriteAsync(record, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        finally
        {
            channel.Writer.TryComplete();
            logger.LogDebug("Intake {Name} stopped ({Replays} replays skipped)", Name, intake.Replays);
        }
    }
}
