using System.Text;
using PrefOnline.Build;
using static TorchSharp.torch;

namespace PrefOnline.Tensors.Tests.Build;

/// <summary>
/// The MKL vendor-check patch (build/MklVendorCheckPatch.cs): the shipped libtorch_cpu.so has the
/// GenuineIntel test; a patched copy returns 1 at its start and nothing else moves; twice is a no-op;
/// a library without MKL is left alone; a function of that name that is not the vendor test is refused;
/// the patch is opt-in, so the default build ships the output's copy exactly as packaged; GEMM through
/// MKL computes the right numbers.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class MklVendorCheckPatchTests
{
    private static (long Offset, byte[] Body) VendorCheckIn(string path)
    {
        using var stream = File.OpenRead(path);
        return MklVendorCheck.Find(stream, MklVendorCheck.Symbol) ?? throw new Xunit.Sdk.XunitException($"{path} exports no {MklVendorCheck.Symbol}");
    }

    [Fact]
    public void The_restored_libtorch_cpu_tests_the_vendor_and_the_default_build_ships_it_unpatched()
    {
        var packaged = VendorCheckIn(BuildFacts.PackagedLibTorchCpu);
        var output = VendorCheckIn(BuildFacts.OutputLibTorchCpu);

        Assert.False(MklVendorCheck.StartsWith(packaged.Body, MklVendorCheck.ReturnOne),
            $"{BuildFacts.PackagedLibTorchCpu} was modified: a build must never touch the restored package");
        var immediates = Encoding.ASCII.GetString(Immediates(packaged.Body));
        Assert.All(new[] { "Genu", "ineI", "ntel" }, word => Assert.Contains(word, immediates));
        Assert.Equal(packaged.Offset, output.Offset);
        Assert.True(packaged.Body.AsSpan().SequenceEqual(output.Body),
            $"{BuildFacts.OutputLibTorchCpu} differs from the package: the vendor-check patch is opt-in (PatchMklVendorCheck=true)");
    }

    [Fact]
    public void Patching_a_copy_changes_six_bytes_keeps_mode_and_timestamp_and_twice_is_a_no_op()
    {
        var dir = Directory.CreateTempSubdirectory("mkl-vendor-patch-");
        try
        {
            var copy = Path.Combine(dir.FullName, "libtorch_cpu.so");
            File.Copy(BuildFacts.PackagedLibTorchCpu, copy);
            var stamp = new DateTime(2024, 1, 2, 3, 4, 5, DateTimeKind.Utc);
            File.SetLastWriteTimeUtc(copy, stamp);
            File.SetUnixFileMode(copy, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            var before = VendorCheckIn(copy);

            Assert.Equal(MklVendorCheckOutcome.Patched, MklVendorCheck.PatchFile(copy));
            Assert.Equal(MklVendorCheckOutcome.AlreadyPatched, MklVendorCheck.PatchFile(copy));

            var after = VendorCheckIn(copy);
            Assert.Equal(MklVendorCheck.ReturnOne, after.Body[..6]);
            Assert.Equal(before.Body[6..], after.Body[6..]);
            Assert.Equal(new FileInfo(BuildFacts.PackagedLibTorchCpu).Length, new FileInfo(copy).Length);
            Assert.Equal(stamp, File.GetLastWriteTimeUtc(copy));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(copy));
            Assert.Equal([copy], Directory.GetFiles(dir.FullName));  // no temporary left behind
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void A_library_without_MKL_is_left_alone()
    {
        var dir = Directory.CreateTempSubdirectory("mkl-vendor-patch-");
        try
        {
            var copy = Path.Combine(dir.FullName, "libLibTorchSharp.so");
            File.Copy(BuildFacts.PackagedLibTorchSharp, copy);
            var bytes = File.ReadAllBytes(copy);

            Assert.Equal(MklVendorCheckOutcome.NoVendorCheck, MklVendorCheck.PatchFile(copy));
            Assert.Equal(bytes, File.ReadAllBytes(copy));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void A_function_of_that_name_that_is_not_the_vendor_test_is_refused_and_nothing_changes()
    {
        var dir = Directory.CreateTempSubdirectory("mkl-vendor-patch-");
        try
        {
            // libLibTorchSharp.so with an exported function renamed (same length) to the vendor check's name.
            var copy = Path.Combine(dir.FullName, "libLibTorchSharp.so");
            var bytes = File.ReadAllBytes(BuildFacts.PackagedLibTorchSharp);
            var renamed = Replace(bytes, "THSCuda_manual_seed_all\0", MklVendorCheck.Symbol + "\0");
            Assert.True(renamed > 0);
            File.WriteAllBytes(copy, bytes);

            var error = Assert.Throws<InvalidDataException>(() => MklVendorCheck.PatchFile(copy));
            Assert.Contains("GenuineIntel", error.Message);
            Assert.Contains("PatchMklVendorCheck=false", error.Message);
            Assert.Equal(bytes, File.ReadAllBytes(copy));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(63)]
    [InlineData(4096)]
    public void A_truncated_file_is_a_format_error(int length)
    {
        var bytes = File.ReadAllBytes(BuildFacts.PackagedLibTorchSharp)[..length];
        using var stream = new MemoryStream(bytes);
        Assert.Throws<InvalidDataException>(() => MklVendorCheck.Find(stream, MklVendorCheck.Symbol));
    }

    [Fact]
    public void Matrix_products_through_MKL_match_float64_arithmetic()
    {
        TorchEngine.EnsureLoaded();
        using var scope = NewDisposeScope();
        using var generator = new Generator(7);
        // Odd shapes reach MKL's edge kernels as well as its main blocks.
        var a = randn([257, 131], dtype: ScalarType.Float64, generator: generator);
        var b = randn([131, 263], dtype: ScalarType.Float64, generator: generator);
        var exact = a.mm(b);
        var single = a.to(ScalarType.Float32).mm(b.to(ScalarType.Float32)).to(ScalarType.Float64);
        var worst = (single - exact).abs().max().item<double>();
        Assert.True(worst < 1e-4, $"fp32 GEMM differs from float64 by {worst}");
    }

    /// <summary>The bytes of every 4-byte immediate operand a `mov r32, imm32` (B8..BF) loads, in order.</summary>
    private static byte[] Immediates(byte[] body)
    {
        var result = new List<byte>();
        for (var i = 0; i + 5 <= body.Length; i++)
            if (body[i] is >= 0xB8 and <= 0xBF) result.AddRange(body[(i + 1)..(i + 5)]);
        return [.. result];
    }

    private static int Replace(byte[] bytes, string from, string to)
    {
        var needle = Encoding.ASCII.GetBytes(from);
        var replacement = Encoding.ASCII.GetBytes(to);
        var count = 0;
        for (var i = 0; i + needle.Length <= bytes.Length; i++)
        {
            if (!bytes.AsSpan(i, needle.Length).SequenceEqual(needle)) continue;
            replacement.CopyTo(bytes, i);
            count++;
        }
        return count;
    }
}
