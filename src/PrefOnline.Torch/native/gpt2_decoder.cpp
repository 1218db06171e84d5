// A fused GPT-2 decoder for sampling: prompt prefill and the whole decode loop (forward pass,
// temperature / top-k / top-p sampling, log-probs, EOS and stop-sequence checks) in ONE native call.
//
// Why not ATen ops: at batch 1 a GPT-2 step is ~25 small ops per layer, and each ATen op costs
// microseconds of dispatch, allocation and (with OpenMP) parallel-region overhead, which is most of the
// step at this size. Here a step is a handful of hand-written loops over raw float pointers:
//   * linear layers: a register-blocked x·W kernel on the Hugging Face Conv1D layout [in, out] as is
//     (no transposed copy), with the bias, the residual add and GELU fused into its epilogue;
//   * attention over a per-row KV cache, layer norm, softmax, exp: plain vector loops.
// The loops use GCC vector extensions and are compiled three times (AVX-512, AVX2+FMA, SSE2), each
// with the register width and blocking of its ISA; the best one the CPU supports is used (another
// can be forced, for tests), so the library still runs on any x86-64.
//
// Weights are NOT copied: the decoder holds at::Tensor references to the model's own parameters
// (same TensorImpl, shared storage) and re-reads their data pointers, dtypes and shapes at every
// call, so in-place optimizer updates are seen by the next call and nothing can go stale.
//
// Batching scheme (no padding at all): prompts of different lengths are packed back to back for the
// prefill (ragged batch: the linear layers see one [sum of lengths, C] matrix; attention runs per
// prompt with its own causal range) and every row keeps its own KV cache and position counter, so
// each row sees exactly the positions 0..n-1 it would see alone. There is nothing to mask, and a
// row's result does not depend on what else is in the batch.
#include "shim.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <limits>
#include <memory>
#include <numeric>
#include <string>

// Vector types are passed between always-inline helpers only; the ABI note does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace gpt2 {

// ---- vector primitives ---------------------------------------------------------------------------
//
// Kernels are written once over GCC vector types and instantiated per ISA level with that level's
// register width and register blocking: AVX-512 has 32 registers of 16 floats, AVX2 and SSE2 have 16
// registers of 8 and 4 floats, so a block that fits one spills on the others (measured: a 64-byte
// vector blocking compiled for AVX2 ran 10x slower than the same code for AVX-512).

#define INLINE __attribute__((always_inline)) inline
// A kernel's one body, inlined into each per-ISA copy (see "one copy of the kernels per ISA level").
#define KERNEL INLINE

template <int L>
struct VectorTypes;
template <>
struct VectorTypes<16> {
    typedef float f __attribute__((vector_size(64)));
    typedef int32_t i __attribute__((vector_size(64)));
};
template <>
struct VectorTypes<8> {
    typedef float f __attribute__((vector_size(32)));
    typedef int32_t i __attribute__((vector_size(32)));
};
template <>
struct VectorTypes<4> {
    typedef float f __attribute__((vector_size(16)));
    typedef int32_t i __attribute__((vector_size(16)));
};

// An ISA level's vector shape: L floats per register; a linear-layer block is 4 rows × NV registers
// of accumulators, an LM-head block 4 rows × VR vocabulary entries.
template <int L, int NV, int VR>
struct Isa {
    static constexpr int64_t lanes = L;
    static constexpr int linear_vectors = NV;
    static constexpr int head_entries = VR;
    using vf = typename VectorTypes<L>::f;
    using vi = typename VectorTypes<L>::i;
};
using IsaAvx512 = Isa<16, 4, 4>;   // 16 + 4 + 1 of 32 registers
using IsaAvx2 = Isa<8, 3, 2>;      // 12 + 3 + 1 of 16 registers
using IsaBaseline = Isa<4, 3, 2>;  // 12 + 3 + 1 of 16 registers

template <class V>
INLINE V load(const float* p) {
    V v;
    std::memcpy(&v, p, sizeof(v));
    return v;
}
template <class V>
INLINE void store(float* p, V v) {
    std::memcpy(p, &v, sizeof(v));
}
template <class V>
INLINE V splat(float s) {
    return V{} + s;
}

template <class V>
INLINE float hsum(V v) {
    constexpr int L = sizeof(V) / sizeof(float);
    typedef typename VectorTypes<L>::i VI;
    if constexpr (L == 16) v += __builtin_shuffle(v, VI{8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7});
    if constexpr (L >= 8) {
        if constexpr (L == 16) v += __builtin_shuffle(v, VI{4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11});
        else v += __builtin_shuffle(v, VI{4, 5, 6, 7, 0, 1, 2, 3});
    }
    if constexpr (L == 16) {
        v += __builtin_shuffle(v, VI{2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13});
        v += __builtin_shuffle(v, VI{1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14});
    } else if constexpr (L == 8) {
        v += __builtin_shuffle(v, VI{2, 3, 0, 1, 6, 7, 4, 5});
        v += __builtin_shuffle(v, VI{1, 0, 3, 2, 5, 4, 7, 6});
    } else {
        v += __builtin_shuffle(v, VI{2, 3, 0, 1});
        v += __builtin_shuffle(v, VI{1, 0, 3, 2});
    }
    return v[0];
}

template <class V>
INLINE float hmax(V v) {
    constexpr int L = sizeof(V) / sizeof(float);
    float m = v[0];
    for (int i = 1; i < L; ++i) m = v[i] > m ? v[i] : m;
    return m;
}

// e^x to ~1 ulp (Cephes expf: x = n·ln2 + r, degree-6 polynomial in r, scale by 2^n via the exponent
// bits). Below -87.3 the result is exactly 0 (softmax tails), above 88 it saturates at e^88.
template <class V>
INLINE V vexp(V x) {
    typedef typename VectorTypes<sizeof(V) / sizeof(float)>::i VI;
    const V lo = splat<V>(-87.3365447504f);
    V xc = x > 88.0f ? splat<V>(88.0f) : x;
    xc = xc < lo ? lo : xc;
    V fx = xc * 1.44269504088896341f + 0.5f;
    V tf = __builtin_convertvector(__builtin_convertvector(fx, VI), V);
    tf = tf > fx ? tf - 1.0f : tf;  // floor
    V r = xc - tf * 0.693359375f + tf * 2.12194440e-4f;
    V r2 = r * r;
    V y = (((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r + 4.1665795894e-2f) * r + 1.6666665459e-1f) * r +
           5.0000001201e-1f) * r2 + r + 1.0f;
    VI bits = (__builtin_convertvector(tf, VI) + 127) << 23;
    V scale;
    std::memcpy(&scale, &bits, sizeof(scale));
    y = y * scale;
    return x < lo ? V{} : y;
}

// GELU, tanh approximation: 0.5·x·(1 + tanh(u)) = x / (1 + e^(-2u)), u = √(2/π)·(x + 0.044715·x³).
template <class V>
INLINE V vgelu(V x) {
    V u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
    return x / (1.0f + vexp(-2.0f * u));
}
INLINE float gelu(float x) {
    float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
    return x / (1.0f + std::exp(-2.0f * u));
}

// ---- kernels (each works on a range, so threads can split it) --------------------------------------

enum Epilogue { kStore = 0, kAccumulate = 1, kGelu = 2 };

// Walks the cache lines of a block of weight rows, [row, row + rows) × [j0, j0 + 64·lines_per_row
// bytes), issuing `each` prefetches per call of step().
struct Prefetcher {
    const char* row = nullptr;  // start of the current weight row's column range
    int64_t stride = 0;         // bytes between weight rows
    int64_t lines_per_row = 0;
    int64_t col = 0;            // next line within the row
    int64_t left = 0;           // lines not yet prefetched
    int64_t each = 0;
    INLINE void step() {
        for (int64_t i = 0; i < each && left > 0; ++i, --left) {
            __builtin_prefetch(row + 64 * col);
            if (++col == lines_per_row) {
                col = 0;
                row += stride;
            }
        }
    }
};

