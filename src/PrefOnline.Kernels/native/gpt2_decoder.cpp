// A fused GPT-2 decoder for sampling on the CPU: prompt prefill and the whole decode loop (forward
// pass with a KV cache, temperature / top-k / top-p sampling, log-probs, end-of-sequence and stop
// sequences) in ONE native call, over the model's own float32 weights read in place.
//
// WHY IT EXISTS. At batch 1 a GPT-2 decode step is ~25 small ops per layer; through a tensor library
// each op costs microseconds of dispatch, allocation and parallel-region overhead, which is most of
// the step at the project's sizes. It is measured against a PyTorch 1.13 KV-cache loop made fair
// (cache preallocated and written in place, LM head on the last prefill position only, inference
// mode) and against the product's TorchSharp decoder by `prefonline bench generate`; README.md
// "Speed" has the current table, the command and the machine's load.
//
// WEIGHTS. Passed to every call as a table of pk_tensor (data pointer + shape, float32, row-major,
// contiguous), in this order, with the Hugging Face GPT-2 names and shapes (C width, V vocabulary,
// T context):
//     0  wte.weight  [V, C]   token embedding, also the LM head (tied)
//     1  wpe.weight  [T, C]   learned positions
//     2 + 12·l + 0..11, for each layer l:
//        h.l.ln_1.weight [C], h.l.ln_1.bias [C],
//        h.l.attn.c_attn.weight [C, 3C], h.l.attn.c_attn.bias [3C]     (Conv1D layout [in, out]: x·W)
//        h.l.attn.c_proj.weight [C, C],  h.l.attn.c_proj.bias [C],
//        h.l.ln_2.weight [C], h.l.ln_2.bias [C],
//        h.l.mlp.c_fc.weight [C, 4C],    h.l.mlp.c_fc.bias [4C],
//        h.l.mlp.c_proj.weight [4C, C],  h.l.mlp.c_proj.bias [C]
//     2 + 12·L, 3 + 12·L   ln_f.weight [C], ln_f.bias [C]
// Nothing is copied or kept between calls: the pointers are checked (shape, non-null) and read at
// every call, so in-place optimizer updates are seen by the next call, and the caller keeps the
// memory alive for the duration of a call only.
//
// BATCHING. No padding at all: prompts of different lengths are packed back to back for the prefill
// (the linear layers see one [Σ lengths, C] matrix; attention runs per prompt over its own causal
// range) and every row keeps its own KV cache and position counter, so each row sees exactly the
// positions 0..n-1 it would see alone. A row's result does not depend on what else is in the batch.
//
// THREADING (thread_pool.h). Every loop is split over the kernels' own pool, the calling thread
// included, in contiguous parts with a fixed owner per part:
//   * linear layers and the LM head: by output columns (vocabulary rows for the head), in 64-column
//     stripes; thread t owns the t-th contiguous run of stripes of every weight matrix, so at batch 1
//     each core streams its own slice of every matrix (one long sequential read per weight row
//     range; both cores' memory bandwidth is used, which a row-split could not do without a reduction);
//   * attention: by (row, head); layer norm and sampling: by rows.
// Loops too small to pay for a hand-off (kParallelMacs) run on the caller alone. Every output element
// is computed by exactly one thread, with the same order of additions whatever the thread count, so
// results are identical for 1, 2 or N threads.
//
// RANDOMNESS (row_random.h). Row r draws from its own xoshiro256** stream seeded with its 64-bit
// seed, one draw per sampled token: reproducible from the seed alone, independent of the batch and
// of the threads, and the same stream as the product's managed sampler draws from that seed.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <string>
#include <string_view>
#include <vector>

#include "errors.h"
#include "gpt2_kernels.h"
#include "prefonline_kernels.h"
#include "row_random.h"
#include "thread_pool.h"

