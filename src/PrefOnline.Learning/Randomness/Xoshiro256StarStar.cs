namespace PrefOnline.Learning.Randomness;

/// <summary>
/// xoshiro256** (Blackman &amp; Vigna 2018): a small, fast generator whose whole state is four 64-bit
/// words, so it can be checkpointed exactly (System.Random's state cannot). Seeded through SplitMix64
/// as its authors recommend. Not for cryptography.
/// </summary>
public sealed class Xoshiro256StarStar
{
    private ulong s0, s1, s2, s3;

    public Xoshiro256StarStar(ulong seed)
    {
        var x = seed;
        s0 = SplitMix64(ref x);
        s1 = SplitMix64(ref x);
        s2 = SplitMix64(ref x);
        s3 = SplitMix64(ref x);
    }

    private Xoshiro256StarStar(ulong a, ulong b, ulong c, ulong d) => (s0, s1, s2, s3) = (a, b, c, d);

    /// <summary>Rebuilds a generator from <see cref="GetState"/>; the all-zero state is invalid (the generator would emit zeros forever).</summary>
    public static Xoshiro256StarStar FromState(ReadOnlySpan<ulong> state)
    {
        if (state.Length != 4) throw new ArgumentException($"state must be 4 words, got {state.Length}", nameof(state));
        if (state[0] == 0 && state[1] == 0 && state[2] == 0 && state[3] == 0) throw new ArgumentException("the all-zero state is invalid for xoshiro256**", nameof(state));
        return new Xoshiro256StarStar(state[0], state[1], state[2], state[3]);
    }

    public ulong[] GetState() => [s0, s1, s2, s3];

    public ulong NextUInt64()
    {
        var result = RotateLeft(s1 * 5, 7) * 9;
        var t = s1 << 17;
        s2 ^= s0;
        s3 ^= s1;
        s1 ^= s2;
        s0 ^= s3;
        s2 ^= t;
        s3 = RotateLeft(s3, 45);
        return result;
    }

    /// <summary>Uniform on [0, <paramref name="bound"/>) without modulo bias (Lemire's multiply-shift with rejection).</summary>
    public ulong NextBelow(ulong bound)
    {
        if (bound == 0) throw new ArgumentOutOfRangeException(nameof(bound), "bound must be positive");
        var threshold = (0 - bound) % bound;
        while (true)
        {
            var product = (UInt128)NextUInt64() * bound;
            if ((ulong)product >= threshold) return (ulong)(product >> 64);
        }
    }

    /// <summary>Uniform on [0, <paramref name="bound"/>).</summary>
    public int NextInt(int bound)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bound);
        return (int)NextBelow((ulong)bound);
    }

    /// <summary>Uniform on [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    private static ulong RotateLeft(ulong x, int k) => (x << k) | (x >> (64 - k));

    private static ulong SplitMix64(ref ulong x)
    {
        var z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