// Y[m, j..j+L·NV) for rows m < MR over the weight rows k in [k0, k1):
//   first block: acc = bias (+ Y when accumulating); later blocks: acc = Y (the partial sum so far);
//   the last block applies GELU when asked. Each k iteration also advances the prefetch of the next
//   block (see linear_cols).
template <class I, int MR, int NV>
INLINE void linear_block(const float* X, int64_t ldx, const float* W, int64_t N, const float* bias, int64_t k0, int64_t k1, float* Y, int64_t ldy,
                         int64_t j, int epilogue, bool first, bool last, Prefetcher& pf) {
    using vf = typename I::vf;
    constexpr int64_t L = I::lanes;
    vf acc[MR][NV];
    for (int q = 0; q < NV; ++q) {
        const vf b = first ? load<vf>(bias + j + L * q) : vf{};
        for (int r = 0; r < MR; ++r)
            acc[r][q] = first ? (epilogue == kAccumulate ? b + load<vf>(Y + r * ldy + j + L * q) : b) : load<vf>(Y + r * ldy + j + L * q);
    }
    for (int64_t k = k0; k < k1; ++k) {
        pf.step();
        const float* w = W + k * N + j;
        vf wv[NV];
        for (int q = 0; q < NV; ++q) wv[q] = load<vf>(w + L * q);
        for (int r = 0; r < MR; ++r) {
            const vf s = splat<vf>(X[r * ldx + k]);
            for (int q = 0; q < NV; ++q) acc[r][q] += s * wv[q];
        }
    }
    const bool gelu_now = last && epilogue == kGelu;
    for (int r = 0; r < MR; ++r)
        for (int q = 0; q < NV; ++q) store<vf>(Y + r * ldy + j + L * q, gelu_now ? vgelu(acc[r][q]) : acc[r][q]);
}

template <class I, int NV>
INLINE void linear_rows(const float* X, int64_t M, int64_t ldx, const float* W, int64_t N, const float* bias, int64_t k0, int64_t k1, float* Y,
                        int64_t ldy, int64_t j, int epilogue, bool first, bool last, Prefetcher& pf) {
    int64_t m = 0;
    for (; m + 4 <= M; m += 4) linear_block<I, 4, NV>(X + m * ldx, ldx, W, N, bias, k0, k1, Y + m * ldy, ldy, j, epilogue, first, last, pf);
    switch (M - m) {
        case 3: linear_block<I, 3, NV>(X + m * ldx, ldx, W, N, bias, k0, k1, Y + m * ldy, ldy, j, epilogue, first, last, pf); break;
        case 2: linear_block<I, 2, NV>(X + m * ldx, ldx, W, N, bias, k0, k1, Y + m * ldy, ldy, j, epilogue, first, last, pf); break;
        case 1: linear_block<I, 1, NV>(X + m * ldx, ldx, W, N, bias, k0, k1, Y + m * ldy, ldy, j, epilogue, first, last, pf); break;
        default: break;
    }
}

// Columns [j0, j1) of Y = epilogue(X·W + bias), W in the Conv1D layout [K, N] row-major (as stored).
//
// One row (batch-1 decode) streams each stripe of W (L·NV columns) once: that reads W at the memory's
// pace and is the whole story. With several rows the stripe is reused by every group of 4 rows, and
// the first group would stall on memory at every weight row (each row of a stripe lies in another
// page, out of reach of the hardware prefetcher). So W is walked in blocks of 32 weight rows, with
// partial sums kept in Y, and while one block is multiplied the next one is prefetched, spread over
// the block's iterations: memory and arithmetic overlap. (Measured on the `small` shapes at 16 rows:
// ~25% faster than stripes alone; at 1 row the blocking gains nothing.) The order of the additions
// over k is the same whatever the blocking, so a row's result does not depend on the batch.
template <class I>
KERNEL void linear_cols(const float* X, int64_t M, int64_t ldx, const float* W, int64_t N, const float* bias, int64_t K, float* Y, int64_t ldy,
                        int64_t j0, int64_t j1, int epilogue) {
    constexpr int64_t L = I::lanes, NV = I::linear_vectors, width = L * NV;
    const int64_t jv = j0 + (j1 - j0) / width * width;  // end of the full-width stripes
    const int64_t block = M == 1 ? K : 32;
    const int64_t calls = (jv - j0) / width * ((M + 3) / 4);
    for (int64_t k0 = 0; k0 < K; k0 += block) {
        const int64_t k1 = std::min(K, k0 + block), k2 = std::min(K, k1 + block);
        Prefetcher pf;
        if (M > 1 && k2 > k1 && calls > 0) {  // the next block, [k1, k2) × [j0, jv)
            pf.row = reinterpret_cast<const char*>(W + k1 * N + j0);
            pf.stride = N * static_cast<int64_t>(sizeof(float));
            pf.lines_per_row = ((jv - j0) * static_cast<int64_t>(sizeof(float)) + 63) / 64;
            pf.left = (k2 - k1) * pf.lines_per_row;
            pf.each = (pf.left + calls * (k1 - k0) - 1) / (calls * (k1 - k0));
        }
        for (int64_t j = j0; j < jv; j += width)
            for (int64_t m = 0; m < M; m += 4)
                linear_rows<I, NV>(X + m * ldx, std::min<int64_t>(4, M - m), ldx, W, N, bias, k0, k1, Y + m * ldy, ldy, j, epilogue, k0 == 0, k1 == K,
                                   pf);
    }
    // Single-register stripes for what is left, in one pass over k.
    int64_t j = jv;
    Prefetcher none;
    for (; j + L <= j1; j += L) linear_rows<I, 1>(X, M, ldx, W, N, bias, 0, K, Y, ldy, j, epilogue, true, true, none);
    for (; j < j1; ++j) {  // fewer columns left than one register holds
        for (int64_t m = 0; m < M; ++m) {
            float s = bias[j] + (epilogue == kAccumulate ? Y[m * ldy + j] : 0.0f);
            for (int64_t k = 0; k < K; ++k) s += X[m * ldx + k] * W[k * N + j];
            Y[m * ldy + j] = epilogue == kGelu ? gelu(s) : s;
        }
    }
}

template <class I, int MR, int VR>
INLINE void head_block(const float* H, int64_t C, const float* E, int64_t v, float* out, int64_t ldo) {
    using vf = typename I::vf;
    constexpr int64_t L = I::lanes;
    const int64_t cv = C / L * L;
    vf acc[MR][VR];
    for (int r = 0; r < MR; ++r)
        for (int q = 0; q < VR; ++q) acc[r][q] = vf{};
    for (int64_t c = 0; c < cv; c += L) {
        vf h[MR];
        for (int r = 0; r < MR; ++r) h[r] = load<vf>(H + r * C + c);
        for (int q = 0; q < VR; ++q) {
            vf e = load<vf>(E + (v + q) * C + c);
            for (int r = 0; r < MR; ++r) acc[r][q] += h[r] * e;
        }
    }
    for (int r = 0; r < MR; ++r)
        for (int q = 0; q < VR; ++q) {
            float s = hsum(acc[r][q]);
            for (int64_t c = cv; c < C; ++c) s += H[r * C + c] * E[(v + q) * C + c];
            out[r * ldo + v + q] = s;
        }
}

template <class I, int MR>
INLINE void head_rows(const float* H, int64_t C, const float* E, int64_t v0, int64_t v1, float* out, int64_t ldo) {
    constexpr int VR = I::head_entries;
    int64_t v = v0;
    for (; v + VR <= v1; v += VR) head_block<I, MR, VR>(H, C, E, v, out, ldo);
    for (; v < v1; ++v) head_block<I, MR, 1>(H, C, E, v, out, ldo);
}

// out[m, v] = H[m]·E[v] for vocabulary rows [v0, v1): the LM head tied to the token embedding E [V, C].
// The vocabulary is walked in chunks small enough to stay in cache while every group of 4 rows uses
// them, so E (the largest matrix of a GPT-2 model) is read from memory once per step, not once per
// row group.
template <class I>
KERNEL void lm_head(const float* H, int64_t M, int64_t C, const float* E, int64_t v0, int64_t v1, float* out, int64_t ldo) {
    const int64_t chunk = std::max<int64_t>(I::head_entries, (int64_t{64} << 10) / (C * static_cast<int64_t>(sizeof(float))));  // ~64 KiB of E
    for (int64_t c0 = v0; c0 < v1; c0 += chunk) {
        const int64_t c1 = std::min(v1, c0 + chunk);
        int64_t m = 0;
        for (; m + 4 <= M; m += 4) head_rows<I, 4>(H + m * C, C, E, c0, c1, out + m * ldo, ldo);
        switch (M - m) {
            case 3: head_rows<I, 3>(H + m * C, C, E, c0, c1, out + m * ldo, ldo); break;
            case 2: head_rows<I, 2>(H + m * C, C, E, c0, c1, out + m * ldo, ldo); break;
            case 1: head_rows<I, 1>(H + m * C, C, E, c0, c1, out + m * ldo, ldo); break;
            default: break;
        }
    }
}

