/*
 * fake_hsa.c - a test double of the HSA runtime (libhsa-runtime64.so.1, ROCr) for rmcp's
 * tests. All exports are in version node ROCR_1 (hsa.map).
 *
 * Agents: agent 0 is the CPU ("Fake CPU", driver node 0); then one GPU agent per item of
 * FAKE_HIP_DEVICES (the same variable the HIP double reads), named by the bare arch
 * ("gfx1030" for "gfx1030:xnack-@igpu"); GPU i is agent i+1 on driver node i+1.
 *
 * Pools (kind names as used in the record):
 *   CPU:  sysfine   FINE_GRAINED
 *         kernarg   KERNARG_INIT | FINE_GRAINED
 *         syscoarse COARSE_GRAINED
 *   GPU:  coarse    COARSE_GRAINED
 *         fine      FINE_GRAINED
 *         extfine   EXTENDED_SCOPE_FINE_GRAINED
 * Agent handle = AGENT_BASE + index; pool handle = POOL_BASE + index*16 + kind, so a
 * handle can be decoded back into (agent, kind).
 *
 * Record: appended to FAKE_HIP_LOG, one line per call, each emitted with a single
 * write() on an O_APPEND descriptor, e.g.
 *   hsa_init rc=0
 *   hsa_amd_memory_pool_allocate agent=1 pool=fine size=4096 flags=0x0 ptr=0x7f.. rc=0
 *   hsa_amd_memory_pool_free ptr=0x7f.. rc=0
 *   hsa_amd_register_system_event_handler rc=0
 * rc is decimal (4107 = 0x100B NOT_INITIALIZED).
 *
 * FAKE_HSA_HANDLER_SLOTS=N (default 16) limits how many system event handlers can be
 * registered; past that, registration fails with OUT_OF_RESOURCES.
 *
 * Test-only exports: fake_hsa_raise_memory_fault(gpu_index, address, reason_mask) delivers
 * a GPU memory fault event the way ROCr does and then aborts; fake_hsa_recent_allocation(back)
 * returns the pointer of the pool allocation `back` before the last (0: the last).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

typedef int hsa_status_t;
#define HSA_STATUS_SUCCESS 0
#define HSA_STATUS_INFO_BREAK 1
#define HSA_STATUS_ERROR 0x1000
#define HSA_STATUS_ERROR_INVALID_ARGUMENT 0x1001
#define HSA_STATUS_ERROR_OUT_OF_RESOURCES 0x1008
#define HSA_STATUS_ERROR_NOT_INITIALIZED 0x100B

typedef struct { uint64_t handle; } hsa_agent_t;
typedef struct { uint64_t handle; } hsa_amd_memory_pool_t;

typedef struct {
    uint32_t event_type; /* HSA_AMD_GPU_MEMORY_FAULT_EVENT = 0 */
    union {
        struct {
            hsa_agent_t agent;
            uint64_t virtual_address;
            uint32_t fault_reason_mask;
        } memory_fault;
    };
} hsa_amd_event_t;

typedef hsa_status_t (*hsa_amd_system_event_callback_t)(const hsa_amd_event_t *, void *);

_Static_assert(offsetof(hsa_amd_event_t, memory_fault) == 8, "event union at offset 8");

/* attributes */
#define AGENT_INFO_NAME 0
#define AGENT_INFO_DEVICE 17
/* hsa_amd_agent_info_t in the real 5.2.3 and 6.4.3 hsa_ext_amd.h: DRIVER_NODE_ID is 0xA004
 * (0xA00A is MAX_WAVES_PER_CU). */
#define AGENT_INFO_DRIVER_NODE_ID 0xA004
#define AGENT_INFO_BDFID 0xA006
#define AGENT_INFO_PRODUCT_NAME 0xA009
#define POOL_INFO_SEGMENT 0
#define POOL_INFO_GLOBAL_FLAGS 1
#define POOL_INFO_SIZE 2
#define POOL_INFO_RUNTIME_ALLOC_ALLOWED 5
#define POOL_INFO_RUNTIME_ALLOC_GRANULE 6
#define POOL_INFO_RUNTIME_ALLOC_ALIGNMENT 7

