/*
 * interposer.c - libinterposer.so, used only by the double's self-test: a preloadable
 * library defining an unversioned hipHostMalloc that announces itself on stderr and
 * forwards to the next definition. It shows which calls a preloaded hook sees (plain calls)
 * and which it does not (hipMemAllocHost inside the runtime, hipGetProcAddress results).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "fake_rocm.h"

hipError_t hipHostMalloc(void **ptr, size_t size, unsigned flags)
{
    void *sym = dlsym(RTLD_NEXT, "hipHostMalloc");
    hip_host_malloc_shaped_fn next;
    fprintf(stderr, "interposed hipHostMalloc size=%zu flags=0x%x\n", size, flags);
    if (!sym)
        return hipErrorNotFound;
    memcpy(&next, &sym, sizeof next);
    return next(ptr, size, flags);
}
