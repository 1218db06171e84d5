// The Debian 12 load fix for TorchSharp's native library, compiled by MSBuild as an inline task
// (build/TorchSharp.targets) and by tests/PrefOnline.Tensors.Tests (with ELF_PATCH_TESTS defined,
// which leaves out the MSBuild task class). README "Debian 12 and libLibTorchSharp.so" says why.
//
// TorchSharp 0.107's libLibTorchSharp.so was linked by GCC 15 and lists GLIBCXX_3.4.32 among the
// versions it needs from libstdc++.so.6; Debian 12's libstdc++ stops at GLIBCXX_3.4.30, so the dynamic
// loader refuses the library ("version `GLIBCXX_3.4.32' not found"). The only symbol of that version
// it binds is std::ios_base_library_init(), which GCC 13+ headers reference to pull in iostream
// start-up and never call. Marking that version requirement weak (VER_FLG_WEAK in its Elf64_Vernaux
// entry of .gnu.version_r) tells the loader to load the library anyway.
//
// The patch is deliberately narrow: it only weakens a libstdc++ version the system library does not
// define AND whose every symbol is on the known-unused list below; any other missing version is an
// error (weakening it would turn a clean load failure into a crash at the first call). It rewrites a
// copy in the build output by writing a new file and renaming it over the old one, so a hard link
// into the NuGet cache is never written through, and it keeps the file's timestamps so MSBuild's
// incremental copy leaves the patched copy alone on the next build.

#nullable enable

using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;

namespace PrefOnline.Build
{
    /// <summary>One version a library needs from another (an Elf64_Vernaux entry of .gnu.version_r).</summary>
    public sealed class ElfVersionNeed
    {
        public ElfVersionNeed(string file, string version, ushort flags, ushort index, long flagsOffset, IReadOnlyList<string> symbols)
        {
            File = file;
            Version = version;
            Flags = flags;
            Index = index;
            FlagsOffset = flagsOffset;
            Symbols = symbols;
        }

        /// <summary>The library it is needed from (vn_file), e.g. libstdc++.so.6.</summary>
        public string File { get; }

        /// <summary>The version name (vna_name), e.g. GLIBCXX_3.4.32.</summary>
        public string Version { get; }

        /// <summary>vna_flags; <see cref="ElfVersions.WeakFlag"/> marks a weak requirement.</summary>
        public ushort Flags { get; }

        /// <summary>vna_other: the version index symbols carry in .gnu.version.</summary>
        public ushort Index { get; }

        /// <summary>File offset of vna_flags (where the patch writes).</summary>
        public long FlagsOffset { get; }

        /// <summary>Dynamic symbols bound to this version.</summary>
        public IReadOnlyList<string> Symbols { get; }

        public bool IsWeak => (Flags & ElfVersions.WeakFlag) != 0;
    }

    /// <summary>What <see cref="ElfVersions.Patch"/> did to one library.</summary>
    public enum ElfPatchOutcome
    {
        /// <summary>The system library defines every version needed: nothing to do.</summary>
        NotNeeded,

        /// <summary>The missing versions were already weak (patched before).</summary>
        AlreadyPatched,

        /// <summary>Missing, known-unused versions were marked weak.</summary>
        Patched,
    }

    /// <summary>Reads and patches symbol-version tables of little-endian ELF64 shared libraries.</summary>
    public static class ElfVersions
    {
        /// <summary>VER_FLG_WEAK: a missing version is then not a load error.</summary>
        public const ushort WeakFlag = 0x2;

        public const string LibStdCxx = "libstdc++.so.6";

        /// <summary>Symbols referenced but never called (see the file comment); a version that binds only
        /// these may be weakened.</summary>
        public static readonly IReadOnlyCollection<string> KnownUnusedSymbols = new[] { "_ZSt21ios_base_library_initv" };

        private const uint ShtDynsym = 11;
        private const uint ShtGnuVerdef = 0x6ffffffd;
        private const uint ShtGnuVerneed = 0x6ffffffe;
        private const uint ShtGnuVersym = 0x6fffffff;

