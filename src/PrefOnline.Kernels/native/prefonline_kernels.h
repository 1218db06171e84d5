// The C ABI of libprefonline_kernels.so, the project's own CPU kernels (no libtorch inside: plain
// C++17 over float pointers). Called from C# by src/PrefOnline.Kernels/Interop/NativeMethods.cs; the
// structs below are mirrored there field by field (a test compares their sizes via pk_abi_size).
//
// Conventions, the same for every export:
//   * No C++ exception crosses this boundary: each body is wrapped in a catch-all. A failure is
//     signalled by the return value (a null handle, or status 1) and its message is kept in a
//     thread-local string that pk_last_error returns; read it on the same thread, right after the call.
//   * Status codes: 0 = done, 1 = error (pk_last_error), 2 = cancelled (outputs hold what was done).
//   * Memory passed in is borrowed for the duration of the call only; nothing is retained.
#pragma once

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PK_EXPORT __attribute__((visibility("default")))

// A float32 tensor read in place: row-major and contiguous, in CPU memory.
typedef struct pk_tensor {
    const float* data;
    int64_t ndim;      // 1 or 2 here
    int64_t shape[4];  // shape[0..ndim)
} pk_tensor;

// The architecture numbers of a GPT-2 model.
typedef struct pk_gpt2_shape {
    int64_t layers;
    int64_t heads;
    int64_t width;    // C, a multiple of heads
    int64_t vocab;    // V (LM head tied to the token embedding)
    int64_t context;  // positions the learned position table covers
    double eps;       // layer norm epsilon
} pk_gpt2_shape;

// One generate call. Prompts are packed back to back; rows are prompt * samples_per_prompt + sample.
typedef struct pk_decode_request {
    const int32_t* tokens;          // sum(lengths) prompt token ids
    const int32_t* lengths;         // prompt_count lengths, each >= 1
    const uint64_t* seeds;          // one per row (row_random.h: how a row's draws are made)
    const int32_t* suppressed;      // ids never sampled (may be null when suppressed_count = 0)
    const uint8_t* token_bytes;     // bytes of every token id, concatenated (only for stop sequences)
    const int64_t* token_offsets;   // token_count + 1 offsets into token_bytes
    const uint8_t* stop_bytes;      // stop sequences, concatenated
    const int32_t* stop_offsets;    // stop_count + 1 offsets into stop_bytes
    const volatile int32_t* cancel; // polled between decode steps; non-zero stops (status 2). May be null.
    double temperature;             // 0 = greedy
    double top_p;                   // (0, 1], 1 = off
    int64_t token_count;            // entries of the token byte table
    int32_t prompt_count;
    int32_t samples_per_prompt;
    int32_t max_new_tokens;
    int32_t top_k;                  // 0 = off
    int32_t eos_id;                 // -1 = never stop on a token
    int32_t suppressed_count;
    int32_t stop_count;
    int32_t reserved;               // 0 (keeps the struct a multiple of 8 bytes)
} pk_decode_request;

// Where a generate call writes: rows x max_new_tokens, row-major; a row is valid up to lengths[row].
typedef struct pk_decode_output {
    int32_t* tokens;
    float* policy_logprobs;   // log softmax(logits)[token]: the untempered, untruncated policy
    float* sampler_logprobs;  // log q(token) under the distribution actually sampled (0 for greedy)
    int32_t* lengths;
    int32_t* finish;          // 0 = length, 1 = end-of-sequence token, 2 = stop sequence
} pk_decode_output;

PK_EXPORT const char* pk_last_error(void);

// sizeof of the ABI structs: 0 pk_tensor, 1 pk_gpt2_shape, 2 pk_decode_request, 3 pk_decode_output;
// -1 for any other value.
PK_EXPORT int64_t pk_abi_size(int32_t which);

// Kernel set: 2 = AVX-512 (x86-64-v4), 1 = AVX2 + FMA (x86-64-v3), 0 = SSE2 baseline. requested >= 0
// selects the highest supported level not above it, process-wide (tests, A/B measurements); -1 only
// asks. Returns the level in effect (-1 on error).
PK_EXPORT int32_t pk_kernel_level(int32_t requested);

// Threads of the process-wide pool the kernels split their loops over (the calling thread counts as
// one). requested >= 1 sets it; 0 only asks. Returns the count in effect (-1 on error).
PK_EXPORT int32_t pk_threads(int32_t requested);

// The first `count` 64-bit outputs of the random stream of a row seeded with `seed` (row_random.h),
// for tests that check it against the managed generator. Status.
PK_EXPORT int32_t pk_row_random(uint64_t seed, int64_t count, uint64_t* out);

// A decoder: the shape and reusable scratch (KV cache, activations). Weights are passed to every call.
PK_EXPORT void* pk_gpt2_new(const pk_gpt2_shape* shape);
PK_EXPORT void pk_gpt2_free(void* decoder);

// Weights: 4 + 12 * layers tensors in the order given by gpt2_decoder.cpp's header comment.

// Checks a weight table against the decoder's shape (count, shapes, non-null) without computing. Status.
PK_EXPORT int32_t pk_gpt2_check_weights(void* decoder, const pk_tensor* weights, int32_t weight_count);

// Logits of every position of `count` packed sequences into out [sum(lengths), vocab]. Status.
PK_EXPORT int32_t pk_gpt2_logits(void* decoder, const pk_tensor* weights, int32_t weight_count, const int32_t* tokens,
                                 const int32_t* lengths, int32_t count, float* out);

// Samples request->samples_per_prompt continuations of every prompt. Status (0, 1 or 2).
PK_EXPORT int32_t pk_gpt2_generate(void* decoder, const pk_tensor* weights, int32_t weight_count, const pk_decode_request* request,
                                   const pk_decode_output* output);

#ifdef __cplusplus
}
#endif
