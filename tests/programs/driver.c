/*
 * driver.c - scriptable allocation driver for rmcp's tests.
 *
 * driver_main(argc, argv): every argv item is one op, run in order; each op prints one line
 * to stdout, "<op item> rc=<code>[ key=value...]", emitted with a single write() (so lines
 * from threads and forked children never interleave and nothing sits in a stdio buffer).
 * Returns 0 if every op returned 0, else 1. Besides numeric codes, rc= can be: missing
 * (symbol or library not found), nopool, empty (nothing to free), badshape, nomem,
 * unsupported, unknown-op.
 *
 * Ops (SIZE decimal; FLAGS, OFFSET, REASON via strtoul base 0, i.e. hex with 0x):
 *   hipMalloc:SIZE                 hipHostMalloc:SIZE:FLAGS        hipHostAlloc:SIZE:FLAGS
 *   hipExtHostAlloc:SIZE:FLAGS     (dlsym(RTLD_DEFAULT); "rc=missing" if absent)
 *   hipMallocHost:SIZE             hipMemAllocHost:SIZE            hipExtMallocWithFlags:SIZE:FLAGS
 *   hipMallocManaged:SIZE:FLAGS    hipHostRegister:SIZE:FLAGS      hipMallocAsync:SIZE
 *   hipMallocFromPoolAsync:SIZE
 *     allocation ops print ptr=0x..; appending ":null" passes a NULL out-pointer.
 *   setdev:N                       hipSetDevice(N)
 *   getdev                         hipGetDevice, prints dev=
 *   count                          hipGetDeviceCount, prints count=
 *   props:DEV                      hipGetDeviceProperties (R0000) and, if present,
 *                                  hipGetDevicePropertiesR0600: prints arch=, integrated=,
 *                                  arch0600=, integrated0600=
 *   pcibusid:DEV                   hipDeviceGetPCIBusId, prints busid=
 *   free                           frees the most recent live HIP allocation with its
 *                                  matching function (hipFree / hipHostFree / hipFreeHost /
 *                                  hipHostUnregister / hipFreeAsync)
 *   freeall                        frees every live allocation, newest first (HSA ones too)
 *   refree:FUNC                    calls FUNC (hipFree, hipHostFree, hipFreeHost,
 *                                  hipHostUnregister, hipFreeAsync or
 *                                  hsa_amd_memory_pool_free) on the most recently freed
 *                                  pointer again: a double free
 *   procaddr:NAME:SIZE[:FLAGS]     hipGetProcAddress(NAME) (itself found by dlsym), then calls
 *                                  the result as hipHostMalloc-shaped (hipHostMalloc,
 *                                  hipHostAlloc, hipExtHostAlloc, hipExtMallocWithFlags) or
 *                                  hipMalloc-shaped (hipMalloc, hipMemAllocHost, hipMallocHost)
 *   dlsym:NAME:SIZE[:FLAGS]        same, but the function comes from
 *                                  dlsym(dlopen("libamdhip64.so.N", RTLD_NOLOAD), NAME), the
 *                                  way ctypes and hipew reach the runtime
 *   threads:N                      prints "threads:N rc=0", then runs ALL remaining ops in N
 *                                  threads at once (each with its own allocation stack and
 *                                  current device 0), joins, stops
 *   churn:N                        starts N threads that loop hipMalloc(4096) / hipFree until
 *                                  the process ends (allocating threads behind a fault), then
 *                                  goes on with the next op on this thread
 *   fork                           the child runs the remaining ops and _exits 0 if all
 *                                  returned 0 else 1; the parent prints
 *                                  "fork child=<exit status>" (or child=sig<N>) and stops
 *   hsa_init                       hsa_init()
 *   hsa_shut_down                  hsa_shut_down()
 *   hsa_alloc:GPUIDX:KIND:SIZE     KIND = coarse|fine|extfine (GPU GPUIDX) or
 *                                  sysfine|kernarg|syscoarse (CPU agent); rc=nopool if absent
 *   hsa_free                       frees the most recent HSA allocation
 *   hsa_agents                     prints agents=<name>/<device type>/<driver node>/<bdfid>,...
 *                                  (bdfid in hex; spaces in names become '_')
 *   hsa_handler:RET                registers a system event handler that prints
 *                                  "handler event=<type> agent=0x.. address=0x.. reason=0x.."
 *                                  and returns RET (0 = HSA_STATUS_SUCCESS silences ROCr's
 *                                  fault message)
 *   advise:ADVICE:DEVICE           hipMemAdvise over the most recent live allocation
 *   rocmlike_alloc:GPUIDX:KIND:SIZE  the same allocation made from inside librocblas.so.4
 *   hipMallocPitch:WIDTH:HEIGHT    hipMallocPitch (dlsym(RTLD_DEFAULT)); prints ptr= and pitch=
 *   hipMalloc3D:WIDTH:HEIGHT:DEPTH hipMalloc3D (dlsym(RTLD_DEFAULT)); prints ptr= and pitch=
 *   vmm_reserve:SIZE               hipMemAddressReserve (one reservation at a time); prints ptr=
 *   vmm_create:SIZE                hipMemCreate on the current device into the next handle
 *                                  slot (0-7); prints handle=
 *   vmm_map:OFFSET:SIZE:SLOT       hipMemMap(reservation + OFFSET, SIZE, 0, handle SLOT)
 *   vmm_access:OFFSET:SIZE         hipMemSetAccess(reservation + OFFSET, SIZE, read-write for
 *                                  the current device)
 *   vmm_unmap:OFFSET:SIZE          hipMemUnmap(reservation + OFFSET, SIZE)
 *   vmm_release:SLOT               hipMemRelease(handle SLOT)
 *   vmm_free                       hipMemAddressFree of the reservation
 *     (all through dlsym(RTLD_DEFAULT): "rc=missing" where the runtime lacks them; the
 *     hsa_fault WHERE vmm+OFFSET is an address in the reservation)
 *   rccl:NAME:SIZE[:FLAGS]         the HIP allocation NAME (hipHostMalloc, hipHostAlloc,
 *                                  hipExtHostAlloc, hipMemAllocHost, hipExtMallocWithFlags,
 *                                  hipMallocManaged, hipMalloc) made from inside librccl.so.1
 *                                  (dlopen by soname; "rc=missing" if absent)
 *   hsa_fault:WHERE:REASON[:GPU]   WHERE = live+OFFSET | live-OFFSET | freed+OFFSET | vmm+OFFSET |
 *                                  hsaN+OFFSET (the HSA double's pool allocation N before its
 *                                  last, fake_hsa_recent_allocation(N)) | absolute
 *                                  hex address; prints "addr=", then calls
 *                                  fake_hsa_raise_memory_fault(GPU (default 0), addr, REASON),
 *                                  which aborts (or, with FAKE_HSA_FAULT_HANDLED, returns:
 *                                  "rc=returned")
 *   kernel:SLOT:NAME               registers host stub SLOT (0-7, addresses inside the driver)
 *                                  under device name NAME with __hipRegisterFunction, as
 *                                  hipcc's start-up code does
 *   modfunc:SLOT:NAME              hipModuleLoadData + hipModuleGetFunction(NAME) into slot SLOT
 *   stream:N[:API]                 a new stream into stream slot N (1-7; slot 0 = NULL stream)
 *                                  through API = create (hipStreamCreate, the default) | flags
 *                                  (hipStreamCreateWithFlags(1)) | priority
 *                                  (hipStreamCreateWithPriority(0, -1)) | cumask
 *                                  (hipExtStreamCreateWithCUMask, one mask word) | direct
 *                                  (hipStreamCreate from the runtime's own handle: the hooks do
 *                                  not see it); prints stream=
 *   streamdestroy:N                hipStreamDestroy(stream slot N)
 *     (a stream slot S is 0-7, or "legacy" / "spt": hipStreamLegacy / hipStreamPerThread)
 *   launch:API:SLOT:GRID:BLOCK:S   API = kernel | ext | coop | kernel_spt | coop_spt | exc (host
 *                                  stub SLOT) | module | modcoop | drvex | extmodule (module
 *                                  function SLOT;
 *                                  extmodule passes
 *                                  GRID*BLOCK as the global size) | graph | graph_spt (handle
 *                                  0x1000+SLOT);
 *                                  GRID and BLOCK as X or XxYxZ; S = stream slot. All through
 *                                  dlsym(RTLD_DEFAULT) ("rc=missing" if absent).
 *   multilaunch:KIND:SLOT:S0:S1    one launch per stream slot S0 and S1 (grid 2, block 32) through
 *                                  KIND = coop (hipLaunchCooperativeKernelMultiDevice) | ext
 *                                  (hipExtLaunchMultiKernelMultiDevice), host stub SLOT, or
 *                                  modcoop (hipModuleLaunchCooperativeKernelMultiDevice), module
 *                                  function SLOT
 *   devsync / streamsync:S         hipDeviceSynchronize / hipStreamSynchronize(stream slot S)
 *   streamsync_spt:S               hipStreamSynchronize_spt(stream slot S)
 *   sleep_ms:N
 *   chdir:DIR                      chdir(DIR), as programs do after start-up
 *   print_rmcp                     (built with -DDRIVER_WITH_RMCP) prints rmcp_version=
 *
 * Written in C99 so the DRIVER_WITH_RMCP build can use -std=c99 with include/rmcp.h.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "driver.h"
#include "fake_rocm.h"

#ifdef DRIVER_WITH_RMCP
#include "rmcp.h"
#endif

enum alloc_kind {
    A_DEVICE = 1, /* hipFree */
    A_HOST,       /* hipHostFree */
    A_MALLOCHOST, /* hipFreeHost */
    A_REGISTERED, /* hipHostUnregister, then free() of our buffer */
    A_ASYNC,      /* hipFreeAsync */
    A_HSA,        /* hsa_amd_memory_pool_free */
};

