/*
 * fault_latency.c - bench/fault.sh's program: how long after the modelled GPU raises a
 * memory fault the fault handlers are done, with N live allocations.
 *
 *   fault_latency CODE_OBJECT N
 *
 * Makes N hipMalloc(64) allocations and keeps them, registers its own HSA system-event
 * handler (after HIP's and, when preloaded, librmcp.so's: ROCr calls handlers in the order
 * they were registered, so this one runs after rmcp's report is written), then launches
 * train::axpy<float> with an output pointer 16 bytes past a 64 MiB buffer. Its handler
 * reads CLOCK_MONOTONIC; the model logs CLOCK_MONOTONIC when it hands the fault to
 * libhsakmt (fault_raised ... monotonic_ns=). Prints "handlers_done_ns=T allocations=N".
 */
#define _GNU_SOURCE
#include <hip/hip_runtime_api.h>
#include <hsa/hsa.h>
#include <hsa/hsa_ext_amd.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static volatile unsigned long long done_ns;

static hsa_status_t on_event(const hsa_amd_event_t *event, void *data)
{
    (void)data;
    if (event->event_type == HSA_AMD_GPU_MEMORY_FAULT_EVENT && !done_ns) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        done_ns = (unsigned long long)t.tv_sec * 1000000000ull + (unsigned long long)t.tv_nsec;
    }
    return HSA_STATUS_ERROR; /* decide nothing: HIP's handler decides */
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    long n = atol(argv[2]);
    FILE *f = fopen(argv[1], "rb");
    if (!f)
        return 2;
    static char image[1 << 20];
    size_t len = fread(image, 1, sizeof image, f);
    fclose(f);
    hipModule_t module;
    hipFunction_t axpy;
    if (len == 0 || hipModuleLoadData(&module, image) != hipSuccess ||
        hipModuleGetFunction(&axpy, module, "_ZN5train4axpyIfEEvPT_PKS1_m") != hipSuccess)
        return 3;
    for (long i = 0; i < n; i++) {
        void *p;
        if (hipMalloc(&p, 64) != hipSuccess) {
            fprintf(stderr, "hipMalloc %ld failed\n", i);
            return 4;
        }
    }
    char *a;
    if (hipMalloc((void **)&a, 64u << 20) != hipSuccess)
        return 4;
    if (hsa_amd_register_system_event_handler(on_event, NULL) != HSA_STATUS_SUCCESS)
        return 5;
    void *y = a + (64u << 20) + 16, *x = a;
    unsigned long count = 64;
    void *args[] = {&y, &x, &count};
    if (hipModuleLaunchKernel(axpy, 1, 1, 1, 64, 1, 1, 0, NULL, args, NULL) != hipSuccess)
        return 6;
    (void)hipDeviceSynchronize();
    for (int i = 0; i < 1000 && !done_ns; i++) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    printf("handlers_done_ns=%llu allocations=%ld\n", done_ns, n);
    return done_ns ? 0 : 7;
}
