// Batched matrix products for attention. baddbmm folds the attention scale and an additive mask into
// the GEMM itself (C = β·input + α·A@B), which saves the separate scale and mask passes over the
// largest activation of a transformer, (B·H, T, T), forward and backward.
#include "shim.h"

using namespace shim;

// β·input + α·(batch1 @ batch2); batch1 (B, n, m), batch2 (B, m, p), input broadcastable to (B, n, p).
PT_EXPORT TensorHandle pt_baddbmm(TensorHandle input, TensorHandle batch1, TensorHandle batch2, double beta, double alpha) {
    PT_TRY return wrap(at::baddbmm(*input, *batch1, *batch2, beta, alpha));
    PT_CATCH(nullptr)
}
// batch1 (B, n, m) @ batch2 (B, m, p) → (B, n, p).
PT_EXPORT TensorHandle pt_bmm(TensorHandle batch1, TensorHandle batch2) {
    PT_TRY return wrap(at::bmm(*batch1, *batch2));
    PT_CATCH(nullptr)
}
