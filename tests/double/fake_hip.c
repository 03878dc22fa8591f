/*
 * fake_hip.c - a test double of the HIP runtime (libamdhip64) for rmcp's tests.
 *
 * Built twice from this file:
 *   libamdhip64.so.6  (version script hip.map)   ROCm-6-like
 *   libamdhip64.so.5  (-DFAKE_HIP_5, hip5.map)  ROCm-5-like: no hipGetDevicePropertiesR0600,
 *                                                hipGetProcAddress or hipExtHostAlloc.
 *
 * It allocates real memory, validates arguments the way the real runtime (clr)
 * does, and records every call so tests can see exactly what reached the runtime
 * after rmcp's hooks.
 *
 * Environment:
 *   FAKE_HIP_DEVICES      comma list of gcnArchName values, e.g.
 *                         "gfx1030,gfx90a:sramecc+:xnack-"; an item may end in "@igpu"
 *                         (integrated = 1). Unset/empty: no devices.
 *   FAKE_HIP_LOG          file to append the call record to (see below). Unset: no record.
 *   FAKE_HIP_ADVISE_FAIL  "1": hipMemAdvise returns hipErrorNotSupported (801).
 *   HIP_HOST_COHERENT     as in clr: only changes the recorded pool= of host allocations.
 *
 * Record format: one line per call of an exported function, written with a single
 * write() on an O_APPEND descriptor, so lines of concurrent threads (and forked
 * children) never interleave:
 *
 *     <function> key=value key=value ...
 *
 * Keys (only those that apply to the function are present, in this order):
 *   symbol=<name>     hipGetProcAddress: the symbol asked for
 *   size=<decimal>    requested size
 *   flags=0x<hex>     the flags argument exactly as received (only functions that take flags)
 *   advice=<n> device=<n>   hipMemAdvise arguments
 *   dev=<n>           current device of the calling thread; for property/PCI-id calls the
 *                     device queried
 *   ptr=0x<hex>       resulting pointer (allocations), pointer freed/advised/registered
 *   rc=<decimal>      hipError_t returned (always present, always after ptr/dev)
 *   pool=<kind>       allocations only: the memory the real runtime would hand out for this
 *                     request, named like the HSA double's pools: sysfine (coherent host
 *                     memory), syscoarse (non-coherent host), coarse, fine, extfine (device);
 *                     "none" for an invalid hipExtMallocWithFlags value. hipMallocManaged is
 *                     "fine" (a later hipMemAdvise(..., 100 = SetCoarseGrain, ...) makes it
 *                     coarse). Host kinds follow HIP_HOST_COHERENT as clr does.
 * Other functions: hipGetDeviceCount count=<n> rc=; hipSetDevice/hipGetDevice dev= rc=;
 * hipGetDeviceProperties[R0600]/hipDeviceGetPCIBusId dev=<queried> rc=;
 * hipGetProcAddress symbol= flags= dev= ptr=<function found or 0x0> rc=;
 * hipGetErrorString/hipGetErrorName error=<n> rc=0; hipInit flags= rc=;
 * hipRuntimeGetVersion/hipDriverGetVersion rc=.
 * hipStreamCreate[WithFlags|WithPriority], hipExtStreamCreateWithCUMask flags= priority= dev=
 * ptr=<the stream> rc=; hipStreamDestroy stream= dev= rc= (a destroyed stream's address is
 * handed out again by the next creation).
 * Example:
 *     hipHostMalloc size=4096 flags=0x80000000 dev=0 ptr=0x7f3a4c000100 rc=0 pool=syscoarse
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

typedef int hipError_t;

enum {
    hipSuccess = 0,
    hipErrorInvalidValue = 1,
    hipErrorOutOfMemory = 2,
    hipErrorNotInitialized = 3,
    hipErrorNoDevice = 100,
    hipErrorInvalidDevice = 101,
    hipErrorNotFound = 500,
    hipErrorHostMemoryAlreadyRegistered = 712,
    hipErrorHostMemoryNotRegistered = 713,
    hipErrorNotSupported = 801,
};

/* hipHostMalloc flags (ROCm's hip/hip_runtime_api.h) */
#define HOST_PORTABLE 0x1u
#define HOST_MAPPED 0x2u
#define HOST_WRITECOMBINED 0x4u
#define HOST_NUMAUSER 0x20000000u
#define HOST_COHERENT 0x40000000u
#define HOST_NONCOHERENT 0x80000000u

#define MAX_DEVICES 16

/* ------------------------------------------------------------------------- */
/* Record                                                                    */
/* ------------------------------------------------------------------------- */

#include "record.h"

/* ------------------------------------------------------------------------- */
/* Devices                                                                   */
/* ------------------------------------------------------------------------- */

struct device {
    char gcn_arch[256]; /* as reported in gcnArchName, features included */
    char bare[64];      /* "gfxNNNN" */
    int integrated;
};

static pthread_once_t dev_once = PTHREAD_ONCE_INIT;
static struct device devices[MAX_DEVICES];
static int device_count;
static _Thread_local int current_device;

static void parse_devices(void)
{
    const char *env = getenv("FAKE_HIP_DEVICES");
    if (!env)
        return;
    const char *p = env;
    while (*p && device_count < MAX_DEVICES) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > 0 && len < sizeof devices[0].gcn_arch) {
            struct device *d = &devices[device_count];
            memcpy(d->gcn_arch, p, len);
            d->gcn_arch[len] = '\0';
            char *at = strstr(d->gcn_arch, "@igpu");
            if (at) {
                *at = '\0';
                d->integrated = 1;
            }
            size_t bl = strcspn(d->gcn_arch, ":");
            if (bl >= sizeof d->bare)
                bl = sizeof d->bare - 1;
            memcpy(d->bare, d->gcn_arch, bl);
            d->bare[bl] = '\0';
            if (d->gcn_arch[0])
                device_count++;
            else
                memset(d, 0, sizeof *d);
        }
        if (!end)
            break;
        p = end + 1;
    }
}

static int ndevices(void)
{
    pthread_once(&dev_once, parse_devices);
    return device_count;
}

/* ------------------------------------------------------------------------- */
/* Allocation table                                                          */
/* ------------------------------------------------------------------------- */

enum alloc_kind { K_DEVICE = 1, K_HOST, K_MANAGED, K_REGISTERED };

struct alloc {
    uintptr_t ptr;
    size_t size;  /* requested size */
    size_t bytes; /* backing size (rounded) */
    int kind;
    int mmapped;  /* backing memory came from mmap (large sizes) */
    int hsa;      /* backing memory came from hsa_amd_memory_pool_allocate */
};

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct alloc *table;
static size_t table_len, table_cap;

/* A fork taken while another thread holds table_lock would leave it locked forever in the
 * child; hold it across fork instead (tests fork from multithreaded drivers). */
static void table_lock_take(void) { pthread_mutex_lock(&table_lock); }
static void table_lock_give(void) { pthread_mutex_unlock(&table_lock); }
__attribute__((constructor)) static void table_lock_atfork(void)
{
    pthread_atfork(table_lock_take, table_lock_give, table_lock_give);
}

static int table_add(struct alloc a)
{
    int ok = 1;
    pthread_mutex_lock(&table_lock);
    if (table_len == table_cap) {
        size_t cap = table_cap ? table_cap * 2 : 256;
        struct alloc *t = realloc(table, cap * sizeof *t);
        if (t) {
            table = t;
            table_cap = cap;
        } else {
            ok = 0;
        }
    }
    if (ok)
        table[table_len++] = a;
    pthread_mutex_unlock(&table_lock);
    return ok;
}

