// MKL's CPU-vendor check in LibTorch, answered "Intel" in the build output's copy of libtorch_cpu.so.
// Compiled by MSBuild as an inline task (build/TorchSharp.targets) and by tests/PrefOnline.Tensors.Tests
// (with ELF_PATCH_TESTS defined, which leaves out the MSBuild task class). README "MKL on AMD CPUs"
// gives the measurements.
//
// LibTorch 2.10 (TorchSharp's libtorch-cpu/-cuda packages) links Intel MKL statically. MKL picks its
// GEMM kernels by CPU features only after mkl_serv_intel_cpu_true() — a CPUID vendor test for
// "GenuineIntel" — says yes; on AMD it falls back to generic AVX2 code that reaches half the fp32 GEMM
// throughput of the AVX-512 kernels the same CPU runs fine (AMD EPYC with AVX-512, 2 threads: ~120 vs
// ~300 GFLOP/s at 1024³). MKL still checks every instruction-set feature by CPUID after the vendor
// test, so a CPU without AVX-512 gets AVX2 kernels as before; on Intel CPUs the function returns 1
// anyway. The well-known MKL_DEBUG_CPU_TYPE=5 switch for this was removed from MKL in 2020.
//
// The patch replaces the first six bytes of that exported function with `mov eax, 1; ret`, after
// checking that the function is what we think it is (its body compares CPUID output with the three
// words of "GenuineIntel"). Like the libstdc++ patch it rewrites a COPY in the build output by writing
// a new file and renaming it over the old one, keeping the timestamps; the NuGet cache is never
// touched. The MSBuild property PatchMklVendorCheck=false turns it off.

#nullable enable

using System;
using System.IO;
using System.Text;

namespace PrefOnline.Build
{
    /// <summary>What <see cref="MklVendorCheck.PatchFile"/> did.</summary>
    public enum MklVendorCheckOutcome
    {
        /// <summary>The library has no exported mkl_serv_intel_cpu_true (no MKL linked in): nothing to do.</summary>
        NoVendorCheck,

        /// <summary>The function already returns 1 unconditionally.</summary>
        AlreadyPatched,

        /// <summary>The function now returns 1 unconditionally.</summary>
        Patched,
    }

    /// <summary>Where MKL's vendor check lives in a library, and the patch that answers it "Intel".</summary>
    public static class MklVendorCheck
    {
        public const string Symbol = "mkl_serv_intel_cpu_true";

        /// <summary>mov eax, 1; ret</summary>
        public static readonly byte[] ReturnOne = { 0xB8, 0x01, 0x00, 0x00, 0x00, 0xC3 };

        /// <summary>"Genu", "ineI", "ntel" as the little-endian imm32 operands CPUID's vendor words are compared with.</summary>
        private static readonly uint[] GenuineIntelWords = { 0x756e6547, 0x49656e69, 0x6c65746e };

        /// <summary>
        /// File offset and bytes of the exported function <paramref name="symbol"/>, or null when the
        /// library does not export it.
        /// </summary>
        public static (long Offset, byte[] Body)? Find(Stream elf, string symbol)
        {
            var header = ReadAt(elf, 0, 64, "ELF header");
            if (header[0] != 0x7f || header[1] != (byte)'E' || header[2] != (byte)'L' || header[3] != (byte)'F')
                throw new InvalidDataException("not an ELF file");
            if (header[4] != 2 || header[5] != 1) throw new InvalidDataException("not a little-endian ELF64 file");
            var sectionTable = (long)Le(header, 0x28, 8);
            var entrySize = (int)Le(header, 0x3A, 2);
            var count = (int)Le(header, 0x3C, 2);
            if (count == 0 || entrySize < 64) throw new InvalidDataException("ELF file has no section headers");
            var sections = ReadAt(elf, sectionTable, (long)count * entrySize, "section headers");
            long Field(int section, int at, int bytes) => (long)Le(sections, section * entrySize + at, bytes);

            for (var s = 0; s < count; s++)
            {
                if (Field(s, 4, 4) != 11 /* SHT_DYNSYM */) continue;
                var symbolSize = Field(s, 56, 8) == 0 ? 24 : Field(s, 56, 8);
                var link = (int)Field(s, 40, 4);
                if (link >= count) throw new InvalidDataException(".dynsym links to a section that does not exist");
                var symbols = ReadAt(elf, Field(s, 24, 8), Field(s, 32, 8), ".dynsym");
                var names = ReadAt(elf, Field(link, 24, 8), Field(link, 32, 8), ".dynstr");
                var wanted = Encoding.ASCII.GetBytes(symbol + "\0");
                for (long i = 0; (i + 1) * symbolSize <= symbols.Length; i++)
                {
                    var entry = (int)(i * symbolSize);
                    var name = (long)Le(symbols, entry, 4);
                    if (!NameIs(names, name, wanted)) continue;
                    var kind = symbols[entry + 4] & 0xf;
                    var sectionIndex = (int)Le(symbols, entry + 6, 2);
                    var address = (long)Le(symbols, entry + 8, 8);
                    var size = (long)Le(symbols, entry + 16, 8);
                    if (kind != 2 /* STT_FUNC */ || sectionIndex == 0 || sectionIndex >= count)
                        throw new InvalidDataException($"{symbol} is not a function defined in the library");
                    if (size < ReturnOne.Length || size > 4096) throw new InvalidDataException($"{symbol} is {size} bytes long, not a small function");
                    var offset = Field(sectionIndex, 24, 8) + (address - Field(sectionIndex, 16, 8));
                    return (offset, ReadAt(elf, offset, size, symbol));
                }
            }
            return null;
        }