#define FLAG_KERNARG_INIT 1u
#define FLAG_FINE_GRAINED 2u
#define FLAG_COARSE_GRAINED 4u
#define FLAG_EXT_FINE_GRAINED 8u

#define MAX_GPUS 16
#define AGENT_BASE 0xA6E0000000ull
#define POOL_BASE 0xB0010000000ull

enum pool_kind { P_SYSFINE = 1, P_KERNARG, P_SYSCOARSE, P_COARSE, P_FINE, P_EXTFINE };

static const char *const kind_names[] = {"?",      "sysfine", "kernarg", "syscoarse",
                                         "coarse", "fine",    "extfine"};
static const uint32_t kind_flags[] = {0,
                                      FLAG_FINE_GRAINED,
                                      FLAG_KERNARG_INIT | FLAG_FINE_GRAINED,
                                      FLAG_COARSE_GRAINED,
                                      FLAG_COARSE_GRAINED,
                                      FLAG_FINE_GRAINED,
                                      FLAG_EXT_FINE_GRAINED};

/* ------------------------------------------------------------------------- */
/* Record                                                                    */
/* ------------------------------------------------------------------------- */

#include "record.h"

/* ------------------------------------------------------------------------- */
/* State                                                                     */
/* ------------------------------------------------------------------------- */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* Held across fork, so a fork from a multithreaded program never leaves it locked in the
 * child (see fake_hip.c). */
static void lock_take(void) { pthread_mutex_lock(&lock); }
static void lock_give(void) { pthread_mutex_unlock(&lock); }
__attribute__((constructor)) static void lock_atfork(void)
{
    pthread_atfork(lock_take, lock_give, lock_give);
}
static int init_count; /* hsa_init is reference counted */

static pthread_once_t gpu_once = PTHREAD_ONCE_INIT;
static char gpu_names[MAX_GPUS][64];
static int gpu_count;

static void parse_gpus(void)
{
    const char *env = getenv("FAKE_HIP_DEVICES");
    if (!env)
        return;
    const char *p = env;
    while (*p && gpu_count < MAX_GPUS) {
        size_t len = strcspn(p, ",");
        size_t bare = strcspn(p, ":@,"); /* strip target features and "@igpu" */
        if (bare > len)
            bare = len;
        if (bare > 0 && bare < sizeof gpu_names[0]) {
            memcpy(gpu_names[gpu_count], p, bare);
            gpu_names[gpu_count][bare] = '\0';
            gpu_count++;
        }
        if (!p[len])
            break;
        p += len + 1;
    }
}

static int ngpus(void)
{
    pthread_once(&gpu_once, parse_gpus);
    return gpu_count;
}

static bool initialized(void)
{
    pthread_mutex_lock(&lock);
    bool r = init_count > 0;
    pthread_mutex_unlock(&lock);
    return r;
}

/* agent index: 0 = CPU, 1.. = GPUs; -1 if the handle is not an agent */
static int agent_index(hsa_agent_t a)
{
    if (a.handle < AGENT_BASE)
        return -1;
    uint64_t i = a.handle - AGENT_BASE;
    return i <= (uint64_t)ngpus() ? (int)i : -1;
}

static hsa_agent_t agent_of(int index) { return (hsa_agent_t){AGENT_BASE + (uint64_t)index}; }

static hsa_amd_memory_pool_t pool_of(int agent, int kind)
{
    return (hsa_amd_memory_pool_t){POOL_BASE + (uint64_t)agent * 16 + (uint64_t)kind};
}

/* Decodes a pool handle; false if it names no pool. */
static bool pool_decode(hsa_amd_memory_pool_t pool, int *agent, int *kind)
{
    if (pool.handle < POOL_BASE)
        return false;
    uint64_t off = pool.handle - POOL_BASE;
    int a = (int)(off / 16), k = (int)(off % 16);
    if (off / 16 > (uint64_t)ngpus())
        return false;
    if (a == 0 ? (k < P_SYSFINE || k > P_SYSCOARSE) : (k < P_COARSE || k > P_EXTFINE))
        return false;
    *agent = a;
    *kind = k;
    return true;
}

