// Tensor operations: each one a thin, checked call into ATen returning a new owned handle.
#include "shim.h"

using namespace shim;

// ---- shape and indexing --------------------------------------------------------------------------

PT_EXPORT TensorHandle pt_reshape(TensorHandle a, const int64_t* shape, int ndim) {
    PT_TRY return wrap(a->reshape(dims(shape, ndim)));
    PT_CATCH(nullptr)
}
PT_EXPORT TensorHandle pt_view(TensorHandle a, const int64_t* shape, int ndim) {
    PT_TRY return wrap(a->view(dims(shape, ndim)));
    PT_CATCH(nullptr)
}
PT_EXPORT TensorHandle pt_permute(TensorHandle a, const int64_t* order, int ndim) {
    PT_TRY return wrap(a->permute(dims(order, ndim)));
    PT_CATCH(nullptr)
}
PT_EXPORT TensorHandle pt_expand(TensorHandle a, const int64_t* shape, int ndim) {
    PT_TRY return wrap(a->expand(dims(shape, ndim)));
    PT_CATCH(nullptr)
}
PT_EXPORT TensorHandle pt_repeat(TensorHandle a, const int64_t* repeats, int ndim) {
    PT_TRY return wrap(a->repeat(dims(repeats, ndim)));
    PT_CATCH(nullptr)
}
PT_EXPORT TensorHandle pt_transpose(TensorHandle a, int64_t d0, int64_t d1) {
    PT_TRY return wrap(a->transpose(d0, d1));
    PT_CATCH(nullptr)
}
PT_EXPORT TensorHandle pt_slice(TensorHandle a, int64_t dim, int64_t start, int64_t end, int64_t step) {
    PT_TRY return wrap(a->slice(dim, start, end, step));
    PT_CATCH(nullptr)
}
PT_EXPORT TensorHandle pt_select(TensorHandle a, int64_t dim, int64_t index) {
    PT_TRY return wrap(a->select(dim, index));
    PT_CATCH(nullptr)
}
PT_OP_DIM(unsqueeze, a->unsqueeze(dim))
PT_OP_DIM(squeeze_dim, a->squeeze(dim))
PT_EXPORT TensorHandle pt_flatten(TensorHandle a, int64_t start, int64_t end) {
    PT_TRY return wrap(a->flatten(start, end));
    PT_CATCH(nullptr)
}
PT_EXPORT TensorHandle pt_cat(TensorHandle* list, int count, int64_t dim) {
    PT_TRY return wrap(at::cat(unwrap_list(list, count), dim));
    PT_CATCH(nullptr)
}
PT_EXPORT TensorHandle pt_stack(TensorHandle* list, int count, int64_t dim) {
    PT_TRY return wrap(at::stack(unwrap_list(list, count), dim));
    PT_CATCH(nullptr)
}
// Splits into pieces of `size` along `dim`; writes up to `capacity` handles, returns the count (or -1).
PT_EXPORT int pt_split(TensorHandle a, int64_t size, int64_t dim, TensorHandle* out, int capacity) {
    PT_TRY
    auto parts = a->split(size, dim);
    TORCH_CHECK(static_cast<int>(parts.size()) <= capacity, "split produced ", parts.size(), " parts, room for ", capacity);
    for (size_t i = 0; i < parts.size(); ++i) out[i] = wrap(parts[i]);
    return static_cast<int>(parts.size());
    PT_CATCH(-1)
}
PT_EXPORT TensorHandle pt_index_select(TensorHandle a, int64_t dim, TensorHandle index) {
    PT_TRY return wrap(a->index_select(dim, *index));
    PT_CATCH(nullptr)
}
PT_EXPORT TensorHandle pt_gather(TensorHandle a, int64_t dim, TensorHandle index) {
    PT_TRY return wrap(a->gather(dim, *index));
    PT_CATCH(nullptr)
}
PT_EXPORT TensorHandle pt_masked_fill(TensorHandle a, TensorHandle mask, double value) {
    PT_TRY return wrap(a->masked_fill(*mask, value));
    PT_CATCH(nullptr)
}
PT_EXPORT TensorHandle pt_masked_select(TensorHandle a, TensorHandle mask) {
    PT_TRY return wrap(a->masked_select(*mask));
    PT_CATCH(nullptr)
}
PT_EXPORT TensorHandle pt_triu(TensorHandle a, int64_t diagonal) {
    PT_TRY return wrap(a->triu(diagonal));
    PT_CATCH(nullptr)
}
PT_EXPORT TensorHandle pt_tril(TensorHandle a, int64_t diagonal) {
    PT_TRY return wrap(a->tril(diagonal));
    PT_CATCH(nullptr)
}
PT_EXPORT TensorHandle pt_where(TensorHandle cond, TensorHandle a, TensorHandle b) {
    PT_TRY return wrap(at::where(*cond, *a, *b));
    PT_CATCH(nullptr)
}