#define MAX_LIVE 4096

struct entry {
    void *ptr;
    size_t size;
    int kind;
};

struct state {
    struct entry live[MAX_LIVE];
    int nlive;
    void *last_freed;
    int failures;
};

static void emit(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void emit(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof line - 2)
        n = (int)(sizeof line - 2);
    line[n++] = '\n';
    while (write(STDOUT_FILENO, line, (size_t)n) < 0 && errno == EINTR) {
    }
}

static unsigned long long num(const char *s)
{
    return s ? strtoull(s, NULL, 0) : 0;
}

static size_t size_arg(const char *s)
{
    return s ? (size_t)strtoull(s, NULL, 10) : 0;
}

static void push(struct state *st, void *ptr, size_t size, int kind)
{
    if (!ptr || st->nlive >= MAX_LIVE)
        return;
    st->live[st->nlive].ptr = ptr;
    st->live[st->nlive].size = size;
    st->live[st->nlive].kind = kind;
    st->nlive++;
}

static int release(struct entry *e)
{
    int rc;
    switch (e->kind) {
    case A_DEVICE: rc = hipFree(e->ptr); break;
    case A_HOST: rc = hipHostFree(e->ptr); break;
    case A_MALLOCHOST: rc = hipFreeHost(e->ptr); break;
    case A_REGISTERED:
        rc = hipHostUnregister(e->ptr);
        free(e->ptr);
        break;
    case A_ASYNC: rc = hipFreeAsync(e->ptr, NULL); break;
    case A_HSA: rc = hsa_amd_memory_pool_free(e->ptr); break;
    default: rc = -1; break;
    }
    return rc;
}

/* removes and returns index i of the live stack */
static struct entry take(struct state *st, int i)
{
    struct entry e = st->live[i];
    memmove(&st->live[i], &st->live[i + 1], (size_t)(st->nlive - i - 1) * sizeof e);
    st->nlive--;
    st->last_freed = e.ptr;
    return e;
}

static void *runtime_handle(void)
{
    void *h = dlopen("libamdhip64.so.6", RTLD_NOW | RTLD_NOLOAD);
    if (!h)
        h = dlopen("libamdhip64.so.5", RTLD_NOW | RTLD_NOLOAD);
    return h;
}

/* Calls a looked-up allocation function of the given name's shape. Returns -2 if the
 * shape is unknown. Records the allocation on success. */
static int call_shaped(struct state *st, const char *name, void *fn, size_t size,
                       unsigned flags, void **out)
{
    int rc;
    int kind;
    *out = NULL;
    if (!strcmp(name, "hipHostMalloc") || !strcmp(name, "hipHostAlloc") ||
        !strcmp(name, "hipExtHostAlloc") || !strcmp(name, "hipExtMallocWithFlags")) {
        hip_host_malloc_shaped_fn f;
        memcpy(&f, &fn, sizeof f);
        rc = f(out, size, flags);
        kind = !strcmp(name, "hipExtMallocWithFlags") ? A_DEVICE : A_HOST;
    } else if (!strcmp(name, "hipMalloc") || !strcmp(name, "hipMemAllocHost") ||
               !strcmp(name, "hipMallocHost")) {
        hip_malloc_shaped_fn f;
        memcpy(&f, &fn, sizeof f);
        rc = f(out, size);
        kind = !strcmp(name, "hipMalloc")       ? A_DEVICE
               : !strcmp(name, "hipMallocHost") ? A_MALLOCHOST
                                                : A_HOST;
    } else {
        return -2;
    }
    if (rc == 0)
        push(st, *out, size, kind);
    return rc;
}