/* live pool allocations, so frees can be checked */
struct alloc {
    void *ptr;
};
static struct alloc *allocs;
static size_t nallocs, cap_allocs;
/* the last RECENT pointers handed out, for fake_hsa_recent_allocation */
#define RECENT 8
static void *recent[RECENT];
static unsigned nrecent;

#define MAX_HANDLERS 16
static struct {
    hsa_amd_system_event_callback_t cb;
    void *data;
} handlers[MAX_HANDLERS];
static int nhandlers;

/* ------------------------------------------------------------------------- */
/* API                                                                       */
/* ------------------------------------------------------------------------- */

EXPORT hsa_status_t hsa_init(void)
{
    pthread_mutex_lock(&lock);
    init_count++;
    pthread_mutex_unlock(&lock);
    record("hsa_init rc=0");
    return HSA_STATUS_SUCCESS;
}

EXPORT hsa_status_t hsa_shut_down(void)
{
    hsa_status_t rc = HSA_STATUS_SUCCESS;
    pthread_mutex_lock(&lock);
    if (init_count > 0)
        init_count--;
    else
        rc = HSA_STATUS_ERROR_NOT_INITIALIZED;
    pthread_mutex_unlock(&lock);
    record("hsa_shut_down rc=%d", rc);
    return rc;
}

EXPORT hsa_status_t hsa_status_string(hsa_status_t status, const char **str)
{
    hsa_status_t rc = HSA_STATUS_SUCCESS;
    if (!str)
        rc = HSA_STATUS_ERROR_INVALID_ARGUMENT;
    else {
        switch (status) {
        case HSA_STATUS_SUCCESS:
            *str = "HSA_STATUS_SUCCESS: The function has been executed successfully.";
            break;
        case HSA_STATUS_INFO_BREAK:
            *str = "HSA_STATUS_INFO_BREAK: A traversal over a list of elements has been "
                   "interrupted by the application before completing.";
            break;
        case HSA_STATUS_ERROR:
            *str = "HSA_STATUS_ERROR: A generic error has occurred.";
            break;
        case HSA_STATUS_ERROR_INVALID_ARGUMENT:
            *str = "HSA_STATUS_ERROR_INVALID_ARGUMENT: One of the actual arguments does not "
                   "meet a precondition stated in the documentation of the corresponding "
                   "formal argument.";
            break;
        case HSA_STATUS_ERROR_OUT_OF_RESOURCES:
            *str = "HSA_STATUS_ERROR_OUT_OF_RESOURCES: The runtime failed to allocate the "
                   "necessary resources.";
            break;
        case HSA_STATUS_ERROR_NOT_INITIALIZED:
            *str = "HSA_STATUS_ERROR_NOT_INITIALIZED: An API other than hsa_init has been "
                   "invoked while the reference count of the HSA runtime is zero.";
            break;
        default: rc = HSA_STATUS_ERROR_INVALID_ARGUMENT; break;
        }
    }
    record("hsa_status_string status=%d rc=%d", status, rc);
    return rc;
}

EXPORT hsa_status_t hsa_iterate_agents(hsa_status_t (*cb)(hsa_agent_t, void *), void *data)
{
    hsa_status_t rc = HSA_STATUS_SUCCESS;
    if (!initialized())
        rc = HSA_STATUS_ERROR_NOT_INITIALIZED;
    else if (!cb)
        rc = HSA_STATUS_ERROR_INVALID_ARGUMENT;
    else {
        for (int i = 0; i <= ngpus(); i++) {
            rc = cb(agent_of(i), data);
            if (rc != HSA_STATUS_SUCCESS)
                break;
        }
    }
    record("hsa_iterate_agents rc=%d", rc);
    return rc;
}

