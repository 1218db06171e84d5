// Handle lifetime, errors, runtime settings, creation, inspection and copies to/from managed memory.
#include "shim.h"

#include <c10/util/Logging.h>

#include <cstdlib>

namespace shim {

static thread_local std::string last_error;
std::atomic<int64_t> live_handles{0};

void set_error(const char* message) { last_error = message == nullptr ? "unknown native error" : message; }
void clear_error() { last_error.clear(); }

// libtorch builds a symbolised C++ backtrace into every c10::Error it constructs: ~20 ms per error
// here (libtorch is huge), paid even though the shim reports what_without_backtrace(). A bad input
// must not stall the tensor thread, so the fetcher is replaced with a no-op at load time unless
// PREFONLINE_NATIVE_BACKTRACE=1 asks for the backtraces (they then appear in no message either, but
// in a debugger's view of the exception).
static const bool backtraces_disabled = [] {
    const char* keep = std::getenv("PREFONLINE_NATIVE_BACKTRACE");
    if (keep != nullptr && std::string(keep) == "1") return false;
    c10::SetStackTraceFetcher([] { return std::string(); });
    return true;
}();

}  // namespace shim

using namespace shim;

// ---- errors and lifetime -------------------------------------------------------------------------

PT_EXPORT const char* pt_last_error() { return shim::last_error.c_str(); }

PT_EXPORT void pt_free(TensorHandle t) {
    if (t == nullptr) return;
    delete t;  // at::Tensor's destructor never throws
    live_handles.fetch_sub(1, std::memory_order_relaxed);
}

PT_EXPORT int64_t pt_live_handles() { return live_handles.load(std::memory_order_relaxed); }

// ---- runtime settings ----------------------------------------------------------------------------

PT_EXPORT int pt_set_num_threads(int n) {
    PT_TRY
    at::set_num_threads(n);
    return 0;
    PT_CATCH(1)
}
PT_EXPORT int pt_get_num_threads() { return at::get_num_threads(); }
PT_EXPORT void pt_manual_seed(uint64_t seed) {
    try { at::manual_seed(seed); } catch (...) {}
}
PT_EXPORT int pt_cuda_is_available() { return at::hasCUDA() ? 1 : 0; }
PT_EXPORT int pt_grad_enabled() { return c10::GradMode::is_enabled() ? 1 : 0; }
PT_EXPORT void pt_set_grad_enabled(int enabled) { c10::GradMode::set_enabled(enabled != 0); }
PT_EXPORT const char* pt_version() {
    static std::string version = std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
                                 std::to_string(TORCH_VERSION_PATCH);
    return version.c_str();
}

// ---- random generators ---------------------------------------------------------------------------

PT_EXPORT void* pt_generator_new(uint64_t seed) {
    PT_TRY
    return new at::Generator(at::detail::createCPUGenerator(seed));
    PT_CATCH(nullptr)
}
PT_EXPORT void pt_generator_free(void* g) { delete static_cast<at::Generator*>(g); }
PT_EXPORT int pt_generator_set_seed(void* g, uint64_t seed) {
    PT_TRY
    auto* gen = static_cast<at::Generator*>(g);
    std::lock_guard<std::mutex> lock(gen->mutex());
    gen->set_current_seed(seed);
    return 0;
    PT_CATCH(1)
}
// The generator's full state (for checkpoints: a resumed worker samples what it would have sampled).
PT_EXPORT TensorHandle pt_generator_get_state(void* g) {
    PT_TRY
    auto* gen = static_cast<at::Generator*>(g);
    std::lock_guard<std::mutex> lock(gen->mutex());
    return wrap(gen->get_state());
    PT_CATCH(nullptr)
}
PT_EXPORT int pt_generator_set_state(void* g, TensorHandle state) {
    PT_TRY
    auto* gen = static_cast<at::Generator*>(g);
    std::lock_guard<std::mutex> lock(gen->mutex());
    gen->set_state(*state);
    return 0;
    PT_CATCH(1)
}

// ---- creation ------------------------------------------------------------------------------------

static at::TensorOptions options(int dtype, int device) {
    auto o = at::TensorOptions().dtype(static_cast<at::ScalarType>(dtype));
    return device < 0 ? o.device(at::kCPU) : o.device(at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(device)));
}

// Copies `nbytes` from managed memory into a new CPU tensor, then moves it to the device.
// The shape is checked against `nbytes` BEFORE anything is allocated: a corrupt shape from a file
// must be an error, not an attempt to allocate terabytes.
PT_EXPORT TensorHandle pt_from_bytes(const void* data, int64_t nbytes, const int64_t* shape, int ndim, int dtype, int device) {
    PT_TRY
    TORCH_CHECK(ndim >= 0, "negative rank ", ndim);
    const auto type = static_cast<at::ScalarType>(dtype);
    int64_t expected = static_cast<int64_t>(c10::elementSize(type));
    for (int i = 0; i < ndim; ++i) {
        TORCH_CHECK(shape[i] >= 0, "negative dimension ", shape[i], " in shape ", dims(shape, ndim));
        TORCH_CHECK(!__builtin_mul_overflow(expected, shape[i], &expected), "shape ", dims(shape, ndim), " overflows int64 bytes");
    }
    TORCH_CHECK(expected == nbytes, "byte count ", nbytes, " does not match shape ", dims(shape, ndim), " of dtype ", type, " (",
                expected, " bytes)");
    auto t = at::empty(dims(shape, ndim), options(dtype, -1));
    if (nbytes > 0) std::memcpy(t.data_ptr(), data, static_cast<size_t>(nbytes));
    return wrap(device < 0 ? t : t.to(options(dtype, device).device()));
    PT_CATCH(nullptr)
}