// Y[m] = (X[m] - mean) / sqrt(var + eps) · w + b, biased variance as torch.nn.LayerNorm.
template <class I>
KERNEL void layer_norm_rows(const float* X, float* Y, int64_t M, int64_t C, const float* w, const float* b, float eps) {
    using vf = typename I::vf;
    constexpr int64_t L = I::lanes;
    const int64_t cv = C / L * L;
    for (int64_t m = 0; m < M; ++m) {
        const float* x = X + m * C;
        float* y = Y + m * C;
        vf s = vf{};
        for (int64_t c = 0; c < cv; c += L) s += load<vf>(x + c);
        float sum = hsum(s);
        for (int64_t c = cv; c < C; ++c) sum += x[c];
        const float mean = sum / static_cast<float>(C);
        vf q = vf{};
        for (int64_t c = 0; c < cv; c += L) {
            vf d = load<vf>(x + c) - mean;
            q += d * d;
        }
        float sq = hsum(q);
        for (int64_t c = cv; c < C; ++c) sq += (x[c] - mean) * (x[c] - mean);
        const float rstd = 1.0f / std::sqrt(sq / static_cast<float>(C) + eps);
        for (int64_t c = 0; c < cv; c += L) store<vf>(y + c, (load<vf>(x + c) - mean) * rstd * load<vf>(w + c) + load<vf>(b + c));
        for (int64_t c = cv; c < C; ++c) y[c] = (x[c] - mean) * rstd * w[c] + b[c];
    }
}

template <class I>
INLINE float max_of_inline(const float* x, int64_t n) {
    using vf = typename I::vf;
    constexpr int64_t L = I::lanes;
    const int64_t nv = n / L * L;
    float m = -std::numeric_limits<float>::infinity();
    if (nv > 0) {
        vf a = load<vf>(x);
        for (int64_t i = L; i < nv; i += L) {
            vf b = load<vf>(x + i);
            a = b > a ? b : a;
        }
        m = hmax(a);
    }
    for (int64_t i = nv; i < n; ++i) m = x[i] > m ? x[i] : m;
    return m;
}

// out[D] = Σ_t p[t]·V[t] with the D/L accumulators held in registers.
template <class I, int DV>
INLINE void weighted_values(const float* p, const float* V, int64_t T, int64_t D, float* out) {
    using vf = typename I::vf;
    constexpr int64_t L = I::lanes;
    vf acc[DV];
    for (int i = 0; i < DV; ++i) acc[i] = vf{};
    for (int64_t t = 0; t < T; ++t) {
        const vf pt = splat<vf>(p[t]);
        const float* v = V + t * D;
        for (int i = 0; i < DV; ++i) acc[i] += pt * load<vf>(v + L * i);
    }
    for (int i = 0; i < DV; ++i) store<vf>(out + L * i, acc[i]);
}

// One query against T cached positions: out[D] = softmax(scale·q·k_t) · V.
// Keys are stored transposed, Kt [D, stride] (column t = key t), so L scores come out of D vertical
// multiply-adds with no horizontal sums; values are rows, V [T, D].
template <class I>
KERNEL void attend(const float* q, const float* Kt, int64_t stride, const float* V, int64_t T, int64_t D, float scale, float* scores, float* out) {
    using vf = typename I::vf;
    constexpr int64_t L = I::lanes;
    const int64_t tv = T / L * L;
    for (int64_t t = 0; t < tv; t += L) {
        vf a = vf{};
        for (int64_t d = 0; d < D; ++d) a += q[d] * load<vf>(Kt + d * stride + t);
        store<vf>(scores + t, a * scale);
    }
    for (int64_t t = tv; t < T; ++t) {
        float a = 0;
        for (int64_t d = 0; d < D; ++d) a += q[d] * Kt[d * stride + t];
        scores[t] = a * scale;
    }
    const float best = max_of_inline<I>(scores, T);
    vf acc = vf{};
    for (int64_t t = 0; t < tv; t += L) {
        vf e = vexp(load<vf>(scores + t) - best);
        store<vf>(scores + t, e);
        acc += e;
    }
    float total = hsum(acc);
    for (int64_t t = tv; t < T; ++t) {
        scores[t] = std::exp(scores[t] - best);
        total += scores[t];
    }
    const float inv = 1.0f / total;
    for (int64_t t = 0; t < T; ++t) scores[t] *= inv;
    if (D % L == 0 && D <= 8 * L) {
        switch (D / L) {
            case 1: weighted_values<I, 1>(scores, V, T, D, out); return;
            case 2: weighted_values<I, 2>(scores, V, T, D, out); return;
            case 3: weighted_values<I, 3>(scores, V, T, D, out); return;
            case 4: weighted_values<I, 4>(scores, V, T, D, out); return;
            case 5: weighted_values<I, 5>(scores, V, T, D, out); return;
            case 6: weighted_values<I, 6>(scores, V, T, D, out); return;
            case 7: weighted_values<I, 7>(scores, V, T, D, out); return;
            default: weighted_values<I, 8>(scores, V, T, D, out); return;
        }
    }
    const int64_t dv = D / L * L;
    for (int64_t d = 0; d < D; ++d) out[d] = 0.0f;
    for (int64_t t = 0; t < T; ++t) {
        const float p = scores[t];
        const float* v = V + t * D;
        const vf pv = splat<vf>(p);
        for (int64_t d = 0; d < dv; d += L) store<vf>(out + d, load<vf>(out + d) + pv * load<vf>(v + d));
        for (int64_t d = dv; d < D; ++d) out[d] += p * v[d];
    }
}

// w[i] = e^(scale·x[i] - shift) for i < n; returns Σ w.
template <class I>
KERNEL double exp_shifted(const float* x, int64_t n, float scale, float shift, float* w) {
    using vf = typename I::vf;
    constexpr int64_t L = I::lanes;
    const int64_t nv = n / L * L;
    vf acc = vf{};
    for (int64_t i = 0; i < nv; i += L) {
        vf e = vexp(load<vf>(x + i) * scale - shift);
        store<vf>(w + i, e);
        acc += e;
    }
    double total = hsum(acc);
    for (int64_t i = nv; i < n; ++i) {
        w[i] = std::exp(x[i] * scale - shift);
        total += w[i];
    }
    return total;
}

// Σ e^(x[i] - shift), without storing the terms.
template <class I>
KERNEL double sum_exp(const float* x, int64_t n, float shift) {
    using vf = typename I::vf;
    constexpr int64_t L = I::lanes;
    const int64_t nv = n / L * L;
    vf acc = vf{};
    for (int64_t i = 0; i < nv; i += L) acc += vexp(load<vf>(x + i) - shift);
    double total = hsum(acc);
    for (int64_t i = nv; i < n; ++i) total += std::exp(x[i] - shift);
    return total;
}

template <class I>
KERNEL int64_t argmax(const float* x, int64_t n) {
    int64_t best = 0;
    for (int64_t i = 1; i < n; ++i)
        if (x[i] > x[best]) best = i;  // first index among equal maxima, as torch.argmax on CPU
    return best;
}

template <class I>
KERNEL float max_of(const float* x, int64_t n) {
    return max_of_inline<I>(x, n);
}

// ---- one copy of the kernels per ISA level, chosen at run time ------------------------------------
//
// Each kernel body above is inlined into three wrappers compiled for x86-64-v4 (AVX-512), x86-64-v3
// (AVX2 + FMA) and the x86-64 baseline (SSE2), so the library runs on any x86-64 and uses the widest
// vectors the CPU has. The level can be lowered at run time (pt_gpt2_decoder_kernels) so tests check
// every copy on one machine and benchmarks can compare them.

struct Kernels {
    void (*linear_cols)(const float*, int64_t, int64_t, const float*, int64_t, const float*, int64_t, float*, int64_t, int64_t, int64_t, int);
    void (*lm_head)(const float*, int64_t, int64_t, const float*, int64_t, int64_t, float*, int64_t);
    void (*layer_norm_rows)(const float*, float*, int64_t, int64_t, const float*, const float*, float);
    void (*attend)(const float*, const float*, int64_t, const float*, int64_t, int64_t, float, float*, float*);
    double (*exp_shifted)(const float*, int64_t, float, float, float*);
    double (*sum_exp)(const float*, int64_t, float);
    int64_t (*argmax)(const float*, int64_t);
    float (*max_of)(const float*, int64_t);
};

#define GPT2_KERNEL_SET(NS, TARGET, ISA)                                                                                 \
    namespace NS {                                                                                                       \
    TARGET void linear_cols(const float* X, int64_t M, int64_t ldx, const float* W, int64_t N, const float* bias,         \
                            int64_t K, float* Y, int64_t ldy, int64_t j0, int64_t j1, int epilogue) {                     \
        gpt2::linear_cols<ISA>(X, M, ldx, W, N, bias, K, Y, ldy, j0, j1, epilogue);                                      \
    }                                                                                                                    \
    TARGET void lm_head(const float* H, int64_t M, int64_t C, const float* E, int64_t v0, int64_t v1, float* out,         \
                        int64_t ldo) {                                                                                   \
        gpt2::lm_head<ISA>(H, M, C, E, v0, v1, out, ldo);                                                                \
    }                                                                                                                    \
    TARGET void layer_norm_rows(const float* X, float* Y, int64_t M, int64_t C, const float* w, const float* b,           \
                                float eps) {                                                                             \
        gpt2::layer_norm_rows<ISA>(X, Y, M, C, w, b, eps);                                                               \
    }                                                                                                                    \
    TARGET void attend(const float* q, const float* Kt, int64_t stride, const float* V, int64_t T, int64_t D,             \
                       float scale, float* scores, float* out) {                                                        \
        gpt2::attend<ISA>(q, Kt, stride, V, T, D, scale, scores, out);                                                   \
    }                                                                                                                    \
    TARGET double exp_shifted(const float* x, int64_t n, float scale, float shift, float* w) {                           \
        return gpt2::exp_shifted<ISA>(x, n, scale, shift, w);                                                            \
    }                                                                                                                    \
    TARGET double sum_exp(const float* x, int64_t n, float shift) { return gpt2::sum_exp<ISA>(x, n, shift); }            \
    TARGET int64_t argmax(const float* x, int64_t n) { return gpt2::argmax<ISA>(x, n); }                                 \
    TARGET float max_of(const float* x, int64_t n) { return gpt2::max_of<ISA>(x, n); }                                   \
    constexpr Kernels table{&linear_cols, &lm_head, &layer_norm_rows, &attend, &exp_shifted, &sum_exp, &argmax, &max_of}; \
    }

