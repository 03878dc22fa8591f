/*
 * rocmlike_lib.c - built as librocblas.so.4: a library that poses as a ROCm library by its
 * file name and allocates from HSA pools itself. ROCm libraries (and the HIP runtime) need
 * the pool they ask for (e.g. fine-grained for signals and kernel arguments), so rmcp must
 * leave allocations whose caller is a ROCm library alone. The caller must hsa_init() first.
 */
#include <stdint.h>

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