// ---- arithmetic (broadcasting) -------------------------------------------------------------------

PT_OP2(add, *a + *b)
PT_OP2(sub, *a - *b)
PT_OP2(mul, *a * *b)
PT_OP2(div, *a / *b)
PT_OP2(matmul, at::matmul(*a, *b))
PT_OP2(minimum, at::minimum(*a, *b))
PT_OP2(maximum, at::maximum(*a, *b))
PT_OP2(pow, at::pow(*a, *b))
PT_OP_SCALAR(add_scalar, *a + s)
PT_OP_SCALAR(sub_scalar, *a - s)
PT_OP_SCALAR(rsub_scalar, s - *a)
PT_OP_SCALAR(mul_scalar, *a * s)
PT_OP_SCALAR(div_scalar, *a / s)
PT_OP_SCALAR(rdiv_scalar, at::reciprocal(*a) * s)
PT_OP_SCALAR(pow_scalar, at::pow(*a, s))
PT_OP2(eq, at::eq(*a, *b))
PT_OP2(ne, at::ne(*a, *b))
PT_OP2(gt, at::gt(*a, *b))
PT_OP2(ge, at::ge(*a, *b))
PT_OP2(lt, at::lt(*a, *b))
PT_OP2(le, at::le(*a, *b))
PT_OP_SCALAR(eq_scalar, at::eq(*a, s))
PT_OP_SCALAR(ne_scalar, at::ne(*a, s))
PT_OP_SCALAR(gt_scalar, at::gt(*a, s))
PT_OP_SCALAR(ge_scalar, at::ge(*a, s))
PT_OP_SCALAR(lt_scalar, at::lt(*a, s))
PT_OP_SCALAR(le_scalar, at::le(*a, s))
PT_OP2(logical_and, at::logical_and(*a, *b))
PT_OP2(logical_or, at::logical_or(*a, *b))
PT_OP1(logical_not, at::logical_not(*a))
PT_EXPORT TensorHandle pt_addmm(TensorHandle bias, TensorHandle a, TensorHandle b) {
    PT_TRY return wrap(at::addmm(*bias, *a, *b));
    PT_CATCH(nullptr)
}

// ---- elementwise functions -----------------------------------------------------------------------

PT_OP1(neg, at::neg(*a))
PT_OP1(exp, at::exp(*a))
PT_OP1(log, at::log(*a))
PT_OP1(log1p, at::log1p(*a))
PT_OP1(sqrt, at::sqrt(*a))
PT_OP1(rsqrt, at::rsqrt(*a))
PT_OP1(abs, at::abs(*a))
PT_OP1(sign, at::sign(*a))
PT_OP1(tanh, at::tanh(*a))
PT_OP1(relu, at::relu(*a))
PT_OP1(sigmoid, at::sigmoid(*a))
PT_OP1(logsigmoid, at::log_sigmoid(*a))
PT_OP1(softplus, at::softplus(*a))
PT_OP1(gelu_tanh, at::gelu(*a, "tanh"))  // GPT-2's "gelu_new"
PT_OP1(gelu, at::gelu(*a, "none"))
PT_OP1(isfinite, at::isfinite(*a))
PT_OP_DIM(softmax, at::softmax(*a, dim))
PT_OP_DIM(log_softmax, at::log_softmax(*a, dim))
PT_OP_DIM(cumsum, at::cumsum(*a, dim))
PT_EXPORT TensorHandle pt_clamp(TensorHandle a, double min, double max, int has_min, int has_max) {
    PT_TRY
    c10::optional<at::Scalar> lo = has_min ? c10::optional<at::Scalar>(min) : c10::nullopt;
    c10::optional<at::Scalar> hi = has_max ? c10::optional<at::Scalar>(max) : c10::nullopt;
    return wrap(at::clamp(*a, lo, hi));
    PT_CATCH(nullptr)
}

// ---- reductions ----------------------------------------------------------------------------------