GPT2_KERNEL_SET(avx512, __attribute__((target("arch=x86-64-v4"))), IsaAvx512)
GPT2_KERNEL_SET(avx2, __attribute__((target("arch=x86-64-v3"))), IsaAvx2)
GPT2_KERNEL_SET(baseline, , IsaBaseline)

enum KernelLevel : int { kBaseline = 0, kAvx2 = 1, kAvx512 = 2 };

int supported_level() {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("x86-64-v4")) return kAvx512;
    if (__builtin_cpu_supports("x86-64-v3")) return kAvx2;
    return kBaseline;
}

const Kernels* table_for(int level) { return level >= kAvx512 ? &avx512::table : level == kAvx2 ? &avx2::table : &baseline::table; }

std::atomic<int> active_level{supported_level()};

inline const Kernels& kernels() { return *table_for(active_level.load(std::memory_order_relaxed)); }

// ---- threads -------------------------------------------------------------------------------------
//
// A fork-join pool in which the caller never waits for a helper that has not started: a loop is cut
// into more chunks than threads, every thread (the caller included) claims chunks one at a time from
// a shared counter, and the caller waits only for chunks a helper has actually claimed. With OpenMP
// (at::parallel_for) every thread of the team must pass the region's closing barrier, so on an
// oversubscribed machine one descheduled worker stalls each region for a whole time slice: measured
// on the shared 2-core box, two OpenMP threads decoded 3-30x slower than one.
class Pool {
   public:
    // Process-wide and never destroyed: helper threads sleep when idle and end with the process.
    static Pool& shared() {
        static Pool* pool = new Pool();
        return *pool;
    }

    // Runs f(chunk, slot) for every chunk in [0, chunks) on up to `threads` threads (slot 0 is the
    // caller, helpers are 1..threads-1). A second caller while a loop runs gets a serial loop.
    template <class F>
    void run(int64_t chunks, int threads, F&& f) {
        std::unique_lock<std::mutex> exclusive(run_mutex_, std::try_to_lock);
        if (!exclusive.owns_lock() || threads <= 1 || chunks <= 1) {
            for (int64_t c = 0; c < chunks; ++c) f(c, 0);
            return;
        }
        ensure_helpers(threads - 1);
        auto call = [](void* context, int64_t chunk, int slot) { (*static_cast<F*>(context))(chunk, slot); };
        uint32_t generation;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            job_ = Job{call, &f, chunks, threads};
            generation = static_cast<uint32_t>(generation_.load(std::memory_order_relaxed) + 1);
            done_.store(0, std::memory_order_relaxed);
            next_.store(static_cast<uint64_t>(generation) << 32, std::memory_order_relaxed);
            generation_.store(generation, std::memory_order_release);
        }
        wake_.notify_all();
        work(job_, generation, 0);
        // Only chunks that a helper claimed can still be running; wait for those.
        for (int spins = 0; done_.load(std::memory_order_acquire) < chunks; ++spins) {
            if (spins < 1000) __builtin_ia32_pause();
            else std::this_thread::yield();  // let a descheduled helper finish its chunk
        }
    }

   private:
    struct Job {
        void (*call)(void*, int64_t, int) = nullptr;
        void* context = nullptr;
        int64_t chunks = 0;
        int threads = 0;
    };

    // Claims and runs chunks of `generation` until none is left.
    void work(const Job& job, uint32_t generation, int slot) {
        for (;;) {
            uint64_t v = next_.load(std::memory_order_acquire);
            int64_t chunk;
            for (;;) {
                chunk = static_cast<int64_t>(v & 0xffffffffu);
                if (static_cast<uint32_t>(v >> 32) != generation || chunk >= job.chunks) return;
                if (next_.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel)) break;
            }
            job.call(job.context, chunk, slot);
            done_.fetch_add(1, std::memory_order_release);
        }
    }

    void ensure_helpers(int count) {
        while (static_cast<int>(helpers_) < count) {
            const int slot = static_cast<int>(++helpers_);
            std::thread([this, slot] { helper(slot); }).detach();
        }
    }

    void helper(int slot) {
        uint64_t seen = 0;
        for (;;) {
            // Spin briefly first: the decoder's loops come in quick succession.
            for (int spins = 0; spins < 2000 && generation_.load(std::memory_order_acquire) == seen; ++spins) __builtin_ia32_pause();
            Job job;
            uint32_t generation;
            {
                std::unique_lock<std::mutex> lock(mutex_);
                wake_.wait(lock, [&] { return generation_.load(std::memory_order_relaxed) != seen; });
                seen = generation_.load(std::memory_order_relaxed);
                generation = static_cast<uint32_t>(seen);
                job = job_;
            }
            if (slot < job.threads) work(job, generation, slot);
        }
    }

    std::mutex run_mutex_;  // one loop at a time
    std::mutex mutex_;
    std::condition_variable wake_;
    Job job_;
    std::atomic<uint64_t> generation_{0};
    std::atomic<uint64_t> next_{0};  // generation << 32 | next chunk
    std::atomic<int64_t> done_{0};
    std::atomic<int> helpers_{0};
};

// Splits [begin, end) into chunks of at least `grain` items (at most 4 per thread, so a late helper
// costs little) and runs f(b0, b1, slot) on each, slot < at::get_num_threads().
template <class F>
void parallel(int64_t begin, int64_t end, int64_t grain, F&& f) {
    const int64_t n = end - begin;
    if (n <= 0) return;
    const int threads = at::get_num_threads();
    if (threads <= 1 || n <= grain) {
        f(begin, end, 0);
        return;
    }
    const int64_t chunks = std::min<int64_t>((n + grain - 1) / grain, 4 * static_cast<int64_t>(threads));
    Pool::shared().run(chunks, threads, [&](int64_t c, int slot) { f(begin + n * c / chunks, begin + n * (c + 1) / chunks, slot); });
}

// ---- the decoder ---------------------------------------------------------------------------------

// Parameters of one generate call (mirrors the C# struct Gpt2SamplingParameters field by field).
struct SamplingParameters {
    double temperature;  // 0 = greedy
    double top_p;        // 1 = off
    int32_t top_k;       // 0 = off
    int32_t max_new_tokens;
    int32_t samples_per_prompt;
    int32_t eos_id;  // -1 = never stop on a token
};

enum Finish : int32_t { kLength = 0, kEndOfSequence = 1, kStopSequence = 2 };

struct Layer {
    const float *ln1_w, *ln1_b, *attn_w, *attn_b, *proj_w, *proj_b, *ln2_w, *ln2_b, *fc_w, *fc_b, *fc2_w, *fc2_b;
};

// A growable scratch buffer that is reused across calls (no page faults per step; RSS stays flat
// at the high-water mark of the largest batch), 64-byte aligned so that vector loads at multiples
// of 16 floats never straddle cache lines.
struct Buffer {
    struct Free {
        void operator()(float* p) const { std::free(p); }
    };
    std::unique_ptr<float, Free> data;
    int64_t size = 0;
    float* get(int64_t n) {
        if (n > size) {
            const size_t bytes = (static_cast<size_t>(n) * sizeof(float) + 63) / 64 * 64;
            data.reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
            TORCH_CHECK(data != nullptr, "out of memory allocating ", bytes, " bytes of decoder scratch");
            size = n;
        }
        return data.get();
    }
};

// Work below this many multiply-adds (~20 µs on one core) runs on the calling thread only: waking
// a helper costs microseconds, and a helper that is late (a busy machine) brings nothing.
constexpr int64_t kParallelMacs = int64_t{1} << 20;