namespace pk::gpt2 {

namespace {

enum Finish : int32_t { kLength = 0, kEndOfSequence = 1, kStopSequence = 2 };

struct Layer {
    const float *ln1_w, *ln1_b, *attn_w, *attn_b, *proj_w, *proj_b, *ln2_w, *ln2_b, *fc_w, *fc_b, *fc2_w, *fc2_b;
};

// A growable scratch buffer that is reused across calls (no page faults per step; RSS stays flat
// at the high-water mark of the largest batch), 64-byte aligned so that vector loads at multiples
// of 16 floats never straddle cache lines.
template <class T>
struct Buffer {
    struct Free {
        void operator()(T* p) const { std::free(p); }
    };
    std::unique_ptr<T, Free> data;
    int64_t size = 0;
    T* get(int64_t n) {
        if (n > size) {
            const size_t bytes = (static_cast<size_t>(n) * sizeof(T) + 63) / 64 * 64;
            data.reset(static_cast<T*>(std::aligned_alloc(64, bytes)));
            check(data != nullptr, "out of memory allocating ", bytes, " bytes of decoder scratch");
            size = n;
        }
        return data.get();
    }
};

// Work below this many multiply-adds runs on the calling thread only. A hand-off to a spinning worker
// costs well under a microsecond (thread_pool.h), but a split also halves what each core's cache
// holds of the matrix: below ~0.5 MB of weights per loop the two halves stream from L3 no faster than
// the whole from one core. Measured at batch 1 on this project's 2-core machine: with a 16k threshold
// the `tiny` preset (largest loop 65k multiply-adds) decoded ~10 % slower on 2 threads than on 1;
// with this one it runs its batch-1 loops alone, while every GEMV of `small` (≥ 147k) is split.
constexpr int64_t kParallelMacs = int64_t{1} << 17;

ThreadPool& pool() { return ThreadPool::shared(); }

std::string shape_text(const int64_t* shape, int64_t ndim) {
    std::string text = "[";
    for (int64_t i = 0; i < ndim; ++i) text += (i > 0 ? ", " : "") + std::to_string(shape[i]);
    return text + "]";
}

}  // namespace

class Decoder {
   public:
    explicit Decoder(const pk_gpt2_shape& shape)
        : layers_(shape.layers),
          heads_(shape.heads),
          width_(shape.width),
          vocab_(shape.vocab),
          context_(shape.context),
          eps_(static_cast<float>(shape.eps)) {
        check(layers_ >= 1 && heads_ >= 1 && width_ >= 1 && vocab_ >= 2 && context_ >= 2, "invalid GPT-2 shape: layers ", layers_, ", heads ",
              heads_, ", width ", width_, ", vocab ", vocab_, ", context ", context_);
        check(width_ % heads_ == 0, "width ", width_, " is not a multiple of heads ", heads_);
        check(shape.eps > 0, "layer norm epsilon must be positive");
        check(vocab_ <= std::numeric_limits<int32_t>::max(), "vocabulary of ", vocab_, " does not fit int32 token ids");
    }

    int64_t expected_count() const { return 4 + 12 * layers_; }

    void check_weights(const pk_tensor* weights, int64_t weight_count) {
        Busy busy(this);
        bind(weights, weight_count);
    }

