/*
 * props_probe.c - checks how many bytes the property functions write. For each of
 * hipGetDeviceProperties (R0000) and hipGetDevicePropertiesR0600 (looked up at run time),
 * fills a 4096-byte buffer with 0xAA, calls the function for device argv[1] (default 0)
 * and prints "<function> rc=<n> changed=<bytes changed> extent=<last changed offset + 1>
 * name=<..> arch=<..> integrated=<n>", or "<function> rc=missing".
 * With a second argument N, it instead calls both into a heap buffer of exactly N bytes:
 * a buffer smaller than the layout is an invalid write that valgrind/ASan report.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_rocm.h"

static unsigned char buf[4096];

static void probe(const char *fname, size_t arch_off, size_t integrated_off, int dev)
{
    void *sym = dlsym(RTLD_DEFAULT, fname);
    hipError_t (*fn)(void *, int);
    size_t changed = 0, extent = 0;
    int integrated = -1;
    if (!sym) {
        printf("%s rc=missing\n", fname);
        return;
    }
    memcpy(&fn, &sym, sizeof fn);
    memset(buf, 0xAA, sizeof buf);
    int rc = fn(buf, dev);
    for (size_t i = 0; i < sizeof buf; i++) {
        if (buf[i] != 0xAA) {
            changed++;
            extent = i + 1;
        }
    }
    memcpy(&integrated, buf + integrated_off, sizeof integrated);
    buf[255] = 0;
    buf[arch_off + 255] = 0;
    if (rc != 0) {
        buf[0] = 0;
        buf[arch_off] = 0;
    }
    printf("%s rc=%d changed=%zu extent=%zu name=%s arch=%s integrated=%d\n", fname, rc,
           changed, extent, (const char *)buf, (const char *)buf + arch_off,
           rc == 0 ? integrated : -1);
}

int main(int argc, char **argv)
{
    int dev = argc > 1 ? atoi(argv[1]) : 0;
    if (argc > 2) {
        size_t n = (size_t)atol(argv[2]);
        const char *names[] = {"hipGetDeviceProperties", "hipGetDevicePropertiesR0600"};
        for (int i = 0; i < 2; i++) {
            void *sym = dlsym(RTLD_DEFAULT, names[i]);
            hipError_t (*fn)(void *, int);
            if (!sym)
                continue;
            memcpy(&fn, &sym, sizeof fn);
            void *small = malloc(n);
            int rc = fn(small, dev);
            free(small);
            printf("%s rc=%d heap=%zu\n", names[i], rc, n);
        }
        return 0;
    }
    probe("hipGetDeviceProperties", HIP_PROPS_R0000_ARCH, HIP_PROPS_R0000_INTEGRATED, dev);
    probe("hipGetDevicePropertiesR0600", HIP_PROPS_R0600_ARCH, HIP_PROPS_R0600_INTEGRATED, dev);
    return 0;
}
