/* Calls the allocation entry points rmcp hooks (and a few it does not) on a
 * real ROCm runtime and prints each return code. tests/real_rocm.rs runs it
 * with and without librmcp.so and requires identical output and exit code.
 * Built as an executable (linked to the runtime) or, with -DPROBE_MODULE, as
 * a module that host.c opens with dlopen(RTLD_LOCAL). Prints no addresses:
 * only return codes, counts and booleans, so the output is deterministic. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hip/hip_runtime_api.h>
#include <hsa/hsa.h>
#include <hsa/hsa_ext_amd.h>

#define RC(name, expr)                                   \
    do {                                                 \
        int rc_ = (int)(expr);                           \
        printf("%-40s rc=%d\n", name, rc_);              \
    } while (0)

/* A pointer a failed call must leave alone: prints whether it changed. */
#define SENTINEL ((void *)(uintptr_t)0x5a5a5a5a)
#define ALLOC(name, call)                                         \
    do {                                                          \
        void *p = SENTINEL;                                       \
        int rc_ = (int)(call);                                    \
        printf("%-40s rc=%d ptr=%s\n", name, rc_,                 \
               p == SENTINEL ? "untouched" : p ? "set" : "null");  \
    } while (0)

#if HIP_VERSION_MAJOR >= 6
/* Declared in hip_ext.h for C++ only; exported by 6.4.3 and 7.2.4, not 5.2.3. */
hipError_t hipExtModuleLaunchKernel(hipFunction_t f, uint32_t gx, uint32_t gy, uint32_t gz,
                                    uint32_t bx, uint32_t by, uint32_t bz, size_t shared,
                                    hipStream_t stream, void **params, void **extra,
                                    hipEvent_t start, hipEvent_t stop, uint32_t flags);
#endif

