// The inner loops of the fused GPT-2 decoder (gpt2_kernels.cpp), compiled once per x86-64 ISA
// level and reached through a table of function pointers, so one library runs on any x86-64 CPU
// with the widest vectors it has. Every kernel works on a range (of columns, rows or vocabulary
// entries) so that threads can split it; none allocates or synchronises.
#pragma once

#include <cstdint>

namespace pk::gpt2 {

// What a linear layer does with its result: Y = X·W + b, Y += X·W + b (a residual add), or
// Y = GELU(X·W + b) (GPT-2's tanh approximation).
enum Epilogue : int { kStore = 0, kAccumulate = 1, kGelu = 2 };

struct Kernels {
    // Columns [j0, j1) of Y [M, N] (row stride ldy) = epilogue(X [M, K] (row stride ldx) · W [K, N] + bias [N]).
    void (*linear_cols)(const float* X, int64_t M, int64_t ldx, const float* W, int64_t N, const float* bias, int64_t K, float* Y, int64_t ldy,
                        int64_t j0, int64_t j1, int epilogue);
    // out[m, v] (row stride ldo) = H[m]·E[v] for vocabulary rows v in [v0, v1): H [M, C], E [V, C].
    void (*lm_head)(const float* H, int64_t M, int64_t C, const float* E, int64_t v0, int64_t v1, float* out, int64_t ldo);
    // Y[m] = LayerNorm(X[m]) · w + b over rows of C (biased variance, as torch.nn.LayerNorm).
    void (*layer_norm_rows)(const float* X, float* Y, int64_t M, int64_t C, const float* w, const float* b, float eps);
    // out [D] = softmax(scale · q·k_t) · V over T cached positions; keys transposed Kt [D, stride], V [T, D].
    void (*attend)(const float* q, const float* Kt, int64_t stride, const float* V, int64_t T, int64_t D, float scale, float* scores, float* out);
    // w[i] = e^(scale·x[i] - shift) for i < n; returns Σ w.
    double (*exp_shifted)(const float* x, int64_t n, float scale, float shift, float* w);
    // Σ e^(x[i] - shift).
    double (*sum_exp)(const float* x, int64_t n, float shift);
    // First index of the largest element (as torch.argmax on CPU).
    int64_t (*argmax)(const float* x, int64_t n);
    float (*max_of)(const float* x, int64_t n);
};

enum KernelLevel : int { kBaseline = 0, kAvx2 = 1, kAvx512 = 2 };

// The best level this CPU supports.
int supported_level();
// Selects the highest supported level not above `requested` (process-wide); returns it.
int select_level(int requested);
int active_level();
const Kernels& kernels();

}  // namespace pk::gpt2
