// Exports of native/gpt2_decoder.cpp: the fused GPT-2 sampling decoder.
using System.Runtime.InteropServices;

namespace PrefOnline.Torch.Interop;

internal static unsafe partial class NativeMethods
{
    [LibraryImport(Lib)] internal static partial IntPtr pt_gpt2_decoder_new(long layers, long heads, long width, long vocab, long context, double eps, IntPtr* weights, int count);
    [LibraryImport(Lib)] internal static partial void pt_gpt2_decoder_free(IntPtr decoder);
    [LibraryImport(Lib)] internal static partial int pt_gpt2_decoder_kernels(int requested);
    [LibraryImport(Lib)] internal static partial int pt_gpt2_decoder_holds(DecoderHandle decoder, IntPtr* weights, int count);
    [LibraryImport(Lib)] internal static partial int pt_gpt2_decoder_logits(DecoderHandle decoder, int* tokens, int* lengths, int count, float* output);

    [LibraryImport(Lib)]
    internal static partial int pt_gpt2_decoder_generate(
        DecoderHandle decoder, int* tokens, int* lengths, int count, Gpt2SamplingParameters* parameters, ulong* seeds, IntPtr generator, int* suppressed, int suppressedCount,
        byte* tokenBytes, long* tokenOffsets, long tokenTableSize, byte* stopBytes, int* stopOffsets, int stopCount, int* cancel,
        int* outTokens, float* outPolicyLogProbs, float* outSamplerLogProbs, int* outLengths, int* outFinish);
}

/// <summary>Mirrors <c>gpt2::SamplingParameters</c> in gpt2_decoder.cpp field by field.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct Gpt2SamplingParameters
{
    public double Temperature;
    public double TopP;
    public int TopK;
    public int MaxNewTokens;
    public int SamplesPerPrompt;
    public int EndOfSequenceId;
}
