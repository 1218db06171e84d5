using PrefOnline.Build;

namespace PrefOnline.Tensors.Tests.Build;

/// <summary>
/// The Debian 12 load fix (build/LibTorchSharpPatch.cs) on copies of the real libLibTorchSharp.so:
/// exactly the missing, never-called GLIBCXX_3.4.32 requirement becomes weak; nothing changes where the
/// system libstdc++ has it; a version bound to a real symbol is refused; the restored package and the
/// patched output copy are what they should be.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class LibTorchSharpPatchTests
{
    private const string Missing = "GLIBCXX_3.4.32";

    private static byte[] Pristine() => File.ReadAllBytes(BuildFacts.PackagedLibTorchSharp);

    /// <summary>What Debian 12's libstdc++ defines, as far as this library asks: every libstdc++ version it needs but 3.4.32.</summary>
    private static HashSet<string> Debian12Versions(byte[] library) =>
        ElfVersions.Needs(library).Where(n => n.File == ElfVersions.LibStdCxx && n.Version != Missing).Select(n => n.Version).ToHashSet();

    [Fact]
    public void The_shipped_library_needs_GLIBCXX_3_4_32_for_ios_base_library_init_only()
    {
        var need = ElfVersions.Needs(Pristine()).Single(n => n.Version == Missing);
        Assert.Equal(ElfVersions.LibStdCxx, need.File);
        Assert.Equal(["_ZSt21ios_base_library_initv"], need.Symbols);
        Assert.False(need.IsWeak);
    }

    [Fact]
    public void Patching_marks_exactly_that_requirement_weak_and_changes_two_bytes()
    {
        var original = Pristine();
        var patched = (byte[])original.Clone();

        Assert.Equal(ElfPatchOutcome.Patched, ElfVersions.Patch(patched, Debian12Versions(original)));

        var before = ElfVersions.Needs(original);
        var after = ElfVersions.Needs(patched);
        Assert.Equal(before.Count, after.Count);
        for (var i = 0; i < before.Count; i++)
        {
            Assert.Equal(before[i].Version, after[i].Version);
            Assert.Equal(before[i].Version == Missing ? before[i].Flags | ElfVersions.WeakFlag : before[i].Flags, after[i].Flags);
        }
        var changed = Enumerable.Range(0, original.Length).Where(i => original[i] != patched[i]).ToList();
        var flags = before.Single(n => n.Version == Missing).FlagsOffset;
        Assert.All(changed, i => Assert.InRange(i, flags, flags + 1));
        Assert.NotEmpty(changed);
    }

    [Fact]
    public void Patching_twice_changes_nothing_the_second_time()
    {
        var library = Pristine();
        var system = Debian12Versions(library);
        ElfVersions.Patch(library, system);
        var once = (byte[])library.Clone();

        Assert.Equal(ElfPatchOutcome.AlreadyPatched, ElfVersions.Patch(library, system));
        Assert.Equal(once, library);
    }

    [Fact]
    public void Nothing_changes_where_the_system_libstdcxx_defines_every_version()
    {
        var library = Pristine();
        var system = Debian12Versions(library);
        system.Add(Missing);  // Ubuntu 24.04's libstdc++ goes up to GLIBCXX_3.4.33

        Assert.Equal(ElfPatchOutcome.NotNeeded, ElfVersions.Patch(library, system));
        Assert.Equal(Pristine(), library);
    }

    [Fact]
    public void A_missing_version_bound_to_a_symbol_that_is_called_is_refused_and_nothing_changes()
    {
        var library = Pristine();
        var system = Debian12Versions(library);
        system.Remove("GLIBCXX_3.4.30");  // binds std::condition_variable::wait, called all the time

        var e = Assert.Throws<InvalidOperationException>(() => ElfVersions.Patch(library, system));
        Assert.Contains("GLIBCXX_3.4.30", e.Message);
        Assert.Contains("_ZNSt18condition_variable4wait", e.Message);
        Assert.Equal(Pristine(), library);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(63)]
    [InlineData(4096)]
    [InlineData(300_000)]
    public void A_truncated_or_foreign_file_is_a_format_error(int length)
    {
        var cut = Pristine().AsSpan(0, length).ToArray();
        Assert.Throws<InvalidDataException>(() => ElfVersions.Patch(cut, new HashSet<string>()));
        var text = "#!/bin/sh\necho not a library\n"u8.ToArray();
        Assert.Throws<InvalidDataException>(() => ElfVersions.Needs(text));
    }

    [Fact]
    public void The_system_libstdcxx_version_definitions_are_read()
    {
        var path = ElfVersions.FindSystemLibStdCxx();
        Assert.True(path is not null, "no libstdc++.so.6 on this machine (apt-get install libstdc++6)");
        var versions = ElfVersions.Definitions(File.ReadAllBytes(path!));
        Assert.Contains("GLIBCXX_3.4", versions);
        Assert.Contains("GLIBCXX_3.4.30", versions);  // Debian 12 (GCC 12) and anything newer
        Assert.Contains("CXXABI_1.3", versions);
    }

    [Fact]
    public void Patching_a_file_replaces_it_keeping_mode_and_timestamp()
    {
        var dir = Directory.CreateTempSubdirectory("libtorchsharp-patch-");
        try
        {
            var copy = Path.Combine(dir.FullName, "libLibTorchSharp.so");
            File.Copy(BuildFacts.PackagedLibTorchSharp, copy);
            var stamp = new DateTime(2024, 1, 2, 3, 4, 5, DateTimeKind.Utc);
            File.SetLastWriteTimeUtc(copy, stamp);
            File.SetUnixFileMode(copy, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead);
            // A stand-in system library: the real one with 3.4.32 guaranteed absent, so the test means the same on any machine.
            var libstdcxx = ElfVersions.FindSystemLibStdCxx()!;
            var system = ElfVersions.Definitions(File.ReadAllBytes(libstdcxx)).ToHashSet();
            var outcome = system.Contains(Missing) ? ElfPatchOutcome.NotNeeded : ElfPatchOutcome.Patched;

            Assert.Equal(outcome, ElfVersions.PatchFile(copy, libstdcxx));

            Assert.Equal(stamp, File.GetLastWriteTimeUtc(copy));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead, File.GetUnixFileMode(copy));
            Assert.Equal(outcome == ElfPatchOutcome.Patched, ElfVersions.Needs(File.ReadAllBytes(copy)).Single(n => n.Version == Missing).IsWeak);
            Assert.Equal([copy], Directory.GetFiles(dir.FullName));  // no temporary left behind
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void The_build_patched_this_output_copy_where_needed_and_left_the_restored_package_alone()
    {
        var system = ElfVersions.Definitions(File.ReadAllBytes(ElfVersions.FindSystemLibStdCxx()!));
        var output = ElfVersions.Needs(File.ReadAllBytes(BuildFacts.OutputLibTorchSharp)).Single(n => n.Version == Missing);
        var packaged = ElfVersions.Needs(Pristine()).Single(n => n.Version == Missing);

        Assert.Equal(!system.Contains(Missing), output.IsWeak);
        Assert.False(packaged.IsWeak, $"{BuildFacts.PackagedLibTorchSharp} was modified: the build must patch only its output copy");
    }
}