PT_EXPORT TensorHandle pt_empty(const int64_t* shape, int ndim, int dtype, int device) {
    PT_TRY return wrap(at::empty(dims(shape, ndim), options(dtype, device)));
    PT_CATCH(nullptr)
}
PT_EXPORT TensorHandle pt_zeros(const int64_t* shape, int ndim, int dtype, int device) {
    PT_TRY return wrap(at::zeros(dims(shape, ndim), options(dtype, device)));
    PT_CATCH(nullptr)
}
PT_EXPORT TensorHandle pt_full(const int64_t* shape, int ndim, double value, int dtype, int device) {
    PT_TRY return wrap(at::full(dims(shape, ndim), value, options(dtype, device)));
    PT_CATCH(nullptr)
}
PT_EXPORT TensorHandle pt_arange(double start, double end, double step, int dtype, int device) {
    PT_TRY return wrap(at::arange(start, end, step, options(dtype, device)));
    PT_CATCH(nullptr)
}
PT_EXPORT TensorHandle pt_randn(const int64_t* shape, int ndim, void* gen, int dtype, int device) {
    PT_TRY return wrap(at::randn(dims(shape, ndim), generator(gen), options(dtype, device)));
    PT_CATCH(nullptr)
}
PT_EXPORT TensorHandle pt_rand(const int64_t* shape, int ndim, void* gen, int dtype, int device) {
    PT_TRY return wrap(at::rand(dims(shape, ndim), generator(gen), options(dtype, device)));
    PT_CATCH(nullptr)
}
PT_EXPORT TensorHandle pt_randint(int64_t low, int64_t high, const int64_t* shape, int ndim, void* gen, int device) {
    PT_TRY return wrap(at::randint(low, high, dims(shape, ndim), generator(gen), options(static_cast<int>(at::kLong), device)));
    PT_CATCH(nullptr)
}

// ---- inspection ----------------------------------------------------------------------------------

PT_EXPORT int pt_ndim(TensorHandle t) { return static_cast<int>(t->dim()); }
PT_EXPORT void pt_shape(TensorHandle t, int64_t* out) {
    auto s = t->sizes();
    for (size_t i = 0; i < s.size(); ++i) out[i] = s[i];
}
PT_EXPORT int pt_dtype(TensorHandle t) { return static_cast<int>(t->scalar_type()); }
PT_EXPORT int64_t pt_numel(TensorHandle t) { return t->numel(); }
PT_EXPORT int pt_device(TensorHandle t) { return t->is_cuda() ? static_cast<int>(t->device().index()) : -1; }
PT_EXPORT int pt_requires_grad(TensorHandle t) { return t->requires_grad() ? 1 : 0; }
PT_EXPORT int pt_is_leaf(TensorHandle t) { return t->is_leaf() ? 1 : 0; }

PT_EXPORT int pt_item_double(TensorHandle t, double* out) {
    PT_TRY
    *out = t->item<double>();
    return 0;
    PT_CATCH(1)
}
PT_EXPORT int pt_item_long(TensorHandle t, int64_t* out) {
    PT_TRY
    *out = t->item<int64_t>();
    return 0;
    PT_CATCH(1)
}

// Copies the tensor's elements (any device, any layout) into managed memory of exactly `nbytes`.
PT_EXPORT int pt_copy_to_bytes(TensorHandle t, void* dst, int64_t nbytes) {
    PT_TRY
    at::NoGradGuard no_grad;
    auto c = t->detach().to(at::kCPU).contiguous();
    TORCH_CHECK(static_cast<int64_t>(c.nbytes()) == nbytes, "destination holds ", nbytes, " bytes, tensor has ", c.nbytes());
    if (nbytes > 0) std::memcpy(dst, c.data_ptr(), static_cast<size_t>(nbytes));
    return 0;
    PT_CATCH(1)
}

// ---- conversion ----------------------------------------------------------------------------------

PT_EXPORT TensorHandle pt_to_dtype(TensorHandle t, int dtype) {
    PT_TRY return wrap(t->to(static_cast<at::ScalarType>(dtype)));
    PT_CATCH(nullptr)
}
PT_EXPORT TensorHandle pt_to_device(TensorHandle t, int device) {
    PT_TRY
    TORCH_CHECK(device < 0 || at::hasCUDA(), "CUDA device ", device,
                " requested, but this libtorch was built without CUDA (Debian's libtorch is CPU-only; install a CUDA build of libtorch)");
    return wrap(t->to(device < 0 ? at::Device(at::kCPU) : at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(device))));
    PT_CATCH(nullptr)
}
PT_OP1(contiguous, a->contiguous())
PT_OP1(clone, a->clone())
PT_OP1(detach, a->detach())
PT_OP1(alias, *a)  // a second handle to the same tensor (shares storage and autograd identity)
