using FsCheck;
using FsCheck.Fluent;

namespace PrefOnline.Learning.Tests.Tokenization;

/// <summary>FsCheck with a fixed seed (the run is reproducible) that throws on the first counterexample.</summary>
internal static class PropertyCheck
{
    public static void ForAll<T>(Arbitrary<T> arbitrary, Func<T, bool> property, int tests = 300, ulong seed = 20240601)
    {
        var config = Config.QuickThrowOnFailure
            .WithMaxTest(tests)
            .WithReplay(new FsCheck.Replay(new Rnd(seed), Microsoft.FSharp.Core.FSharpOption<int>.None));   // qualified: PrefOnline.Learning.Replay (the replay buffer) would shadow it
        Check.One(config, Prop.ForAll(arbitrary, property));
    }

    /// <summary>Arbitrary bytes, biased towards UTF-8 pieces so valid and broken sequences both appear often.</summary>
    public static Arbitrary<byte[]> Utf8LikeBytes()
    {
        var pieces = new[]
        {
            "a"u8.ToArray(), " "u8.ToArray(), "  "u8.ToArray(), "\n"u8.ToArray(), "'s"u8.ToArray(), "7"u8.ToArray(),
            "é"u8.ToArray(), "日"u8.ToArray(), "😀"u8.ToArray(), "𝐀"u8.ToArray(), "\u0301"u8.ToArray(), "\u00A0"u8.ToArray(),
            new byte[] { 0xED, 0xA0, 0x80 }, new byte[] { 0xFF }, new byte[] { 0x80 }, new byte[] { 0xE2, 0x82 }, new byte[] { 0 },
        };
        var piece = Gen.OneOf(
            Gen.Elements(pieces),
            ArbMap.Default.GeneratorFor<byte>().Select(b => new[] { b }));
        return Gen.ListOf(piece).Select(list => list.SelectMany(p => p).ToArray())
            .ToArbitrary();
    }

    public static Arbitrary<byte[]> AnyBytes() => ArbMap.Default.ArbFor<byte[]>();

    /// <summary>Any .NET string, lone surrogates included.</summary>
    public static Arbitrary<string> AnyString() =>
        ArbMap.Default.GeneratorFor<string>().Where(s => s is not null)
            .Select(s => s)
            .ToArbitrary();

    /// <summary>Strings that are valid UTF-16 (no lone surrogates), drawn from every plane.</summary>
    public static Arbitrary<string> ValidString()
    {
        var scalar = Gen.Frequency(
            (4, Gen.Choose(0x20, 0x7E)),
            (2, Gen.Choose(0, 0xD7FF)),
            (1, Gen.Choose(0xE000, 0xFFFF)),
            (2, Gen.Choose(0x10000, 0x10FFFF)));
        return Gen.ListOf(scalar).Select(cs => string.Concat(cs.Select(c => char.ConvertFromUtf32(c)))).ToArbitrary();
    }
}
