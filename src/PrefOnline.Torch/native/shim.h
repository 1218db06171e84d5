// The conventions every export of the shim follows.
//
// * A tensor crosses the boundary as an owned `Tensor*` (TensorHandle on the C# side). Every export
//   returns a *new* handle that the caller owns and frees with pt_free; inputs are never consumed.
// * No C++ exception may cross `extern "C"` (it would abort the process), so every body is wrapped in
//   PT_TRY / PT_CATCH. The message goes to a thread-local string that the managed side reads with
//   pt_last_error right after a failed call, on the same thread. A failure is signalled by the return
//   value: a null handle, or a non-zero status for exports that return a status.
#pragma once

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/version.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#define PT_EXPORT extern "C" __attribute__((visibility("default")))

using Tensor = at::Tensor;
using TensorHandle = Tensor*;

namespace shim {

void set_error(const char* message);
void clear_error();

// Live handle count: tests use it to prove a disposal scope frees everything it owned.
extern std::atomic<int64_t> live_handles;

inline TensorHandle wrap(Tensor t) {
    live_handles.fetch_add(1, std::memory_order_relaxed);
    return new Tensor(std::move(t));
}

inline at::IntArrayRef dims(const int64_t* values, int count) { return at::IntArrayRef(values, static_cast<size_t>(count)); }

inline std::vector<Tensor> unwrap_list(TensorHandle* handles, int count) {
    std::vector<Tensor> list;
    list.reserve(static_cast<size_t>(count));
    for (int i = 0; i < count; ++i) list.push_back(*handles[i]);
    return list;
}

inline c10::optional<at::Generator> generator(void* handle) {
    if (handle == nullptr) return c10::nullopt;
    return *static_cast<at::Generator*>(handle);
}

}  // namespace shim

#define PT_TRY try {
#define PT_CATCH(failure_value)                                   \
    }                                                             \
    catch (const c10::Error& e) {                                 \
        shim::set_error(e.what_without_backtrace());              \
        return failure_value;                                     \
    }                                                             \
    catch (const std::exception& e) {                             \
        shim::set_error(e.what());                                \
        return failure_value;                                     \
    }                                                             \
    catch (...) {                                                 \
        shim::set_error("unknown native error");                  \
        return failure_value;                                     \
    }

// One-line definitions for the many ops of the shape "tensors in, one new tensor out".
#define PT_OP1(name, expr) \
    PT_EXPORT TensorHandle pt_##name(TensorHandle a) { PT_TRY return shim::wrap(expr); PT_CATCH(nullptr) }
#define PT_OP2(name, expr) \
    PT_EXPORT TensorHandle pt_##name(TensorHandle a, TensorHandle b) { PT_TRY return shim::wrap(expr); PT_CATCH(nullptr) }
#define PT_OP_SCALAR(name, expr) \
    PT_EXPORT TensorHandle pt_##name(TensorHandle a, double s) { PT_TRY return shim::wrap(expr); PT_CATCH(nullptr) }
#define PT_OP_DIM(name, expr) \
    PT_EXPORT TensorHandle pt_##name(TensorHandle a, int64_t dim) { PT_TRY return shim::wrap(expr); PT_CATCH(nullptr) }