EXPORT hsa_status_t hsa_agent_get_info(hsa_agent_t agent, int attribute, void *value)
{
    hsa_status_t rc = HSA_STATUS_SUCCESS;
    int i = agent_index(agent);
    if (!initialized())
        rc = HSA_STATUS_ERROR_NOT_INITIALIZED;
    else if (i < 0 || !value)
        rc = HSA_STATUS_ERROR_INVALID_ARGUMENT;
    else {
        switch (attribute) {
        case AGENT_INFO_NAME:
            memset(value, 0, 64);
            snprintf(value, 64, "%s", i == 0 ? "Fake CPU" : gpu_names[i - 1]);
            break;
        case AGENT_INFO_DEVICE: {
            uint32_t t = i == 0 ? 0 : 1; /* HSA_DEVICE_TYPE_CPU / _GPU */
            memcpy(value, &t, sizeof t);
            break;
        }
        case AGENT_INFO_DRIVER_NODE_ID: {
            uint32_t node = (uint32_t)i;
            memcpy(value, &node, sizeof node);
            break;
        }
        case AGENT_INFO_BDFID: {
            /* bus << 8 | device << 3 | function; GPU i sits on bus 3 + i, matching the HIP
             * double's hipDeviceGetPCIBusId. The CPU has none: 0. */
            uint32_t bdf = i == 0 ? 0 : (uint32_t)(3 + i - 1) << 8;
            memcpy(value, &bdf, sizeof bdf);
            break;
        }
        case AGENT_INFO_PRODUCT_NAME:
            memset(value, 0, 64);
            if (i == 0)
                snprintf(value, 64, "Fake CPU");
            else
                snprintf(value, 64, "Fake %.58s", gpu_names[i - 1]);
            break;
        default:
            rc = HSA_STATUS_ERROR_INVALID_ARGUMENT;
        }
    }
    record("hsa_agent_get_info agent=%d attribute=0x%x rc=%d", i, (unsigned)attribute, rc);
    return rc;
}

EXPORT hsa_status_t hsa_amd_agent_iterate_memory_pools(
    hsa_agent_t agent, hsa_status_t (*cb)(hsa_amd_memory_pool_t, void *), void *data)
{
    hsa_status_t rc = HSA_STATUS_SUCCESS;
    int i = agent_index(agent);
    if (!initialized())
        rc = HSA_STATUS_ERROR_NOT_INITIALIZED;
    else if (i < 0 || !cb)
        rc = HSA_STATUS_ERROR_INVALID_ARGUMENT;
    else {
        int first = i == 0 ? P_SYSFINE : P_COARSE;
        for (int k = first; k < first + 3; k++) {
            rc = cb(pool_of(i, k), data);
            if (rc != HSA_STATUS_SUCCESS)
                break;
        }
    }
    record("hsa_amd_agent_iterate_memory_pools agent=%d rc=%d", i, rc);
    return rc;
}

EXPORT hsa_status_t hsa_amd_memory_pool_get_info(hsa_amd_memory_pool_t pool, int attribute,
                                                 void *value)
{
    hsa_status_t rc = HSA_STATUS_SUCCESS;
    int a = -1, k = 0;
    if (!initialized())
        rc = HSA_STATUS_ERROR_NOT_INITIALIZED;
    else if (!pool_decode(pool, &a, &k) || !value)
        rc = HSA_STATUS_ERROR_INVALID_ARGUMENT;
    else {
        uint32_t u32;
        size_t sz;
        bool b;
        switch (attribute) {
        case POOL_INFO_SEGMENT:
            u32 = 0; /* HSA_AMD_SEGMENT_GLOBAL */
            memcpy(value, &u32, sizeof u32);
            break;
        case POOL_INFO_GLOBAL_FLAGS:
            u32 = kind_flags[k];
            memcpy(value, &u32, sizeof u32);
            break;
        case POOL_INFO_SIZE:
            sz = a == 0 ? ((size_t)64 << 30) : ((size_t)16 << 30);
            memcpy(value, &sz, sizeof sz);
            break;
        case POOL_INFO_RUNTIME_ALLOC_ALLOWED:
            b = true;
            memcpy(value, &b, sizeof b);
            break;
        case POOL_INFO_RUNTIME_ALLOC_GRANULE:
        case POOL_INFO_RUNTIME_ALLOC_ALIGNMENT:
            sz = 4096;
            memcpy(value, &sz, sizeof sz);
            break;
        default:
            rc = HSA_STATUS_ERROR_INVALID_ARGUMENT;
        }
    }
    record("hsa_amd_memory_pool_get_info agent=%d pool=%s attribute=%d rc=%d", a,
           kind_names[k], attribute, rc);
    return rc;
}

