/*
 * model_pairs.c - the program bench/model.sh measures: allocation+free pairs through the
 * real HIP 7.2.4 and ROCr 7.2.4 (.rocm/exp-root), running on the modelled GPU
 * (tests/model/model_gpu.c via libhsakmt's model mode), with or without librmcp.so.
 *
 *   model_pairs N [WARMUP [CHUNKS]]
 *
 * On device 0: WARMUP (default 32) pairs of each kind first (the first calls initialise
 * HIP, ROCr, the runtime's memory pools and rmcp), then N pairs of each kind, each kind in
 * its own function:
 *   pairs_host_malloc  hipHostMalloc(&p, 4096, 0) + hipHostFree(p)
 *   pairs_malloc       hipMalloc(&p, 4096)        + hipFree(p)
 * With MODEL_PAIRS_MARK=1 the N pairs of each kind are bracketed by int3 markers for
 * bench/stepcount.c, which counts the instructions between them, and nothing is timed.
 *
 * The N pairs are timed in CHUNKS (default 1) equal parts; prints one line:
 *   arch=gfx1030 n=N host_ns=<ns per pair> malloc_ns=<ns per pair>
 * each the median over the chunks (so one preempted chunk does not move it).
 * Exits 1 with a message naming the call if any call fails.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hip/hip_runtime_api.h>

/* hipHostMalloc is deprecated in ROCm 7's headers; it is still what PyTorch-era code calls. */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

#define SIZE 4096

static void check(hipError_t rc, const char *what, long i)
{
    if (rc != hipSuccess) {
        fprintf(stderr, "model_pairs: %s returned %d at iteration %ld\n", what, (int)rc, i);
        exit(1);
    }
}

static inline __attribute__((always_inline)) void host_pair(long i)
{
    void *p = NULL;
    check(hipHostMalloc(&p, SIZE, 0), "hipHostMalloc(4096, 0)", i);
    check(hipHostFree(p), "hipHostFree", i);
}

static inline __attribute__((always_inline)) void malloc_pair(long i)
{
    void *p = NULL;
    check(hipMalloc(&p, SIZE), "hipMalloc(4096)", i);
    check(hipFree(p), "hipFree", i);
}

/* The measured loops. noinline + noipa: each stays one function with its own symbol for
 * --toggle-collect; the warm-up calls them too, before the markers. */
__attribute__((noinline, noipa)) void pairs_host_malloc(long n)
{
    for (long i = 0; i < n; i++)
        host_pair(i);
}

__attribute__((noinline, noipa)) void pairs_malloc(long n)
{
    for (long i = 0; i < n; i++)
        malloc_pair(i);
}

/* A marker for bench/stepcount.c (which single-steps between markers), with
 * MODEL_PAIRS_MARK=1 only: untraced, int3 would kill the program. */
static int marking;
static void marker(void)
{
    if (marking)
        __asm__ volatile("int3");
}

#define MAX_CHUNKS 1000

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

static long long median(long long *v, long n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_ll);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    char *end = NULL;
    long n = argc > 1 ? strtol(argv[1], &end, 10) : 0;
    if (argc < 2 || argc > 4 || *end || n <= 0) {
        fprintf(stderr, "usage: model_pairs N [WARMUP [CHUNKS]]  (N > 0 pairs of each kind)\n");
        return 2;
    }
    long warmup = 32, chunks = 1;
    if (argc >= 3) {
        warmup = strtol(argv[2], &end, 10);
        if (*end || warmup < 0) {
            fprintf(stderr, "model_pairs: WARMUP must be a number >= 0, got '%s'\n", argv[2]);
            return 2;
        }
    }
    if (argc == 4) {
        chunks = strtol(argv[3], &end, 10);
        if (*end || chunks < 1 || chunks > MAX_CHUNKS || n % chunks) {
            fprintf(stderr,
                    "model_pairs: CHUNKS must divide N and be 1..%d, got '%s'\n",
                    MAX_CHUNKS, argv[3]);
            return 2;
        }
    }
    check(hipSetDevice(0), "hipSetDevice(0)", -1);
    hipDeviceProp_t prop;
    check(hipGetDeviceProperties(&prop, 0), "hipGetDeviceProperties", -1);

    /* Through the functions measured below: the same call sites, so that a cost paid once
     * per call site (rmcp's caller check asks the loader once per return address) is paid
     * here, not in the count. */
    if (warmup > 0) {
        pairs_host_malloc(warmup);
        pairs_malloc(warmup);
    }

    const char *m = getenv("MODEL_PAIRS_MARK");
    marking = m && !strcmp(m, "1");
    if (marking) {
        /* Counted by stepcount: the loops alone, no timing calls. */
        marker();
        pairs_host_malloc(n);
        marker();
        pairs_malloc(n);
        marker();
        printf("arch=%s n=%ld\n", prop.gcnArchName, n);
        return 0;
    }
    long per = n / chunks;
    long long host[MAX_CHUNKS], dev[MAX_CHUNKS];
    for (long c = 0; c < chunks; c++) {
        long long t0 = now_ns();
        pairs_host_malloc(per);
        host[c] = (now_ns() - t0) / per;
    }
    for (long c = 0; c < chunks; c++) {
        long long t0 = now_ns();
        pairs_malloc(per);
        dev[c] = (now_ns() - t0) / per;
    }
    printf("arch=%s n=%ld host_ns=%lld malloc_ns=%lld\n", prop.gcnArchName, n,
           median(host, chunks), median(dev, chunks));
    return 0;
}
