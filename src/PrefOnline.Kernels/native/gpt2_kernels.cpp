// The decoder's kernels: written once over GCC vector types, instantiated per ISA level.
//
// Each kernel is a template over an ISA description (register width, register blocking) and is
// inlined into three wrappers compiled for x86-64-v4 (AVX-512), x86-64-v3 (AVX2 + FMA) and the x86-64
// baseline (SSE2). The table of the best level the CPU supports is used unless a lower one is
// selected (pk_kernel_level: tests check every copy on one machine). Other architectures build the
// baseline copy only: the generic vector code compiles to their own SIMD (NEON on arm64).
#include "gpt2_kernels.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>

// Vector types are passed between always-inline helpers only; the ABI note does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace pk::gpt2 {

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
// vectors the CPU has. The level can be lowered at run time (pk_kernel_level) so tests check every
// copy on one machine and benchmarks can compare them.

#define GPT2_KERNEL_SET(NS, TARGET, ISA)                                                                             \
    namespace NS {                                                                                                   \
    TARGET void linear_cols(const float* X, int64_t M, int64_t ldx, const float* W, int64_t N, const float* bias,     \
                            int64_t K, float* Y, int64_t ldy, int64_t j0, int64_t j1, int epilogue) {                 \
        gpt2::linear_cols<ISA>(X, M, ldx, W, N, bias, K, Y, ldy, j0, j1, epilogue);                                  \
    }                                                                                                                \
    TARGET void lm_head(const float* H, int64_t M, int64_t C, const float* E, int64_t v0, int64_t v1, float* out,     \
                        int64_t ldo) {                                                                               \
        gpt2::lm_head<ISA>(H, M, C, E, v0, v1, out, ldo);                                                            \
    }                                                                                                                \
    TARGET void layer_norm_rows(const float* X, float* Y, int64_t M, int64_t C, const float* w, const float* b,       \
                                float eps) {                                                                         \
        gpt2::layer_norm_rows<ISA>(X, Y, M, C, w, b, eps);                                                           \
    }                                                                                                                \
    TARGET void attend(const float* q, const float* Kt, int64_t stride, const float* V, int64_t T, int64_t D,         \
                       float scale, float* scores, float* out) {                                                    \
        gpt2::attend<ISA>(q, Kt, stride, V, T, D, scale, scores, out);                                               \
    }                                                                                                                \
    TARGET double exp_shifted(const float* x, int64_t n, float scale, float shift, float* w) {                       \
        return gpt2::exp_shifted<ISA>(x, n, scale, shift, w);                                                        \
    }                                                                                                                \
    TARGET double sum_exp(const float* x, int64_t n, float shift) { return gpt2::sum_exp<ISA>(x, n, shift); }        \
    TARGET int64_t argmax(const float* x, int64_t n) { return gpt2::argmax<ISA>(x, n); }                             \
    TARGET float max_of(const float* x, int64_t n) { return gpt2::max_of<ISA>(x, n); }                               \
    constexpr Kernels table{&linear_cols, &lm_head, &layer_norm_rows, &attend, &exp_shifted, &sum_exp, &argmax,      \
                            &max_of};                                                                                \
    }

#if defined(__x86_64__)
GPT2_KERNEL_SET(avx512, __attribute__((target("arch=x86-64-v4"))), IsaAvx512)
GPT2_KERNEL_SET(avx2, __attribute__((target("arch=x86-64-v3"))), IsaAvx2)
#endif
GPT2_KERNEL_SET(baseline, , IsaBaseline)

// Other architectures (arm64) build the baseline copy only: the generic vector code compiles to
// their own SIMD (NEON), just without the per-level choice.
int supported_level() {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("x86-64-v4")) return kAvx512;
    if (__builtin_cpu_supports("x86-64-v3")) return kAvx2;
#endif
    return kBaseline;
}

namespace {

const Kernels* table_for(int level) {
#if defined(__x86_64__)
    if (level >= kAvx512) return &avx512::table;
    if (level == kAvx2) return &avx2::table;
#endif
    return &baseline::table;
}

std::atomic<int> active{supported_level()};

}  // namespace

int select_level(int requested) {
    const int level = std::max(0, std::min(requested, supported_level()));
    active.store(level);
    return level;
}

int active_level() { return active.load(std::memory_order_relaxed); }

const Kernels& kernels() { return *table_for(active.load(std::memory_order_relaxed)); }

}  // namespace pk::gpt2
