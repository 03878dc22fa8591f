// Kernels for tests/model_fault.rs, compiled there with bookworm's
// `hipcc --genco --offload-arch=gfx1030 --offload-arch=gfx1010` into a code
// object that the real HIP 7.2.4 loads with hipModuleLoadData. The model GPU
// executes nothing: it faults when a pointer argument is covered by no live
// allocation (tests/model/model_gpu.c). No float arguments: padded to 8 bytes
// they would read as addresses to the model.
#include <hip/hip_runtime.h>

namespace train {
template <typename T> __global__ void axpy(T *y, const T *x, unsigned long n)
{
    unsigned long i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        y[i] += 2 * x[i];
}
template __global__ void axpy<float>(float *, const float *, unsigned long);
} // namespace train
