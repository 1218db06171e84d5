// Replacing a parameter's data in place, as torch.nn.Module._apply does (`param.data = fn(param)`):
// the handle, its name in the module and its identity for the optimiser stay the same while the
// storage moves to another device or dtype.
#include "shim.h"

using namespace shim;

PT_EXPORT int pt_set_data(TensorHandle target, TensorHandle source) {
    PT_TRY
    at::NoGradGuard no_grad;
    target->set_data(*source);
    return 0;
    PT_CATCH(1)
}