        /// <summary>The version names a library defines (.gnu.version_d), e.g. every GLIBCXX_* of libstdc++.</summary>
        public static IReadOnlyCollection<string> Definitions(byte[] elf)
        {
            var sections = Sections(elf);
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var verdef in sections.Where(s => s.Type == ShtGnuVerdef))
            {
                var strings = Linked(sections, verdef);
                long entry = verdef.Offset;
                for (var i = 0; i < verdef.Info; i++)
                {
                    Require(elf, entry, 20, "version definition");
                    var auxCount = U16(elf, entry + 6);
                    var aux = entry + U32(elf, entry + 12);
                    // The first Verdaux names the version itself; later ones name its parents.
                    if (auxCount > 0)
                    {
                        Require(elf, aux, 8, "version definition name");
                        names.Add(Str(elf, strings, U32(elf, aux)));
                    }
                    var next = U32(elf, entry + 16);
                    if (next == 0) break;
                    entry += next;
                }
            }
            return names;
        }

        /// <summary>Every version requirement (.gnu.version_r) with the dynamic symbols bound to it.</summary>
        public static IReadOnlyList<ElfVersionNeed> Needs(byte[] elf)
        {
            var sections = Sections(elf);
            var symbolsByIndex = SymbolsByVersionIndex(elf, sections);
            var needs = new List<ElfVersionNeed>();
            foreach (var verneed in sections.Where(s => s.Type == ShtGnuVerneed))
            {
                var strings = Linked(sections, verneed);
                long entry = verneed.Offset;
                for (var i = 0; i < verneed.Info; i++)
                {
                    Require(elf, entry, 16, "version requirement");
                    var count = U16(elf, entry + 2);
                    var file = Str(elf, strings, U32(elf, entry + 4));
                    var aux = entry + U32(elf, entry + 8);
                    for (var j = 0; j < count; j++)
                    {
                        Require(elf, aux, 16, "version requirement entry");
                        var index = U16(elf, aux + 6);
                        symbolsByIndex.TryGetValue(index, out var symbols);
                        needs.Add(new ElfVersionNeed(file, Str(elf, strings, U32(elf, aux + 8)), U16(elf, aux + 4), index, aux + 4,
                            symbols ?? new List<string>()));
                        var nextAux = U32(elf, aux + 12);
                        if (nextAux == 0) break;
                        aux += nextAux;
                    }
                    var next = U32(elf, entry + 12);
                    if (next == 0) break;
                    entry += next;
                }
            }
            return needs;
        }

        /// <summary>
        /// The libstdc++ requirements of <paramref name="library"/> that <paramref name="systemVersions"/>
        /// (the definitions of the libstdc++.so.6 the loader will find) lacks.
        /// </summary>
        public static IReadOnlyList<ElfVersionNeed> Missing(byte[] library, IReadOnlyCollection<string> systemVersions) =>
            Needs(library).Where(n => n.File == LibStdCxx && !systemVersions.Contains(n.Version)).ToList();

        /// <summary>
        /// Marks weak, in place, every libstdc++ version <paramref name="library"/> needs that
        /// <paramref name="systemVersions"/> lacks, provided each binds known-unused symbols only.
        /// </summary>
        /// <exception cref="InvalidOperationException">A missing version binds a symbol that is really used:
        /// the library cannot work with this libstdc++, and weakening would only hide that.</exception>
        public static ElfPatchOutcome Patch(byte[] library, IReadOnlyCollection<string> systemVersions)
        {
            var missing = Missing(library, systemVersions);
            if (missing.Count == 0) return ElfPatchOutcome.NotNeeded;
            foreach (var need in missing)
            {
                var used = need.Symbols.Where(s => !KnownUnusedSymbols.Contains(s)).ToList();
                if (used.Count > 0)
                    throw new InvalidOperationException(
                        $"the library needs {need.Version} from {LibStdCxx} for {string.Join(", ", used.Take(5))}, which the system's libstdc++ does not provide; " +
                        "install a newer libstdc++6 (GCC 13 or later) or build on a newer distribution");
            }
            if (missing.All(n => n.IsWeak)) return ElfPatchOutcome.AlreadyPatched;
            foreach (var need in missing)
            {
                var flags = need.Flags | WeakFlag;
                library[need.FlagsOffset] = (byte)flags;
                library[need.FlagsOffset + 1] = (byte)(flags >> 8);
            }
            return ElfPatchOutcome.Patched;
        }