#ifdef PROBE_MODULE
int probe_main(void)
#else
int main(void)
#endif
{
    setvbuf(stdout, NULL, _IONBF, 0);
    printf("probe: headers HIP %d.%d\n", HIP_VERSION_MAJOR, HIP_VERSION_MINOR);

    int version = -1;
    RC("hipRuntimeGetVersion", hipRuntimeGetVersion(&version));
    printf("%-40s %d\n", "runtimeVersion", version);
    int count = -1;
    RC("hipGetDeviceCount", hipGetDeviceCount(&count));
    printf("%-40s %d\n", "deviceCount", count);
    hipDeviceProp_t props;
    memset(&props, 0, sizeof props);
    RC("hipGetDeviceProperties(0)", hipGetDeviceProperties(&props, 0));

    ALLOC("hipMalloc(4096)", hipMalloc(&p, 4096));
    ALLOC("hipHostMalloc(flags 0)", hipHostMalloc(&p, 4096, 0));
    ALLOC("hipHostMalloc(Coherent)", hipHostMalloc(&p, 4096, hipHostMallocCoherent));
    ALLOC("hipHostMalloc(NonCoherent)", hipHostMalloc(&p, 4096, hipHostMallocNonCoherent));
    ALLOC("hipHostMalloc(Coherent|NonCoherent)",
          hipHostMalloc(&p, 4096, hipHostMallocCoherent | hipHostMallocNonCoherent));
    ALLOC("hipHostAlloc(Mapped)", hipHostAlloc(&p, 4096, hipHostMallocMapped));
    ALLOC("hipMallocHost", hipMallocHost(&p, 4096));
    ALLOC("hipMemAllocHost", hipMemAllocHost(&p, 4096));
    ALLOC("hipExtMallocWithFlags(0)", hipExtMallocWithFlags(&p, 4096, hipDeviceMallocDefault));
    ALLOC("hipExtMallocWithFlags(Finegrained)",
          hipExtMallocWithFlags(&p, 4096, hipDeviceMallocFinegrained));
    ALLOC("hipExtMallocWithFlags(99)", hipExtMallocWithFlags(&p, 4096, 99));
    ALLOC("hipMallocManaged(AttachGlobal)", hipMallocManaged(&p, 4096, hipMemAttachGlobal));
    ALLOC("hipMallocAsync(null stream)", hipMallocAsync(&p, 4096, NULL));
    ALLOC("hipMallocFromPoolAsync(null pool)", hipMallocFromPoolAsync(&p, 4096, NULL, NULL));

    RC("hipFree(NULL)", hipFree(NULL));
    RC("hipHostFree(NULL)", hipHostFree(NULL));
    RC("hipFreeHost(NULL)", hipFreeHost(NULL));
    RC("hipFreeAsync(NULL)", hipFreeAsync(NULL, NULL));

    void *page = aligned_alloc(4096, 4096);
    RC("hipHostRegister(Default)", hipHostRegister(page, 4096, hipHostRegisterDefault));
    RC("hipHostUnregister", hipHostUnregister(page));
    free(page);

    /* Pitched, 3D and VMM memory: recorded by rmcp, never rewritten. */
    {
        size_t pitch = 0;
        ALLOC("hipMallocPitch(64x4)", hipMallocPitch(&p, &pitch, 64, 4));
        hipPitchedPtr pitched;
        memset(&pitched, 0, sizeof pitched);
        hipExtent extent = {64, 4, 2};
        RC("hipMalloc3D(64x4x2)", hipMalloc3D(&pitched, extent));
        void *va = NULL;
        size_t two_mib = (size_t)2 << 20;
        RC("hipMemAddressReserve(2 MiB)", hipMemAddressReserve(&va, two_mib, 0, NULL, 0));
        hipMemAllocationProp prop;
        memset(&prop, 0, sizeof prop);
        prop.type = hipMemAllocationTypePinned;
        prop.location.type = hipMemLocationTypeDevice;
        prop.location.id = 0;
        hipMemGenericAllocationHandle_t handle = NULL;
        RC("hipMemCreate(2 MiB)", hipMemCreate(&handle, two_mib, &prop, 0));
        RC("hipMemMap", hipMemMap(va, two_mib, 0, handle, 0));
        hipMemAccessDesc access;
        memset(&access, 0, sizeof access);
        access.location = prop.location;
        access.flags = hipMemAccessFlagsProtReadWrite;
        RC("hipMemSetAccess", hipMemSetAccess(va, two_mib, &access, 1));
        RC("hipMemUnmap", hipMemUnmap(va, two_mib));
        RC("hipMemRelease", hipMemRelease(handle));
        RC("hipMemAddressFree", hipMemAddressFree(va, two_mib));
    }

#if HIP_VERSION_MAJOR >= 6
    /* hipGetProcAddress: the pointer it hands out for a hooked function must
     * be the one the program's own reference resolves to (the shim's, when
     * preloaded), and an unknown name must stay unknown. */
    static const char *const names[] = {"hipMalloc", "hipHostMalloc", "hipExtHostAlloc",
                                        "hipNoSuchFunction"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        void *fn = NULL;
        hipDriverProcAddressQueryResult status = (hipDriverProcAddressQueryResult)-1;
        int rc = (int)hipGetProcAddress(names[i], &fn,
                                        HIP_VERSION_MAJOR * 100 + HIP_VERSION_MINOR, 0, &status);
        printf("hipGetProcAddress(%s) rc=%d status=%d found=%d", names[i], rc, (int)status,
               fn != NULL);
        if (i == 0) printf(" same-as-linked=%d", fn == (void *)&hipMalloc);
        if (i == 1) printf(" same-as-linked=%d", fn == (void *)&hipHostMalloc);
        printf("\n");
        if (i == 0 && fn) {
            void *p = SENTINEL;
            int r = (int)((hipError_t(*)(void **, size_t))fn)(&p, 4096);
            printf("%-40s rc=%d ptr=%s\n", "hipMalloc via hipGetProcAddress", r,
                   p == SENTINEL ? "untouched" : p ? "set" : "null");
        }
    }
#endif

#if HIP_VERSION_MAJOR * 100 + HIP_VERSION_MINOR >= 701
    /* hipGetDriverEntryPoint (ROCm 7.1+) hands out rmcp's hook too. */
    {
        void *fn = NULL;
        hipDriverEntryPointQueryResult status = (hipDriverEntryPointQueryResult)-1;
        int rc = (int)hipGetDriverEntryPoint("hipHostMalloc", &fn, 0, &status);
        printf("hipGetDriverEntryPoint(hipHostMalloc) rc=%d found=%d same-as-linked=%d\n", rc,
               fn != NULL, fn == (void *)&hipHostMalloc);
        fn = NULL;
        rc = (int)hipGetDriverEntryPoint_spt("hipHostMalloc", &fn, 0, &status);
        printf("hipGetDriverEntryPoint_spt(hipHostMalloc) rc=%d found=%d same-as-linked=%d\n", rc,
               fn != NULL, fn == (void *)&hipHostMalloc);
    }
#endif

    /* Kernel launches and what rmcp tracks them with. Without a GPU each
     * fails in the runtime; what matters is the binding and that the answer
     * is the runtime's. NULL kernels: rmcp resolves no name for them. */
    {
        dim3 one = {1, 1, 1};
        RC("hipSetDevice(0)", hipSetDevice(0));
        RC("hipLaunchKernel(NULL)", hipLaunchKernel(NULL, one, one, NULL, 0, NULL));
        RC("hipExtLaunchKernel(NULL)",
           hipExtLaunchKernel(NULL, one, one, NULL, 0, NULL, NULL, NULL, 0));
        RC("hipLaunchCooperativeKernel(NULL)",
           hipLaunchCooperativeKernel(NULL, one, one, NULL, 0, NULL));
        RC("hipModuleLaunchKernel(NULL)",
           hipModuleLaunchKernel(NULL, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL));
#if HIP_VERSION_MAJOR >= 6
        RC("hipExtModuleLaunchKernel(NULL)",
           hipExtModuleLaunchKernel(NULL, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL, NULL, NULL, 0));
#endif
        RC("hipGraphLaunch(NULL)", hipGraphLaunch(NULL, NULL));
        RC("hipLaunchKernel_spt(NULL)", hipLaunchKernel_spt(NULL, one, one, NULL, 0, NULL));
        RC("hipLaunchCooperativeKernel_spt(NULL)",
           hipLaunchCooperativeKernel_spt(NULL, one, one, NULL, 0, NULL));
        RC("hipStreamSynchronize_spt(NULL)", hipStreamSynchronize_spt(NULL));
        RC("hipLaunchCooperativeKernelMultiDevice(NULL, 0)",
           hipLaunchCooperativeKernelMultiDevice(NULL, 0, 0));
        RC("hipExtLaunchMultiKernelMultiDevice(NULL, 0)",
           hipExtLaunchMultiKernelMultiDevice(NULL, 0, 0));
#if HIP_VERSION_MAJOR >= 6
        RC("hipGraphLaunch_spt(NULL)", hipGraphLaunch_spt(NULL, NULL));
        RC("hipModuleLaunchCooperativeKernel(NULL)",
           hipModuleLaunchCooperativeKernel(NULL, 1, 1, 1, 1, 1, 1, 0, NULL, NULL));
        RC("hipModuleLaunchCooperativeKernelMultiDevice(NULL, 0)",
           hipModuleLaunchCooperativeKernelMultiDevice(NULL, 0, 0));
#endif
#if HIP_VERSION_MAJOR * 100 + HIP_VERSION_MINOR >= 605
        {
            hipLaunchConfig_t cfg;
            memset(&cfg, 0, sizeof cfg);
            cfg.gridDim = one;
            cfg.blockDim = one;
            RC("hipLaunchKernelExC(NULL kernel)", hipLaunchKernelExC(&cfg, NULL, NULL));
            HIP_LAUNCH_CONFIG dcfg;
            memset(&dcfg, 0, sizeof dcfg);
            dcfg.gridDimX = dcfg.gridDimY = dcfg.gridDimZ = 1;
            dcfg.blockDimX = dcfg.blockDimY = dcfg.blockDimZ = 1;
            RC("hipDrvLaunchKernelEx(NULL kernel)", hipDrvLaunchKernelEx(&dcfg, NULL, NULL, NULL));
        }
#endif
        RC("hipStreamSynchronize(NULL)", hipStreamSynchronize(NULL));
        RC("hipDeviceSynchronize", hipDeviceSynchronize());
        /* The stream hooks (they note each stream's device for the launches). */
        hipStream_t s = NULL;
        uint32_t mask = 1;
        RC("hipStreamCreate", hipStreamCreate(&s));
        RC("hipStreamDestroy", hipStreamDestroy(s));
        s = NULL;
        RC("hipStreamCreateWithFlags", hipStreamCreateWithFlags(&s, hipStreamNonBlocking));
        RC("hipStreamDestroy", hipStreamDestroy(s));
        s = NULL;
        RC("hipStreamCreateWithPriority", hipStreamCreateWithPriority(&s, 0, 0));
        RC("hipStreamDestroy", hipStreamDestroy(s));
        s = NULL;
        RC("hipExtStreamCreateWithCUMask", hipExtStreamCreateWithCUMask(&s, 1, &mask));
        RC("hipStreamDestroy", hipStreamDestroy(s));
    }

    RC("hsa_init", hsa_init());
    hsa_amd_memory_pool_t pool = {0};
    ALLOC("hsa_amd_memory_pool_allocate(pool 0)", hsa_amd_memory_pool_allocate(pool, 4096, 0, &p));
    RC("hsa_amd_memory_pool_free(NULL)", hsa_amd_memory_pool_free(NULL));
    RC("hsa_shut_down", hsa_shut_down());

    printf("probe: done\n");
    return count > 0 ? 0 : 3;
}
