// Autograd, in-place updates of parameters, and the optimiser kernels that run a whole step in one
// native call (one round trip per step instead of several per parameter).
#include "shim.h"

using namespace shim;

// ---- autograd ------------------------------------------------------------------------------------

PT_EXPORT int pt_set_requires_grad(TensorHandle t, int requires) {
    PT_TRY
    t->requires_grad_(requires != 0);
    return 0;
    PT_CATCH(1)
}
PT_EXPORT int pt_backward(TensorHandle t, TensorHandle grad, int retain_graph) {
    PT_TRY
    t->backward(grad == nullptr ? Tensor() : *grad, retain_graph != 0);
    return 0;
    PT_CATCH(1)
}
// Writes the gradient handle (or null when no gradient was accumulated) to `out`.
PT_EXPORT int pt_grad(TensorHandle t, TensorHandle* out) {
    PT_TRY
    const auto& g = t->grad();
    *out = g.defined() ? wrap(g) : nullptr;
    return 0;
    PT_CATCH(1)
}
// Drops the accumulated gradient (set-to-none, as torch's zero_grad(set_to_none=True) does).
PT_EXPORT int pt_clear_grad(TensorHandle t) {
    PT_TRY
    t->mutable_grad() = Tensor();
    return 0;
    PT_CATCH(1)
}

// ---- in-place (parameters and optimiser state; never recorded by autograd) -----------------------

PT_EXPORT int pt_copy_(TensorHandle dst, TensorHandle src) {
    PT_TRY
    at::NoGradGuard no_grad;
    dst->copy_(*src);
    return 0;
    PT_CATCH(1)
}
PT_EXPORT int pt_fill_(TensorHandle dst, double value) {
    PT_TRY
    at::NoGradGuard no_grad;
    dst->fill_(value);
    return 0;
    PT_CATCH(1)
}
PT_EXPORT int pt_normal_(TensorHandle dst, double mean, double std, void* gen) {
    PT_TRY
    at::NoGradGuard no_grad;
    dst->normal_(mean, std, generator(gen));
    return 0;
    PT_CATCH(1)
}
PT_EXPORT int pt_uniform_(TensorHandle dst, double from, double to, void* gen) {
    PT_TRY
    at::NoGradGuard no_grad;
    dst->uniform_(from, to, generator(gen));
    return 0;
    PT_CATCH(1)
}
// dst += alpha * src
PT_EXPORT int pt_add_(TensorHandle dst, TensorHandle src, double alpha) {
    PT_TRY
    at::NoGradGuard no_grad;
    dst->add_(*src, alpha);
    return 0;
    PT_CATCH(1)
}
PT_EXPORT int pt_mul_scalar_(TensorHandle dst, double s) {
    PT_TRY
    at::NoGradGuard no_grad;
    dst->mul_(s);
    return 0;
    PT_CATCH(1)
}

// ---- optimisers ----------------------------------------------------------------------------------

// One torch.optim.AdamW step (PyTorch 1.13, amsgrad=False, maximize=False) over n parameters.
// A parameter without a gradient is skipped and its step count not advanced, as in PyTorch.
// steps[i] is the per-parameter step counter, incremented here.
PT_EXPORT int pt_adamw_step(TensorHandle* params, TensorHandle* exp_avg, TensorHandle* exp_avg_sq, int64_t* steps, int n,
                            double lr, double beta1, double beta2, double eps, double weight_decay) {
    PT_TRY
    at::NoGradGuard no_grad;
    for (int i = 0; i < n; ++i) {
        Tensor& p = *params[i];
        const Tensor& grad = p.grad();
        if (!grad.defined()) continue;
        const int64_t step = ++steps[i];
        p.mul_(1.0 - lr * weight_decay);
        exp_avg[i]->mul_(beta1).add_(grad, 1.0 - beta1);
        exp_avg_sq[i]->mul_(beta2).addcmul_(grad, grad, 1.0 - beta2);
        const double bias_correction1 = 1.0 - std::pow(beta1, static_cast<double>(step));
        const double bias_correction2 = 1.0 - std::pow(beta2, static_cast<double>(step));
        const double step_size = lr / bias_correction1;
        auto denom = (exp_avg_sq[i]->sqrt() / std::sqrt(bias_correction2)).add_(eps);
        p.addcdiv_(*exp_avg[i], denom, -step_size);
    }
    return 0;
    PT_CATCH(1)
}

// torch.nn.utils.clip_grad_norm_ (L2, PyTorch 1.13) computed the way PyTorch computes it, in the
// gradients' own dtype: per-gradient norms, the norm of their stack, coefficient
// max_norm / (total + 1e-6) clamped to 1, every gradient multiplied by it. Returns the total norm
// before clipping through `out_norm`. One deliberate difference: a non-finite total norm leaves the
// gradients untouched (PyTorch would multiply them by NaN) because the caller skips that step anyway
// and the gradients stay inspectable.
PT_EXPORT int pt_clip_grad_norm(TensorHandle* params, int n, double max_norm, double* out_norm) {
    PT_TRY
    at::NoGradGuard no_grad;
    TORCH_CHECK(max_norm > 0.0 && std::isfinite(max_norm), "max_norm must be positive and finite, got ", max_norm);
    std::vector<Tensor> grads;
    grads.reserve(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
        const Tensor& g = params[i]->grad();
        if (g.defined()) grads.push_back(g);
    }
    if (grads.empty()) {
        *out_norm = 0.0;
        return 0;
    }
    std::vector<Tensor> norms;
    norms.reserve(grads.size());
    for (const auto& g : grads) norms.push_back(at::linalg_vector_norm(g, 2.0));
    const Tensor total = at::linalg_vector_norm(at::stack(norms), 2.0);
    const double total_value = total.item<double>();
    *out_norm = total_value;
    if (!std::isfinite(total_value)) return 0;
    const Tensor coef = at::clamp(max_norm / (total + 1e-6), c10::nullopt, 1.0);
    for (int i = 0; i < n; ++i) {
        Tensor& g = params[i]->mutable_grad();
        if (g.defined()) g.mul_(coef.to(g.device()));
    }
    return 0;
    PT_CATCH(1)
}

// True when every gradient is finite (the learner's NaN/Inf guard), in one call.
PT_EXPORT int pt_grads_finite(TensorHandle* params, int n, int* out) {
    PT_TRY
    at::NoGradGuard no_grad;
    bool ok = true;
    for (int i = 0; i < n && ok; ++i) {
        const Tensor& g = params[i]->grad();
        if (g.defined()) ok = at::isfinite(g).all().item<bool>();
    }
    *out = ok ? 1 : 0;
    return 0;
    PT_CATCH(1)
}