class Decoder {
   public:
    Decoder(int64_t layers, int64_t heads, int64_t width, int64_t vocab, int64_t context, double eps, std::vector<Tensor> weights)
        : layers_(layers), heads_(heads), width_(width), vocab_(vocab), context_(context), eps_(static_cast<float>(eps)), weights_(std::move(weights)) {
        TORCH_CHECK(layers >= 1 && heads >= 1 && width >= 1 && vocab >= 2 && context >= 2, "invalid GPT-2 shape: layers ", layers, ", heads ",
                    heads, ", width ", width, ", vocab ", vocab, ", context ", context);
        TORCH_CHECK(width % heads == 0, "width ", width, " is not a multiple of heads ", heads);
        TORCH_CHECK(eps > 0, "layer norm epsilon must be positive");
        TORCH_CHECK(static_cast<int64_t>(weights_.size()) == expected_count(), "expected ", expected_count(), " weight tensors for ", layers,
                    " layers, got ", weights_.size());
        bind();  // fail at construction on a wrong shape, not at the first call
    }

    int64_t expected_count() const { return 4 + 12 * layers_; }

    std::string name_of(int64_t index) const {
        static const char* per_layer[] = {"ln_1.weight",       "ln_1.bias",        "attn.c_attn.weight", "attn.c_attn.bias",
                                          "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight",        "ln_2.bias",
                                          "mlp.c_fc.weight",    "mlp.c_fc.bias",    "mlp.c_proj.weight",  "mlp.c_proj.bias"};
        if (index == 0) return "wte.weight";
        if (index == 1) return "wpe.weight";
        if (index == expected_count() - 2) return "ln_f.weight";
        if (index == expected_count() - 1) return "ln_f.bias";
        return "h." + std::to_string((index - 2) / 12) + "." + per_layer[(index - 2) % 12];
    }

    std::vector<int64_t> shape_of(int64_t index) const {
        const int64_t C = width_;
        if (index == 0) return {vocab_, C};
        if (index == 1) return {context_, C};
        if (index >= expected_count() - 2) return {C};
        switch ((index - 2) % 12) {
            case 2: return {C, 3 * C};
            case 3: return {3 * C};
            case 4: return {C, C};
            case 8: return {C, 4 * C};
            case 9: return {4 * C};
            case 10: return {4 * C, C};
            default: return {C};
        }
    }

    // Re-reads every weight's data pointer and checks it is still what the kernels expect. Called at
    // the start of every operation: the tensors are the model's own and may have been updated in place.
    void bind() {
        for (int64_t i = 0; i < expected_count(); ++i) {
            const Tensor& t = weights_[static_cast<size_t>(i)];
            TORCH_CHECK(t.defined(), name_of(i), " is undefined");
            TORCH_CHECK(t.device().is_cpu(), name_of(i), " is on ", t.device(), "; the fused decoder runs on CPU tensors");
            TORCH_CHECK(t.scalar_type() == at::kFloat, name_of(i), " is ", t.scalar_type(), "; the fused decoder needs float32 weights");
            TORCH_CHECK(t.sizes().vec() == shape_of(i), name_of(i), " has shape ", t.sizes(), ", expected ", at::IntArrayRef(shape_of(i)));
            TORCH_CHECK(t.is_contiguous(), name_of(i), " is not contiguous");
        }
        auto p = [this](int64_t i) { return weights_[static_cast<size_t>(i)].data_ptr<float>(); };
        wte_ = p(0);
        wpe_ = p(1);
        layer_.resize(static_cast<size_t>(layers_));
        for (int64_t l = 0; l < layers_; ++l) {
            const int64_t b = 2 + 12 * l;
            layer_[static_cast<size_t>(l)] = Layer{p(b),     p(b + 1), p(b + 2), p(b + 3),  p(b + 4),  p(b + 5),
                                                   p(b + 6), p(b + 7), p(b + 8), p(b + 9), p(b + 10), p(b + 11)};
        }
        lnf_w_ = p(expected_count() - 2);
        lnf_b_ = p(expected_count() - 1);
    }

    bool holds(const std::vector<Tensor>& others) const {
        if (others.size() != weights_.size()) return false;
        for (size_t i = 0; i < others.size(); ++i)
            if (!others[i].is_same(weights_[i])) return false;
        return true;
    }

    // Logits of every position of every sequence (no cache kept): out is [Σ lengths, V].
    void logits(const int32_t* tokens, const int32_t* lengths, int64_t count, float* out) {
        Busy busy(this);
        bind();
        std::vector<int64_t> len = check_prompts(tokens, lengths, count, 0);
        const int64_t total = std::accumulate(len.begin(), len.end(), int64_t{0});
        const int64_t tcap = *std::max_element(len.begin(), len.end());
        allocate_cache(count, tcap);
        std::vector<int64_t> rows(static_cast<size_t>(count));
        std::iota(rows.begin(), rows.end(), int64_t{0});
        float* X = prefill(tokens, len, rows);
        float* H = scratch_h_.get(total * width_);
        layer_norm(X, H, total, lnf_w_, lnf_b_);
        head(H, total, out);
    }

    // Samples completions for `count` prompts, samples_per_prompt rows each (row = prompt·K + sample).
    // Returns 0, or 2 when *cancel became non-zero (the outputs then hold what was generated so far).
    int generate(const int32_t* tokens, const int32_t* lengths, int64_t count, const SamplingParameters& params, const uint64_t* seeds,
                 at::Generator* generator, const int32_t* suppressed, int64_t suppressed_count, const uint8_t* token_bytes, const int64_t* token_offsets, int64_t token_table_size,
                 const uint8_t* stop_bytes, const int32_t* stop_offsets, int64_t stop_count, const volatile int32_t* cancel, int32_t* out_tokens,
                 float* out_policy_logprobs, float* out_sampler_logprobs, int32_t* out_lengths, int32_t* out_finish) {
        Busy busy(this);
        bind();
        check_parameters(params);
        TORCH_CHECK(stop_count == 0 || token_table_size > 0, "stop sequences need the token byte table");
        TORCH_CHECK(stop_count >= 0 && token_table_size >= 0 && suppressed_count >= 0, "negative table sizes");
        suppressed_.assign(suppressed, suppressed + suppressed_count);
        for (int32_t id : suppressed_) TORCH_CHECK(id >= 0 && id < vocab_, "suppressed token id ", id, " is outside the vocabulary of ", vocab_);
        TORCH_CHECK(static_cast<int64_t>(suppressed_.size()) < vocab_, "every token is suppressed");
        const int64_t K = params.samples_per_prompt;
        const int64_t N = params.max_new_tokens;
        std::vector<int64_t> len = check_prompts(tokens, lengths, count, N);
        const int64_t rows = count * K;
        const int64_t tcap = *std::max_element(len.begin(), len.end()) + N - 1;

        // One generator per row: a row's samples depend only on its own seed, never on batch composition.
        std::vector<at::Generator> rng;
        rng.reserve(static_cast<size_t>(rows));
        for (int64_t r = 0; r < rows; ++r) {
            uint64_t seed;
            if (seeds != nullptr) {
                seed = seeds[r];
            } else {
                TORCH_CHECK(generator != nullptr, "generate needs either per-row seeds or a generator");
                std::lock_guard<std::mutex> lock(generator->mutex());
                seed = generator->get<at::CPUGeneratorImpl>()->random64();
            }
            rng.push_back(at::detail::createCPUGenerator(seed));
        }

        allocate_cache(rows, tcap);
        // Prefill each distinct prompt once into the cache of its first row, then copy to its siblings.
        std::vector<int64_t> first_rows(static_cast<size_t>(count));
        for (int64_t p = 0; p < count; ++p) first_rows[static_cast<size_t>(p)] = p * K;
        float* X = prefill(tokens, len, first_rows);
        for (int64_t p = 0; p < count; ++p)
            for (int64_t s = 1; s < K; ++s) copy_cache_row(p * K, p * K + s, len[static_cast<size_t>(p)]);

        // Logits of each prompt's last position, shared by its K rows.
        float* Hlast = scratch_h_.get(count * width_);
        int64_t offset = 0;
        for (int64_t p = 0; p < count; ++p) {
            offset += len[static_cast<size_t>(p)];
            std::memcpy(Hlast + p * width_, X + (offset - 1) * width_, sizeof(float) * static_cast<size_t>(width_));
        }
        layer_norm(Hlast, Hlast, count, lnf_w_, lnf_b_);
        float* prompt_logits = scratch_prompt_logits_.get(count * vocab_);
        head(Hlast, count, prompt_logits);

        std::vector<int64_t> pos(static_cast<size_t>(rows)), last(static_cast<size_t>(rows));
        std::vector<std::string> text(static_cast<size_t>(stop_count > 0 ? rows : 0));
        int64_t max_stop = 0;
        for (int64_t s = 0; s < stop_count; ++s) {
            TORCH_CHECK(stop_offsets[s + 1] > stop_offsets[s], "stop sequence ", s, " is empty");
            max_stop = std::max<int64_t>(max_stop, stop_offsets[s + 1] - stop_offsets[s]);
        }
        for (int64_t r = 0; r < rows; ++r) {
            pos[static_cast<size_t>(r)] = len[static_cast<size_t>(r / K)];
            out_lengths[r] = 0;
            out_finish[r] = kLength;
        }

        // Records a sampled token for row r; returns whether the row continues.
        auto accept = [&](int64_t r, int64_t token, float policy_lp, float sampler_lp) {
            const int64_t n = out_lengths[r];
            out_tokens[r * N + n] = static_cast<int32_t>(token);
            out_policy_logprobs[r * N + n] = policy_lp;
            out_sampler_logprobs[r * N + n] = sampler_lp;
            out_lengths[r] = static_cast<int32_t>(n + 1);
            last[static_cast<size_t>(r)] = token;
            if (params.eos_id >= 0 && token == params.eos_id) {
                out_finish[r] = kEndOfSequence;
                return false;
            }
            if (stop_count > 0 && token < token_table_size) {
                std::string& t = text[static_cast<size_t>(r)];
                const int64_t before = static_cast<int64_t>(t.size());
                t.append(reinterpret_cast<const char*>(token_bytes + token_offsets[token]),
                         static_cast<size_t>(token_offsets[token + 1] - token_offsets[token]));
                if (static_cast<int64_t>(t.size()) > before) {
                    // Only occurrences that end in the new bytes are new.
                    const size_t from = static_cast<size_t>(std::max<int64_t>(0, before - max_stop + 1));
                    for (int64_t s = 0; s < stop_count; ++s) {
                        const std::string_view stop(reinterpret_cast<const char*>(stop_bytes + stop_offsets[s]),
                                                    static_cast<size_t>(stop_offsets[s + 1] - stop_offsets[s]));
                        if (std::string_view(t).find(stop, from) != std::string_view::npos) {
                            out_finish[r] = kStopSequence;
                            return false;
                        }
                    }
                }
            }
            return n + 1 < N;
        };

        std::vector<int64_t> active;
        {
            std::vector<const float*> row_logits(static_cast<size_t>(rows));
            for (int64_t r = 0; r < rows; ++r) row_logits[static_cast<size_t>(r)] = prompt_logits + (r / K) * vocab_;
            std::vector<int64_t> all(static_cast<size_t>(rows));
            std::iota(all.begin(), all.end(), int64_t{0});
            sample_rows(all, row_logits, params, rng, accept, active);
        }
        while (!active.empty()) {
            if (cancel != nullptr && *cancel != 0) return 2;
            const int64_t M = static_cast<int64_t>(active.size());
            float* logits = step(active, last, pos);
            std::vector<const float*> row_logits(static_cast<size_t>(M));
            for (int64_t m = 0; m < M; ++m) row_logits[static_cast<size_t>(m)] = logits + m * vocab_;
            for (int64_t r : active) ++pos[static_cast<size_t>(r)];
            std::vector<int64_t> next;
            sample_rows(active, row_logits, params, rng, accept, next);
            active.swap(next);
        }
        return 0;
    }

