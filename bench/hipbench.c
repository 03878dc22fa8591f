/*
 * hipbench.c - the program bench/run.sh measures. Linked to the HIP and HSA test doubles
 * (tests/double/), run with and without LD_PRELOAD=librmcp.so.
 *
 *   hipbench OP N [THREADS [SIDE]]
 *
 * Runs N iterations of OP in each of THREADS threads (default 1) after 16 warm-up
 * iterations on the main thread, and prints "OP n=N threads=T ns=<wall time of the timed
 * loop>". One iteration is one allocation and its free, through the entry points named by
 * OP. SIDE chooses which calls go through the exported symbols (so through a preloaded
 * librmcp.so); the others call the runtime's own functions, found with dlsym() on its
 * handle, bypassing the shim:
 *   both   (default) allocation and free through the exported symbols
 *   alloc  allocation through the exported symbol, free straight to the runtime
 * run.sh takes (instructions at 2N) - (instructions at N) to cancel start-up, and
 * free = both - alloc.
 *
 * OP       allocation                                free
 *   hipHostMalloc          hipHostMalloc(4096, 0)           hipHostFree
 *   hipHostAlloc           hipHostAlloc(4096, 0)            hipHostFree
 *   hipExtHostAlloc        hipExtHostAlloc(4096, 0)         hipHostFree
 *   hipMemAllocHost        hipMemAllocHost(4096)            hipHostFree
 *   hipMallocHost          hipMallocHost(4096)              hipFreeHost
 *   hipMalloc              hipMalloc(4096)                  hipFree
 *   hipExtMallocWithFlags  hipExtMallocWithFlags(4096, 1)   hipFree
 *   hipMallocManaged       hipMallocManaged(4096, 1)        hipFree
 *   hipHostRegister        hipHostRegister(buf, 4096, 0)    hipHostUnregister
 *   hipMallocAsync         hipMallocAsync(4096)             hipFreeAsync
 *   hipMallocFromPoolAsync hipMallocFromPoolAsync(4096)     hipFreeAsync
 *   hipGetProcAddress      hipGetProcAddress("hipMalloc")   (nothing)
 *   hsa_pool               hsa_amd_memory_pool_allocate     hsa_amd_memory_pool_free
 *                          (GPU 0's fine-grained pool, 4096; hsa_init first)
 *   hsa_init               hsa_init()                       hsa_shut_down (always direct)
 *   hipLaunchKernel        hipLaunchKernel(stub, {64,1,1}, {256,1,1}, NULL, 0, NULL)
 *                          (one launch per iteration; the stub registered once, up front)
 *   hipModuleLaunchKernel  hipModuleLaunchKernel(f, 64,1,1, 256,1,1, 0, NULL, NULL, NULL)
 *   hipLaunchKernelOnStream, hipModuleLaunchKernelOnStream
 *                          the same launches on a stream made once, up front, with
 *                          hipStreamCreate (the launch hooks look its device up)
 *   none                   nothing (the loop itself)
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fake_rocm.h"

typedef hipError_t (*free_fn)(void *);
typedef hipError_t (*free_async_fn)(void *, void *);
typedef hipError_t (*malloc_fn)(void **, size_t);
typedef hipError_t (*malloc_async_fn)(void **, size_t, void *);
typedef hipError_t (*flags_malloc_fn)(void **, size_t, unsigned);
typedef hipError_t (*pool_async_fn)(void **, size_t, void *, void *);
typedef hipError_t (*register_fn)(void *, size_t, unsigned);
typedef hsa_status_t (*pool_alloc_fn)(hsa_amd_memory_pool_t, size_t, uint32_t, void **);
typedef hsa_status_t (*pool_free_fn)(void *);
typedef hsa_status_t (*init_fn)(void);

static const char *op;
static long iters;
static int hooked_free = 1;
static void *hip_rt, *hsa_rt;
static hsa_amd_memory_pool_t fine_pool;

/* The function `name`: the exported symbol (a preloaded hook wins) or the runtime's own. */
static void *fn(const char *name, int hooked, int hsa)
{
    void *f = hooked ? dlsym(RTLD_DEFAULT, name) : dlsym(hsa ? hsa_rt : hip_rt, name);
    if (!f) {
        fprintf(stderr, "hipbench: %s not found\n", name);
        exit(2);
    }
    return f;
}

