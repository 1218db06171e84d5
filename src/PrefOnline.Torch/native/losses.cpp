// Loss functions that libtorch fuses into one kernel (forward and backward), so a loss costs one
// round trip instead of a chain of elementwise ops.
#include "shim.h"

using namespace shim;

// Mean squared error over all elements, torch.nn.functional.mse_loss(input, target) with reduction 'mean'.
PT_EXPORT TensorHandle pt_mse_loss(TensorHandle input, TensorHandle target) {
    PT_TRY return wrap(at::mse_loss(*input, *target, at::Reduction::Mean));
    PT_CATCH(nullptr)
}