   private:
    // Refuses concurrent use: the scratch buffers belong to one call at a time.
    struct Busy {
        Decoder* d;
        explicit Busy(Decoder* decoder) : d(decoder) {
            TORCH_CHECK(!d->busy_.exchange(true), "this decoder is already running a call (use one decoder per thread)");
        }
        ~Busy() { d->busy_.store(false); }
    };

    void check_parameters(const SamplingParameters& p) const {
        TORCH_CHECK(std::isfinite(p.temperature) && p.temperature >= 0, "temperature ", p.temperature, " must be finite and >= 0 (0 = greedy)");
        TORCH_CHECK(p.top_p > 0 && p.top_p <= 1, "top_p ", p.top_p, " must be in (0, 1]");
        TORCH_CHECK(p.top_k >= 0, "top_k ", p.top_k, " must be >= 0 (0 = off)");
        TORCH_CHECK(p.max_new_tokens >= 1, "max_new_tokens ", p.max_new_tokens, " must be >= 1");
        TORCH_CHECK(p.samples_per_prompt >= 1, "samples_per_prompt ", p.samples_per_prompt, " must be >= 1");
        TORCH_CHECK(p.eos_id >= -1 && p.eos_id < vocab_, "eos id ", p.eos_id, " is outside the vocabulary of ", vocab_);
    }

    std::vector<int64_t> check_prompts(const int32_t* tokens, const int32_t* lengths, int64_t count, int64_t max_new) const {
        TORCH_CHECK(count >= 1, "at least one sequence is needed");
        std::vector<int64_t> len(static_cast<size_t>(count));
        int64_t offset = 0;
        for (int64_t p = 0; p < count; ++p) {
            const int64_t n = lengths[p];
            TORCH_CHECK(n >= 1, "sequence ", p, " is empty (a prompt needs at least one token)");
            TORCH_CHECK(n + max_new <= context_, "sequence ", p, " has ", n, " tokens; with ", max_new, " new tokens that exceeds the context of ",
                        context_);
            for (int64_t t = 0; t < n; ++t) {
                const int32_t id = tokens[offset + t];
                TORCH_CHECK(id >= 0 && id < vocab_, "token id ", id, " at position ", t, " of sequence ", p, " is outside the vocabulary of ",
                            vocab_);
            }
            offset += n;
            len[static_cast<size_t>(p)] = n;
        }
        return len;
    }

    void allocate_cache(int64_t rows, int64_t tcap) {
        rows_ = rows;
        tcap_ = (tcap + 15) / 16 * 16;  // every cached key row starts on a cache line
        cache_ = kv_.get(layers_ * 2 * rows * width_ * tcap_);
    }

    // Cache of (layer, 0 = keys / 1 = values, row, head): keys transposed [D, tcap], values [tcap, D].
    float* cache(int64_t layer, int64_t kv, int64_t row, int64_t head) const {
        const int64_t D = width_ / heads_;
        return cache_ + (((layer * 2 + kv) * rows_ + row) * heads_ + head) * tcap_ * D;
    }

    void copy_cache_row(int64_t from, int64_t to, int64_t n) {
        const int64_t D = width_ / heads_;
        for (int64_t l = 0; l < layers_; ++l)
            for (int64_t h = 0; h < heads_; ++h) {
                for (int64_t d = 0; d < D; ++d)
                    std::memcpy(cache(l, 0, to, h) + d * tcap_, cache(l, 0, from, h) + d * tcap_, sizeof(float) * static_cast<size_t>(n));
                std::memcpy(cache(l, 1, to, h), cache(l, 1, from, h), sizeof(float) * static_cast<size_t>(n * D));
            }
    }

    // Appends key and value of position t (each D floats) to the cache of (layer, row, head).
    void store_kv(int64_t l, int64_t row, int64_t h, int64_t t, const float* k, const float* v) {
        const int64_t D = width_ / heads_;
        float* kt = cache(l, 0, row, h) + t;
        for (int64_t d = 0; d < D; ++d) kt[d * tcap_] = k[d];
        std::memcpy(cache(l, 1, row, h) + t * D, v, sizeof(float) * static_cast<size_t>(D));
    }

    void layer_norm(const float* X, float* Y, int64_t M, const float* w, const float* b) const {
        const int64_t C = width_;
        const int64_t grain = std::max<int64_t>(1, kParallelMacs / (8 * C));
        parallel(0, M, grain, [&](int64_t m0, int64_t m1, int) { kernels().layer_norm_rows(X + m0 * C, Y + m0 * C, m1 - m0, C, w, b, eps_); });
    }

    // Y = epilogue(X·W + b) for X [M, K], W [K, N]; threads split the columns in 64-wide stripes.
    // Long prefills go 64 rows at a time, so the partial sums a chunk keeps in Y stay in cache.
    static void linear(const float* X, int64_t M, int64_t K, const float* W, const float* b, int64_t N, float* Y, int epilogue) {
        constexpr int64_t kRowChunk = 64;
        const int64_t stripes = (N + 63) / 64;
        for (int64_t m0 = 0; m0 < M; m0 += kRowChunk) {
            const int64_t rows = std::min(kRowChunk, M - m0);
            const int64_t grain = std::max<int64_t>(1, kParallelMacs / std::max<int64_t>(1, rows * K * 64));
            parallel(0, stripes, grain, [&](int64_t s0, int64_t s1, int) {
                kernels().linear_cols(X + m0 * K, rows, K, W, N, b, K, Y + m0 * N, N, s0 * 64, std::min(N, s1 * 64), epilogue);
            });
        }
    }

    void head(const float* H, int64_t M, float* out) const {
        const int64_t C = width_;
        const int64_t blocks = (vocab_ + 63) / 64;
        const int64_t grain = std::max<int64_t>(1, kParallelMacs / std::max<int64_t>(1, M * C * 64));
        parallel(0, blocks, grain, [&](int64_t b0, int64_t b1, int) {
            kernels().lm_head(H, M, C, wte_, b0 * 64, std::min(vocab_, b1 * 64), out, vocab_);
        });
    }

