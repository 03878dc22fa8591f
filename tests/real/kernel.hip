// A HIP program built with hipcc --offload-arch=gfx1030 that launches a
// trivial kernel. tests/real_rocm.rs runs it with and without librmcp.so; with
// no GPU both runs must report the same errors in the same words.
#include <hip/hip_runtime.h>
#include <cstdio>

__global__ void add_one(int *data, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) data[i] += 1;
}

#define SHOW(name, expr)                                                      \
    do {                                                                      \
        hipError_t e_ = (expr);                                               \
        std::printf("%-28s rc=%d %s\n", name, (int)e_, hipGetErrorName(e_)); \
    } while (0)

int main()
{
    std::setvbuf(stdout, nullptr, _IONBF, 0);
    int count = -1;
    SHOW("hipGetDeviceCount", hipGetDeviceCount(&count));
    std::printf("deviceCount %d\n", count);

    const int n = 256;
    int *data = nullptr;
    SHOW("hipMalloc", hipMalloc(reinterpret_cast<void **>(&data), n * sizeof(int)));
    int *host = nullptr;
    SHOW("hipHostMalloc(flags 0)", hipHostMalloc(reinterpret_cast<void **>(&host), n * sizeof(int), 0));
    hipLaunchKernelGGL(add_one, dim3(n / 64), dim3(64), 0, 0, data, n);
    SHOW("launch (hipGetLastError)", hipGetLastError());
    SHOW("hipDeviceSynchronize", hipDeviceSynchronize());
    if (host) SHOW("hipHostFree", hipHostFree(host));
    if (data) SHOW("hipFree", hipFree(data));
    std::printf("kernel: done\n");
    return count > 0 ? 0 : 3;
}
