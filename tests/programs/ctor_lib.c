/*
 * ctor_lib.c - libctor_early.so: its constructor allocates and frees pinned memory. Linked
 * into an executable, it runs before the constructor of a library preloaded into that
 * executable (dependencies are initialised first, and the preloaded library does not depend
 * on it), so it proves a hook called before rmcp initialised itself works.
 */
#include <stdio.h>

#include "fake_rocm.h"

__attribute__((constructor)) static void ctor_early(void)
{
    void *p = NULL;
    int rc = hipHostMalloc(&p, 4096, 0);
    if (rc == 0) {
        int frc = hipHostFree(p);
        if (frc != 0)
            rc = frc;
    }
    fprintf(stderr, "ctor rc=%d\n", rc);
}
