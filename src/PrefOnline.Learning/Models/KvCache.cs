using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Learning.Models;

/// <summary>
/// The keys and values of every layer for incremental decoding: per layer one (N, Hkv, capacity, D)
/// buffer each (Hkv = the key/value heads: fewer than the query heads with grouped-query attention),
/// allocated once and written in place (a decode step copies one position into it; nothing
/// grows by concatenation). Rows are aligned: all hold the same number of positions, <see cref="Length"/>
/// (prompts are left-padded, and attention masks hide the padding). Owned by one decode call.
/// </summary>
public sealed class KvCache : IDisposable
{
    private readonly Tensor[] keys;
    private readonly Tensor[] values;

    /// <param name="rows">N: sequences decoded together.</param>
    /// <param name="capacity">Positions each row can hold (prompt + new tokens), at most the context.</param>
    public KvCache(DecoderConfig config, long rows, long capacity, ScalarType dtype, Device device)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rows, 1);
        if (capacity < 1 || capacity > config.ContextLength)
            throw new ArgumentOutOfRangeException(nameof(capacity), capacity, $"a cache holds 1 to {config.ContextLength} positions");
        Capacity = capacity;
        keys = new Tensor[config.Layers];
        values = new Tensor[config.Layers];
        for (var layer = 0; layer < config.Layers; layer++)
        {
            // Owned by the cache, outside every dispose scope.
            keys[layer] = empty([rows, config.KeyValueHeads, capacity, config.HeadDim], dtype, device).DetachFromDisposeScope();   // (N, Hkv, capacity, D)
            values[layer] = empty([rows, config.KeyValueHeads, capacity, config.HeadDim], dtype, device).DetachFromDisposeScope(); // (N, Hkv, capacity, D)
        }
    }

    /// <summary>Rows currently held (N; fewer after <see cref="KeepRows"/>).</summary>
    public long Rows => keys[0].size(0);

    public long Capacity { get; }

    /// <summary>Positions filled so far (the same for every row).</summary>
    public long Length { get; private set; }

    /// <summary>
    /// Writes one layer's keys and values for <paramref name="count"/> new positions at
    /// [<see cref="Length"/>, <see cref="Length"/> + count) and returns the views over every position
    /// written so far, (N, Hkv, Length + count, D) each. <see cref="Advance"/> moves <see cref="Length"/> on
    /// once every layer has written.
    /// </summary>
    internal (Tensor Keys, Tensor Values) Append(int layer, Tensor newKeys, Tensor newValues)
    {
        var count = newKeys.size(2);
        if (Length + count > Capacity)
            throw new InvalidOperationException($"the KV cache holds {Capacity} positions; {Length} are used and {count} more were written");
        keys[layer].narrow(2, Length, count).copy_(newKeys);
        values[layer].narrow(2, Length, count).copy_(newValues);
        return (keys[layer].narrow(2, 0, Length + count), values[layer].narrow(2, 0, Length + count));
    }

    /// <summary>Marks <paramref name="count"/> more positions as filled (after a forward over them).</summary>
    internal void Advance(long count) => Length += count;

    /// <summary>
    /// Keeps only the rows <paramref name="rows"/> (int64 indices, in the order given), so a decode loop
    /// stops spending work on finished rows. Copies the kept rows into new buffers of that size.
    /// </summary>
    public void KeepRows(Tensor rows) => Replace(t => t.index_select(0, rows));

    /// <summary>Repeats every row <paramref name="times"/> times in place of itself (row r becomes rows
    /// r·times … r·times + times − 1): a prompt prefilled once serves all of its samples.</summary>
    public void RepeatRows(long times)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(times, 1);
        if (times > 1) Replace(t => t.repeat_interleave(times, dim: 0));
    }

    private void Replace(Func<Tensor, Tensor> select)
    {
        for (var layer = 0; layer < keys.Length; layer++)
        {
            var k = select(keys[layer]).DetachFromDisposeScope();
            var v = select(values[layer]).DetachFromDisposeScope();
            keys[layer].Dispose();
            values[layer].Dispose();
            keys[layer] = k;
            values[layer] = v;
        }
    }

    public void Dispose()
    {
        foreach (var t in keys) t.Dispose();
        foreach (var t in values) t.Dispose();
    }
}