struct thread_args {
    int argc;
    char **argv;
    int failures;
};

static int run_ops(struct state *st, int argc, char **argv);

static hsa_status_t event_handler(const hsa_amd_event_t *ev, void *data)
{
    hsa_status_t ret = (hsa_status_t)(intptr_t)data;
    emit("handler event=%u agent=0x%llx address=0x%llx reason=0x%x rc=%d", ev->event_type,
         (unsigned long long)ev->u.memory_fault.agent.handle,
         (unsigned long long)ev->u.memory_fault.virtual_address,
         ev->u.memory_fault.fault_reason_mask, ret);
    return ret;
}

struct agent_list {
    char text[900];
    size_t used;
};

static hsa_status_t list_agent_cb(hsa_agent_t agent, void *data)
{
    struct agent_list *l = (struct agent_list *)data;
    char name[64];
    uint32_t type = 99, node = 99, bdf = 0xffffffffu;
    int n;
    memset(name, 0, sizeof name);
    hsa_agent_get_info(agent, HSA_AGENT_INFO_NAME, name);
    hsa_agent_get_info(agent, HSA_AGENT_INFO_DEVICE, &type);
    hsa_agent_get_info(agent, HSA_AMD_AGENT_INFO_DRIVER_NODE_ID, &node);
    hsa_agent_get_info(agent, HSA_AMD_AGENT_INFO_BDFID, &bdf);
    name[63] = '\0';
    for (char *c = name; *c; c++)
        if (*c == ' ')
            *c = '_';
    n = snprintf(l->text + l->used, sizeof l->text - l->used, "%s%s/%u/%u/0x%x",
                 l->used ? "," : "", name, type, node, bdf);
    if (n > 0 && (size_t)n < sizeof l->text - l->used)
        l->used += (size_t)n;
    return HSA_STATUS_SUCCESS;
}

static void *thread_main(void *p)
{
    struct thread_args *ta = (struct thread_args *)p;
    struct state *st = (struct state *)calloc(1, sizeof *st);
    if (!st) {
        ta->failures = 1;
        return NULL;
    }
    run_ops(st, ta->argc, ta->argv);
    ta->failures = st->failures;
    free(st);
    return NULL;
}

static void *churn_main(void *unused)
{
    (void)unused;
    for (;;) {
        void *p = NULL;
        if (hipMalloc(&p, 4096) == 0)
            hipFree(p);
    }
    return NULL;
}

static void sleep_ms(unsigned long ms)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* Splits "a:b:c" into at most 5 fields, in place. */
static int split(char *s, char **f, int max)
{
    int n = 0;
    f[n++] = s;
    for (char *p = s; *p && n < max; p++) {
        if (*p == ':') {
            *p = '\0';
            f[n++] = p + 1;
        }
    }
    return n;
}

#define ALLOC_OP(call) \
    do { \
        rc = (call); \
        if (rc == 0 && outp) \
            push(st, p, size, kind); \
        emit("%s rc=%d ptr=0x%lx", item, rc, (unsigned long)(uintptr_t)(outp ? p : NULL)); \
    } while (0)

/* ---- kernels and streams (shared by all threads) ---- */
static char stubs[8];           /* host stubs: distinct addresses inside the driver */
static void *module_funcs[8];   /* hipFunction_t by slot */
static void *streams[8];        /* slot 0 stays NULL: the null stream */

typedef struct {
    uint32_t x, y, z;
} drv_dim3;

static drv_dim3 dims(const char *s)
{
    drv_dim3 d = {1, 1, 1};
    if (s)
        sscanf(s, "%ux%ux%u", &d.x, &d.y, &d.z);
    return d;
}

static void *stream_slot(const char *s)
{
    if (s && !strcmp(s, "legacy"))
        return (void *)(uintptr_t)1;
    if (s && !strcmp(s, "spt"))
        return (void *)(uintptr_t)2;
    unsigned long n = s ? strtoul(s, NULL, 10) : 0;
    return n < 8 ? streams[n] : (void *)(uintptr_t)0xdead;
}

