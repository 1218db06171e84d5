// The C ABI of native/prefonline_kernels.h. The structs mirror the C ones field by field (same order,
// sequential layout); NativeAbiTests compares their sizes with the library's.
using System.Runtime.InteropServices;

namespace PrefOnline.Kernels.Interop;

internal static unsafe partial class NativeMethods
{
    private const string Lib = NativeLibraryLoader.LibraryName;

    [LibraryImport(Lib)] internal static partial IntPtr pk_last_error();
    [LibraryImport(Lib)] internal static partial long pk_abi_size(int which);
    [LibraryImport(Lib)] internal static partial int pk_kernel_level(int requested);
    [LibraryImport(Lib)] internal static partial int pk_threads(int requested);
    [LibraryImport(Lib)] internal static partial int pk_row_random(ulong seed, long count, ulong* output);
    [LibraryImport(Lib)] internal static partial IntPtr pk_gpt2_new(PkGpt2Shape* shape);
    [LibraryImport(Lib)] internal static partial void pk_gpt2_free(IntPtr decoder);
    [LibraryImport(Lib)] internal static partial int pk_gpt2_check_weights(DecoderHandle decoder, PkTensor* weights, int weightCount);
    [LibraryImport(Lib)] internal static partial int pk_gpt2_logits(DecoderHandle decoder, PkTensor* weights, int weightCount, int* tokens, int* lengths, int count, float* output);
    [LibraryImport(Lib)] internal static partial int pk_gpt2_generate(DecoderHandle decoder, PkTensor* weights, int weightCount, PkDecodeRequest* request, PkDecodeOutput* output);

    /// <summary>The message of this thread's last failed call.</summary>
    internal static string LastError()
    {
        var message = Marshal.PtrToStringUTF8(pk_last_error());
        return string.IsNullOrWhiteSpace(message) ? "unknown native error" : message.Trim();
    }
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct PkTensor
{
    public float* Data;
    public long Ndim;
    public fixed long Shape[4];
}

[StructLayout(LayoutKind.Sequential)]
internal struct PkGpt2Shape
{
    public long Layers;
    public long Heads;
    public long Width;
    public long Vocab;
    public long Context;
    public double Eps;
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct PkDecodeRequest
{
    public int* Tokens;
    public int* Lengths;
    public ulong* Seeds;
    public int* Suppressed;
    public byte* TokenBytes;
    public long* TokenOffsets;
    public byte* StopBytes;
    public int* StopOffsets;
    public int* Cancel;
    public double Temperature;
    public double TopP;
    public long TokenCount;
    public int PromptCount;
    public int SamplesPerPrompt;
    public int MaxNewTokens;
    public int TopK;
    public int EosId;
    public int SuppressedCount;
    public int StopCount;
    public int Reserved;
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct PkDecodeOutput
{
    public int* Tokens;
    public float* PolicyLogProbs;
    public float* SamplerLogProbs;
    public int* Lengths;
    public int* Finish;
}
