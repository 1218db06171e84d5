// AdamW as one pass over memory. torch.optim.AdamW (1.13, single-tensor) runs eight ATen ops per
// parameter, each a full sweep over the parameter, its gradient and the two moments, plus two
// temporaries; this kernel reads p, g, m, v once and writes p, m, v once, split over the intra-op
// threads. The arithmetic is the same as PyTorch's (same constants, same order), but the compiler
// may fuse a multiply and an add where ATen's kernels did not, so results can differ from PyTorch
// in the last bit or two; the default, unfused step (autograd.cpp) is bit-identical.
#include "shim.h"

#include <cmath>

using namespace shim;

namespace {

// The scalar constants of one step, converted to T exactly where PyTorch's kernels convert them.
template <typename T>
struct AdamWConstants {
    T decay, b1, one_minus_b1, b2, one_minus_b2, bc2_sqrt, neg_step_size, eps;

    AdamWConstants(double lr, double beta1, double beta2, double eps_, double weight_decay, int64_t step) {
        const double bias_correction1 = 1.0 - std::pow(beta1, static_cast<double>(step));
        const double bias_correction2 = 1.0 - std::pow(beta2, static_cast<double>(step));
        decay = static_cast<T>(1.0 - lr * weight_decay);
        b1 = static_cast<T>(beta1);
        one_minus_b1 = static_cast<T>(1.0 - beta1);
        b2 = static_cast<T>(beta2);
        one_minus_b2 = static_cast<T>(1.0 - beta2);
        bc2_sqrt = static_cast<T>(std::sqrt(bias_correction2));
        neg_step_size = static_cast<T>(-(lr / bias_correction1));
        eps = static_cast<T>(eps_);
    }
};

// One contiguous run of elements. Plain restrict pointers and -fno-math-errno (CMakeLists.txt) let
// the compiler vectorise the loop, sqrt and division included.
template <typename T>
__attribute__((always_inline)) inline void adamw_run(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ m, T* __restrict__ v,
                                                     int64_t n, const AdamWConstants<T>& c) {
    for (int64_t i = 0; i < n; ++i) {
        const T gi = g[i];
        const T pi = p[i] * c.decay;
        const T mi = m[i] * c.b1 + gi * c.one_minus_b1;
        const T vi = v[i] * c.b2 + gi * gi * c.one_minus_b2;
        const T denom = std::sqrt(vi) / c.bc2_sqrt + c.eps;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi + c.neg_step_size * mi / denom;
    }
}

// The same loop compiled for AVX2+FMA (8 floats per instruction) and for the x86-64 baseline (SSE2),
// chosen at run time: the shim is built for any x86-64, the machine it runs on decides.
template <typename T>
__attribute__((target("avx2,fma"))) void adamw_run_avx2(T* p, const T* g, T* m, T* v, int64_t n, const AdamWConstants<T>& c) {
    adamw_run(p, g, m, v, n, c);
}
template <typename T>
void adamw_run_baseline(T* p, const T* g, T* m, T* v, int64_t n, const AdamWConstants<T>& c) {
    adamw_run(p, g, m, v, n, c);
}

const bool has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");

template <typename T>
void adamw_fused(T* p, const T* g, T* m, T* v, int64_t n, double lr, double beta1, double beta2, double eps, double weight_decay,
                 int64_t step) {
    const AdamWConstants<T> c(lr, beta1, beta2, eps, weight_decay, step);
    // 16K elements per task: large enough to amortise the fork, small enough to split a GPT-2 matrix.
    at::parallel_for(0, n, 16384, [&](int64_t begin, int64_t end) {
        if (has_avx2)
            adamw_run_avx2(p + begin, g + begin, m + begin, v + begin, end - begin, c);
        else
            adamw_run_baseline(p + begin, g + begin, m + begin, v + begin, end - begin, c);
    });
}

// The unfused update for tensors the kernel does not take (half types, non-contiguous memory).
void adamw_reference(Tensor& p, const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq, double lr, double beta1, double beta2,
                     double eps, double weight_decay, int64_t step) {
    p.mul_(1.0 - lr * weight_decay);
    exp_avg.mul_(beta1).add_(grad, 1.0 - beta1);
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1.0 - beta2);
    const double bias_correction1 = 1.0 - std::pow(beta1, static_cast<double>(step));
    const double bias_correction2 = 1.0 - std::pow(beta2, static_cast<double>(step));
    auto denom = (exp_avg_sq.sqrt() / std::sqrt(bias_correction2)).add_(eps);
    p.addcdiv_(exp_avg, denom, -lr / bias_correction1);
}

}  // namespace

// Same contract as pt_adamw_step: skips parameters without a gradient, advances steps[i] otherwise.
PT_EXPORT int pt_adamw_step_fused(TensorHandle* params, TensorHandle* exp_avg, TensorHandle* exp_avg_sq, int64_t* steps, int n,
                                  double lr, double beta1, double beta2, double eps, double weight_decay) {
    PT_TRY
    at::NoGradGuard no_grad;
    for (int i = 0; i < n; ++i) {
        Tensor& p = *params[i];
        const Tensor& grad = p.grad();
        if (!grad.defined()) continue;
        Tensor& m = *exp_avg[i];
        Tensor& v = *exp_avg_sq[i];
        const int64_t step = steps[i] + 1;
        const auto type = p.scalar_type();
        const bool fusable = (type == at::kFloat || type == at::kDouble) && p.device().is_cpu() && grad.scalar_type() == type &&
                             m.scalar_type() == type && v.scalar_type() == type && p.is_contiguous() && grad.is_contiguous() &&
                             m.is_contiguous() && v.is_contiguous() && grad.numel() == p.numel() && m.numel() == p.numel() &&
                             v.numel() == p.numel();
        if (!fusable) {
            adamw_reference(p, grad, m, v, lr, beta1, beta2, eps, weight_decay, step);
        } else if (type == at::kFloat) {
            adamw_fused<float>(p.data_ptr<float>(), grad.data_ptr<float>(), m.data_ptr<float>(), v.data_ptr<float>(), p.numel(), lr,
                               beta1, beta2, eps, weight_decay, step);
        } else {
            adamw_fused<double>(p.data_ptr<double>(), grad.data_ptr<double>(), m.data_ptr<double>(), v.data_ptr<double>(), p.numel(),
                                lr, beta1, beta2, eps, weight_decay, step);
        }
        steps[i] = step;
    }
    return 0;
    PT_CATCH(1)
}
