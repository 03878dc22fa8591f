// Kernels for tests/model_gpu.rs's launch test, compiled there with bookworm's
// `hipcc --genco --offload-arch=gfx1030` into a code object that the real
// HIP 7.2.4 loads with hipModuleLoadData. The model GPU executes nothing.
#include <hip/hip_runtime.h>

__global__ void fill(int *p, unsigned long n)
{
    if (threadIdx.x < n)
        p[threadIdx.x] = 1;
}

namespace probe {
template <typename T> __global__ void scale(T *p, T f) { p[threadIdx.x] *= f; }
template __global__ void scale<float>(float *, float);
} // namespace probe