/* Launches through the exported symbol API; returns the rc or -1 if missing. */
static int do_launch(const char *api, unsigned slot, drv_dim3 g, drv_dim3 b, void *stream)
{
    typedef hipError_t (*launch_fn)(const void *, drv_dim3, drv_dim3, void **, size_t, void *);
    typedef hipError_t (*ext_fn)(const void *, drv_dim3, drv_dim3, void **, size_t, void *,
                                 void *, void *, int);
    typedef hipError_t (*coop_fn)(const void *, drv_dim3, drv_dim3, void **, unsigned, void *);
    typedef hipError_t (*module_fn)(void *, unsigned, unsigned, unsigned, unsigned, unsigned,
                                    unsigned, unsigned, void *, void **, void **);
    typedef hipError_t (*extmodule_fn)(void *, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t,
                                       uint32_t, size_t, void *, void **, void **, void *, void *,
                                       uint32_t);
    typedef hipError_t (*graph_fn)(void *, void *);
    const char *name = !strcmp(api, "kernel")      ? "hipLaunchKernel"
                       : !strcmp(api, "ext")       ? "hipExtLaunchKernel"
                       : !strcmp(api, "coop")      ? "hipLaunchCooperativeKernel"
                       : !strcmp(api, "module")    ? "hipModuleLaunchKernel"
                       : !strcmp(api, "extmodule") ? "hipExtModuleLaunchKernel"
                       : !strcmp(api, "graph")     ? "hipGraphLaunch"
                       : !strcmp(api, "kernel_spt") ? "hipLaunchKernel_spt"
                       : !strcmp(api, "coop_spt")  ? "hipLaunchCooperativeKernel_spt"
                       : !strcmp(api, "graph_spt") ? "hipGraphLaunch_spt"
                       : !strcmp(api, "modcoop")   ? "hipModuleLaunchCooperativeKernel"
                       : !strcmp(api, "exc")       ? "hipLaunchKernelExC"
                       : !strcmp(api, "drvex")     ? "hipDrvLaunchKernelEx"
                                                   : NULL;
    typedef hipError_t (*modcoop_fn)(void *, unsigned, unsigned, unsigned, unsigned, unsigned,
                                     unsigned, unsigned, void *, void **);
    void *sym = name ? dlsym(RTLD_DEFAULT, name) : NULL;
    if (!sym || slot >= 8)
        return -1;
    const void *stub = &stubs[slot];
    void *func = module_funcs[slot];
    if (!strcmp(api, "kernel") || !strcmp(api, "kernel_spt")) {
        launch_fn f;
        memcpy(&f, &sym, sizeof f);
        return f(stub, g, b, NULL, 0, stream);
    } else if (!strcmp(api, "ext")) {
        ext_fn f;
        memcpy(&f, &sym, sizeof f);
        return f(stub, g, b, NULL, 0, stream, NULL, NULL, 0);
    } else if (!strcmp(api, "coop") || !strcmp(api, "coop_spt")) {
        coop_fn f;
        memcpy(&f, &sym, sizeof f);
        return f(stub, g, b, NULL, 0, stream);
    } else if (!strcmp(api, "module")) {
        module_fn f;
        memcpy(&f, &sym, sizeof f);
        return f(func, g.x, g.y, g.z, b.x, b.y, b.z, 0, stream, NULL, NULL);
    } else if (!strcmp(api, "exc")) {
        struct {
            drv_dim3 grid, block;
            size_t shared;
            void *stream, *attrs;
            unsigned nattrs;
        } cfg = {g, b, 0, stream, NULL, 0};
        hipError_t (*f)(const void *, const void *, void **);
        memcpy(&f, &sym, sizeof f);
        return f(&cfg, stub, NULL);
    } else if (!strcmp(api, "drvex")) {
        struct {
            unsigned gx, gy, gz, bx, by, bz, shared;
            void *stream, *attrs;
            unsigned nattrs;
        } cfg = {g.x, g.y, g.z, b.x, b.y, b.z, 0, stream, NULL, 0};
        hipError_t (*f)(const void *, void *, void **, void **);
        memcpy(&f, &sym, sizeof f);
        return f(&cfg, func, NULL, NULL);
    } else if (!strcmp(api, "modcoop")) {
        modcoop_fn f;
        memcpy(&f, &sym, sizeof f);
        return f(func, g.x, g.y, g.z, b.x, b.y, b.z, 0, stream, NULL);
    } else if (!strcmp(api, "extmodule")) {
        extmodule_fn f;
        memcpy(&f, &sym, sizeof f);
        return f(func, g.x * b.x, g.y * b.y, g.z * b.z, b.x, b.y, b.z, 0, stream, NULL, NULL,
                 NULL, NULL, 0);
    } else {
        graph_fn f;
        memcpy(&f, &sym, sizeof f);
        return f((void *)(uintptr_t)(0x1000 + slot), stream);
    }
}

/* Calls a function of the runtime by name through the exported symbol; -1 if missing. */
static int call_named(const char *name, int nargs, void *a0, void *a1, void *a2)
{
    void *sym = dlsym(RTLD_DEFAULT, name);
    if (!sym)
        return -1;
    if (nargs == 0) {
        hipError_t (*f)(void);
        memcpy(&f, &sym, sizeof f);
        return f();
    } else if (nargs == 1) {
        hipError_t (*f)(void *);
        memcpy(&f, &sym, sizeof f);
        return f(a0);
    } else if (nargs == 2) {
        hipError_t (*f)(void *, void *);
        memcpy(&f, &sym, sizeof f);
        return f(a0, a1);
    } else {
        hipError_t (*f)(void *, void *, void *);
        memcpy(&f, &sym, sizeof f);
        return f(a0, a1, a2);
    }
}

/* ---- VMM (one reservation, handle slots 0-7, shared by all threads) ---- */
static char *vmm_base;
static size_t vmm_size;
static void *vmm_handles[8];
static int vmm_nhandles;

/* hipMemAllocationProp and hipMemAccessDesc as in hip_runtime_api.h: a device location. */
struct vmm_prop {
    int type, handle_type, loc_type, loc_id;
    void *win32;
    unsigned char flags[4];
};
struct vmm_access_desc {
    int loc_type, loc_id, flags;
};

/* hipPitchedPtr and hipExtent (driver_types.h). */
struct pitched {
    void *ptr;
    size_t pitch, xsize, ysize;
};
struct extent3 {
    size_t w, h, d;
};

static void *hip_fn(const char *name)
{
    return dlsym(RTLD_DEFAULT, name);
}

static int vmm_op(const char *item, const char *what, char **f)
{
    int rc;
    void *sym = hip_fn(!strcmp(what, "reserve")   ? "hipMemAddressReserve"
                       : !strcmp(what, "create")  ? "hipMemCreate"
                       : !strcmp(what, "map")     ? "hipMemMap"
                       : !strcmp(what, "access")  ? "hipMemSetAccess"
                       : !strcmp(what, "unmap")   ? "hipMemUnmap"
                       : !strcmp(what, "release") ? "hipMemRelease"
                       : !strcmp(what, "free")    ? "hipMemAddressFree"
                                                  : "");
    if (!sym) {
        emit("%s rc=missing", item);
        return -1;
    }
    if (!strcmp(what, "reserve")) {
        hipError_t (*fn)(void **, size_t, size_t, void *, unsigned long long);
        memcpy(&fn, &sym, sizeof fn);
        void *p = NULL;
        size_t size = size_arg(f[1]);
        rc = fn(&p, size, 0, NULL, 0);
        if (rc == 0) {
            vmm_base = p;
            vmm_size = size;
        }
        emit("%s rc=%d ptr=0x%lx", item, rc, (unsigned long)(uintptr_t)(rc == 0 ? p : NULL));
    } else if (!strcmp(what, "create")) {
        hipError_t (*fn)(void **, size_t, const struct vmm_prop *, unsigned long long);
        memcpy(&fn, &sym, sizeof fn);
        int dev = 0;
        hipGetDevice(&dev);
        struct vmm_prop prop = {1 /* pinned */, 0, 1 /* device */, dev, NULL, {0}};
        void *h = NULL;
        rc = vmm_nhandles < 8 ? fn(&h, size_arg(f[1]), &prop, 0) : -1;
        if (rc == 0)
            vmm_handles[vmm_nhandles++] = h;
        emit("%s rc=%d handle=0x%lx slot=%d", item, rc, (unsigned long)(uintptr_t)h,
             vmm_nhandles - 1);
    } else if (!strcmp(what, "map")) {
        hipError_t (*fn)(void *, size_t, size_t, void *, unsigned long long);
        memcpy(&fn, &sym, sizeof fn);
        unsigned slot = (unsigned)num(f[3]);
        rc = slot < 8 ? fn(vmm_base + num(f[1]), size_arg(f[2]), 0, vmm_handles[slot], 0) : -1;
        emit("%s rc=%d", item, rc);
    } else if (!strcmp(what, "access")) {
        hipError_t (*fn)(void *, size_t, const struct vmm_access_desc *, size_t);
        memcpy(&fn, &sym, sizeof fn);
        int dev = 0;
        hipGetDevice(&dev);
        struct vmm_access_desc d = {1, dev, 3 /* read-write */};
        rc = fn(vmm_base + num(f[1]), size_arg(f[2]), &d, 1);
        emit("%s rc=%d", item, rc);
    } else if (!strcmp(what, "unmap")) {
        hipError_t (*fn)(void *, size_t);
        memcpy(&fn, &sym, sizeof fn);
        rc = fn(vmm_base + num(f[1]), size_arg(f[2]));
        emit("%s rc=%d", item, rc);
    } else if (!strcmp(what, "release")) {
        hipError_t (*fn)(void *);
        memcpy(&fn, &sym, sizeof fn);
        unsigned slot = (unsigned)num(f[1]);
        rc = slot < 8 ? fn(vmm_handles[slot]) : -1;
        emit("%s rc=%d", item, rc);
    } else {
        hipError_t (*fn)(void *, size_t);
        memcpy(&fn, &sym, sizeof fn);
        rc = fn(vmm_base, vmm_size);
        emit("%s rc=%d", item, rc);
    }
    return rc;
}

