// A HIP program linked directly against librmcp (no LD_PRELOAD needed).
//
// It allocates pinned host memory with hipHostMalloc(flags 0), which ROCm
// makes coherent (fine-grained); on RDNA1/RDNA2 GPUs librmcp turns that into
// a non-coherent (coarse-grained) allocation. The program then copies data to
// a hipMalloc buffer, runs a small kernel that also reads the pinned buffer
// directly, checks the result and prints what librmcp saw.
//
// Build: see README.md (CMake + pkg-config, or one hipcc line).

#include <hip/hip_runtime.h>
#include <rmcp.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#define CHECK(call)                                                                      \
    do {                                                                                 \
        hipError_t err_ = (call);                                                        \
        if (err_ != hipSuccess) {                                                        \
            std::fprintf(stderr, "%s failed: %s (%d)\n", #call, hipGetErrorString(err_), \
                         static_cast<int>(err_));                                        \
            return 1;                                                                    \
        }                                                                                \
    } while (0)

// out[i] = a * dev_in[i] + host_in[i]; host_in is the pinned buffer, read
// over PCIe (or from system memory on an APU) by the GPU.
__global__ void axpy_from_host(float a, const float* dev_in, const float* host_in, float* out, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = a * dev_in[i] + host_in[i];
}

static void print_rmcp_stats() {
    std::printf("librmcp %s\n", rmcp_version());
    const char* names[] = {"hipHostMalloc", "hipMalloc"};
    for (const char* name : names) {
        uint64_t calls = 0, rewritten = 0;
        if (rmcp_stats_get(name, &calls, &rewritten) == RMCP_OK)
            std::printf("  %-14s calls %llu, rewritten %llu\n", name, (unsigned long long)calls,
                        (unsigned long long)rewritten);
    }
}

int main() {
    int count = 0;
    hipError_t e = hipGetDeviceCount(&count);
    if (e != hipSuccess || count == 0) {
        std::printf("no HIP device (%s, %d devices): nothing to run\n",
                    e == hipSuccess ? "hipSuccess" : hipGetErrorString(e), count);
        print_rmcp_stats();
        return 0;
    }
    hipDeviceProp_t prop;
    CHECK(hipGetDeviceProperties(&prop, 0));
    std::printf("device 0: %s (%s)\n", prop.name, prop.gcnArchName);

    const int n = 1 << 20;
    const size_t bytes = n * sizeof(float);
    float* host = nullptr;     // pinned; coherent unless librmcp rewrites it
    float* dev_in = nullptr;
    float* dev_out = nullptr;
    CHECK(hipHostMalloc(reinterpret_cast<void**>(&host), bytes, 0));
    CHECK(hipMalloc(reinterpret_cast<void**>(&dev_in), bytes));
    CHECK(hipMalloc(reinterpret_cast<void**>(&dev_out), bytes));

    char where[512];
    size_t needed = 0;
    if (rmcp_describe_address(host + 4, where, sizeof where, &needed) == RMCP_OK)
        std::printf("rmcp: %s\n", where);

    for (int i = 0; i < n; ++i) host[i] = static_cast<float>(i % 1000);
    CHECK(hipMemcpy(dev_in, host, bytes, hipMemcpyHostToDevice));

    float* host_on_device = nullptr;
    CHECK(hipHostGetDevicePointer(reinterpret_cast<void**>(&host_on_device), host, 0));
    const int block = 256;
    hipLaunchKernelGGL(axpy_from_host, dim3((n + block - 1) / block), dim3(block), 0, 0, 2.0f, dev_in,
                       host_on_device, dev_out, n);
    CHECK(hipGetLastError());
    CHECK(hipDeviceSynchronize());
    CHECK(hipMemcpy(host, dev_out, bytes, hipMemcpyDeviceToHost));

    int bad = 0;
    for (int i = 0; i < n; ++i)
        if (host[i] != 3.0f * static_cast<float>(i % 1000)) ++bad;
    std::printf("kernel result: %s (%d of %d wrong)\n", bad ? "WRONG" : "correct", bad, n);

    print_rmcp_stats();
    CHECK(hipFree(dev_out));
    CHECK(hipFree(dev_in));
    CHECK(hipHostFree(host));
    return bad ? 1 : 0;
}