#define FN(type, name, hooked) \
    type name##_f; \
    { \
        void *s_ = fn(#name, hooked, 0); \
        memcpy(&name##_f, &s_, sizeof s_); \
    }

static unsigned char reg_buf[256][4096] __attribute__((aligned(4096)));

/* Kernel launches: the double only records them (FAKE_HIP_LOG unset: nothing is written). */
typedef struct {
    uint32_t x, y, z;
} bench_dim3;
typedef hipError_t (*launch_fn)(const void *, bench_dim3, bench_dim3, void **, size_t, void *);
typedef hipError_t (*module_launch_fn)(void *, unsigned, unsigned, unsigned, unsigned, unsigned,
                                       unsigned, unsigned, void *, void **, void **);
static char bench_stub;
static void *bench_function;
static void *bench_stream; /* NULL: the null stream */

static void launch_setup(int with_stream)
{
    void (*reg)(void **, const void *, char *, const char *, unsigned, void *, void *, void *,
                void *, int *);
    hipError_t (*load)(void **, const void *);
    hipError_t (*get)(void **, void *, const char *);
    void *s = fn("__hipRegisterFunction", 0, 0), *module = NULL;
    static char name[] = "_Z6vecAddPfPKfS1_i";
    memcpy(&reg, &s, sizeof s);
    reg(NULL, &bench_stub, name, name, 0, NULL, NULL, NULL, NULL, NULL);
    s = fn("hipModuleLoadData", 0, 0);
    memcpy(&load, &s, sizeof s);
    s = fn("hipModuleGetFunction", 0, 0);
    memcpy(&get, &s, sizeof s);
    if (load(&module, name) != 0 || get(&bench_function, module, "_Z4fillPim") != 0) {
        fprintf(stderr, "hipbench: no module function\n");
        exit(2);
    }
    if (with_stream) {
        hipError_t (*create)(void **);
        s = fn("hipStreamCreate", 1, 0);
        memcpy(&create, &s, sizeof s);
        if (create(&bench_stream) != 0) {
            fprintf(stderr, "hipbench: no stream\n");
            exit(2);
        }
    }
}

static void loop(long n, int tid)
{
    void *p = NULL;
    int hf = hooked_free;
    if (!strcmp(op, "none")) {
        for (long i = 0; i < n; i++)
            __asm__ volatile("" ::: "memory");
    } else if (!strcmp(op, "hipHostMalloc") || !strcmp(op, "hipHostAlloc") ||
               !strcmp(op, "hipExtHostAlloc") || !strcmp(op, "hipExtMallocWithFlags") ||
               !strcmp(op, "hipMallocManaged")) {
        flags_malloc_fn a;
        void *s = fn(op, 1, 0);
        unsigned flags = strncmp(op, "hipHost", 7) && strcmp(op, "hipExtHostAlloc") ? 1 : 0;
        memcpy(&a, &s, sizeof s);
        int device = !strcmp(op, "hipExtMallocWithFlags") || !strcmp(op, "hipMallocManaged");
        FN(free_fn, hipHostFree, hf)
        FN(free_fn, hipFree, hf)
        free_fn f = device ? hipFree_f : hipHostFree_f;
        for (long i = 0; i < n; i++) {
            if (a(&p, 4096, flags) != 0 || f(p) != 0)
                exit(3);
        }
    } else if (!strcmp(op, "hipMemAllocHost") || !strcmp(op, "hipMallocHost") ||
               !strcmp(op, "hipMalloc")) {
        malloc_fn a;
        void *s = fn(op, 1, 0);
        memcpy(&a, &s, sizeof s);
        FN(free_fn, hipHostFree, hf)
        FN(free_fn, hipFreeHost, hf)
        FN(free_fn, hipFree, hf)
        free_fn f = !strcmp(op, "hipMalloc")       ? hipFree_f
                    : !strcmp(op, "hipMallocHost") ? hipFreeHost_f
                                                   : hipHostFree_f;
        for (long i = 0; i < n; i++) {
            if (a(&p, 4096) != 0 || f(p) != 0)
                exit(3);
        }
    } else if (!strcmp(op, "hipHostRegister")) {
        FN(register_fn, hipHostRegister, 1)
        FN(free_fn, hipHostUnregister, hf)
        void *buf = reg_buf[tid % 256];
        for (long i = 0; i < n; i++) {
            if (hipHostRegister_f(buf, 4096, 0) != 0 || hipHostUnregister_f(buf) != 0)
                exit(3);
        }
    } else if (!strcmp(op, "hipMallocAsync") || !strcmp(op, "hipMallocFromPoolAsync")) {
        FN(malloc_async_fn, hipMallocAsync, 1)
        FN(pool_async_fn, hipMallocFromPoolAsync, 1)
        FN(free_async_fn, hipFreeAsync, hf)
        int pool = !strcmp(op, "hipMallocFromPoolAsync");
        for (long i = 0; i < n; i++) {
            hipError_t rc = pool ? hipMallocFromPoolAsync_f(&p, 4096, NULL, NULL)
                                 : hipMallocAsync_f(&p, 4096, NULL);
            if (rc != 0 || hipFreeAsync_f(p, NULL) != 0)
                exit(3);
        }
    } else if (!strcmp(op, "hipGetProcAddress")) {
        FN(hipGetProcAddress_fn, hipGetProcAddress, 1)
        for (long i = 0; i < n; i++) {
            int status = 0;
            if (hipGetProcAddress_f("hipMalloc", &p, 600, 0, &status) != 0)
                exit(3);
        }
    } else if (!strcmp(op, "hsa_pool")) {
        pool_alloc_fn a;
        pool_free_fn f;
        void *s = fn("hsa_amd_memory_pool_allocate", 1, 1);
        memcpy(&a, &s, sizeof s);
        s = fn("hsa_amd_memory_pool_free", hf, 1);
        memcpy(&f, &s, sizeof s);
        for (long i = 0; i < n; i++) {
            if (a(fine_pool, 4096, 0, &p) != 0 || f(p) != 0)
                exit(3);
        }
    } else if (!strcmp(op, "hipLaunchKernel") || !strcmp(op, "hipLaunchKernelOnStream")) {
        launch_fn l;
        void *s = fn("hipLaunchKernel", 1, 0);
        memcpy(&l, &s, sizeof s);
        bench_dim3 g = {64, 1, 1}, b = {256, 1, 1};
        for (long i = 0; i < n; i++) {
            if (l(&bench_stub, g, b, NULL, 0, bench_stream) != 0)
                exit(3);
        }
    } else if (!strcmp(op, "hipModuleLaunchKernel") || !strcmp(op, "hipModuleLaunchKernelOnStream")) {
        module_launch_fn l;
        void *s = fn("hipModuleLaunchKernel", 1, 0);
        memcpy(&l, &s, sizeof s);
        for (long i = 0; i < n; i++) {
            if (l(bench_function, 64, 1, 1, 256, 1, 1, 0, bench_stream, NULL, NULL) != 0)
                exit(3);
        }
    } else if (!strcmp(op, "hsa_init")) {
        init_fn init, shut;
        void *s = fn("hsa_init", 1, 1);
        memcpy(&init, &s, sizeof s);
        s = fn("hsa_shut_down", 0, 1);
        memcpy(&shut, &s, sizeof s);
        for (long i = 0; i < n; i++) {
            if (init() != 0 || shut() != 0)
                exit(3);
        }
    } else {
        fprintf(stderr, "hipbench: unknown op %s\n", op);
        exit(2);
    }
}

struct targ {
    int tid;
};

static pthread_barrier_t start;

static void *thread_main(void *arg)
{
    struct targ *t = (struct targ *)arg;
    pthread_barrier_wait(&start);
    loop(iters, t->tid);
    return NULL;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: hipbench OP N [THREADS [both|alloc]]\n");
        return 2;
    }
    op = argv[1];
    iters = atol(argv[2]);
    int threads = argc > 3 ? atoi(argv[3]) : 1;
    if (threads < 1 || threads > 256)
        threads = 1;
    if (argc > 4 && !strcmp(argv[4], "alloc"))
        hooked_free = 0;
    hip_rt = dlopen("libamdhip64.so.6", RTLD_NOW | RTLD_NOLOAD);
    hsa_rt = dlopen("libhsa-runtime64.so.1", RTLD_NOW | RTLD_NOLOAD);
    if (!hip_rt || !hsa_rt) {
        fprintf(stderr, "hipbench: runtime doubles not loaded\n");
        return 2;
    }
    /* Both runtimes are initialised up front, with or without the shim. */
    int count = 0;
    hipGetDeviceCount(&count);
    if (!strncmp(op, "hsa", 3)) {
        init_fn init;
        void *s = fn("hsa_init", 0, 1);
        memcpy(&init, &s, sizeof s);
        if (init() != 0 || rocm_find_pool(0, "fine", &fine_pool) != 0) {
            fprintf(stderr, "hipbench: no HSA fine-grained pool (set FAKE_HIP_DEVICES)\n");
            return 2;
        }
    }
    if (strstr(op, "Launch"))
        launch_setup(strstr(op, "OnStream") != NULL);
    loop(16, 0);
    pthread_t tids[256];
    struct targ args[256];
    pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
    for (int t = 0; t < threads; t++) {
        args[t].tid = t;
        if (pthread_create(&tids[t], NULL, thread_main, &args[t]) != 0) {
            fprintf(stderr, "hipbench: pthread_create failed\n");
            return 2;
        }
    }
    uint64_t t0 = now_ns();
    pthread_barrier_wait(&start);
    for (int t = 0; t < threads; t++)
        pthread_join(tids[t], NULL);
    uint64_t t1 = now_ns();
    printf("%s n=%ld threads=%d ns=%llu\n", op, iters, threads, (unsigned long long)(t1 - t0));
    return 0;
}