        /// <summary>
        /// Makes the vendor check in the library at <paramref name="path"/> return 1. The file is
        /// replaced by a new one (copy beside, patch, rename over) with the old timestamps.
        /// </summary>
        /// <exception cref="InvalidDataException">The exported function is not the GenuineIntel test this
        /// patch was written for (a future MKL): nothing is changed.</exception>
        public static MklVendorCheckOutcome PatchFile(string path)
        {
            long offset;
            using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read))
            {
                var found = Find(stream, Symbol);
                if (found is null) return MklVendorCheckOutcome.NoVendorCheck;
                var body = found.Value.Body;
                if (StartsWith(body, ReturnOne)) return MklVendorCheckOutcome.AlreadyPatched;
                foreach (var word in GenuineIntelWords)
                    if (!ContainsImm32(body, word))
                        throw new InvalidDataException($"{Symbol} does not compare CPUID's vendor with \"GenuineIntel\" as expected; set PatchMklVendorCheck=false to build without the patch");
                offset = found.Value.Offset;
            }
            var written = File.GetLastWriteTimeUtc(path);
            var temporary = path + ".patch-" + Guid.NewGuid().ToString("N");
            try
            {
                File.Copy(path, temporary);
                using (var stream = new FileStream(temporary, FileMode.Open, FileAccess.Write))
                {
                    stream.Seek(offset, SeekOrigin.Begin);
                    stream.Write(ReturnOne, 0, ReturnOne.Length);
                }
                File.SetLastWriteTimeUtc(temporary, written);
                File.Replace(temporary, path, null);
            }
            finally
            {
                if (File.Exists(temporary)) File.Delete(temporary);
            }
            return MklVendorCheckOutcome.Patched;
        }

        public static bool StartsWith(byte[] body, byte[] prefix)
        {
            if (body.Length < prefix.Length) return false;
            for (var i = 0; i < prefix.Length; i++)
                if (body[i] != prefix[i]) return false;
            return true;
        }

        private static bool ContainsImm32(byte[] body, uint word)
        {
            for (var i = 0; i + 4 <= body.Length; i++)
                if (Le(body, i, 4) == word) return true;
            return false;
        }

        private static bool NameIs(byte[] names, long offset, byte[] wanted)
        {
            if (offset < 0 || offset + wanted.Length > names.Length) return false;
            for (var i = 0; i < wanted.Length; i++)
                if (names[offset + i] != wanted[i]) return false;
            return true;
        }

        private static byte[] ReadAt(Stream elf, long offset, long length, string what)
        {
            if (offset < 0 || length < 0 || length > int.MaxValue || offset > elf.Length - length)
                throw new InvalidDataException($"ELF {what} at offset {offset} runs past the end of the {elf.Length}-byte file");
            var buffer = new byte[length];
            elf.Seek(offset, SeekOrigin.Begin);
            var read = 0;
            while (read < buffer.Length)
            {
                var n = elf.Read(buffer, read, buffer.Length - read);
                if (n == 0) throw new EndOfStreamException($"ELF {what} ends early");
                read += n;
            }
            return buffer;
        }

        // Little-endian reads by hand: MSBuild compiles this file against netstandard2.0, without System.Buffers.
        private static ulong Le(byte[] bytes, long offset, int count)
        {
            if (offset < 0 || offset > bytes.Length - count) throw new InvalidDataException("ELF field runs past its table");
            ulong value = 0;
            for (var i = count - 1; i >= 0; i--) value = (value << 8) | bytes[offset + i];
            return value;
        }
    }

#if !ELF_PATCH_TESTS
    /// <summary>
    /// MSBuild task: makes MKL's vendor check in copies of libtorch_cpu.so in a build or publish
    /// output (never the NuGet cache) answer "Intel", so AMD CPUs get MKL's fast kernels.
    /// </summary>
    public sealed class PatchMklVendorCheck : Microsoft.Build.Utilities.Task
    {
        [Microsoft.Build.Framework.Required]
        public Microsoft.Build.Framework.ITaskItem[] Libraries { get; set; } = Array.Empty<Microsoft.Build.Framework.ITaskItem>();

        public override bool Execute()
        {
            foreach (var item in Libraries)
            {
                var path = item.ItemSpec;
                if (!File.Exists(path)) continue;
                try
                {
                    var outcome = MklVendorCheck.PatchFile(path);
                    var importance = outcome == MklVendorCheckOutcome.Patched ? Microsoft.Build.Framework.MessageImportance.High : Microsoft.Build.Framework.MessageImportance.Low;
                    Log.LogMessage(importance, "{0}: {1}", path, outcome switch
                    {
                        MklVendorCheckOutcome.Patched => "MKL's vendor check now answers Intel (fast kernels on AMD CPUs)",
                        MklVendorCheckOutcome.AlreadyPatched => "MKL's vendor check already patched",
                        _ => "no MKL vendor check in this library",
                    });
                }
                catch (Exception e) when (e is InvalidDataException or IOException)
                {
                    Log.LogError("{0}: cannot patch MKL's vendor check: {1}", path, e.Message);
                }
            }
            return !Log.HasLoggedErrors;
        }
    }
#endif
}