    // The transformer blocks over M token rows whose attention is done by `attention` (prefill or decode).
    template <typename Attention>
    void blocks(float* X, int64_t M, Attention&& attention) {
        const int64_t C = width_;
        float* H = scratch_h_.get(M * C);
        float* QKV = scratch_qkv_.get(M * 3 * C);
        float* A = scratch_att_.get(M * C);
        float* F = scratch_fc_.get(M * 4 * C);
        for (int64_t l = 0; l < layers_; ++l) {
            const Layer& w = layer_[static_cast<size_t>(l)];
            layer_norm(X, H, M, w.ln1_w, w.ln1_b);
            linear(H, M, C, w.attn_w, w.attn_b, 3 * C, QKV, kStore);  // (M, 3C): q | k | v
            attention(l, QKV, A);                                      // (M, C)
            linear(A, M, C, w.proj_w, w.proj_b, C, X, kAccumulate);   // x += attn·W + b
            layer_norm(X, H, M, w.ln2_w, w.ln2_b);
            linear(H, M, C, w.fc_w, w.fc_b, 4 * C, F, kGelu);         // (M, 4C)
            linear(F, M, 4 * C, w.fc2_w, w.fc2_b, C, X, kAccumulate);  // x += mlp
        }
    }

    // Runs the packed prompts through the blocks, filling the cache of rows[p] for prompt p.
    // Returns the final hidden states (before ln_f), [Σ lengths, C].
    float* prefill(const int32_t* tokens, const std::vector<int64_t>& len, const std::vector<int64_t>& rows) {
        const int64_t C = width_, H = heads_, D = C / H;
        const int64_t P = static_cast<int64_t>(len.size());
        std::vector<int64_t> start(static_cast<size_t>(P));
        int64_t total = 0;
        for (int64_t p = 0; p < P; ++p) {
            start[static_cast<size_t>(p)] = total;
            total += len[static_cast<size_t>(p)];
        }
        float* X = scratch_x_.get(total * C);
        for (int64_t p = 0; p < P; ++p)
            for (int64_t t = 0; t < len[static_cast<size_t>(p)]; ++t) {
                const int64_t i = start[static_cast<size_t>(p)] + t;
                embed(tokens[i], t, X + i * C);
            }
        const int64_t maxlen = *std::max_element(len.begin(), len.end());
        const float scale = 1.0f / std::sqrt(static_cast<float>(D));
        blocks(X, total, [&](int64_t l, const float* QKV, float* A) {
            for (int64_t p = 0; p < P; ++p)
                for (int64_t t = 0; t < len[static_cast<size_t>(p)]; ++t) {
                    const float* qkv = QKV + (start[static_cast<size_t>(p)] + t) * 3 * C;
                    for (int64_t h = 0; h < H; ++h) {
                        store_kv(l, rows[static_cast<size_t>(p)], h, t, qkv + C + h * D, qkv + 2 * C + h * D);
                    }
                }
            // Causal attention per (prompt, head): query t sees keys 0..t of its own prompt only.
            const int64_t work = std::max<int64_t>(1, maxlen * maxlen * D);
            float* scores = scratch_scores_.get(static_cast<int64_t>(at::get_num_threads()) * maxlen);
            parallel(0, P * H, std::max<int64_t>(1, kParallelMacs / work), [&](int64_t u0, int64_t u1, int slot) {
                float* s = scores + slot * maxlen;
                for (int64_t u = u0; u < u1; ++u) {
                    const int64_t p = u / H, h = u % H, row = rows[static_cast<size_t>(p)];
                    for (int64_t t = 0; t < len[static_cast<size_t>(p)]; ++t) {
                        const int64_t i = start[static_cast<size_t>(p)] + t;
                        kernels().attend(QKV + i * 3 * C + h * D, cache(l, 0, row, h), tcap_, cache(l, 1, row, h), t + 1, D, scale, s, A + i * C + h * D);
                    }
                }
            });
        });
        return X;
    }

    // One decode step for the rows in `active`: feeds last[r] at position pos[r], returns logits [M, V].
    float* step(const std::vector<int64_t>& active, const std::vector<int64_t>& last, const std::vector<int64_t>& pos) {
        const int64_t C = width_, H = heads_, D = C / H;
        const int64_t M = static_cast<int64_t>(active.size());
        float* X = scratch_x_.get(M * C);
        for (int64_t m = 0; m < M; ++m) {
            const int64_t r = active[static_cast<size_t>(m)];
            embed(last[static_cast<size_t>(r)], pos[static_cast<size_t>(r)], X + m * C);
        }
        const float scale = 1.0f / std::sqrt(static_cast<float>(D));
        blocks(X, M, [&](int64_t l, const float* QKV, float* A) {
            int64_t longest = 0;
            for (int64_t m = 0; m < M; ++m) {
                const int64_t r = active[static_cast<size_t>(m)], t = pos[static_cast<size_t>(r)];
                longest = std::max(longest, t + 1);
                for (int64_t h = 0; h < H; ++h) {
                    store_kv(l, r, h, t, QKV + m * 3 * C + C + h * D, QKV + m * 3 * C + 2 * C + h * D);
                }
            }
            float* scores = scratch_scores_.get(static_cast<int64_t>(at::get_num_threads()) * longest);
            parallel(0, M * H, std::max<int64_t>(1, kParallelMacs / (2 * longest * D)), [&](int64_t u0, int64_t u1, int slot) {
                float* s = scores + slot * longest;
                for (int64_t u = u0; u < u1; ++u) {
                    const int64_t m = u / H, h = u % H, r = active[static_cast<size_t>(m)];
                    kernels().attend(QKV + m * 3 * C + h * D, cache(l, 0, r, h), tcap_, cache(l, 1, r, h), pos[static_cast<size_t>(r)] + 1, D, scale, s,
                           A + m * C + h * D);
                }
            });
        });
        float* Hn = scratch_h_.get(M * C);
        layer_norm(X, Hn, M, lnf_w_, lnf_b_);
        float* logits = scratch_logits_.get(M * vocab_);
        head(Hn, M, logits);
        return logits;
    }

    void embed(int64_t token, int64_t position, float* x) const {
        const float* e = wte_ + token * width_;
        const float* p = wpe_ + position * width_;
        for (int64_t c = 0; c < width_; ++c) x[c] = e[c] + p[c];
    }

    // Samples one token for each rows[m] from row_logits[m]; calls accept and collects continuing rows.
    template <typename Accept>
    void sample_rows(const std::vector<int64_t>& rows, const std::vector<const float*>& row_logits, const SamplingParameters& params,
                     std::vector<at::Generator>& rng, Accept&& accept, std::vector<int64_t>& continuing) {
        const int64_t M = static_cast<int64_t>(rows.size());
        std::vector<int64_t> token(static_cast<size_t>(M));
        std::vector<float> policy_lp(static_cast<size_t>(M)), sampler_lp(static_cast<size_t>(M));
        std::vector<uint8_t> bad(static_cast<size_t>(M), 0);
        float* weights = scratch_weights_.get(M * vocab_);
        float* masked = suppressed_.empty() ? nullptr : scratch_masked_.get(M * vocab_);
        if (index_scratch_.size() < static_cast<size_t>(M * vocab_)) index_scratch_.resize(static_cast<size_t>(M * vocab_));
        int32_t* indices = index_scratch_.data();
        parallel(0, M, std::max<int64_t>(1, kParallelMacs / (8 * vocab_)), [&](int64_t m0, int64_t m1, int) {
            for (int64_t m = m0; m < m1; ++m) {
                const size_t i = static_cast<size_t>(m);
                const float* choose = row_logits[i];
                if (masked != nullptr) {  // suppressed tokens (padding) can never be sampled
                    float* copy = masked + m * vocab_;
                    std::memcpy(copy, row_logits[i], sizeof(float) * static_cast<size_t>(vocab_));
                    for (int32_t id : suppressed_) copy[id] = -std::numeric_limits<float>::infinity();
                    choose = copy;
                }
                bad[i] = !sample_one(row_logits[i], choose, params, rng[static_cast<size_t>(rows[i])], weights + m * vocab_, indices + m * vocab_,
                                     token[i], policy_lp[i], sampler_lp[i]);
            }
        });
        for (int64_t m = 0; m < M; ++m)
            TORCH_CHECK(!bad[static_cast<size_t>(m)], "the policy produced non-finite logits for row ", rows[static_cast<size_t>(m)],
                        " (diverged weights?)");
        for (int64_t m = 0; m < M; ++m) {
            const size_t i = static_cast<size_t>(m);
            if (accept(rows[i], token[i], policy_lp[i], sampler_lp[i])) continuing.push_back(rows[i]);
        }
    }