        /// <summary>
        /// Patches the file at <paramref name="path"/> against the system library at
        /// <paramref name="systemLibStdCxx"/> (see <see cref="Patch(byte[], IReadOnlyCollection{string})"/>). The
        /// file is replaced by a new one (write beside, rename over) with the old timestamps.
        /// </summary>
        public static ElfPatchOutcome PatchFile(string path, string systemLibStdCxx)
        {
            var systemVersions = Definitions(System.IO.File.ReadAllBytes(systemLibStdCxx));
            var bytes = System.IO.File.ReadAllBytes(path);
            var outcome = Patch(bytes, systemVersions);
            if (outcome != ElfPatchOutcome.Patched) return outcome;
            var written = System.IO.File.GetLastWriteTimeUtc(path);
            var temporary = path + ".patch-" + Guid.NewGuid().ToString("N");
            try
            {
                // A copy keeps the file mode; the new bytes go into it, then it replaces the original by rename.
                System.IO.File.Copy(path, temporary);
                using (var stream = new FileStream(temporary, FileMode.Open, FileAccess.Write))
                    stream.Write(bytes, 0, bytes.Length);
                System.IO.File.SetLastWriteTimeUtc(temporary, written);
                System.IO.File.Replace(temporary, path, null);
            }
            finally
            {
                if (System.IO.File.Exists(temporary)) System.IO.File.Delete(temporary);
            }
            return outcome;
        }

        /// <summary>The libstdc++.so.6 the dynamic loader finds first on a Debian/Ubuntu/Fedora-like system, or null.</summary>
        public static string? FindSystemLibStdCxx()
        {
            foreach (var dir in new[] { "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib" })
            {
                var candidate = Path.Combine(dir, LibStdCxx);
                if (System.IO.File.Exists(candidate)) return candidate;
            }
            return null;
        }

        // ---- ELF64 little-endian reading, every offset bounds-checked -----------------------------------

        private readonly struct Section
        {
            public Section(uint type, long offset, long size, uint link, uint info, long entrySize)
            {
                Type = type;
                Offset = offset;
                Size = size;
                Link = link;
                Info = info;
                EntrySize = entrySize;
            }

            public uint Type { get; }
            public long Offset { get; }
            public long Size { get; }
            public uint Link { get; }
            public uint Info { get; }
            public long EntrySize { get; }
        }

        private static List<Section> Sections(byte[] elf)
        {
            if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
                throw new InvalidDataException("not an ELF file");
            if (elf[4] != 2 || elf[5] != 1) throw new InvalidDataException("not a little-endian ELF64 file");
            var sectionTable = (long)U64(elf, 0x28);
            var entrySize = U16(elf, 0x3A);
            var count = U16(elf, 0x3C);
            if (count == 0 || entrySize < 64) throw new InvalidDataException("ELF file has no section headers");
            var sections = new List<Section>(count);
            for (var i = 0; i < count; i++)
            {
                var header = sectionTable + (long)i * entrySize;
                Require(elf, header, 64, "section header");
                var section = new Section(U32(elf, header + 4), (long)U64(elf, header + 24), (long)U64(elf, header + 32), U32(elf, header + 40),
                    U32(elf, header + 44), (long)U64(elf, header + 56));
                if (section.Type != 8 /* SHT_NOBITS */) Require(elf, section.Offset, section.Size, "section");
                sections.Add(section);
            }
            return sections;
        }

        private static Section Linked(List<Section> sections, Section section)
        {
            if (section.Link >= sections.Count) throw new InvalidDataException("section links to a section that does not exist");
            return sections[(int)section.Link];
        }