/* Removes the entry starting exactly at ptr whose kind is accepted by kind_mask. */
static int table_take(uintptr_t ptr, unsigned kind_mask, struct alloc *out)
{
    int found = 0;
    pthread_mutex_lock(&table_lock);
    for (size_t i = table_len; i-- > 0;) {
        if (table[i].ptr == ptr && (kind_mask & (1u << table[i].kind))) {
            *out = table[i];
            table[i] = table[--table_len];
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&table_lock);
    return found;
}

/* Does [ptr, ptr+size) lie inside one entry of an accepted kind? */
static int table_contains(uintptr_t ptr, size_t size, unsigned kind_mask)
{
    int found = 0;
    pthread_mutex_lock(&table_lock);
    for (size_t i = 0; i < table_len && !found; i++) {
        const struct alloc *a = &table[i];
        if ((kind_mask & (1u << a->kind)) && ptr >= a->ptr && ptr - a->ptr <= a->size &&
            size <= a->size - (ptr - a->ptr))
            found = 1;
    }
    pthread_mutex_unlock(&table_lock);
    return found;
}

/* Does [ptr, ptr+size) overlap an entry of an accepted kind? */
static int table_overlaps(uintptr_t ptr, size_t size, unsigned kind_mask)
{
    int found = 0;
    pthread_mutex_lock(&table_lock);
    for (size_t i = 0; i < table_len && !found; i++) {
        const struct alloc *a = &table[i];
        if ((kind_mask & (1u << a->kind)) && ptr < a->ptr + a->size && a->ptr < ptr + size)
            found = 1;
    }
    pthread_mutex_unlock(&table_lock);
    return found;
}

#define KM(k) (1u << (k))
#define KM_FREEABLE (KM(K_DEVICE) | KM(K_HOST) | KM(K_MANAGED))

#define BIG_ALLOC (64u << 20)

/* FAKE_HIP_HSA_BACKING (see README.md): HIP allocations get their memory from the exported
 * hsa_amd_memory_pool_allocate, as ROCm 7's runtime does, found with dlsym(RTLD_DEFAULT) so a
 * preloaded hook sees the call; "extra-before" / "extra-after" add one 64-byte kernarg pool
 * allocation of the runtime's own (never freed) before / after it. The pool handles follow
 * fake_hsa.c's encoding (POOL_BASE + agent * 16 + kind). */
#define HSA_POOL_BASE 0xB0010000000ull
#define HSA_KIND_KERNARG 2
#define HSA_KIND_SYSCOARSE 3
#define HSA_KIND_COARSE 4
typedef int (*hsa_alloc_fn)(uint64_t pool, size_t size, uint32_t flags, void **ptr);
typedef int (*hsa_free_fn)(void *ptr);
static int backing_mode;
static pthread_once_t backing_once = PTHREAD_ONCE_INIT;
static void backing_read(void)
{
    const char *v = getenv("FAKE_HIP_HSA_BACKING");
    if (v && *v)
        backing_mode = !strcmp(v, "extra-before") ? 2 : !strcmp(v, "extra-after") ? 3 : 1;
}
/* Read once: a getenv per allocation would cost more with more variables set (LD_PRELOAD),
 * which bench/run.sh's subtraction would charge to rmcp. */
static int hsa_backing(void)
{
    pthread_once(&backing_once, backing_read);
    return backing_mode;
}
static int hsa_runtime_alloc(void)
{
    hsa_alloc_fn f = (hsa_alloc_fn)dlsym(RTLD_DEFAULT, "hsa_amd_memory_pool_allocate");
    void *p = NULL;
    return f && f(HSA_POOL_BASE + HSA_KIND_KERNARG, 64, 0, &p) == 0 ? 0 : -1;
}

/* Real, unique, usable memory; 256-byte aligned like the runtime's suballocator. */
static hipError_t backing_alloc(void **ptr, size_t size, int kind)
{
    if (size > ((size_t)1 << 46))
        return hipErrorOutOfMemory;
    size_t bytes = (size + 255) & ~(size_t)255;
    struct alloc a = {0, size, bytes, kind, 0, 0};
    void *p;
    int backing = hsa_backing();
    if (backing) {
        hsa_alloc_fn f = (hsa_alloc_fn)dlsym(RTLD_DEFAULT, "hsa_amd_memory_pool_allocate");
        uint64_t pool = kind == K_HOST ? HSA_POOL_BASE + HSA_KIND_SYSCOARSE
                                       : HSA_POOL_BASE + (uint64_t)(current_device + 1) * 16 +
                                             HSA_KIND_COARSE;
        p = NULL;
        if (!f || (backing == 2 && hsa_runtime_alloc()) || f(pool, size, 0, &p) != 0 ||
            (backing == 3 && hsa_runtime_alloc()))
            return hipErrorOutOfMemory;
        a.hsa = 1;
    } else if (bytes >= BIG_ALLOC) {
        p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
        if (p == MAP_FAILED)
            return hipErrorOutOfMemory;
        a.mmapped = 1;
    } else {
        p = aligned_alloc(256, bytes);
        if (!p)
            return hipErrorOutOfMemory;
    }
    a.ptr = (uintptr_t)p;
    if (!table_add(a)) {
        if (a.hsa)
            ((hsa_free_fn)dlsym(RTLD_DEFAULT, "hsa_amd_memory_pool_free"))(p);
        else if (a.mmapped)
            munmap(p, bytes);
        else
            free(p);
        return hipErrorOutOfMemory;
    }
    *ptr = p;
    return hipSuccess;
}

static void backing_release(const struct alloc *a)
{
    if (a->hsa)
        ((hsa_free_fn)dlsym(RTLD_DEFAULT, "hsa_amd_memory_pool_free"))((void *)a->ptr);
    else if (a->mmapped)
        munmap((void *)a->ptr, a->bytes);
    else
        free((void *)a->ptr);
}

/* hipFree, hipHostFree, hipFreeHost and hipFreeAsync all end in one free routine in clr,
 * so any of them frees any runtime allocation; registered ranges are not theirs. */
static hipError_t free_impl(void *ptr)
{
    if (!ptr)
        return hipSuccess;
    struct alloc a;
    if (!table_take((uintptr_t)ptr, KM_FREEABLE, &a))
        return hipErrorInvalidValue;
    backing_release(&a);
    return hipSuccess;
}

/* The pointer to record: *ptr only when the call succeeded (otherwise it may be the
 * caller's uninitialised variable). */
static unsigned long long out_ptr(void **ptr, hipError_t rc)
{
    return (ptr && rc == hipSuccess) ? (unsigned long long)(uintptr_t)*ptr : 0;
}
#define OUT(ptr, rc) out_ptr((ptr), (rc))
/* a pointer argument as recorded */
#define U(p) ((unsigned long long)(uintptr_t)(p))

/* ------------------------------------------------------------------------- */
/* Host allocations                                                          */
/* ------------------------------------------------------------------------- */

/* The memory a host allocation gets (ROCm/clr hipamd/src/hip_memory.cpp): coherent, i.e. the fine-grained system
 * pool, when flags == 0, or Coherent, Mapped or NumaUser is set, or NonCoherent is absent
 * and HIP_HOST_COHERENT is set; otherwise the coarse-grained system pool. */
static const char *host_pool(unsigned flags)
{
    const char *env = getenv("HIP_HOST_COHERENT");
    int env_coherent = env && *env && strcmp(env, "0") != 0;
    if (flags == 0 || (flags & (HOST_COHERENT | HOST_MAPPED | HOST_NUMAUSER)) ||
        (!(flags & HOST_NONCOHERENT) && env_coherent))
        return "sysfine";
    return "syscoarse";
}

/* The runtime's internal host allocator. hipMemAllocHost, hipHostAlloc and hipMallocHost
 * call this directly (not through an exported symbol), like clr does, so a preloaded
 * hipHostMalloc hook does not see those calls. */
static hipError_t host_malloc_impl(void **ptr, size_t size, unsigned flags)
{
    if (!ptr)
        return hipErrorInvalidValue;
    if ((flags & HOST_COHERENT) && (flags & HOST_NONCOHERENT))
        return hipErrorInvalidValue;
    if (size == 0) {
        *ptr = NULL;
        return hipSuccess;
    }
    return backing_alloc(ptr, size, K_HOST);
}

EXPORT hipError_t hipHostMalloc(void **ptr, size_t size, unsigned flags)
{
    hipError_t rc = host_malloc_impl(ptr, size, flags);
    record("hipHostMalloc size=%zu flags=0x%x dev=%d ptr=0x%llx rc=%d pool=%s", size, flags,
           current_device, OUT(ptr, rc), rc, host_pool(flags));
    return rc;
}

EXPORT hipError_t hipHostAlloc(void **ptr, size_t size, unsigned flags)
{
    hipError_t rc;
    if (flags & ~(HOST_PORTABLE | HOST_MAPPED | HOST_WRITECOMBINED))
        rc = hipErrorInvalidValue;
    else
        rc = host_malloc_impl(ptr, size, flags);
    record("hipHostAlloc size=%zu flags=0x%x dev=%d ptr=0x%llx rc=%d pool=%s", size, flags,
           current_device, OUT(ptr, rc), rc, host_pool(flags));
    return rc;
}

#ifndef FAKE_HIP_5
EXPORT hipError_t hipExtHostAlloc(void **ptr, size_t size, unsigned flags)
{
    hipError_t rc = host_malloc_impl(ptr, size, flags);
    record("hipExtHostAlloc size=%zu flags=0x%x dev=%d ptr=0x%llx rc=%d pool=%s", size, flags,
           current_device, OUT(ptr, rc), rc, host_pool(flags));
    return rc;
}
#endif

EXPORT hipError_t hipMallocHost(void **ptr, size_t size)
{
    /* Deprecated API, already non-coherent. */
    hipError_t rc = host_malloc_impl(ptr, size, HOST_NONCOHERENT);
    record("hipMallocHost size=%zu dev=%d ptr=0x%llx rc=%d pool=syscoarse", size, current_device,
           OUT(ptr, rc), rc);
    return rc;
}

EXPORT hipError_t hipMemAllocHost(void **ptr, size_t size)
{
    /* = hipHostMalloc(ptr, size, 0) inside the runtime: coherent. */
    hipError_t rc = host_malloc_impl(ptr, size, 0);
    record("hipMemAllocHost size=%zu dev=%d ptr=0x%llx rc=%d pool=sysfine", size, current_device,
           OUT(ptr, rc), rc);
    return rc;
}

EXPORT hipError_t hipHostFree(void *ptr)
{
    hipError_t rc = free_impl(ptr);
    record("hipHostFree dev=%d ptr=0x%llx rc=%d", current_device, U(ptr), rc);
    return rc;
}

EXPORT hipError_t hipFreeHost(void *ptr)
{
    hipError_t rc = free_impl(ptr);
    record("hipFreeHost dev=%d ptr=0x%llx rc=%d", current_device, U(ptr), rc);
    return rc;
}

EXPORT hipError_t hipHostRegister(void *ptr, size_t size, unsigned flags)
{
    hipError_t rc;
    if (!ptr || size == 0)
        rc = hipErrorInvalidValue;
    else if (table_overlaps((uintptr_t)ptr, size, KM(K_REGISTERED)))
        rc = hipErrorHostMemoryAlreadyRegistered;
    else {
        struct alloc a = {(uintptr_t)ptr, size, 0, K_REGISTERED, 0, 0};
        rc = table_add(a) ? hipSuccess : hipErrorOutOfMemory;
    }
    record("hipHostRegister size=%zu flags=0x%x dev=%d ptr=0x%llx rc=%d pool=sysfine", size, flags,
           current_device, U(ptr), rc);
    return rc;
}

EXPORT hipError_t hipHostUnregister(void *ptr)
{
    struct alloc a;
    hipError_t rc = (ptr && table_take((uintptr_t)ptr, KM(K_REGISTERED), &a))
                        ? hipSuccess
                        : hipErrorHostMemoryNotRegistered;
    record("hipHostUnregister dev=%d ptr=0x%llx rc=%d", current_device, U(ptr), rc);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* Device allocations                                                        */
/* ------------------------------------------------------------------------- */

/* hipExtMallocWithFlags: 0 Default and 4 Contiguous are coarse, 1 Finegrained and
 * 2 SignalMemory fine, 3 Uncached extended-scope fine-grained. */
static const char *ext_pool(unsigned flags)
{
    switch (flags) {
    case 1:
    case 2: return "fine";
    case 3: return "extfine";
    case 0:
    case 4: return "coarse";
    default: return "none";
    }
}

static hipError_t device_malloc_impl(void **ptr, size_t size, int kind)
{
    if (ndevices() == 0)
        return hipErrorNoDevice;
    if (!ptr)
        return hipErrorInvalidValue;
    if (size == 0) {
        *ptr = NULL;
        return hipSuccess;
    }
    return backing_alloc(ptr, size, kind);
}

EXPORT hipError_t hipMalloc(void **ptr, size_t size)
{
    hipError_t rc = device_malloc_impl(ptr, size, K_DEVICE);
    record("hipMalloc size=%zu dev=%d ptr=0x%llx rc=%d pool=coarse", size, current_device,
           OUT(ptr, rc), rc);
    return rc;
}

EXPORT hipError_t hipFree(void *ptr)
{
    hipError_t rc = free_impl(ptr);
    record("hipFree dev=%d ptr=0x%llx rc=%d", current_device, U(ptr), rc);
    return rc;
}

EXPORT hipError_t hipExtMallocWithFlags(void **ptr, size_t size, unsigned flags)
{
    hipError_t rc;
    /* The whole value is compared: 0 Default, 1 Finegrained, 2 SignalMemory,
     * 3 Uncached, 4 Contiguous. */
    if (ndevices() == 0)
        rc = hipErrorNoDevice;
    else if (!ptr || flags > 4)
        rc = hipErrorInvalidValue;
    else if (flags == 2 && size != 8)
        rc = hipErrorInvalidValue;
    else
        rc = device_malloc_impl(ptr, size, K_DEVICE);
    record("hipExtMallocWithFlags size=%zu flags=0x%x dev=%d ptr=0x%llx rc=%d pool=%s", size,
           flags, current_device, OUT(ptr, rc), rc, ext_pool(flags));
    return rc;
}

EXPORT hipError_t hipMallocManaged(void **ptr, size_t size, unsigned flags)
{
    hipError_t rc;
    if (ndevices() == 0)
        rc = hipErrorNoDevice;
    else if (flags != 1 && flags != 2) /* AttachGlobal or AttachHost */
        rc = hipErrorInvalidValue;
    else
        rc = device_malloc_impl(ptr, size, K_MANAGED);
    record("hipMallocManaged size=%zu flags=0x%x dev=%d ptr=0x%llx rc=%d pool=fine", size, flags,
           current_device, OUT(ptr, rc), rc);
    return rc;
}

EXPORT hipError_t hipMemAdvise(const void *ptr, size_t size, int advice, int device)
{
    hipError_t rc;
    const char *fail = getenv("FAKE_HIP_ADVISE_FAIL");
    if (fail && strcmp(fail, "1") == 0)
        rc = hipErrorNotSupported;
    else if (!ptr || size == 0)
        rc = hipErrorInvalidValue;
    else if (device != -1 /* hipCpuDeviceId */ && (device < 0 || device >= ndevices()))
        rc = hipErrorInvalidDevice;
    else if (!table_contains((uintptr_t)ptr, size, KM(K_MANAGED)))
        rc = hipErrorInvalidValue; /* advice applies to managed ranges only */
    else
        rc = hipSuccess;
    record("hipMemAdvise size=%zu advice=%d device=%d dev=%d ptr=0x%llx rc=%d", size, advice,
           device, current_device, U(ptr), rc);
    return rc;
}

EXPORT hipError_t hipMallocAsync(void **ptr, size_t size, void *stream)
{
    (void)stream;
    hipError_t rc = device_malloc_impl(ptr, size, K_DEVICE);
    record("hipMallocAsync size=%zu dev=%d ptr=0x%llx rc=%d pool=coarse", size, current_device,
           OUT(ptr, rc), rc);
    return rc;
}

EXPORT hipError_t hipMallocFromPoolAsync(void **ptr, size_t size, void *pool, void *stream)
{
    (void)pool;
    (void)stream;
    hipError_t rc = device_malloc_impl(ptr, size, K_DEVICE);
    record("hipMallocFromPoolAsync size=%zu dev=%d ptr=0x%llx rc=%d pool=coarse", size,
           current_device, OUT(ptr, rc), rc);
    return rc;
}

EXPORT hipError_t hipFreeAsync(void *ptr, void *stream)
{
    (void)stream;
    hipError_t rc = free_impl(ptr);
    record("hipFreeAsync dev=%d ptr=0x%llx rc=%d", current_device, U(ptr), rc);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* Devices and properties                                                    */
/* ------------------------------------------------------------------------- */

EXPORT hipError_t hipInit(unsigned flags)
{
    hipError_t rc = flags ? hipErrorInvalidValue : (ndevices() ? hipSuccess : hipErrorNoDevice);
    record("hipInit flags=0x%x rc=%d", flags, rc);
    return rc;
}

EXPORT hipError_t hipGetDeviceCount(int *count)
{
    hipError_t rc;
    if (!count)
        rc = hipErrorInvalidValue;
    else {
        *count = ndevices();
        rc = *count ? hipSuccess : hipErrorNoDevice;
    }
    record("hipGetDeviceCount count=%d rc=%d", count ? *count : -1, rc);
    return rc;
}

EXPORT hipError_t hipGetDevice(int *dev)
{
    hipError_t rc;
    if (!dev)
        rc = hipErrorInvalidValue;
    else if (ndevices() == 0)
        rc = hipErrorNoDevice;
    else {
        *dev = current_device;
        rc = hipSuccess;
    }
    record("hipGetDevice dev=%d rc=%d", current_device, rc);
    return rc;
}

EXPORT hipError_t hipSetDevice(int dev)
{
    hipError_t rc;
    if (dev < 0 || dev >= ndevices())
        rc = hipErrorInvalidDevice;
    else {
        current_device = dev;
        rc = hipSuccess;
    }
    record("hipSetDevice dev=%d rc=%d", dev, rc);
    return rc;
}

/* Fills a property struct completely: every byte is written, so a caller passing a
 * buffer smaller than the layout is caught by valgrind/ASan. */
static hipError_t fill_props(const char *fn, unsigned char *prop, int dev, size_t struct_size,
                             size_t arch_off, size_t integrated_off)
{
    hipError_t rc;
    if (!prop)
        rc = hipErrorInvalidValue;
    else if (dev < 0 || dev >= ndevices())
        rc = hipErrorInvalidDevice;
    else {
        const struct device *d = &devices[dev];
        memset(prop, 0, struct_size);
        snprintf((char *)prop, 256, "Fake %s", d->bare);
        snprintf((char *)prop + arch_off, 256, "%s", d->gcn_arch);
        int integrated = d->integrated;
        memcpy(prop + integrated_off, &integrated, sizeof integrated);
        rc = hipSuccess;
    }
    record("%s dev=%d rc=%d", fn, dev, rc);
    return rc;
}

EXPORT hipError_t hipGetDeviceProperties(void *prop, int dev)
{
    /* hipDeviceProp_tR0000: 792 bytes, gcnArchName @396, integrated @652 */
    return fill_props("hipGetDeviceProperties", prop, dev, 792, 396, 652);
}

#ifndef FAKE_HIP_5
EXPORT hipError_t hipGetDevicePropertiesR0600(void *prop, int dev)
{
    /* hipDeviceProp_tR0600: 1472 bytes, gcnArchName @1160, integrated @396 */
    return fill_props("hipGetDevicePropertiesR0600", prop, dev, 1472, 1160, 396);
}
#endif

EXPORT hipError_t hipDeviceGetPCIBusId(char *buf, int len, int dev)
{
    hipError_t rc;
    if (dev < 0 || dev >= ndevices())
        rc = hipErrorInvalidDevice;
    else if (!buf || len <= 12)
        rc = hipErrorInvalidValue;
    else {
        snprintf(buf, (size_t)len, "%04x:%02x:%02x.%01x", 0u, (unsigned)(3 + dev), 0u, 0u);
        rc = hipSuccess;
    }
    record("hipDeviceGetPCIBusId dev=%d rc=%d", dev, rc);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* VMM (hipMemAddressReserve ... hipMemAddressFree), pitched and array memory  */
/* ------------------------------------------------------------------------- */

#ifndef FAKE_HIP_5
/* Prototypes and layouts from ROCm's hip_runtime_api.h / driver_types.h. A reservation is
 * PROT_NONE address space; hipMemMap makes the mapped part readable and writable (so a
 * test can touch it), hipMemUnmap takes that back. A physical handle is a small record. */
typedef struct {
    int type;
    int id;
} hipMemLocation;
typedef struct {
    int type;
    int requested_handle_type;
    hipMemLocation location;
    void *win32_meta;
    unsigned char alloc_flags[4];
} hipMemAllocationProp;
typedef struct {
    hipMemLocation location;
    int flags;
} hipMemAccessDesc;
struct phys {
    size_t size;
    int device;
};

EXPORT hipError_t hipMemAddressReserve(void **ptr, size_t size, size_t alignment, void *addr,
                                       unsigned long long flags)
{
    hipError_t rc = hipSuccess;
    void *p = NULL;
    if (!ptr || size == 0)
        rc = hipErrorInvalidValue;
    else if (ndevices() == 0)
        rc = hipErrorNoDevice;
    else {
        p = mmap(addr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) {
            p = NULL;
            rc = hipErrorOutOfMemory;
        } else {
            *ptr = p;
        }
    }
    record("hipMemAddressReserve size=%zu align=%zu addr=0x%llx flags=0x%llx dev=%d ptr=0x%llx "
           "rc=%d",
           size, alignment, U(addr), flags, current_device, U(p), rc);
    return rc;
}

EXPORT hipError_t hipMemAddressFree(void *ptr, size_t size)
{
    hipError_t rc = ptr && size && munmap(ptr, size) == 0 ? hipSuccess : hipErrorInvalidValue;
    record("hipMemAddressFree ptr=0x%llx size=%zu rc=%d", U(ptr), size, rc);
    return rc;
}

EXPORT hipError_t hipMemCreate(void **handle, size_t size, const hipMemAllocationProp *prop,
                               unsigned long long flags)
{
    hipError_t rc = hipSuccess;
    struct phys *h = NULL;
    int dev = prop ? prop->location.id : -1;
    if (!handle || !prop || size == 0 || flags)
        rc = hipErrorInvalidValue;
    else if (dev < 0 || dev >= ndevices())
        rc = hipErrorInvalidDevice;
    else if (!(h = malloc(sizeof *h)))
        rc = hipErrorOutOfMemory;
    else {
        h->size = size;
        h->device = dev;
        *handle = h;
    }
    record("hipMemCreate size=%zu device=%d dev=%d handle=0x%llx rc=%d", size, dev,
           current_device, U(h), rc);
    return rc;
}

EXPORT hipError_t hipMemRelease(void *handle)
{
    hipError_t rc = handle ? hipSuccess : hipErrorInvalidValue;
    record("hipMemRelease handle=0x%llx rc=%d", U(handle), rc);
    free(handle);
    return rc;
}

EXPORT hipError_t hipMemMap(void *ptr, size_t size, size_t offset, void *handle,
                            unsigned long long flags)
{
    const struct phys *h = handle;
    hipError_t rc = !ptr || !h || flags || size == 0 || offset + size > h->size
                        ? hipErrorInvalidValue
                        : mprotect(ptr, size, PROT_READ | PROT_WRITE) == 0 ? hipSuccess
                                                                            : hipErrorInvalidValue;
    record("hipMemMap ptr=0x%llx size=%zu offset=%zu handle=0x%llx rc=%d", U(ptr), size, offset,
           U(handle), rc);
    return rc;
}

EXPORT hipError_t hipMemSetAccess(void *ptr, size_t size, const hipMemAccessDesc *desc,
                                  size_t count)
{
    hipError_t rc = ptr && size && desc && count ? hipSuccess : hipErrorInvalidValue;
    record("hipMemSetAccess ptr=0x%llx size=%zu device=%d flags=%d count=%zu rc=%d", U(ptr),
           size, desc ? desc->location.id : -1, desc ? desc->flags : -1, count, rc);
    return rc;
}

EXPORT hipError_t hipMemUnmap(void *ptr, size_t size)
{
    hipError_t rc =
        ptr && size && mprotect(ptr, size, PROT_NONE) == 0 ? hipSuccess : hipErrorInvalidValue;
    record("hipMemUnmap ptr=0x%llx size=%zu rc=%d", U(ptr), size, rc);
    return rc;
}
#endif

typedef struct {
    void *ptr;
    size_t pitch, xsize, ysize;
} hipPitchedPtr;
typedef struct {
    size_t width, height, depth;
} hipExtent;
/* Rows are 256-byte aligned here; the runtime picks its own pitch. */
#define PITCH(w) (((w) + 255) & ~(size_t)255)

EXPORT hipError_t hipMallocPitch(void **ptr, size_t *pitch, size_t width, size_t height)
{
    hipError_t rc;
    if (!ptr || !pitch)
        rc = hipErrorInvalidValue;
    else if (width == 0 || height == 0) {
        *ptr = NULL;
        *pitch = 0;
        rc = hipSuccess;
    } else {
        rc = device_malloc_impl(ptr, PITCH(width) * height, K_DEVICE);
        if (rc == hipSuccess)
            *pitch = PITCH(width);
    }
    record("hipMallocPitch width=%zu height=%zu pitch=%zu dev=%d ptr=0x%llx rc=%d", width,
           height, pitch && rc == hipSuccess ? *pitch : 0, current_device, OUT(ptr, rc), rc);
    return rc;
}

EXPORT hipError_t hipMalloc3D(hipPitchedPtr *pitched, hipExtent extent)
{
    hipError_t rc = hipErrorInvalidValue;
    void *p = NULL;
    if (pitched) {
        size_t bytes = PITCH(extent.width) * extent.height * extent.depth;
        rc = bytes ? device_malloc_impl(&p, bytes, K_DEVICE) : hipSuccess;
        if (rc == hipSuccess) {
            pitched->ptr = p;
            pitched->pitch = bytes ? PITCH(extent.width) : 0;
            pitched->xsize = extent.width;
            pitched->ysize = extent.height;
        }
    }
    record("hipMalloc3D width=%zu height=%zu depth=%zu dev=%d ptr=0x%llx rc=%d", extent.width,
           extent.height, extent.depth, current_device, U(p), rc);
    return rc;
}

/* Arrays are opaque handles in ROCm's headers; the double's handle is its memory. */
EXPORT hipError_t hipMallocArray(void **array, const void *desc, size_t width, size_t height,
                                 unsigned flags)
{
    hipError_t rc = array && desc && width ? device_malloc_impl(array, width * (height ? height : 1) * 4, K_DEVICE)
                                           : hipErrorInvalidValue;
    record("hipMallocArray width=%zu height=%zu flags=0x%x dev=%d ptr=0x%llx rc=%d", width, height,
           flags, current_device, OUT(array, rc), rc);
    return rc;
}

EXPORT hipError_t hipMalloc3DArray(void **array, const void *desc, hipExtent extent,
                                   unsigned flags)
{
    size_t n = extent.width * (extent.height ? extent.height : 1) * (extent.depth ? extent.depth : 1);
    hipError_t rc = array && desc && n ? device_malloc_impl(array, n * 4, K_DEVICE)
                                       : hipErrorInvalidValue;
    record("hipMalloc3DArray width=%zu height=%zu depth=%zu flags=0x%x dev=%d ptr=0x%llx rc=%d",
           extent.width, extent.height, extent.depth, flags, current_device, OUT(array, rc), rc);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* Kernels, streams, launches (no code runs: the double records the launch)   */
/* ------------------------------------------------------------------------- */

typedef struct {
    uint32_t x, y, z;
} dim3;

#define hipErrorInvalidDeviceFunction 98
#define hipErrorInvalidResourceHandle 400
#define MAX_KERNELS 64
#define MAX_STREAMS 64

/* Host stubs registered with __hipRegisterFunction and functions handed out by
 * hipModuleGetFunction, each with the (mangled) name the real runtime would report. */
static struct kernel {
    const void *host; /* host stub, or NULL for a module function */
    char name[256];
} kernels[MAX_KERNELS];
static int nkernels;
static struct stream {
    int device;
    int live;
} streams[MAX_STREAMS];
static int nstreams;
static pthread_mutex_t kernel_lock = PTHREAD_MUTEX_INITIALIZER;

static struct kernel *kernel_by_host(const void *host)
{
    struct kernel *k = NULL;
    pthread_mutex_lock(&kernel_lock);
    for (int i = 0; i < nkernels && host; i++)
        if (kernels[i].host == host)
            k = &kernels[i];
    pthread_mutex_unlock(&kernel_lock);
    return k;
}

static int is_module_function(const void *f)
{
    const struct kernel *k = f;
    return k >= &kernels[0] && k < &kernels[MAX_KERNELS] && !k->host && k->name[0];
}

/* 0 = the null stream; else must be a live stream this double created. */
static int stream_ok(void *stream)
{
    if ((uintptr_t)stream <= 2) /* the null stream, hipStreamLegacy, hipStreamPerThread */
        return 1;
    const struct stream *s = stream;
    return s >= &streams[0] && s < &streams[MAX_STREAMS] && s->live;
}

/* The real ABI entry hipcc's registration code calls (arguments beyond the names unused). */
EXPORT void __hipRegisterFunction(void **modules, const void *hostFunction, char *deviceFunction,
                                  const char *deviceName, unsigned int threadLimit, void *tid,
                                  void *bid, void *blockDim, void *gridDim, int *wSize)
{
    (void)modules, (void)deviceFunction, (void)threadLimit, (void)tid, (void)bid;
    (void)blockDim, (void)gridDim, (void)wSize;
    pthread_mutex_lock(&kernel_lock);
    if (hostFunction && deviceName && nkernels < MAX_KERNELS) {
        kernels[nkernels].host = hostFunction;
        snprintf(kernels[nkernels].name, sizeof kernels[0].name, "%s", deviceName);
        nkernels++;
    }
    pthread_mutex_unlock(&kernel_lock);
    record("__hipRegisterFunction host=0x%llx name=%s", U(hostFunction),
           deviceName ? deviceName : "(null)");
}

EXPORT hipError_t hipModuleLoadData(void **module, const void *image)
{
    hipError_t rc = module && image ? hipSuccess : hipErrorInvalidValue;
    if (rc == hipSuccess)
        *module = (void *)&kernels; /* one module: the double's */
    record("hipModuleLoadData rc=%d", rc);
    return rc;
}

EXPORT hipError_t hipModuleGetFunction(void **function, void *module, const char *name)
{
    hipError_t rc = hipSuccess;
    void *f = NULL;
    if (!function || !name || module != (void *)&kernels)
        rc = hipErrorInvalidValue;
    else {
        pthread_mutex_lock(&kernel_lock);
        for (int i = 0; i < nkernels; i++)
            if (!kernels[i].host && !strcmp(kernels[i].name, name))
                f = &kernels[i];
        if (!f && nkernels < MAX_KERNELS) {
            snprintf(kernels[nkernels].name, sizeof kernels[0].name, "%s", name);
            f = &kernels[nkernels++];
        }
        pthread_mutex_unlock(&kernel_lock);
        if (f)
            *function = f;
        else
            rc = hipErrorOutOfMemory;
    }
    record("hipModuleGetFunction name=%s ptr=0x%llx rc=%d", name ? name : "(null)", U(f), rc);
    return rc;
}

EXPORT const char *hipKernelNameRef(const void *f)
{
    const char *n = is_module_function(f) ? ((const struct kernel *)f)->name : NULL;
    record("hipKernelNameRef ptr=0x%llx name=%s", U(f), n ? n : "(null)");
    return n;
}

EXPORT const char *hipKernelNameRefByPtr(const void *host, void *stream)
{
    (void)stream;
    struct kernel *k = kernel_by_host(host);
    record("hipKernelNameRefByPtr ptr=0x%llx name=%s", U(host), k ? k->name : "(null)");
    return k ? k->name : NULL;
}

/* A new stream on the caller's current device, in the first free entry: a destroyed
 * stream's address is handed out again, as a real allocator may. */
static hipError_t stream_create(const char *fn, void **stream, unsigned flags, int priority)
{
    hipError_t rc = hipSuccess;
    void *s = NULL;
    if (!stream)
        rc = hipErrorInvalidValue;
    else if (ndevices() == 0)
        rc = hipErrorNoDevice;
    else {
        pthread_mutex_lock(&kernel_lock);
        for (int i = 0; i < MAX_STREAMS && !s; i++)
            if (!streams[i].live) {
                streams[i].device = current_device;
                streams[i].live = 1;
                s = &streams[i];
                if (i >= nstreams)
                    nstreams = i + 1;
            }
        pthread_mutex_unlock(&kernel_lock);
        if (s)
            *stream = s;
        else
            rc = hipErrorOutOfMemory;
    }
    record("%s flags=0x%x priority=%d dev=%d ptr=0x%llx rc=%d", fn, flags, priority,
           current_device, U(s), rc);
    return rc;
}

EXPORT hipError_t hipStreamCreate(void **stream)
{
    return stream_create("hipStreamCreate", stream, 0, 0);
}

EXPORT hipError_t hipStreamCreateWithFlags(void **stream, unsigned flags)
{
    return stream_create("hipStreamCreateWithFlags", stream, flags, 0);
}

EXPORT hipError_t hipStreamCreateWithPriority(void **stream, unsigned flags, int priority)
{
    return stream_create("hipStreamCreateWithPriority", stream, flags, priority);
}

EXPORT hipError_t hipExtStreamCreateWithCUMask(void **stream, uint32_t size, const uint32_t *mask)
{
    if (!mask || !size) {
        record("hipExtStreamCreateWithCUMask flags=0x0 priority=0 dev=%d ptr=0x0 rc=%d",
               current_device, hipErrorInvalidValue);
        return hipErrorInvalidValue;
    }
    return stream_create("hipExtStreamCreateWithCUMask", stream, 0, 0);
}

EXPORT hipError_t hipStreamDestroy(void *stream)
{
    hipError_t rc = stream && stream_ok(stream) ? hipSuccess : hipErrorInvalidResourceHandle;
    if (rc == hipSuccess) {
        pthread_mutex_lock(&kernel_lock);
        ((struct stream *)stream)->live = 0;
        pthread_mutex_unlock(&kernel_lock);
    }
    record("hipStreamDestroy stream=0x%llx dev=%d rc=%d", U(stream), current_device, rc);
    return rc;
}

EXPORT hipError_t hipStreamSynchronize(void *stream)
{
    hipError_t rc = stream_ok(stream) ? hipSuccess : hipErrorInvalidResourceHandle;
    record("hipStreamSynchronize stream=0x%llx dev=%d rc=%d", U(stream), current_device, rc);
    return rc;
}

EXPORT hipError_t hipDeviceSynchronize(void)
{
    hipError_t rc = ndevices() ? hipSuccess : hipErrorNoDevice;
    record("hipDeviceSynchronize dev=%d rc=%d", current_device, rc);
    return rc;
}

static hipError_t launch_check(int module, const void *f, void *stream)
{
    if (ndevices() == 0)
        return hipErrorNoDevice;
    if (!stream_ok(stream))
        return hipErrorInvalidResourceHandle;
    if (module ? !is_module_function(f) : !kernel_by_host(f))
        return hipErrorInvalidDeviceFunction;
    return hipSuccess;
}

static void record_launch(const char *fn, const void *f, dim3 g, dim3 b, size_t shared,
                          void *stream, hipError_t rc)
{
    record("%s func=0x%llx grid=%u,%u,%u block=%u,%u,%u shared=%zu stream=0x%llx dev=%d rc=%d",
           fn, U(f), g.x, g.y, g.z, b.x, b.y, b.z, shared, U(stream), current_device, rc);
}

EXPORT hipError_t hipLaunchKernel(const void *f, dim3 grid, dim3 block, void **args,
                                  size_t shared, void *stream)
{
    (void)args;
    hipError_t rc = launch_check(0, f, stream);
    record_launch("hipLaunchKernel", f, grid, block, shared, stream, rc);
    return rc;
}

EXPORT hipError_t hipExtLaunchKernel(const void *f, dim3 grid, dim3 block, void **args,
                                     size_t shared, void *stream, void *start, void *stop,
                                     int flags)
{
    (void)args, (void)start, (void)stop, (void)flags;
    hipError_t rc = launch_check(0, f, stream);
    record_launch("hipExtLaunchKernel", f, grid, block, shared, stream, rc);
    return rc;
}

EXPORT hipError_t hipLaunchCooperativeKernel(const void *f, dim3 grid, dim3 block, void **args,
                                             unsigned int shared, void *stream)
{
    (void)args;
    hipError_t rc = launch_check(0, f, stream);
    record_launch("hipLaunchCooperativeKernel", f, grid, block, shared, stream, rc);
    return rc;
}

EXPORT hipError_t hipModuleLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz,
                                        unsigned bx, unsigned by, unsigned bz, unsigned shared,
                                        void *stream, void **params, void **extra)
{
    (void)params, (void)extra;
    hipError_t rc = launch_check(1, f, stream);
    record_launch("hipModuleLaunchKernel", f, (dim3){gx, gy, gz}, (dim3){bx, by, bz}, shared,
                  stream, rc);
    return rc;
}

#ifndef FAKE_HIP_5
/* Not exported by ROCm 5.2.3. Takes the global work size (grid * block). */
EXPORT hipError_t hipExtModuleLaunchKernel(void *f, uint32_t gwx, uint32_t gwy, uint32_t gwz,
                                           uint32_t bx, uint32_t by, uint32_t bz, size_t shared,
                                           void *stream, void **params, void **extra,
                                           void *start, void *stop, uint32_t flags)
{
    (void)params, (void)extra, (void)start, (void)stop, (void)flags;
    hipError_t rc = launch_check(1, f, stream);
    record_launch("hipExtModuleLaunchKernel", f, (dim3){gwx, gwy, gwz}, (dim3){bx, by, bz},
                  shared, stream, rc);
    return rc;
}
#endif

EXPORT hipError_t hipGraphLaunch(void *graph, void *stream)
{
    hipError_t rc = !graph ? hipErrorInvalidValue
                    : !stream_ok(stream) ? hipErrorInvalidResourceHandle
                    : ndevices() ? hipSuccess : hipErrorNoDevice;
    record("hipGraphLaunch graph=0x%llx stream=0x%llx dev=%d rc=%d", U(graph), U(stream),
           current_device, rc);
    return rc;
}

#ifndef FAKE_HIP_5
/* ---- launch variants: per-thread-stream (_spt), cooperative, extensible, multi-device ---- */

EXPORT hipError_t hipLaunchKernel_spt(const void *f, dim3 grid, dim3 block, void **args,
                                      size_t shared, void *stream)
{
    (void)args;
    hipError_t rc = launch_check(0, f, stream);
    record_launch("hipLaunchKernel_spt", f, grid, block, shared, stream, rc);
    return rc;
}

EXPORT hipError_t hipLaunchCooperativeKernel_spt(const void *f, dim3 grid, dim3 block,
                                                 void **args, uint32_t shared, void *stream)
{
    (void)args;
    hipError_t rc = launch_check(0, f, stream);
    record_launch("hipLaunchCooperativeKernel_spt", f, grid, block, shared, stream, rc);
    return rc;
}

EXPORT hipError_t hipGraphLaunch_spt(void *graph, void *stream)
{
    hipError_t rc = !graph ? hipErrorInvalidValue
                    : !stream_ok(stream) ? hipErrorInvalidResourceHandle
                    : ndevices() ? hipSuccess : hipErrorNoDevice;
    record("hipGraphLaunch_spt graph=0x%llx stream=0x%llx dev=%d rc=%d", U(graph), U(stream),
           current_device, rc);
    return rc;
}

EXPORT hipError_t hipStreamSynchronize_spt(void *stream)
{
    hipError_t rc = stream_ok(stream) ? hipSuccess : hipErrorInvalidResourceHandle;
    record("hipStreamSynchronize_spt stream=0x%llx dev=%d rc=%d", U(stream), current_device, rc);
    return rc;
}

EXPORT hipError_t hipModuleLaunchCooperativeKernel(void *f, unsigned gx, unsigned gy,
                                                   unsigned gz, unsigned bx, unsigned by,
                                                   unsigned bz, unsigned shared, void *stream,
                                                   void **params)
{
    (void)params;
    hipError_t rc = launch_check(1, f, stream);
    record_launch("hipModuleLaunchCooperativeKernel", f, (dim3){gx, gy, gz}, (dim3){bx, by, bz},
                  shared, stream, rc);
    return rc;
}

/* hipLaunchConfig_t and HIP_LAUNCH_CONFIG (ROCm 6.5+ hip_runtime_api.h). */
typedef struct {
    dim3 grid, block;
    size_t shared;
    void *stream;
    void *attrs;
    unsigned num_attrs;
} hipLaunchConfig_t;
typedef struct {
    unsigned gx, gy, gz, bx, by, bz, shared;
    void *stream;
    void *attrs;
    unsigned num_attrs;
} HIP_LAUNCH_CONFIG;

EXPORT hipError_t hipLaunchKernelExC(const hipLaunchConfig_t *config, const void *f,
                                     void **args)
{
    (void)args;
    if (!config) {
        record("hipLaunchKernelExC rc=%d", hipErrorInvalidValue);
        return hipErrorInvalidValue;
    }
    hipError_t rc = launch_check(0, f, config->stream);
    record_launch("hipLaunchKernelExC", f, config->grid, config->block, config->shared,
                  config->stream, rc);
    return rc;
}

EXPORT hipError_t hipDrvLaunchKernelEx(const HIP_LAUNCH_CONFIG *config, void *f, void **params,
                                       void **extra)
{
    (void)params, (void)extra;
    if (!config) {
        record("hipDrvLaunchKernelEx rc=%d", hipErrorInvalidValue);
        return hipErrorInvalidValue;
    }
    hipError_t rc = launch_check(1, f, config->stream);
    record_launch("hipDrvLaunchKernelEx", f, (dim3){config->gx, config->gy, config->gz},
                  (dim3){config->bx, config->by, config->bz}, config->shared, config->stream,
                  rc);
    return rc;
}

/* hipLaunchParams and hipFunctionLaunchParams: one launch per device. */
typedef struct {
    void *func;
    dim3 grid, block;
    void **args;
    size_t shared;
    void *stream;
} hipLaunchParams;
typedef struct {
    void *function;
    unsigned gx, gy, gz, bx, by, bz, shared;
    void *stream;
    void **params;
} hipFunctionLaunchParams;

static hipError_t multi(const char *fn, const hipLaunchParams *l, int n)
{
    hipError_t rc = l && n > 0 ? hipSuccess : hipErrorInvalidValue;
    for (int i = 0; rc == hipSuccess && i < n; i++)
        rc = launch_check(0, l[i].func, l[i].stream);
    for (int i = 0; l && i < n; i++)
        record_launch(fn, l[i].func, l[i].grid, l[i].block, l[i].shared, l[i].stream, rc);
    return rc;
}

EXPORT hipError_t hipLaunchCooperativeKernelMultiDevice(hipLaunchParams *l, int n, unsigned flags)
{
    (void)flags;
    return multi("hipLaunchCooperativeKernelMultiDevice", l, n);
}

EXPORT hipError_t hipExtLaunchMultiKernelMultiDevice(hipLaunchParams *l, int n, unsigned flags)
{
    (void)flags;
    return multi("hipExtLaunchMultiKernelMultiDevice", l, n);
}

EXPORT hipError_t hipModuleLaunchCooperativeKernelMultiDevice(hipFunctionLaunchParams *l,
                                                              unsigned n, unsigned flags)
{
    (void)flags;
    hipError_t rc = l && n > 0 ? hipSuccess : hipErrorInvalidValue;
    for (unsigned i = 0; rc == hipSuccess && i < n; i++)
        rc = launch_check(1, l[i].function, l[i].stream);
    for (unsigned i = 0; l && i < n; i++)
        record_launch("hipModuleLaunchCooperativeKernelMultiDevice", l[i].function,
                      (dim3){l[i].gx, l[i].gy, l[i].gz}, (dim3){l[i].bx, l[i].by, l[i].bz},
                      l[i].shared, l[i].stream, rc);
    return rc;
}

/* The stream's device: the current device when it was created; the null stream's is the
 * caller's current device. */
EXPORT hipError_t hipStreamGetDevice(void *stream, int *device)
{
    hipError_t rc = !device ? hipErrorInvalidValue
                    : !stream_ok(stream) ? hipErrorInvalidResourceHandle
                    : hipSuccess;
    if (rc == hipSuccess)
        *device = (uintptr_t)stream > 2 ? ((const struct stream *)stream)->device : current_device;
    record("hipStreamGetDevice stream=0x%llx dev=%d device=%d rc=%d", U(stream), current_device,
           rc == hipSuccess ? *device : -1, rc);
    return rc;
}
#endif

EXPORT hipError_t hipRuntimeGetVersion(int *version)
{
    hipError_t rc = hipErrorInvalidValue;
    if (version) {
#ifdef FAKE_HIP_5
        *version = 50200000; /* major*10000000 + minor*100000 + patch */
#else
        *version = 60400000;
#endif
        rc = hipSuccess;
    }
    record("hipRuntimeGetVersion rc=%d", rc);
    return rc;
}

EXPORT hipError_t hipDriverGetVersion(int *version)
{
    hipError_t rc = hipErrorInvalidValue;
    if (version) {
        *version = 60400000;
        rc = hipSuccess;
    }
    record("hipDriverGetVersion rc=%d", rc);
    return rc;
}

static const char *error_name(hipError_t e)
{
    switch (e) {
    case hipSuccess: return "hipSuccess";
    case hipErrorInvalidValue: return "hipErrorInvalidValue";
    case hipErrorOutOfMemory: return "hipErrorOutOfMemory";
    case hipErrorNotInitialized: return "hipErrorNotInitialized";
    case hipErrorNoDevice: return "hipErrorNoDevice";
    case hipErrorInvalidDevice: return "hipErrorInvalidDevice";
    case hipErrorNotFound: return "hipErrorNotFound";
    case hipErrorHostMemoryAlreadyRegistered: return "hipErrorHostMemoryAlreadyRegistered";
    case hipErrorHostMemoryNotRegistered: return "hipErrorHostMemoryNotRegistered";
    case hipErrorNotSupported: return "hipErrorNotSupported";
    default: return "hipErrorUnknown";
    }
}

EXPORT const char *hipGetErrorName(hipError_t e)
{
    record("hipGetErrorName error=%d rc=0", e);
    return error_name(e);
}

EXPORT const char *hipGetErrorString(hipError_t e)
{
    const char *s;
    switch (e) {
    case hipSuccess: s = "no error"; break;
    case hipErrorInvalidValue: s = "invalid argument"; break;
    case hipErrorOutOfMemory: s = "out of memory"; break;
    case hipErrorNotInitialized: s = "initialization error"; break;
    case hipErrorNoDevice: s = "no ROCm-capable device is detected"; break;
    case hipErrorInvalidDevice: s = "invalid device ordinal"; break;
    case hipErrorNotFound: s = "named symbol not found"; break;
    case hipErrorHostMemoryAlreadyRegistered:
        s = "part or all of the requested memory range is already mapped";
        break;
    case hipErrorHostMemoryNotRegistered:
        s = "pointer does not correspond to a registered memory region";
        break;
    case hipErrorNotSupported: s = "operation not supported"; break;
    default: s = "unknown error"; break;
    }
    record("hipGetErrorString error=%d rc=0", e);
    return s;
}

/* ------------------------------------------------------------------------- */
/* hipGetProcAddress                                                         */
/* ------------------------------------------------------------------------- */

#ifndef FAKE_HIP_5
/* A static function: its address is inside this library even when a preloaded library
 * interposes every exported name (taking &hipGetProcAddress would yield the interposer). */
static void self_anchor(void) {}

static pthread_once_t self_once = PTHREAD_ONCE_INIT;
static void *self_handle;
static void *self_base;

static void self_open(void)
{
    Dl_info info;
    if (dladdr((void *)(uintptr_t)&self_anchor, &info) && info.dli_fname) {
        self_handle = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD);
        self_base = info.dli_fbase;
    }
}

/* dlsym on our handle also searches our dependencies (libc...); the runtime only knows its
 * own API, so anything defined elsewhere counts as not found. */
static void *self_lookup(const char *symbol)
{
    Dl_info info;
    void *fn = self_handle ? dlsym(self_handle, symbol) : NULL;
    if (fn && !(dladdr(fn, &info) && info.dli_fbase == self_base))
        fn = NULL;
    return fn;
}

/* Like the real runtime: the name is looked up in this library itself, so a caller using
 * hipGetProcAddress bypasses a preloaded definition. */
EXPORT hipError_t hipGetProcAddress(const char *symbol, void **pfn, int hipVersion,
                                    uint64_t flags, int *symbolStatus)
{
    (void)hipVersion;
    hipError_t rc;
    void *fn = NULL;
    if (!symbol || !pfn) {
        rc = hipErrorInvalidValue;
    } else {
        pthread_once(&self_once, self_open);
        fn = self_lookup(symbol);
        *pfn = fn;
        rc = fn ? hipSuccess : hipErrorNotFound;
    }
    if (symbolStatus)
        *symbolStatus = fn ? 0 : 1;
    record("hipGetProcAddress symbol=%s flags=0x%llx dev=%d ptr=0x%llx rc=%d",
           symbol ? symbol : "(null)", (unsigned long long)flags, current_device, U(fn), rc);
    return rc;
}

/* hipGetDriverEntryPoint (ROCm 7.1+) looks names up the same way; status 0 = found,
 * 1 = symbol not found (hipDriverEntryPointQueryResult). */
static hipError_t driver_entry_point(const char *fn, const char *symbol, void **pfn,
                                     unsigned long long flags, int *status)
{
    hipError_t rc;
    void *f = NULL;
    if (!symbol || !pfn) {
        rc = hipErrorInvalidValue;
    } else {
        pthread_once(&self_once, self_open);
        f = self_lookup(symbol);
        *pfn = f;
        rc = f ? hipSuccess : hipErrorNotFound;
    }
    if (status)
        *status = f ? 0 : 1;
    record("%s symbol=%s flags=0x%llx dev=%d ptr=0x%llx rc=%d", fn, symbol ? symbol : "(null)",
           flags, current_device, U(f), rc);
    return rc;
}

EXPORT hipError_t hipGetDriverEntryPoint(const char *symbol, void **pfn,
                                         unsigned long long flags, int *status)
{
    return driver_entry_point("hipGetDriverEntryPoint", symbol, pfn, flags, status);
}

EXPORT hipError_t hipGetDriverEntryPoint_spt(const char *symbol, void **pfn,
                                             unsigned long long flags, int *status)
{
    return driver_entry_point("hipGetDriverEntryPoint_spt", symbol, pfn, flags, status);
}
#endif