    // The sampling rule, in Hugging Face's order: temperature, then top-k, then top-p (nucleus:
    // the smallest set of most likely tokens whose probability reaches top_p, renormalised).
    // policy_lp = log softmax(logits)[token] — the untempered, untruncated policy, as a learner
    // evaluates it; sampler_lp = log q(token) under the distribution q actually sampled from
    // (0 for greedy, where q is a point mass). `logits` are the row's logits with suppressed ids at
    // -inf (the same pointer as policy_logits when nothing is suppressed). Returns false on
    // non-finite logits.
    bool sample_one(const float* policy_logits, const float* logits, const SamplingParameters& params, at::Generator& gen, float* w, int32_t* idx,
                    int64_t& token, float& policy_lp, float& sampler_lp) const {
        const int64_t V = vocab_;
        const float pmax = kernels().max_of(policy_logits, V);
        if (!std::isfinite(pmax)) return false;
        const double lse = pmax + std::log(kernels().sum_exp(policy_logits, V, pmax));
        if (!std::isfinite(lse)) return false;
        const float lmax = logits == policy_logits ? pmax : kernels().max_of(logits, V);

        if (params.temperature == 0 || params.top_k == 1) {
            token = kernels().argmax(logits, V);
            policy_lp = static_cast<float>(policy_logits[token] - lse);
            sampler_lp = 0.0f;
            return true;
        }
        const float inv_t = static_cast<float>(1.0 / params.temperature);
        const float zmax = lmax * inv_t;
        double total = kernels().exp_shifted(logits, V, inv_t, zmax, w);  // w[i] = e^(z_i - zmax), z = logits / T
        if (!(total > 0) || !std::isfinite(total)) return false;
        auto before = [logits](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };

        int64_t n = V;          // candidates: idx[0, n) when `listed`, else every id
        bool listed = false;
        if (params.top_k > 0 && params.top_k < V) {
            std::iota(idx, idx + V, 0);
            std::nth_element(idx, idx + params.top_k - 1, idx + V, before);
            n = params.top_k;
            listed = true;
            total = 0;
            for (int64_t i = 0; i < n; ++i) total += w[idx[i]];
        }
        double kept = total;
        if (params.top_p < 1) {
            if (!listed) std::iota(idx, idx + V, 0);
            listed = true;
            // Sort only as much of the head as the nucleus needs: it is usually far smaller than V.
            const double target = params.top_p * total;
            int64_t sorted = std::min<int64_t>(n, 64);
            for (;;) {
                std::partial_sort(idx, idx + sorted, idx + n, before);
                double cumulative = 0;
                int64_t i = 0;
                for (; i < sorted; ++i) {
                    cumulative += w[idx[i]];
                    if (cumulative >= target) break;
                }
                if (i < sorted) {
                    n = i + 1;
                    kept = cumulative;
                    break;
                }
                if (sorted == n) {
                    kept = cumulative;  // rounding left the target a hair out of reach: keep everything
                    break;
                }
                sorted = std::min(n, sorted * 4);
            }
        }
        const uint64_t bits = gen.get<at::CPUGeneratorImpl>()->random64();
        const double u = static_cast<double>(bits >> 11) * 0x1.0p-53 * kept;  // uniform on [0, kept)
        double cumulative = 0;
        token = -1;
        for (int64_t i = 0; i < n; ++i) {
            const int64_t id = listed ? idx[i] : i;
            cumulative += w[id];
            if (u < cumulative) {
                token = id;
                break;
            }
        }
        if (token < 0) {  // u landed in the rounding gap at the very end: take the last candidate with mass
            for (int64_t i = n - 1; i >= 0 && token < 0; --i) {
                const int64_t id = listed ? idx[i] : i;
                if (w[id] > 0) token = id;
            }
        }
        policy_lp = static_cast<float>(policy_logits[token] - lse);
        sampler_lp = static_cast<float>(std::log(static_cast<double>(w[token])) - std::log(kept));
        return true;
    }

    const int64_t layers_, heads_, width_, vocab_, context_;
    const float eps_;
    std::vector<Tensor> weights_;
    std::atomic<bool> busy_{false};

    const float *wte_ = nullptr, *wpe_ = nullptr, *lnf_w_ = nullptr, *lnf_b_ = nullptr;
    std::vector<Layer> layer_;

    int64_t rows_ = 0, tcap_ = 0;
    float* cache_ = nullptr;
    Buffer kv_, scratch_x_, scratch_h_, scratch_qkv_, scratch_att_, scratch_fc_, scratch_scores_, scratch_logits_, scratch_prompt_logits_,
        scratch_weights_, scratch_masked_;
    std::vector<int32_t> index_scratch_;
    std::vector<int32_t> suppressed_;
};

}  // namespace gpt2

using gpt2::Decoder;

// Weights in the order wte, wpe, then per layer ln_1.{weight,bias}, attn.c_attn.{weight,bias},
// attn.c_proj.{weight,bias}, ln_2.{weight,bias}, mlp.c_fc.{weight,bias}, mlp.c_proj.{weight,bias},
// then ln_f.{weight,bias}. The decoder keeps references (not copies) to these tensors.
PT_EXPORT void* pt_gpt2_decoder_new(int64_t layers, int64_t heads, int64_t width, int64_t vocab, int64_t context, double eps, TensorHandle* weights,
                                    int count) {
    PT_TRY
    std::vector<Tensor> list;
    list.reserve(static_cast<size_t>(count));
    for (int i = 0; i < count; ++i) {
        TORCH_CHECK(weights[i] != nullptr, "weight ", i, " is null");
        list.push_back(*weights[i]);
    }
    return new Decoder(layers, heads, width, vocab, context, eps, std::move(list));
    PT_CATCH(nullptr)
}

// The kernel set in use: 2 = AVX-512 (x86-64-v4), 1 = AVX2 + FMA (x86-64-v3), 0 = SSE2 baseline.
// A requested level >= 0 selects the highest supported level not above it (process-wide; meant for
// tests and A/B measurements); -1 only asks. Returns the level in effect.
PT_EXPORT int pt_gpt2_decoder_kernels(int requested) {
    if (requested >= 0) gpt2::active_level.store(std::min(requested, gpt2::supported_level()));
    return gpt2::active_level.load();
}

PT_EXPORT void pt_gpt2_decoder_free(void* decoder) { delete static_cast<Decoder*>(decoder); }

// 1 when the decoder holds exactly these tensors (same TensorImpl, in the same order), else 0.
PT_EXPORT int pt_gpt2_decoder_holds(void* decoder, TensorHandle* weights, int count) {
    PT_TRY
    std::vector<Tensor> list;
    for (int i = 0; i < count; ++i) list.push_back(*weights[i]);
    return static_cast<Decoder*>(decoder)->holds(list) ? 1 : 0;
    PT_CATCH(-1)
}

// Logits of every position of `count` packed sequences into out [Σ lengths, vocab].
PT_EXPORT int pt_gpt2_decoder_logits(void* decoder, const int32_t* tokens, const int32_t* lengths, int count, float* out) {
    PT_TRY
    static_cast<Decoder*>(decoder)->logits(tokens, lengths, count, out);
    return 0;
    PT_CATCH(1)
}

// Samples samples_per_prompt completions for each of `count` packed prompts. Outputs are row-major
// [count·samples_per_prompt, max_new_tokens] (valid up to out_lengths[row]); out_finish is
// 0 = length, 1 = end-of-sequence token, 2 = stop sequence. Seeds: one per row, or null to draw them
// from `generator`. Suppressed ids (padding) are never sampled; their probability still counts in the
// policy log-probs (the learner's softmax includes them). Stop sequences need the token byte table (bytes of every token id, concatenated,
// with table_size + 1 offsets). Returns 0, 1 on error (pt_last_error), 2 when cancelled.
PT_EXPORT int pt_gpt2_decoder_generate(void* decoder, const int32_t* tokens, const int32_t* lengths, int count, const gpt2::SamplingParameters* params,
                                       const uint64_t* seeds, void* generator, const int32_t* suppressed, int suppressed_count,
                                       const uint8_t* token_bytes, const int64_t* token_offsets,
                                       int64_t token_table_size, const uint8_t* stop_bytes, const int32_t* stop_offsets, int stop_count,
                                       const volatile int32_t* cancel, int32_t* out_tokens, float* out_policy_logprobs, float* out_sampler_logprobs,
                                       int32_t* out_lengths, int32_t* out_finish) {
    PT_TRY
    return static_cast<Decoder*>(decoder)->generate(tokens, lengths, count, *params, seeds, static_cast<at::Generator*>(generator), suppressed,
                                                    suppressed_count, token_bytes,
                                                    token_offsets, token_table_size, stop_bytes, stop_offsets, stop_count, cancel, out_tokens,
                                                    out_policy_logprobs, out_sampler_logprobs, out_lengths, out_finish);
    PT_CATCH(1)
}
