/*
 * rocmlike_lib.c - built as librocblas.so.4: a library that poses as a ROCm library by its
 * file name and allocates from HSA pools itself. ROCm libraries (and the HIP runtime) need
 * the pool they ask for (e.g. fine-grained for signals and kernel arguments), so rmcp must
 * leave allocations whose caller is a ROCm library alone. The caller must hsa_init() first.
 *
 * Built with -DROCMLIKE_HIP as librccl.so.1 (linked to the HIP double): a library named like
 * RCCL that makes HIP allocations itself, as RCCL does for its host-side flags
 * (hipHostMalloc(Mapped)) and cross-GPU flags (hipExtMallocWithFlags(Finegrained)).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <string.h>

#include "fake_rocm.h"

/* Allocates size bytes from the KIND pool (see rocm_find_pool) of GPU gpu_index.
 * Returns 0, -1 if there is no such pool, or the HSA status. */
int rocmlike_hsa_alloc(uint32_t gpu_index, const char *kind, size_t size, void **out)
{
    hsa_amd_memory_pool_t pool;
    int rc = rocm_find_pool(gpu_index, kind, &pool);
    if (rc != 0)
        return rc;
    return hsa_amd_memory_pool_allocate(pool, size, 0, out);
}

/* Frees an allocation made by rocmlike_hsa_alloc, from inside this library. */
int rocmlike_hsa_free(void *ptr)
{
    return hsa_amd_memory_pool_free(ptr);
}

/* A ROCm library that finds the HIP runtime hipew-style (dlopen + dlsym), as ROCm's own
 * libraries may: the audit mode must leave this lookup alone, so hipHostMalloc gets FLAGS
 * exactly as given. Returns the HIP status, or -1/-2 when the runtime or the symbol is
 * missing. */
int rocmlike_dlsym_host_malloc(const char *hip_library, unsigned flags, void **out)
{
    void *h = dlopen(hip_library, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return -1;
    hip_host_malloc_shaped_fn f;
    void *sym = dlsym(h, "hipHostMalloc");
    if (!sym)
        return -2;
    memcpy(&f, &sym, sizeof f);
    return f(out, 4096, flags);
}

#ifdef ROCMLIKE_HIP
/* Weak: ROCm 7.2.4 (which tests/model_gpu.rs links this against) does not export it. */
hipError_t hipExtHostAlloc(void **ptr, size_t size, unsigned flags) __attribute__((weak));

/* Calls the HIP allocation function NAME from inside this library, directly (a PLT call, as
 * RCCL's own calls are). Returns the HIP status, -2 for a name it does not know, -3 when
 * the runtime does not export it. */
int rocmlike_hip_alloc(const char *name, size_t size, unsigned flags, void **out)
{
    if (!strcmp(name, "hipHostMalloc"))
        return hipHostMalloc(out, size, flags);
    if (!strcmp(name, "hipHostAlloc"))
        return hipHostAlloc(out, size, flags);
    if (!strcmp(name, "hipExtHostAlloc"))
        return hipExtHostAlloc ? hipExtHostAlloc(out, size, flags) : -3;
    if (!strcmp(name, "hipMemAllocHost"))
        return hipMemAllocHost(out, size);
    if (!strcmp(name, "hipExtMallocWithFlags"))
        return hipExtMallocWithFlags(out, size, flags);
    if (!strcmp(name, "hipMallocManaged"))
        return hipMallocManaged(out, size, flags);
    if (!strcmp(name, "hipMalloc"))
        return hipMalloc(out, size);
    return -2;
}
#endif
