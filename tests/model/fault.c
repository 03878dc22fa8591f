/*
 * fault.c - a HIP program that makes the modelled GPU fault, for tests/model_fault.rs.
 *
 *   fault CODE_OBJECT WHAT [twice | stream-of-0-from-1 | device-behind-rmcp]
 *
 * Loads CODE_OBJECT (hipcc --genco of tests/model/fault_kernels.hip) with the real HIP
 * 7.2.4, allocates two 64 MiB buffers (large enough that each is a KFD allocation of its
 * own, so that the addresses around them are the driver's, not a sub-allocator's),
 * launches train::axpy<float>(a, a, 64) once and synchronises (the runtime makes the
 * allocations a launch needs, such as its kernel-argument pool, then, not after a free:
 * otherwise the driver hands a freed buffer's address straight back to them, and the
 * stale pointer is covered again, on a GPU as on the model), then launches it with y:
 *   past-end    16 bytes past the end of the first buffer
 *   after-free  the second buffer, after hipFree
 *   wild        an address no allocation is near (0x3e00001000, inside the model's aperture)
 *   none        the first buffer (no fault)
 * then hipDeviceSynchronize, hipGetLastError, hipGetLastError again, hipMalloc and
 * hipDeviceSynchronize again. With `twice`, a second faulting launch follows and is
 * synchronised. Two cases for a machine with two GPUs, where everything runs on HIP device
 * 0: with `stream-of-0-from-1`, a stream is created on device 0, the current device is set
 * to 1, and the faulting launch goes to that stream (a launch on a stream of another device
 * than the current one); with `device-behind-rmcp`, the current device is set to 1 through
 * the linked hipSetDevice, then to 0 through the runtime's own hipSetDevice (dlsym on its
 * handle, which no preloaded hook sees), and the faulting launch goes to a stream created
 * on device 0. In both the launch is waited for with hipStreamSynchronize (the line keeps
 * the name hipDeviceSynchronize). Each call
 * prints "call <what> rc=<code> name=<hipGetErrorName>" (stdout is
 * line-buffered, so the lines before an abort are kept). A call that does not return
 * within 60 s ends the process with SIGALRM.
 *
 * Built with -DFAULT_DLSYM it does not link HIP: it opens libamdhip64.so.7 with
 * dlopen(RTLD_NOW | RTLD_LOCAL) and takes every function with dlsym, as hipew-style
 * clients do, so only rmcp's audit mode sees its calls.
 */
#define _GNU_SOURCE
#include <hip/hip_runtime_api.h>

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BUFFER_BYTES (64u << 20)
#define WILD_ADDRESS 0x3e00001000ull

#define HIP_FUNCTIONS(X)                                                                         \
    X(hipModuleLoadData, hipError_t, (hipModule_t *, const void *))                              \
    X(hipModuleGetFunction, hipError_t, (hipFunction_t *, hipModule_t, const char *))           \
    X(hipMalloc, hipError_t, (void **, size_t))                                                  \
    X(hipFree, hipError_t, (void *))                                                             \
    X(hipModuleLaunchKernel, hipError_t,                                                         \
      (hipFunction_t, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,      \
       hipStream_t, void **, void **))                                                           \
    X(hipDeviceSynchronize, hipError_t, (void))                                                  \
    X(hipSetDevice, hipError_t, (int))                                                           \
    X(hipStreamCreate, hipError_t, (hipStream_t *))                                              \
    X(hipStreamSynchronize, hipError_t, (hipStream_t))                                           \
    X(hipGetLastError, hipError_t, (void))                                                       \
    X(hipGetErrorName, const char *, (hipError_t))

#ifdef FAULT_DLSYM
#define DECLARE(name, ret, args) static ret(*p_##name) args;
HIP_FUNCTIONS(DECLARE)
#define CALL(name) p_##name
static void load_hip(void)
{
    void *lib = dlopen("libamdhip64.so.7", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "fault: dlopen: %s\n", dlerror());
        exit(3);
    }
