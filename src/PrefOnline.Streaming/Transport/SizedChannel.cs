using System.Diagnostics.CodeAnalysis;
using System.Threading.Channels;

namespace PrefOnline.Streaming.Transport;

/// <summary>
/// A channel bounded twice: by a number of items and by their bytes. A record buffer bounded only by count holds
/// count × the largest record (1,024 records of 256 KiB are 256 MiB); the byte bound keeps what waits between a
/// consumer and its reader to <see cref="MaxBytes"/> whatever the records' sizes, while small records still fill the
/// count. An item alone always fits (the reader must be able to make progress), so the bytes held never exceed
/// <see cref="MaxBytes"/> + one item. The cost of an item is computed by the caller's function when it enters and
/// again when it is read, so the function must depend on the item only. One writer, any number of readers.
/// </summary>
public sealed class SizedChannel<T>
{
    private readonly Channel<T> inner;
    private readonly Func<T, long> costOf;
    private TaskCompletionSource room = NewSignal();
    private long bytes;

    /// <param name="capacity">Most items held.</param>
    /// <param name="maxBytes">Most bytes held (an item alone always fits).</param>
    /// <param name="costOf">Bytes an item holds (e.g. its payload plus a per-item overhead); must not change while it waits.</param>
    public SizedChannel(int capacity, long maxBytes, Func<T, long> costOf)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBytes, 1);
        ArgumentNullException.ThrowIfNull(costOf);
        inner = Channel.CreateBounded<T>(new BoundedChannelOptions(capacity) { SingleWriter = true, FullMode = BoundedChannelFullMode.Wait });
        this.costOf = costOf;
        MaxBytes = maxBytes;
        Reader = new CostReleasingReader(this);
    }

    public long MaxBytes { get; }

    /// <summary>Bytes of the items waiting now.</summary>
    public long Bytes => Interlocked.Read(ref bytes);

    /// <summary>Reading an item gives its bytes back.</summary>
    public ChannelReader<T> Reader { get; }

    /// <summary>Adds <paramref name="item"/> unless the channel is full by count, or by bytes while it holds something.</summary>
    public bool TryWrite(T item)
    {
        var cost = costOf(item);
        var held = Interlocked.Read(ref bytes);
        if (held > 0 && held + cost > MaxBytes) return false;
        Interlocked.Add(ref bytes, cost); // before the item becomes readable: a reader must never give back more than was taken
        if (inner.Writer.TryWrite(item)) return true;
        Release(cost);
        return false;
    }

    /// <summary>Adds <paramref name="item"/>, waiting for room by count and by bytes.</summary>
    /// <exception cref="ChannelClosedException">The channel was completed.</exception>
    public async ValueTask WriteAsync(T item, CancellationToken cancellationToken)
    {
        while (true)
        {
            var signal = Volatile.Read(ref room).Task; // taken before trying: a release in between completes it
            if (TryWrite(item)) return;
            var held = Interlocked.Read(ref bytes);
            if (held > 0 && held + costOf(item) > MaxBytes)
            {
                await signal.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            else if (!await inner.Writer.WaitToWriteAsync(cancellationToken).ConfigureAwait(false))
            {
                throw new ChannelClosedException();
            }
        }
    }

    public bool TryComplete(Exception? error = null) => inner.Writer.TryComplete(error);

    private void Release(long cost)
    {
        Interlocked.Add(ref bytes, -cost);
        Interlocked.Exchange(ref room, NewSignal()).TrySetResult();
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private sealed class CostReleasingReader(SizedChannel<T> owner) : ChannelReader<T>
    {
        public override Task Completion => owner.inner.Reader.Completion;

        public override bool CanCount => owner.inner.Reader.CanCount;

        public override int Count => owner.inner.Reader.Count;

        public override bool CanPeek => owner.inner.Reader.CanPeek;

        public override bool TryPeek([MaybeNullWhen(false)] out T item) => owner.inner.Reader.TryPeek(out item);

        public override bool TryRead([MaybeNullWhen(false)] out T item)
        {
            if (!owner.inner.Reader.TryRead(out item)) return false;
            owner.Release(owner.costOf(item));
            return true;
        }

        public override ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken = default) => owner.inner.Reader.WaitToReadAsync(cancellationToken);
    }
}