/* Runs argv[0..argc); returns the index where it stopped (argc unless threads/fork). */
static int run_ops(struct state *st, int argc, char **argv)
{
    int i;
    for (i = 0; i < argc; i++) {
        const char *item = argv[i];
        char buf[512];
        char *f[6] = {0};
        int nf, rc = 0;
        snprintf(buf, sizeof buf, "%s", item);
        nf = split(buf, f, 6);
        const char *op = f[0];
        /* a trailing "null" field asks for a NULL out-pointer */
        int nullout = nf > 1 && !strcmp(f[nf - 1], "null");
        void *p = NULL;
        void **outp = nullout ? NULL : &p;
        size_t size = size_arg(f[1]);
        unsigned flags = (unsigned)num(nf > 2 && strcmp(f[2], "null") ? f[2] : NULL);
        int kind = 0;

        if (!strcmp(op, "hipMalloc")) {
            kind = A_DEVICE;
            ALLOC_OP(hipMalloc(outp, size));
        } else if (!strcmp(op, "hipHostMalloc")) {
            kind = A_HOST;
            ALLOC_OP(hipHostMalloc(outp, size, flags));
        } else if (!strcmp(op, "hipHostAlloc")) {
            kind = A_HOST;
            ALLOC_OP(hipHostAlloc(outp, size, flags));
        } else if (!strcmp(op, "hipExtHostAlloc")) {
            void *sym = dlsym(RTLD_DEFAULT, "hipExtHostAlloc");
            hip_host_malloc_shaped_fn fn;
            if (!sym) {
                emit("%s rc=missing", item);
                rc = -1;
            } else {
                memcpy(&fn, &sym, sizeof fn);
                kind = A_HOST;
                ALLOC_OP(fn(outp, size, flags));
            }
        } else if (!strcmp(op, "hipMallocHost")) {
            kind = A_MALLOCHOST;
            ALLOC_OP(hipMallocHost(outp, size));
        } else if (!strcmp(op, "hipMemAllocHost")) {
            kind = A_HOST;
            ALLOC_OP(hipMemAllocHost(outp, size));
        } else if (!strcmp(op, "hipExtMallocWithFlags")) {
            kind = A_DEVICE;
            ALLOC_OP(hipExtMallocWithFlags(outp, size, flags));
        } else if (!strcmp(op, "hipMallocManaged")) {
            kind = A_DEVICE;
            ALLOC_OP(hipMallocManaged(outp, size, flags));
        } else if (!strcmp(op, "hipMallocAsync")) {
            kind = A_ASYNC;
            ALLOC_OP(hipMallocAsync(outp, size, NULL));
        } else if (!strcmp(op, "hipMallocFromPoolAsync")) {
            kind = A_ASYNC;
            ALLOC_OP(hipMallocFromPoolAsync(outp, size, NULL, NULL));
        } else if (!strcmp(op, "hipHostRegister")) {
            void *buffer = NULL;
            if (posix_memalign(&buffer, 4096, size ? size : 1) != 0) {
                emit("%s rc=nomem", item);
                rc = -1;
            } else {
                rc = hipHostRegister(buffer, size, flags);
                if (rc == 0)
                    push(st, buffer, size, A_REGISTERED);
                else
                    free(buffer);
                emit("%s rc=%d ptr=0x%lx", item, rc, (unsigned long)(uintptr_t)buffer);
            }
        } else if (!strcmp(op, "setdev")) {
            rc = hipSetDevice((int)num(f[1]));
            emit("%s rc=%d", item, rc);
        } else if (!strcmp(op, "getdev")) {
            int dev = -1;
            rc = hipGetDevice(&dev);
            emit("%s rc=%d dev=%d", item, rc, dev);
        } else if (!strcmp(op, "count")) {
            int count = -1;
            rc = hipGetDeviceCount(&count);
            emit("%s rc=%d count=%d", item, rc, count);
        } else if (!strcmp(op, "props")) {
            static unsigned char prop[4096];
            int dev = (int)num(f[1]);
            char arch[257] = "", arch6[257] = "";
            int integrated = -1, integrated6 = -1, rc6 = -1;
            void *sym = dlsym(RTLD_DEFAULT, "hipGetDevicePropertiesR0600");
            memset(prop, 0, sizeof prop);
            rc = hipGetDeviceProperties(prop, dev);
            if (rc == 0) {
                memcpy(arch, prop + HIP_PROPS_R0000_ARCH, 256);
                memcpy(&integrated, prop + HIP_PROPS_R0000_INTEGRATED, sizeof integrated);
            }
            if (sym) {
                hipGetDevicePropertiesR0600_fn fn;
                memcpy(&fn, &sym, sizeof fn);
                memset(prop, 0, sizeof prop);
                rc6 = fn(prop, dev);
                if (rc6 == 0) {
                    memcpy(arch6, prop + HIP_PROPS_R0600_ARCH, 256);
                    memcpy(&integrated6, prop + HIP_PROPS_R0600_INTEGRATED, sizeof integrated6);
                }
                if (rc == 0)
                    rc = rc6;
            }
            emit("%s rc=%d arch=%s integrated=%d rc0600=%d arch0600=%s integrated0600=%d", item,
                 rc, arch, integrated, rc6, arch6, integrated6);
        } else if (!strcmp(op, "pcibusid")) {
            char busid[64] = "";
            rc = hipDeviceGetPCIBusId(busid, (int)sizeof busid, (int)num(f[1]));
            emit("%s rc=%d busid=%s", item, rc, busid);
        } else if (!strcmp(op, "free")) {
            int j;
            for (j = st->nlive - 1; j >= 0 && st->live[j].kind == A_HSA; j--) {
            }
            if (j < 0) {
                emit("%s rc=empty", item);
                rc = -1;
            } else {
                struct entry e = take(st, j);
                rc = release(&e);
                emit("%s rc=%d ptr=0x%lx", item, rc, (unsigned long)(uintptr_t)e.ptr);
            }
        } else if (!strcmp(op, "freeall")) {
            int n = 0;
            while (st->nlive > 0) {
                struct entry e = take(st, st->nlive - 1);
                int r = release(&e);
                if (r != 0)
                    rc = r;
                n++;
            }
            emit("%s rc=%d freed=%d", item, rc, n);
        } else if (!strcmp(op, "refree")) {
            const char *fn = f[1] ? f[1] : "";
            struct entry e;
            e.ptr = st->last_freed;
            e.size = 0;
            e.kind = !strcmp(fn, "hipFree")                    ? A_DEVICE
                     : !strcmp(fn, "hipHostFree")              ? A_HOST
                     : !strcmp(fn, "hipFreeHost")              ? A_MALLOCHOST
                     : !strcmp(fn, "hipFreeAsync")             ? A_ASYNC
                     : !strcmp(fn, "hsa_amd_memory_pool_free") ? A_HSA
                                                               : 0;
            if (!strcmp(fn, "hipHostUnregister"))
                rc = hipHostUnregister(e.ptr); /* not release(): the buffer is gone */
            else
                rc = release(&e);
            emit("%s rc=%d ptr=0x%lx", item, rc, (unsigned long)(uintptr_t)e.ptr);
        } else if (!strcmp(op, "procaddr") || !strcmp(op, "dlsym")) {
            const char *name = f[1] ? f[1] : "";
            size = size_arg(f[2]);
            flags = (unsigned)num(f[3]);
            void *fn = NULL;
            int stage_rc = 0;
            if (!strcmp(op, "procaddr")) {
                void *sym = dlsym(RTLD_DEFAULT, "hipGetProcAddress");
                if (sym) {
                    hipGetProcAddress_fn gpa;
                    int status = -1;
                    memcpy(&gpa, &sym, sizeof gpa);
                    stage_rc = gpa(name, &fn, 600, 0, &status);
                }
                if (!sym) {
                    emit("%s rc=missing", item);
                    rc = -1;
                } else if (stage_rc != 0 || !fn) {
                    emit("%s rc=%d stage=procaddr", item, stage_rc);
                    rc = stage_rc ? stage_rc : -1;
                }
            } else {
                void *h = runtime_handle();
                fn = h ? dlsym(h, name) : NULL;
                if (!fn) {
                    emit("%s rc=missing", item);
                    rc = -1;
                }
            }
            if (rc == 0) {
                rc = call_shaped(st, name, fn, size, flags, &p);
                if (rc == -2)
                    emit("%s rc=badshape", item);
                else
                    emit("%s rc=%d ptr=0x%lx fn=0x%lx", item, rc, (unsigned long)(uintptr_t)p,
                         (unsigned long)(uintptr_t)fn);
            }
        } else if (!strcmp(op, "threads")) {
            int n = (int)num(f[1]);
            pthread_t tids[256];
            struct thread_args ta[256];
            int started = 0;
            if (n < 1 || n > 256)
                n = 1;
            emit("%s rc=0", item);
            for (int t = 0; t < n; t++) {
                ta[t].argc = argc - i - 1;
                ta[t].argv = argv + i + 1;
                ta[t].failures = 0;
                if (pthread_create(&tids[t], NULL, thread_main, &ta[t]) == 0)
                    started++;
                else
                    break;
            }
            for (int t = 0; t < started; t++) {
                pthread_join(tids[t], NULL);
                st->failures += ta[t].failures;
            }
            if (started != n)
                st->failures++;
            return argc;
        } else if (!strcmp(op, "churn")) {
            int n = (int)num(f[1]);
            int started = 0;
            for (int t = 0; t < n && t < 256; t++) {
                pthread_t tid;
                if (pthread_create(&tid, NULL, churn_main, NULL) == 0) {
                    pthread_detach(tid);
                    started++;
                }
            }
            rc = started == n ? 0 : -1;
            emit("%s rc=%d started=%d", item, rc, started);
        } else if (!strcmp(op, "fork")) {
            pid_t pid = fork();
            if (pid < 0) {
                emit("%s rc=%d", item, errno);
                st->failures++;
                return argc;
            }
            if (pid == 0) {
                run_ops(st, argc - i - 1, argv + i + 1);
                _exit(st->failures ? 1 : 0);
            }
            int status = 0;
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
            if (WIFEXITED(status)) {
                emit("fork child=%d", WEXITSTATUS(status));
                if (WEXITSTATUS(status))
                    st->failures++;
            } else {
                emit("fork child=sig%d", WIFSIGNALED(status) ? WTERMSIG(status) : -1);
                st->failures++;
            }
            return argc;
        } else if (!strcmp(op, "hsa_init")) {
            rc = hsa_init();
            emit("%s rc=%d", item, rc);
        } else if (!strcmp(op, "hsa_shut_down")) {
            rc = hsa_shut_down();
            emit("%s rc=%d", item, rc);
        } else if (!strcmp(op, "hsa_alloc") || !strcmp(op, "rocmlike_alloc")) {
            uint32_t gpu = (uint32_t)num(f[1]);
            const char *pkind = f[2] ? f[2] : "";
            int printed = 0;
            size = size_arg(f[3]);
            if (!strcmp(op, "hsa_alloc")) {
                hsa_amd_memory_pool_t pool;
                int r = rocm_find_pool(gpu, pkind, &pool);
                if (r == 0) {
                    rc = hsa_amd_memory_pool_allocate(pool, size, 0, outp);
                } else {
                    rc = r;
                }
            } else {
                void *lib = dlopen("librocblas.so.4", RTLD_NOW | RTLD_LOCAL);
                void *sym = lib ? dlsym(lib, "rocmlike_hsa_alloc") : NULL;
                if (!sym) {
                    emit("%s rc=missing", item);
                    printed = 1;
                    rc = -1;
                } else {
                    int (*fn)(uint32_t, const char *, size_t, void **);
                    memcpy(&fn, &sym, sizeof fn);
                    rc = fn(gpu, pkind, size, outp);
                }
            }
            if (!printed && rc == -1) {
                emit("%s rc=nopool", item);
            } else if (!printed) {
                if (rc == 0 && outp)
                    push(st, p, size, A_HSA);
                emit("%s rc=%d ptr=0x%lx", item, rc, (unsigned long)(uintptr_t)(outp ? p : NULL));
            }
        } else if (!strcmp(op, "hipMallocPitch") || !strcmp(op, "hipMalloc3D")) {
            void *sym = hip_fn(op);
            size_t pitch = 0;
            if (!sym) {
                emit("%s rc=missing", item);
                rc = -1;
            } else if (!strcmp(op, "hipMallocPitch")) {
                hipError_t (*fn)(void **, size_t *, size_t, size_t);
                memcpy(&fn, &sym, sizeof fn);
                size_t w = size_arg(f[1]), h = size_arg(f[2]);
                rc = fn(&p, &pitch, w, h);
                if (rc == 0)
                    push(st, p, pitch * h, A_DEVICE);
                emit("%s rc=%d ptr=0x%lx pitch=%zu", item, rc, (unsigned long)(uintptr_t)p, pitch);
            } else {
                struct pitched pp = {0};
                struct extent3 e = {size_arg(f[1]), size_arg(f[2]), size_arg(f[3])};
                hipError_t (*fn)(struct pitched *, struct extent3);
                memcpy(&fn, &sym, sizeof fn);
                rc = fn(&pp, e);
                if (rc == 0)
                    push(st, pp.ptr, pp.pitch * e.h * e.d, A_DEVICE);
                emit("%s rc=%d ptr=0x%lx pitch=%zu", item, rc, (unsigned long)(uintptr_t)pp.ptr,
                     pp.pitch);
            }
        } else if (!strncmp(op, "vmm_", 4)) {
            rc = vmm_op(item, op + 4, f);
        } else if (!strcmp(op, "rccl")) {
            const char *name = f[1] ? f[1] : "";
            void *lib = dlopen("librccl.so.1", RTLD_NOW | RTLD_LOCAL);
            void *sym = lib ? dlsym(lib, "rocmlike_hip_alloc") : NULL;
            size = size_arg(f[2]);
            flags = (unsigned)num(nf > 3 ? f[3] : NULL);
            if (!sym) {
                emit("%s rc=missing", item);
                rc = -1;
            } else {
                int (*fn)(const char *, size_t, unsigned, void **);
                memcpy(&fn, &sym, sizeof fn);
                kind = !strcmp(name, "hipExtMallocWithFlags") || !strcmp(name, "hipMallocManaged") ||
                               !strcmp(name, "hipMalloc")
                           ? A_DEVICE
                           : A_HOST;
                ALLOC_OP(fn(name, size, flags, outp));
            }
        } else if (!strcmp(op, "hsa_free")) {
            int j;
            for (j = st->nlive - 1; j >= 0 && st->live[j].kind != A_HSA; j--) {
            }
            if (j < 0) {
                emit("%s rc=empty", item);
                rc = -1;
            } else {
                struct entry e = take(st, j);
                rc = release(&e);
                emit("%s rc=%d ptr=0x%lx", item, rc, (unsigned long)(uintptr_t)e.ptr);
            }
        } else if (!strcmp(op, "hsa_agents")) {
            struct agent_list l;
            memset(&l, 0, sizeof l);
            rc = hsa_iterate_agents(list_agent_cb, &l);
            emit("%s rc=%d agents=%s", item, rc, l.text);
        } else if (!strcmp(op, "hsa_handler")) {
            rc = hsa_amd_register_system_event_handler(event_handler,
                                                       (void *)(intptr_t)num(f[1]));
            emit("%s rc=%d", item, rc);
        } else if (!strcmp(op, "advise")) {
            if (!st->nlive) {
                emit("%s rc=empty", item);
                rc = -1;
            } else {
                struct entry *e = &st->live[st->nlive - 1];
                int device = (int)strtol(f[2] ? f[2] : "0", NULL, 0);
                rc = hipMemAdvise(e->ptr, e->size, (int)num(f[1]), device);
                emit("%s rc=%d ptr=0x%lx", item, rc, (unsigned long)(uintptr_t)e->ptr);
            }
        } else if (!strcmp(op, "hsa_fault")) {
            const char *where = f[1] ? f[1] : "";
            uint32_t reason = (uint32_t)num(f[2]);
            uint64_t addr;
            void *sym = dlsym(RTLD_DEFAULT, "fake_hsa_raise_memory_fault");
            if (!strncmp(where, "live", 4)) {
                addr = st->nlive ? (uint64_t)(uintptr_t)st->live[st->nlive - 1].ptr : 0;
                if (where[4] == '+')
                    addr += num(where + 5);
                else if (where[4] == '-')
                    addr -= num(where + 5);
            } else if (!strncmp(where, "vmm+", 4)) {
                addr = (uint64_t)(uintptr_t)vmm_base + num(where + 4);
            } else if (!strncmp(where, "hsa", 3) && strchr(where, '+')) {
                void *(*recent)(unsigned) = NULL;
                void *r = dlsym(RTLD_DEFAULT, "fake_hsa_recent_allocation");
                memcpy(&recent, &r, sizeof recent);
                addr = recent ? (uint64_t)(uintptr_t)recent((unsigned)num(where + 3)) : 0;
                addr += num(strchr(where, '+') + 1);
            } else if (!strncmp(where, "freed", 5)) {
                addr = (uint64_t)(uintptr_t)st->last_freed;
                addr += where[5] == '+' ? num(where + 6) : 0;
            } else {
                addr = strtoull(where, NULL, 16);
            }
            if (!sym) {
                emit("%s rc=missing", item);
                rc = -1;
            } else {
                fake_hsa_raise_memory_fault_fn fn;
                memcpy(&fn, &sym, sizeof fn);
                emit("%s addr=0x%llx", item, (unsigned long long)addr);
                /* Aborts, or returns when a handler said the fault is handled. */
                fn(f[3] ? (uint32_t)num(f[3]) : 0, addr, reason);
                emit("%s rc=returned", item);
            }
        } else if (!strcmp(op, "kernel")) {
            unsigned slot = (unsigned)num(f[1]);
            void *sym = dlsym(RTLD_DEFAULT, "__hipRegisterFunction");
            if (!sym || slot >= 8 || !f[2]) {
                emit("%s rc=missing", item);
                rc = -1;
            } else {
                void (*reg)(void **, const void *, char *, const char *, unsigned, void *, void *,
                            void *, void *, int *);
                memcpy(&reg, &sym, sizeof reg);
                reg(NULL, &stubs[slot], f[2], f[2], 0, NULL, NULL, NULL, NULL, NULL);
                emit("%s rc=0 host=0x%lx", item, (unsigned long)(uintptr_t)&stubs[slot]);
            }
        } else if (!strcmp(op, "modfunc")) {
            unsigned slot = (unsigned)num(f[1]);
            void *module = NULL;
            rc = slot < 8 && f[2] ? call_named("hipModuleLoadData", 2, &module, stubs, NULL) : -1;
            if (rc == 0)
                rc = call_named("hipModuleGetFunction", 3, &module_funcs[slot], module,
                                (void *)f[2]);
            emit("%s rc=%d func=0x%lx", item, rc,
                 (unsigned long)(uintptr_t)(slot < 8 ? module_funcs[slot] : NULL));
        } else if (!strcmp(op, "stream")) {
            unsigned long n = (unsigned long)num(f[1]);
            const char *api = f[2] ? f[2] : "create";
            static uint32_t cu_mask = 0xffffffffu;
            void *rt = !strcmp(api, "direct") ? runtime_handle() : NULL;
            void *sym = rt ? dlsym(rt, "hipStreamCreate")
                      : dlsym(RTLD_DEFAULT, !strcmp(api, "create")     ? "hipStreamCreate"
                                            : !strcmp(api, "flags")    ? "hipStreamCreateWithFlags"
                                            : !strcmp(api, "priority") ? "hipStreamCreateWithPriority"
                                            : !strcmp(api, "cumask") ? "hipExtStreamCreateWithCUMask"
                                                                       : "");
            if (!sym || n < 1 || n >= 8) {
                rc = -1;
            } else if (!strcmp(api, "create") || !strcmp(api, "direct")) {
                hipError_t (*fn)(void **);
                memcpy(&fn, &sym, sizeof fn);
                rc = fn(&streams[n]);
            } else if (!strcmp(api, "flags")) {
                hipError_t (*fn)(void **, unsigned);
                memcpy(&fn, &sym, sizeof fn);
                rc = fn(&streams[n], 1);
            } else if (!strcmp(api, "priority")) {
                hipError_t (*fn)(void **, unsigned, int);
                memcpy(&fn, &sym, sizeof fn);
                rc = fn(&streams[n], 0, -1);
            } else {
                hipError_t (*fn)(void **, uint32_t, const uint32_t *);
                memcpy(&fn, &sym, sizeof fn);
                rc = fn(&streams[n], 1, &cu_mask);
            }
            emit("%s rc=%d stream=0x%lx", item, rc,
                 (unsigned long)(uintptr_t)(n < 8 ? streams[n] : NULL));
        } else if (!strcmp(op, "streamdestroy")) {
            rc = call_named("hipStreamDestroy", 1, stream_slot(f[1]), NULL, NULL);
            emit("%s rc=%d", item, rc);
        } else if (!strcmp(op, "launch")) {
            rc = f[1] && f[2] ? do_launch(f[1], (unsigned)num(f[2]), dims(f[3]), dims(f[4]),
                                          stream_slot(f[5]))
                              : -1;
            if (rc == -1)
                emit("%s rc=missing", item);
            else
                emit("%s rc=%d", item, rc);
        } else if (!strcmp(op, "multilaunch")) {
            const char *kind = f[1] ? f[1] : "";
            unsigned slot = (unsigned)num(f[2]);
            void *s0 = stream_slot(f[3]), *s1 = stream_slot(f[4]);
            drv_dim3 g = {2, 1, 1}, b = {32, 1, 1};
            void *sym = hip_fn(!strcmp(kind, "coop")    ? "hipLaunchCooperativeKernelMultiDevice"
                               : !strcmp(kind, "ext")   ? "hipExtLaunchMultiKernelMultiDevice"
                               : !strcmp(kind, "modcoop") ? "hipModuleLaunchCooperativeKernelMultiDevice"
                                                          : "");
            if (!sym || slot >= 8) {
                emit("%s rc=missing", item);
                rc = -1;
            } else if (!strcmp(kind, "modcoop")) {
                struct {
                    void *function;
                    unsigned gx, gy, gz, bx, by, bz, shared;
                    void *stream;
                    void **params;
                } l[2] = {{module_funcs[slot], 2, 1, 1, 32, 1, 1, 0, s0, NULL},
                          {module_funcs[slot], 2, 1, 1, 32, 1, 1, 0, s1, NULL}};
                hipError_t (*fn)(void *, unsigned, unsigned);
                memcpy(&fn, &sym, sizeof fn);
                rc = fn(l, 2, 0);
                emit("%s rc=%d", item, rc);
            } else {
                struct {
                    const void *func;
                    drv_dim3 grid, block;
                    void **args;
                    size_t shared;
                    void *stream;
                } l[2] = {{&stubs[slot], g, b, NULL, 0, s0}, {&stubs[slot], g, b, NULL, 0, s1}};
                hipError_t (*fn)(void *, int, unsigned);
                memcpy(&fn, &sym, sizeof fn);
                rc = fn(l, 2, 0);
                emit("%s rc=%d", item, rc);
            }
        } else if (!strcmp(op, "devsync")) {
            rc = call_named("hipDeviceSynchronize", 0, NULL, NULL, NULL);
            emit("%s rc=%d", item, rc);
        } else if (!strcmp(op, "streamsync") || !strcmp(op, "streamsync_spt")) {
            rc = call_named(op[10] ? "hipStreamSynchronize_spt" : "hipStreamSynchronize", 1,
                            stream_slot(f[1]), NULL, NULL);
            emit("%s rc=%d", item, rc);
        } else if (!strcmp(op, "chdir")) {
            rc = chdir(f[1] ? f[1] : "/");
            emit("%s rc=%d", item, rc);
        } else if (!strcmp(op, "sleep_ms")) {
            sleep_ms((unsigned long)num(f[1]));
            emit("%s rc=0", item);
        } else if (!strcmp(op, "print_rmcp")) {
#ifdef DRIVER_WITH_RMCP
            const char *v = rmcp_version();
            emit("%s rc=0 rmcp_version=%s", item, v ? v : "(null)");
#else
            emit("%s rc=unsupported", item);
            rc = -1;
#endif
        } else {
            emit("%s rc=unknown-op", item);
            rc = -1;
        }
        if (rc != 0)
            st->failures++;
    }
    return i;
}

int driver_main(int argc, char **argv)
{
    struct state *st = (struct state *)calloc(1, sizeof *st);
    int failures;
    if (!st)
        return 2;
    run_ops(st, argc, argv);
    failures = st->failures;
    free(st);
    return failures ? 1 : 0;
}