EXPORT hsa_status_t hsa_amd_memory_pool_allocate(hsa_amd_memory_pool_t pool, size_t size,
                                                 uint32_t flags, void **ptr)
{
    hsa_status_t rc = HSA_STATUS_SUCCESS;
    int a = -1, k = 0;
    void *p = NULL;
    if (!initialized())
        rc = HSA_STATUS_ERROR_NOT_INITIALIZED;
    else if (!pool_decode(pool, &a, &k) || !ptr || size == 0 ||
             (flags & ~7u) /* STANDARD 0, PCIE 1, CONTIGUOUS 2, EXECUTABLE 4 */)
        rc = HSA_STATUS_ERROR_INVALID_ARGUMENT;
    else {
        size_t bytes = (size + 4095) & ~(size_t)4095;
        p = bytes >= size ? aligned_alloc(4096, bytes) : NULL;
        pthread_mutex_lock(&lock);
        if (p && nallocs == cap_allocs) {
            size_t cap = cap_allocs ? cap_allocs * 2 : 256;
            struct alloc *t = realloc(allocs, cap * sizeof *t);
            if (t) {
                allocs = t;
                cap_allocs = cap;
            }
        }
        if (p && nallocs < cap_allocs)
            allocs[nallocs++].ptr = p;
        else {
            free(p);
            p = NULL;
            rc = HSA_STATUS_ERROR_OUT_OF_RESOURCES;
        }
        pthread_mutex_unlock(&lock);
        if (p) {
            *ptr = p;
            pthread_mutex_lock(&lock);
            recent[nrecent++ % RECENT] = p;
            pthread_mutex_unlock(&lock);
        }
    }
    record("hsa_amd_memory_pool_allocate agent=%d pool=%s size=%zu flags=0x%x ptr=0x%llx rc=%d", a,
           kind_names[k], size, flags, (unsigned long long)(uintptr_t)p, rc);
    return rc;
}

EXPORT hsa_status_t hsa_amd_memory_pool_free(void *ptr)
{
    hsa_status_t rc = HSA_STATUS_SUCCESS;
    if (!initialized())
        rc = HSA_STATUS_ERROR_NOT_INITIALIZED;
    else if (ptr) {
        bool found = false;
        pthread_mutex_lock(&lock);
        for (size_t i = nallocs; i-- > 0;) {
            if (allocs[i].ptr == ptr) {
                allocs[i] = allocs[--nallocs];
                found = true;
                break;
            }
        }
        pthread_mutex_unlock(&lock);
        if (found)
            free(ptr);
        else
            rc = HSA_STATUS_ERROR_INVALID_ARGUMENT;
    }
    record("hsa_amd_memory_pool_free ptr=0x%llx rc=%d", (unsigned long long)(uintptr_t)(ptr), rc);
    return rc;
}