    // Logits of every position of every sequence (no cache kept): out is [Σ lengths, V].
    void logits(const pk_tensor* weights, int64_t weight_count, const int32_t* tokens, const int32_t* lengths, int64_t count, float* out) {
        Busy busy(this);
        bind(weights, weight_count);
        check(out != nullptr, "the output array is null");
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

    // Samples completions for request.prompt_count prompts, samples_per_prompt rows each
    // (row = prompt·K + sample). Returns 0, or 2 when *cancel became non-zero (the outputs then hold
    // what was generated so far).
    int generate(const pk_tensor* weights, int64_t weight_count, const pk_decode_request& request, const pk_decode_output& output) {
        Busy busy(this);
        bind(weights, weight_count);
        check_request(request, output);
        suppressed_.assign(request.suppressed, request.suppressed + request.suppressed_count);
        for (int32_t id : suppressed_) check(id >= 0 && id < vocab_, "suppressed token id ", id, " is outside the vocabulary of ", vocab_);
        const int64_t count = request.prompt_count;
        const int64_t K = request.samples_per_prompt;
        const int64_t N = request.max_new_tokens;
        std::vector<int64_t> len = check_prompts(request.tokens, request.lengths, count, N);
        const int64_t rows = count * K;
        const int64_t tcap = *std::max_element(len.begin(), len.end()) + N - 1;

        // One stream per row: a row's samples depend only on its own seed, never on batch composition.
        std::vector<RowRandom> rng;
        rng.reserve(static_cast<size_t>(rows));
        for (int64_t r = 0; r < rows; ++r) rng.emplace_back(request.seeds[r]);

        allocate_cache(rows, tcap);
        // Prefill each distinct prompt once into the cache of its first row, then copy to its siblings.
        std::vector<int64_t> first_rows(static_cast<size_t>(count));
        for (int64_t p = 0; p < count; ++p) first_rows[static_cast<size_t>(p)] = p * K;
        float* X = prefill(request.tokens, len, first_rows);
        for (int64_t p = 0; p < count; ++p)
            for (int64_t s = 1; s < K; ++s) copy_cache_row(p * K, p * K + s, len[static_cast<size_t>(p)]);

        // Logits of each prompt's last position only, shared by its K rows.
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
        const int64_t stop_count = request.stop_count;
        std::vector<std::string> text(static_cast<size_t>(stop_count > 0 ? rows : 0));
        int64_t max_stop = 0;
        for (int64_t s = 0; s < stop_count; ++s) max_stop = std::max<int64_t>(max_stop, request.stop_offsets[s + 1] - request.stop_offsets[s]);
        for (int64_t r = 0; r < rows; ++r) {
            pos[static_cast<size_t>(r)] = len[static_cast<size_t>(r / K)];
            output.lengths[r] = 0;
            output.finish[r] = kLength;
        }

        // Records a sampled token for row r; returns whether the row continues.
        auto accept = [&](int64_t r, int64_t token, float policy_lp, float sampler_lp) {
            const int64_t n = output.lengths[r];
            output.tokens[r * N + n] = static_cast<int32_t>(token);
            output.policy_logprobs[r * N + n] = policy_lp;
            output.sampler_logprobs[r * N + n] = sampler_lp;
            output.lengths[r] = static_cast<int32_t>(n + 1);
            last[static_cast<size_t>(r)] = token;
            if (request.eos_id >= 0 && token == request.eos_id) {
                output.finish[r] = kEndOfSequence;
                return false;
            }
            if (stop_count > 0 && token < request.token_count) {
                std::string& t = text[static_cast<size_t>(r)];
                const int64_t before = static_cast<int64_t>(t.size());
                t.append(reinterpret_cast<const char*>(request.token_bytes + request.token_offsets[token]),
                         static_cast<size_t>(request.token_offsets[token + 1] - request.token_offsets[token]));
                if (static_cast<int64_t>(t.size()) > before) {
                    // Only occurrences that end in the new bytes are new.
                    const size_t from = static_cast<size_t>(std::max<int64_t>(0, before - max_stop + 1));
                    for (int64_t s = 0; s < stop_count; ++s) {
                        const std::string_view stop(reinterpret_cast<const char*>(request.stop_bytes + request.stop_offsets[s]),
                                                    static_cast<size_t>(request.stop_offsets[s + 1] - request.stop_offsets[s]));
                        if (std::string_view(t).find(stop, from) != std::string_view::npos) {
                            output.finish[r] = kStopSequence;
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
            sample_rows(all, row_logits, request, rng, accept, active);
        }
        while (!active.empty()) {
            if (request.cancel != nullptr && *request.cancel != 0) return 2;
            const int64_t M = static_cast<int64_t>(active.size());
            float* logits = step(active, last, pos);
            std::vector<const float*> row_logits(static_cast<size_t>(M));
            for (int64_t m = 0; m < M; ++m) row_logits[static_cast<size_t>(m)] = logits + m * vocab_;
            for (int64_t r : active) ++pos[static_cast<size_t>(r)];
            std::vector<int64_t> next;
            sample_rows(active, row_logits, request, rng, accept, next);
            active.swap(next);
        }
        return 0;
    }

   private:
    // Refuses concurrent use: the scratch buffers belong to one call at a time.
    struct Busy {
        Decoder* d;
        explicit Busy(Decoder* decoder) : d(decoder) {
            check(!d->busy_.exchange(true), "this decoder is already running a call (use one decoder per thread)");
        }
        ~Busy() { d->busy_.store(false); }
    };

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

    // Checks the weight table against the shape and takes this call's pointers from it. Called at
    // the start of every operation: the weights are the model's own and may have moved or changed.
    void bind(const pk_tensor* weights, int64_t count) {
        check(weights != nullptr, "the weight table is null");
        check(count == expected_count(), "expected ", expected_count(), " weight tensors for ", layers_, " layers, got ", count);
        for (int64_t i = 0; i < count; ++i) {
            const pk_tensor& t = weights[i];
            check(t.ndim >= 0 && t.ndim <= 4, name_of(i), " has ", t.ndim, " dimensions");
            const std::vector<int64_t> expected = shape_of(i);
            const bool same = t.ndim == static_cast<int64_t>(expected.size()) && std::equal(expected.begin(), expected.end(), t.shape);
            check(same, name_of(i), " has shape ", shape_text(t.shape, t.ndim), ", expected ", shape_text(expected.data(), static_cast<int64_t>(expected.size())));
            check(t.data != nullptr, name_of(i), " has no data (null pointer)");
        }
        auto p = [weights](int64_t i) { return weights[i].data; };
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
        threads_ = pool().threads();
    }

    void check_request(const pk_decode_request& q, const pk_decode_output& o) const {
        check(std::isfinite(q.temperature) && q.temperature >= 0, "temperature ", q.temperature, " must be finite and >= 0 (0 = greedy)");
        check(q.top_p > 0 && q.top_p <= 1, "top_p ", q.top_p, " must be in (0, 1]");
        check(q.top_k >= 0, "top_k ", q.top_k, " must be >= 0 (0 = off)");
        check(q.max_new_tokens >= 1, "max_new_tokens ", q.max_new_tokens, " must be >= 1");
        check(q.samples_per_prompt >= 1, "samples_per_prompt ", q.samples_per_prompt, " must be >= 1");
        check(q.eos_id >= -1 && q.eos_id < vocab_, "eos id ", q.eos_id, " is outside the vocabulary of ", vocab_);
        check(q.seeds != nullptr, "generate needs one seed per row");
        check(q.suppressed_count >= 0 && (q.suppressed_count == 0 || q.suppressed != nullptr), "suppressed ids are missing");
        check(q.suppressed_count < vocab_, "every token is suppressed");
        check(q.stop_count >= 0 && q.token_count >= 0, "negative table sizes");
        if (q.stop_count > 0) {
            check(q.token_count > 0 && q.token_bytes != nullptr && q.token_offsets != nullptr, "stop sequences need the token byte table");
            check(q.stop_bytes != nullptr && q.stop_offsets != nullptr, "stop sequences are missing");
            for (int64_t s = 0; s < q.stop_count; ++s) check(q.stop_offsets[s + 1] > q.stop_offsets[s], "stop sequence ", s, " is empty");
        }
        check(o.tokens != nullptr && o.policy_logprobs != nullptr && o.sampler_logprobs != nullptr && o.lengths != nullptr && o.finish != nullptr,
              "every output array is needed");
    }

    std::vector<int64_t> check_prompts(const int32_t* tokens, const int32_t* lengths, int64_t count, int64_t max_new) const {
        check(count >= 1, "at least one sequence is needed");
        check(lengths != nullptr, "the sequence lengths are null");
        std::vector<int64_t> len(static_cast<size_t>(count));
        int64_t offset = 0;
        for (int64_t p = 0; p < count; ++p) {
            const int64_t n = lengths[p];
            check(n >= 1, "sequence ", p, " is empty (a prompt needs at least one token)");
            check(tokens != nullptr, "the tokens are null");
            check(n + max_new <= context_, "sequence ", p, " has ", n, " tokens; with ", max_new, " new tokens that exceeds the context of ",
                  context_);
            for (int64_t t = 0; t < n; ++t) {
                const int32_t id = tokens[offset + t];
                check(id >= 0 && id < vocab_, "token id ", id, " at position ", t, " of sequence ", p, " is outside the vocabulary of ", vocab_);
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
        pool().parallel_for(M, grain, threads_, [&](int64_t m0, int64_t m1, int) {
            kernels().layer_norm_rows(X + m0 * C, Y + m0 * C, m1 - m0, C, w, b, eps_);
        });
    }

    // Y = epilogue(X·W + b) for X [M, K], W [K, N]; threads split the columns in 64-wide stripes.
    // Long prefills go 64 rows at a time, so the partial sums a part keeps in Y stay in cache.
    void linear(const float* X, int64_t M, int64_t K, const float* W, const float* b, int64_t N, float* Y, int epilogue) const {
        constexpr int64_t kRowChunk = 64;
        const int64_t stripes = (N + 63) / 64;
        for (int64_t m0 = 0; m0 < M; m0 += kRowChunk) {
            const int64_t rows = std::min(kRowChunk, M - m0);
            const int64_t grain = std::max<int64_t>(1, kParallelMacs / std::max<int64_t>(1, rows * K * 64));
            pool().parallel_for(stripes, grain, threads_, [&](int64_t s0, int64_t s1, int) {
                kernels().linear_cols(X + m0 * K, rows, K, W, N, b, K, Y + m0 * N, N, s0 * 64, std::min(N, s1 * 64), epilogue);
            });
        }
    }

    void head(const float* H, int64_t M, float* out) const {
        const int64_t C = width_;
        const int64_t blocks = (vocab_ + 63) / 64;
        const int64_t grain = std::max<int64_t>(1, kParallelMacs / std::max<int64_t>(1, M * C * 64));
        pool().parallel_for(blocks, grain, threads_, [&](int64_t b0, int64_t b1, int) {
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
            linear(H, M, C, w.attn_w, w.attn_b, 3 * C, QKV, kStore);    // (M, 3C): q | k | v
            attention(l, QKV, A);                                        // (M, C)
            linear(A, M, C, w.proj_w, w.proj_b, C, X, kAccumulate);      // x += attn·W + b
            layer_norm(X, H, M, w.ln2_w, w.ln2_b);
            linear(H, M, C, w.fc_w, w.fc_b, 4 * C, F, kGelu);            // (M, 4C)
            linear(F, M, 4 * C, w.fc2_w, w.fc2_b, C, X, kAccumulate);    // x += mlp
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
                    for (int64_t h = 0; h < H; ++h) store_kv(l, rows[static_cast<size_t>(p)], h, t, qkv + C + h * D, qkv + 2 * C + h * D);
                }
            // Causal attention per (prompt, head): query t sees keys 0..t of its own prompt only.
            const int64_t work = std::max<int64_t>(1, maxlen * maxlen * D);
            float* scores = scratch_scores_.get(static_cast<int64_t>(threads_) * maxlen);
            pool().parallel_for(P * H, std::max<int64_t>(1, kParallelMacs / work), threads_, [&](int64_t u0, int64_t u1, int slot) {
                float* s = scores + slot * maxlen;
                for (int64_t u = u0; u < u1; ++u) {
                    const int64_t p = u / H, h = u % H, row = rows[static_cast<size_t>(p)];
                    for (int64_t t = 0; t < len[static_cast<size_t>(p)]; ++t) {
                        const int64_t i = start[static_cast<size_t>(p)] + t;
                        kernels().attend(QKV + i * 3 * C + h * D, cache(l, 0, row, h), tcap_, cache(l, 1, row, h), t + 1, D, scale, s,
                                         A + i * C + h * D);
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
                for (int64_t h = 0; h < H; ++h) store_kv(l, r, h, t, QKV + m * 3 * C + C + h * D, QKV + m * 3 * C + 2 * C + h * D);
            }
            float* scores = scratch_scores_.get(static_cast<int64_t>(threads_) * longest);
            pool().parallel_for(M * H, std::max<int64_t>(1, kParallelMacs / (2 * longest * D)), threads_, [&](int64_t u0, int64_t u1, int slot) {
                float* s = scores + slot * longest;
                for (int64_t u = u0; u < u1; ++u) {
                    const int64_t m = u / H, h = u % H, r = active[static_cast<size_t>(m)];
                    kernels().attend(QKV + m * 3 * C + h * D, cache(l, 0, r, h), tcap_, cache(l, 1, r, h), pos[static_cast<size_t>(r)] + 1, D, scale,
                                     s, A + m * C + h * D);
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
    void sample_rows(const std::vector<int64_t>& rows, const std::vector<const float*>& row_logits, const pk_decode_request& request,
                     std::vector<RowRandom>& rng, Accept&& accept, std::vector<int64_t>& continuing) {
        const int64_t M = static_cast<int64_t>(rows.size());
        std::vector<int64_t> token(static_cast<size_t>(M));
        std::vector<float> policy_lp(static_cast<size_t>(M)), sampler_lp(static_cast<size_t>(M));
        std::vector<uint8_t> bad(static_cast<size_t>(M), 0);
        float* weights = scratch_weights_.get(M * vocab_);
        float* masked = suppressed_.empty() ? nullptr : scratch_masked_.get(M * vocab_);
        int32_t* indices = scratch_indices_.get(M * vocab_);
        pool().parallel_for(M, std::max<int64_t>(1, kParallelMacs / (8 * vocab_)), threads_, [&](int64_t m0, int64_t m1, int) {
            for (int64_t m = m0; m < m1; ++m) {
                const size_t i = static_cast<size_t>(m);
                const float* choose = row_logits[i];
                if (masked != nullptr) {  // suppressed tokens (padding) can never be sampled
                    float* copy = masked + m * vocab_;
                    std::memcpy(copy, row_logits[i], sizeof(float) * static_cast<size_t>(vocab_));
                    for (int32_t id : suppressed_) copy[id] = -std::numeric_limits<float>::infinity();
                    choose = copy;
                }
                bad[i] = !sample_one(row_logits[i], choose, request, rng[static_cast<size_t>(rows[i])], weights + m * vocab_, indices + m * vocab_,
                                     token[i], policy_lp[i], sampler_lp[i]);
            }
        });
        for (int64_t m = 0; m < M; ++m)
            check(!bad[static_cast<size_t>(m)], "the policy produced non-finite logits for row ", rows[static_cast<size_t>(m)], " (diverged weights?)");
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
    // -inf (the same pointer as policy_logits when nothing is suppressed). Greedy rows draw nothing;
    // a sampled token costs one draw. Returns false on non-finite logits.
    bool sample_one(const float* policy_logits, const float* logits, const pk_decode_request& q, RowRandom& random, float* w, int32_t* idx,
                    int64_t& token, float& policy_lp, float& sampler_lp) const {
        const int64_t V = vocab_;
        const float pmax = kernels().max_of(policy_logits, V);
        if (!std::isfinite(pmax)) return false;
        const double lse = pmax + std::log(kernels().sum_exp(policy_logits, V, pmax));
        if (!std::isfinite(lse)) return false;
        const float lmax = logits == policy_logits ? pmax : kernels().max_of(logits, V);

        if (q.temperature == 0 || q.top_k == 1) {
            token = kernels().argmax(logits, V);
            policy_lp = static_cast<float>(policy_logits[token] - lse);
            sampler_lp = 0.0f;
            return true;
        }
        const float inv_t = static_cast<float>(1.0 / q.temperature);
        const float zmax = lmax * inv_t;
        double total = kernels().exp_shifted(logits, V, inv_t, zmax, w);  // w[i] = e^(z_i - zmax), z = logits / T
        if (!(total > 0) || !std::isfinite(total)) return false;
        auto before = [logits](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };

        int64_t n = V;  // candidates: idx[0, n) when `listed`, else every id
        bool listed = false;
        if (q.top_k > 0 && q.top_k < V) {  // the k most likely, best first (the order the draw walks them in)
            std::iota(idx, idx + V, 0);
            std::partial_sort(idx, idx + q.top_k, idx + V, before);
            n = q.top_k;
            listed = true;
            total = 0;
            for (int64_t i = 0; i < n; ++i) total += w[idx[i]];
        }
        double kept = total;
        if (q.top_p < 1) {
            // Sort only as much of the head as the nucleus needs: it is usually far smaller than V.
            // (After top-k the candidates are already sorted.)
            const double target = q.top_p * total;
            int64_t sorted = listed ? n : std::min<int64_t>(n, 64);
            if (!listed) std::iota(idx, idx + V, 0);
            bool ready = listed;
            listed = true;
            for (;;) {
                if (!ready) std::partial_sort(idx, idx + sorted, idx + n, before);
                ready = false;
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
        const double u = random.uniform() * kept;  // uniform on [0, kept)
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
    std::atomic<bool> busy_{false};
    int threads_ = 1;  // pool threads for this call (read once, so per-thread scratch stays sized)

    const float *wte_ = nullptr, *wpe_ = nullptr, *lnf_w_ = nullptr, *lnf_b_ = nullptr;
    std::vector<Layer> layer_;

    int64_t rows_ = 0, tcap_ = 0;
    float* cache_ = nullptr;
    Buffer<float> kv_, scratch_x_, scratch_h_, scratch_qkv_, scratch_att_, scratch_fc_, scratch_scores_, scratch_logits_, scratch_prompt_logits_,
        scratch_weights_, scratch_masked_;
    Buffer<int32_t> scratch_indices_;
    std::vector<int32_t> suppressed_;
};

}  // namespace pk::gpt2

// ---- the C ABI (prefonline_kernels.h) -------------------------------------------------------------

using pk::gpt2::Decoder;

namespace {
thread_local std::string last_error;
}  // namespace

void pk::set_error(const char* message) noexcept {
    try {
        last_error = message;
    } catch (...) {
        // Out of memory while recording a message: keep whatever was there.
    }
}

// The one export without a catch-all: returning a pointer into a thread-local string cannot throw.
PK_EXPORT const char* pk_last_error(void) { return last_error.c_str(); }

PK_EXPORT int64_t pk_abi_size(int32_t which) {
    PK_TRY
    switch (which) {
        case 0: return static_cast<int64_t>(sizeof(pk_tensor));
        case 1: return static_cast<int64_t>(sizeof(pk_gpt2_shape));
        case 2: return static_cast<int64_t>(sizeof(pk_decode_request));
        case 3: return static_cast<int64_t>(sizeof(pk_decode_output));
        default: return -1;
    }
    PK_CATCH(-1)
}

PK_EXPORT int32_t pk_kernel_level(int32_t requested) {
    PK_TRY
    if (requested >= 0) return pk::gpt2::select_level(requested);
    return pk::gpt2::active_level();
    PK_CATCH(-1)
}

PK_EXPORT int32_t pk_threads(int32_t requested) {
    PK_TRY
    if (requested >= 1) pk::ThreadPool::shared().set_threads(requested);
    return pk::ThreadPool::shared().threads();
    PK_CATCH(-1)
}

PK_EXPORT int32_t pk_row_random(uint64_t seed, int64_t count, uint64_t* out) {
    PK_TRY
    pk::check(count >= 0 && (count == 0 || out != nullptr), "a non-negative count and an output array are needed");
    pk::RowRandom random(seed);
    for (int64_t i = 0; i < count; ++i) out[i] = random.next64();
    return 0;
    PK_CATCH(1)
}

PK_EXPORT void* pk_gpt2_new(const pk_gpt2_shape* shape) {
    PK_TRY
    pk::check(shape != nullptr, "the shape is null");
    return new Decoder(*shape);
    PK_CATCH(nullptr)
}

PK_EXPORT void pk_gpt2_free(void* decoder) {
    PK_TRY
    delete static_cast<Decoder*>(decoder);
    PK_CATCH()
}

PK_EXPORT int32_t pk_gpt2_check_weights(void* decoder, const pk_tensor* weights, int32_t weight_count) {
    PK_TRY
    pk::check(decoder != nullptr, "the decoder is null");
    static_cast<Decoder*>(decoder)->check_weights(weights, weight_count);
    return 0;
    PK_CATCH(1)
}

PK_EXPORT int32_t pk_gpt2_logits(void* decoder, const pk_tensor* weights, int32_t weight_count, const int32_t* tokens, const int32_t* lengths,
                                 int32_t count, float* out) {
    PK_TRY
    pk::check(decoder != nullptr, "the decoder is null");
    static_cast<Decoder*>(decoder)->logits(weights, weight_count, tokens, lengths, count, out);
    return 0;
    PK_CATCH(1)
}

PK_EXPORT int32_t pk_gpt2_generate(void* decoder, const pk_tensor* weights, int32_t weight_count, const pk_decode_request* request,
                                   const pk_decode_output* output) {
    PK_TRY
    pk::check(decoder != nullptr && request != nullptr && output != nullptr, "decoder, request and output must not be null");
    return static_cast<Decoder*>(decoder)->generate(weights, weight_count, *request, *output);
    PK_CATCH(1)
}