        private static Dictionary<ushort, List<string>> SymbolsByVersionIndex(byte[] elf, List<Section> sections)
        {
            var result = new Dictionary<ushort, List<string>>();
            var dynsym = sections.Where(s => s.Type == ShtDynsym).ToList();
            var versym = sections.Where(s => s.Type == ShtGnuVersym).ToList();
            if (dynsym.Count != 1 || versym.Count != 1) return result;
            var symbols = dynsym[0];
            var strings = Linked(sections, symbols);
            var entrySize = symbols.EntrySize == 0 ? 24 : symbols.EntrySize;
            var count = Math.Min(symbols.Size / entrySize, versym[0].Size / 2);
            for (long i = 0; i < count; i++)
            {
                var index = (ushort)(U16(elf, versym[0].Offset + 2 * i) & 0x7fff);
                if (index < 2) continue;  // 0 = local, 1 = global unversioned
                if (!result.TryGetValue(index, out var names)) result[index] = names = new List<string>();
                names.Add(Str(elf, strings, U32(elf, symbols.Offset + i * entrySize)));
            }
            return result;
        }

        private static string Str(byte[] elf, Section table, uint offset)
        {
            if (offset >= table.Size) throw new InvalidDataException("string offset outside its string table");
            var start = table.Offset + offset;
            var end = Array.IndexOf(elf, (byte)0, (int)start, (int)(table.Offset + table.Size - start));
            if (end < 0) throw new InvalidDataException("unterminated string in a string table");
            return Encoding.UTF8.GetString(elf, (int)start, (int)(end - start));
        }

        private static void Require(byte[] elf, long offset, long length, string what)
        {
            if (offset < 0 || length < 0 || offset > elf.Length - length)
                throw new InvalidDataException($"ELF {what} at offset {offset} runs past the end of the {elf.Length}-byte file");
        }

        // Little-endian reads by hand: MSBuild compiles this file against netstandard2.0, without System.Buffers.
        private static ushort U16(byte[] elf, long offset) => (ushort)Read(elf, offset, 2);

        private static uint U32(byte[] elf, long offset) => (uint)Read(elf, offset, 4);

        private static ulong U64(byte[] elf, long offset) => Read(elf, offset, 8);

        private static ulong Read(byte[] elf, long offset, int bytes)
        {
            Require(elf, offset, bytes, "field");
            ulong value = 0;
            for (var i = bytes - 1; i >= 0; i--) value = (value << 8) | elf[offset + i];
            return value;
        }
    }

#if !ELF_PATCH_TESTS
    /// <summary>
    /// MSBuild task: patches copies of libLibTorchSharp.so in a build or publish output (never the
    /// NuGet cache) so they load with the system's libstdc++. A no-op where that libstdc++ is new enough.
    /// </summary>
    public sealed class PatchLibTorchSharpForSystemLibStdCxx : Microsoft.Build.Utilities.Task
    {
        [Microsoft.Build.Framework.Required]
        public Microsoft.Build.Framework.ITaskItem[] Libraries { get; set; } = Array.Empty<Microsoft.Build.Framework.ITaskItem>();

        /// <summary>The libstdc++.so.6 to check against; by default the one the loader finds.</summary>
        public string? SystemLibStdCxx { get; set; }

        public override bool Execute()
        {
            var system = string.IsNullOrEmpty(SystemLibStdCxx) ? ElfVersions.FindSystemLibStdCxx() : SystemLibStdCxx;
            if (system is null || !System.IO.File.Exists(system))
            {
                Log.LogWarning("no libstdc++.so.6 found on this machine; libLibTorchSharp.so left as shipped");
                return true;
            }
            foreach (var item in Libraries)
            {
                var path = item.ItemSpec;
                if (!System.IO.File.Exists(path)) continue;
                try
                {
                    var outcome = ElfVersions.PatchFile(path, system);
                    var importance = outcome == ElfPatchOutcome.Patched ? Microsoft.Build.Framework.MessageImportance.High : Microsoft.Build.Framework.MessageImportance.Low;
                    Log.LogMessage(importance, "{0}: {1} (system libstdc++: {2})", path, outcome switch
                    {
                        ElfPatchOutcome.Patched => "marked GLIBCXX versions the system lacks as weak",
                        ElfPatchOutcome.AlreadyPatched => "already patched",
                        _ => "no patch needed",
                    }, system);
                }
                catch (Exception e) when (e is InvalidOperationException or InvalidDataException or IOException)
                {
                    Log.LogError("{0}: cannot make it load with {1}: {2}", path, system, e.Message);
                }
            }
            return !Log.HasLoggedErrors;
        }
    }
#endif
}