EXPORT hsa_status_t hsa_amd_register_system_event_handler(hsa_amd_system_event_callback_t cb,
                                                          void *data)
{
    hsa_status_t rc = HSA_STATUS_SUCCESS;
    if (!initialized())
        rc = HSA_STATUS_ERROR_NOT_INITIALIZED;
    else if (!cb)
        rc = HSA_STATUS_ERROR_INVALID_ARGUMENT;
    else {
        pthread_mutex_lock(&lock);
        const char *slots_env = getenv("FAKE_HSA_HANDLER_SLOTS");
        int slots = slots_env ? atoi(slots_env) : MAX_HANDLERS;
        if (slots > MAX_HANDLERS)
            slots = MAX_HANDLERS;
        if (nhandlers < slots) {
            handlers[nhandlers].cb = cb;
            handlers[nhandlers].data = data;
            nhandlers++;
        } else {
            rc = HSA_STATUS_ERROR_OUT_OF_RESOURCES;
        }
        pthread_mutex_unlock(&lock);
    }
    record("hsa_amd_register_system_event_handler rc=%d", rc);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* Fault injection (test only)                                               */
/* ------------------------------------------------------------------------- */

/* Appends the text of each reason bit to buf, comma separated. */
static void reason_text(uint32_t mask, char *buf, size_t len)
{
    static const struct {
        uint32_t bit;
        const char *text;
    } reasons[] = {
        {1u, "Page not present or supervisor privilege"},
        {2u, "Write access to a read-only page"},
        {4u, "Execute access to a page marked NX"},
        {8u, "Host access only"},
        {16u, "DRAM ECC failure"},
        {32u, "Can't determine the exact fault address"},
        {64u, "SRAM ECC failure"},
        {1u << 31, "GPU reset following unspecified hang"},
    };
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++) {
        if (!(mask & reasons[i].bit))
            continue;
        int n = snprintf(buf + used, len - used, "%s%s", used ? ", " : "", reasons[i].text);
        if (n < 0 || (size_t)n >= len - used)
            break;
        used += (size_t)n;
    }
    if (!used)
        snprintf(buf, len, "Unknown");
}

/* Test-only: the pointer the allocation `back` allocations before the last one returned
 * (0: the last), live or not; NULL if there was none. */
EXPORT void *fake_hsa_recent_allocation(unsigned back)
{
    pthread_mutex_lock(&lock);
    void *p = back < RECENT && back < nrecent ? recent[(nrecent - 1 - back) % RECENT] : NULL;
    pthread_mutex_unlock(&lock);
    return p;
}

/* Delivers HSA_AMD_GPU_MEMORY_FAULT_EVENT for GPU gpu_index to every registered handler in
 * registration order, then does what ROCr does: unless a handler returned
 * HSA_STATUS_SUCCESS, prints its message and aborts; otherwise returns and the process goes
 * on. FAKE_HSA_FAULT_HANDLED=1 stands for HIP 7's own handler returning success (its default
 * with core dumps off, tests/model_fault.rs), which this double does not register. */
EXPORT void fake_hsa_raise_memory_fault(uint32_t gpu_index, uint64_t address,
                                        uint32_t reason_mask)
{
    hsa_amd_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.event_type = 0;
    ev.memory_fault.agent = agent_of((int)gpu_index + 1);
    ev.memory_fault.virtual_address = address;
    ev.memory_fault.fault_reason_mask = reason_mask;

    pthread_mutex_lock(&lock);
    int n = nhandlers;
    pthread_mutex_unlock(&lock);
    record("fake_hsa_raise_memory_fault gpu=%u address=0x%llx reason=0x%x handlers=%d",
           gpu_index, (unsigned long long)address, reason_mask, n);

    bool silenced = getenv("FAKE_HSA_FAULT_HANDLED") != NULL;
    for (int i = 0; i < n; i++) {
        hsa_status_t r = handlers[i].cb(&ev, handlers[i].data);
        record("fake_hsa_fault_handler index=%d rc=%d", i, r);
        if (r == HSA_STATUS_SUCCESS)
            silenced = true;
    }
    if (!silenced) {
        char reason[512];
        reason_text(reason_mask, reason, sizeof reason);
        fprintf(stderr,
                "Memory access fault by GPU node-%u (Agent handle: 0x%llx) on address 0x%llx. "
                "Reason: %s.\n",
                gpu_index + 1, (unsigned long long)ev.memory_fault.agent.handle,
                (unsigned long long)address, reason);
        fflush(stderr);
        abort();
    }
}