#define LOAD(name, ret, args)                                                                    \
    do {                                                                                         \
        void *sym = dlsym(lib, #name);                                                           \
        if (!sym) {                                                                              \
            fprintf(stderr, "fault: dlsym(%s) failed\n", #name);                                 \
            exit(3);                                                                             \
        }                                                                                        \
        memcpy(&p_##name, &sym, sizeof sym);                                                     \
    } while (0);
    HIP_FUNCTIONS(LOAD)
}
#else
#define CALL(name) name
static void load_hip(void) {}
#endif

static void say(const char *what, hipError_t rc)
{
    printf("call %s rc=%d name=%s\n", what, (int)rc, CALL(hipGetErrorName)(rc));
}

/* Runs one call under a 60 s alarm and prints its result. */
#define TIMED(what, expr)                                                                        \
    do {                                                                                         \
        alarm(60);                                                                               \
        hipError_t rc_ = (expr);                                                                 \
        alarm(0);                                                                                \
        say(what, rc_);                                                                          \
    } while (0)

static hipFunction_t axpy;
static hipStream_t stream; /* NULL: the null stream (all but the two-GPU cases) */

static void launch(const char *what, void *y, void *x)
{
    unsigned long n = 64;
    void *args[] = {&y, &x, &n};
    TIMED(what, CALL(hipModuleLaunchKernel)(axpy, 1, 1, 1, 64, 1, 1, 0, stream, args, NULL));
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    load_hip();
    FILE *f = fopen(argv[1], "rb");
    if (!f)
        return 2;
    static char image[1 << 20];
    size_t len = fread(image, 1, sizeof image, f);
    fclose(f);
    if (len == 0)
        return 2;
    const char *what = argv[2];
    int twice = argc > 3 && strcmp(argv[3], "twice") == 0;
    int from1 = argc > 3 && strcmp(argv[3], "stream-of-0-from-1") == 0;
    int behind = argc > 3 && strcmp(argv[3], "device-behind-rmcp") == 0;
    if (behind) {
        TIMED("hipSetDevice:1", CALL(hipSetDevice)(1));
        void *rt = dlopen("libamdhip64.so.7", RTLD_NOW | RTLD_NOLOAD);
        void *sym = rt ? dlsym(rt, "hipSetDevice") : NULL;
        hipError_t (*set_device)(int);
        if (!sym) {
            fprintf(stderr, "fault: the runtime's own hipSetDevice was not found\n");
            return 3;
        }
        memcpy(&set_device, &sym, sizeof sym);
        TIMED("hipSetDevice:0:runtime", set_device(0));
    }

    hipModule_t module = NULL;
    TIMED("hipModuleLoadData", CALL(hipModuleLoadData)(&module, image));
    TIMED("hipModuleGetFunction",
          CALL(hipModuleGetFunction)(&axpy, module, "_ZN5train4axpyIfEEvPT_PKS1_m"));
    char *a = NULL, *b = NULL;
    TIMED("hipMalloc:a", CALL(hipMalloc)((void **)&a, BUFFER_BYTES));
    TIMED("hipMalloc:b", CALL(hipMalloc)((void **)&b, BUFFER_BYTES));
    printf("buffers a=%p b=%p bytes=%u\n", (void *)a, (void *)b, BUFFER_BYTES);
    launch("hipModuleLaunchKernel:warm-up", a, a);
    TIMED("hipDeviceSynchronize:warm-up", CALL(hipDeviceSynchronize)());

    void *y;
    if (strcmp(what, "past-end") == 0) {
        y = a + BUFFER_BYTES + 16;
    } else if (strcmp(what, "after-free") == 0) {
        TIMED("hipFree:b", CALL(hipFree)(b));
        y = b;
    } else if (strcmp(what, "wild") == 0) {
        y = (void *)(uintptr_t)WILD_ADDRESS;
    } else if (strcmp(what, "none") == 0) {
        y = a;
    } else {
        fprintf(stderr, "fault: unknown case %s (accepted: past-end, after-free, wild, none)\n",
                what);
        return 2;
    }
    if (from1 || behind) {
        TIMED("hipStreamCreate", CALL(hipStreamCreate)(&stream));
        if (from1)
            TIMED("hipSetDevice:1", CALL(hipSetDevice)(1));
        printf("stream %p\n", (void *)stream);
    }
    printf("target %p\n", y);
    launch("hipModuleLaunchKernel", y, a);
    TIMED("hipDeviceSynchronize",
          stream ? CALL(hipStreamSynchronize)(stream) : CALL(hipDeviceSynchronize)());
    TIMED("hipGetLastError", CALL(hipGetLastError)());
    TIMED("hipGetLastError:again", CALL(hipGetLastError)());
    void *c = NULL;
    TIMED("hipMalloc:after", CALL(hipMalloc)(&c, 4096));
    TIMED("hipDeviceSynchronize:again", CALL(hipDeviceSynchronize)());
    if (twice) {
        launch("hipModuleLaunchKernel:second", (void *)(uintptr_t)(WILD_ADDRESS + 0x100000), a);
        TIMED("hipDeviceSynchronize:second", CALL(hipDeviceSynchronize)());
        TIMED("hipGetLastError:second", CALL(hipGetLastError)());
    }
    printf("exit 0\n");
    return 0;
}