PT_OP1(sum_all, a->sum())
PT_OP1(mean_all, a->mean())
PT_OP1(max_all, a->max())
PT_OP1(min_all, a->min())
PT_OP1(all, a->all())
PT_OP1(any, a->any())
PT_EXPORT TensorHandle pt_sum(TensorHandle a, const int64_t* d, int n, int keepdim) {
    PT_TRY return wrap(a->sum(dims(d, n), keepdim != 0));
    PT_CATCH(nullptr)
}
PT_EXPORT TensorHandle pt_mean(TensorHandle a, const int64_t* d, int n, int keepdim) {
    PT_TRY return wrap(a->mean(dims(d, n), keepdim != 0));
    PT_CATCH(nullptr)
}
PT_EXPORT TensorHandle pt_logsumexp(TensorHandle a, const int64_t* d, int n, int keepdim) {
    PT_TRY return wrap(at::logsumexp(*a, dims(d, n), keepdim != 0));
    PT_CATCH(nullptr)
}
PT_EXPORT TensorHandle pt_var(TensorHandle a, const int64_t* d, int n, int unbiased, int keepdim) {
    PT_TRY return wrap(at::var(*a, dims(d, n), unbiased != 0, keepdim != 0));
    PT_CATCH(nullptr)
}
PT_EXPORT TensorHandle pt_norm(TensorHandle a) {
    PT_TRY return wrap(a->norm());
    PT_CATCH(nullptr)
}
// max/min along a dim return (values, indices); both handles are written to `out`.
PT_EXPORT int pt_max_dim(TensorHandle a, int64_t dim, int keepdim, TensorHandle* out) {
    PT_TRY
    auto r = a->max(dim, keepdim != 0);
    out[0] = wrap(std::get<0>(r));
    out[1] = wrap(std::get<1>(r));
    return 0;
    PT_CATCH(1)
}
PT_EXPORT int pt_min_dim(TensorHandle a, int64_t dim, int keepdim, TensorHandle* out) {
    PT_TRY
    auto r = a->min(dim, keepdim != 0);
    out[0] = wrap(std::get<0>(r));
    out[1] = wrap(std::get<1>(r));
    return 0;
    PT_CATCH(1)
}
PT_EXPORT TensorHandle pt_argmax(TensorHandle a, int64_t dim, int keepdim) {
    PT_TRY return wrap(a->argmax(dim, keepdim != 0));
    PT_CATCH(nullptr)
}

// ---- sampling ------------------------------------------------------------------------------------

PT_EXPORT TensorHandle pt_multinomial(TensorHandle probs, int64_t n, int replacement, void* gen) {
    PT_TRY return wrap(at::multinomial(*probs, n, replacement != 0, generator(gen)));
    PT_CATCH(nullptr)
}
PT_EXPORT int pt_topk(TensorHandle a, int64_t k, int64_t dim, int largest, TensorHandle* out) {
    PT_TRY
    auto r = a->topk(k, dim, largest != 0, true);
    out[0] = wrap(std::get<0>(r));
    out[1] = wrap(std::get<1>(r));
    return 0;
    PT_CATCH(1)
}
PT_EXPORT int pt_sort(TensorHandle a, int64_t dim, int descending, TensorHandle* out) {
    PT_TRY
    auto r = a->sort(dim, descending != 0);
    out[0] = wrap(std::get<0>(r));
    out[1] = wrap(std::get<1>(r));
    return 0;
    PT_CATCH(1)
}

// ---- neural-network building blocks --------------------------------------------------------------

PT_EXPORT TensorHandle pt_linear(TensorHandle x, TensorHandle weight, TensorHandle bias) {
    PT_TRY return wrap(at::linear(*x, *weight, bias == nullptr ? c10::optional<Tensor>() : c10::optional<Tensor>(*bias)));
    PT_CATCH(nullptr)
}
PT_EXPORT TensorHandle pt_layer_norm(TensorHandle x, const int64_t* shape, int ndim, TensorHandle weight, TensorHandle bias, double eps) {
    PT_TRY
    c10::optional<Tensor> w = weight == nullptr ? c10::optional<Tensor>() : c10::optional<Tensor>(*weight);
    c10::optional<Tensor> b = bias == nullptr ? c10::optional<Tensor>() : c10::optional<Tensor>(*bias);
    return wrap(at::layer_norm(*x, dims(shape, ndim), w, b, eps, true));
    PT_CATCH(nullptr)
}
PT_EXPORT TensorHandle pt_embedding(TensorHandle weight, TensorHandle indices) {
    PT_TRY return wrap(at::embedding(*weight, *indices));
    PT_CATCH(nullptr)
}
// Inverted dropout with an explicit generator, so a seeded run is reproducible.
PT_EXPORT TensorHandle pt_dropout(TensorHandle x, double p, void* gen) {
    PT_TRY
    TORCH_CHECK(p >= 0.0 && p < 1.0, "dropout probability must be in [0, 1), got ", p);
    if (p == 0.0) return wrap(*x);
    at::Tensor keep;
    {
        at::NoGradGuard no_grad;
        keep = at::empty_like(*x).bernoulli_(1.0 - p, generator(gen)).div_(1.0 - p);
    }
    return wrap(*x * keep);
    PT_CATCH(nullptr)
}
// Mean cross-entropy over rows of `logits` (N, C) against int64 `target` (N); ignore_index skips padding.
PT_EXPORT TensorHandle pt_cross_entropy(TensorHandle logits, TensorHandle target, int64_t ignore_index, double label_smoothing) {
    PT_TRY return wrap(at::cross_entropy_loss(*logits, *target, {}, at::Reduction::Mean, ignore_index, label_smoothing));
    PT_CATCH(nullptr)
}
