/* A GPU model for ROCr's libhsakmt model mode (HSA_MODEL_LIB), used by
 * tests/model_gpu.rs to run the real HIP and ROCr 7.2.4 here without a GPU.
 *
 * What it does, and nothing more:
 *  - logs every allocation and free the runtime makes through the KFD ioctls
 *    (GPU virtual address, size, KFD flags), every queue registration and
 *    every AQL packet it retires, one line each, to the file named by
 *    RMCP_MODEL_LOG (appended with one write() per line);
 *  - serves AQL compute queues from one thread per queue: for each packet
 *    between the read and the write index it waits for a barrier-AND's
 *    dependencies to reach 0, decrements the packet's completion signal, sets
 *    the signal's KFD event, marks the packet INVALID and advances the read
 *    index, so the runtime's waits return.
 *
 * Kernels are NOT executed and copies do not move data: a kernel-dispatch
 * packet is retired like a barrier, after one check. SDMA queues are logged
 * and never served (tests run with HSA_ENABLE_SDMA=0, so copies use blit
 * kernels).
 *
 * Memory faults (interface 0.5, tests/model/hsakmt-model-memory-fault.patch;
 * stock 7.2.4 never registers the callback, so nothing is checked there).
 * Before retiring a kernel-dispatch packet the model reads the kernel's
 * explicit arguments as 8-byte words: the kernel-argument segment
 * (kernarg_size bytes, from the kernel descriptor) up to where the runtime's
 * implicit arguments begin, which the model recognises by the dispatch's own
 * block counts and work-group sizes (code object v5's hidden_block_count_x/y/z
 * and hidden_group_size_x/y/z; without them the whole segment is read). A
 * word is taken for a pointer into the GPU aperture when its value lies
 * between the lowest GPU virtual address the runtime ever allocated and the
 * aperture's end. If no live allocation covers such a pointer, the model
 * raises a "page not present" fault at that address on its node, logs it,
 * leaves the packet unretired (its completion signal never changes) and stops
 * serving that queue, as the hardware stops a queue whose wave faulted. The
 * fault is raised from a thread of its own, as an interrupt arrives apart
 * from the queue. Limits: the model executes nothing, so it sees only the
 * pointers a kernel is given, not the addresses it computes (p + i); a
 * pointer stored inside a buffer is not seen; an 8-byte word that is not a
 * pointer (two packed 32-bit integers) whose value falls in that range is
 * taken for one (a float argument padded to 8 bytes, 2.0f, reads 0x40000000,
 * so the fault tests' kernels take none); "live" means allocated and not yet freed (the interface
 * reports allocations and frees, not map and unmap); a kernel whose
 * arguments are all covered never faults, however it indexes them.
 *
 * Log lines (all numbers hex unless named otherwise):
 *   gpu node=N aperture=0x.. size=0x..
 *   alloc node=N va=0x.. size=0x.. flags=0x..
 *   free node=N va=0x.. size=0x.. flags=0x..     (flags remembered from alloc)
 *   queue node=N type=T ring=0x.. bytes=0x..
 *   packet node=N queue=Q type=T [vendor_format=F]
 *   event node=N id=I                            (a completion signal's event set)
 *   fault node=N queue=Q va=0x.. reason=not_present kernel_object=0x..
 *   fault_raised node=N va=0x.. monotonic_ns=T  (when the fault is handed to libhsakmt)
 *   queue_destroyed node=N queue=Q retired=COUNT
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "model_iface.h"

struct model_queue {
    struct model_gpu *gpu;
    struct model_queue_desc desc;
    unsigned id;
    pthread_t thread;
    atomic_int stop;
    unsigned long retired;
    int faulted; /* stopped by a memory fault: no packet is served again */
    struct model_queue *next;
};

/* Live allocations of one GPU, to log the flags on free (libhsakmt passes
 * none there). A list: a test process makes a few hundred at most. */
struct model_alloc {
    uint64_t va, size;
    uint32_t flags;
    struct model_alloc *next;
};

struct model_gpu {
    unsigned node;
    char *aperture;
    uint64_t aperture_size;
    model_set_event_fn set_event;
    void *set_event_data;
    model_memory_fault_fn memory_fault; /* NULL: libhsakmt without 0.5 */
    void *memory_fault_data;
    uint64_t va_low; /* lowest GPU virtual address ever allocated (0: none yet) */
    pthread_mutex_t lock;
    struct model_alloc *allocs;
    struct model_queue *queues;
    unsigned next_queue_id;
};

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = -2;
/* libhsakmt creates the models in node order, skipping the CPU node 0. */
static atomic_uint gpus_created;

static void model_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void model_log(const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    pthread_mutex_lock(&log_lock);
    if (log_fd == -2) {
        const char *path = getenv("RMCP_MODEL_LOG");
        log_fd = path ? open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : -1;
    }
    if (log_fd >= 0 && write(log_fd, line, (size_t)n) != n) {
        /* A short write to a regular file: nothing useful to do. */
    }
    pthread_mutex_unlock(&log_lock);
}

/* The GPU's view of GPU virtual address va. */
static void *gpu_addr(struct model_gpu *gpu, uint64_t va)
{
    return gpu->aperture + va;
}

static struct model_gpu *model_create(void)
{
    struct model_gpu *gpu = calloc(1, sizeof *gpu);
    if (!gpu)
        return NULL;
    gpu->node = atomic_fetch_add(&gpus_created, 1) + 1;
    pthread_mutex_init(&gpu->lock, NULL);
    return gpu;
}

static void model_destroy(struct model_gpu *gpu)
{
    if (!gpu)
        return;
    while (gpu->allocs) {
        struct model_alloc *a = gpu->allocs;
        gpu->allocs = a->next;
        free(a);
    }
    pthread_mutex_destroy(&gpu->lock);
    free(gpu);
}

static void model_set_global_aperture(struct model_gpu *gpu, void *base, uint64_t size)
{
    gpu->aperture = base;
    gpu->aperture_size = size;
    model_log("gpu node=%u aperture=%p size=0x%llx", gpu->node, base, (unsigned long long)size);
}

static void model_alloced_memory(struct model_gpu *gpu, void *va, uint64_t size, uint32_t flags)
{
    struct model_alloc *a = malloc(sizeof *a);
    if (a) {
        a->va = (uint64_t)(uintptr_t)va;
        a->size = size;
        a->flags = flags;
        pthread_mutex_lock(&gpu->lock);
        a->next = gpu->allocs;
        gpu->allocs = a;
        if (!gpu->va_low || a->va < gpu->va_low)
            gpu->va_low = a->va;
        pthread_mutex_unlock(&gpu->lock);
    }
    model_log("alloc node=%u va=%p size=0x%llx flags=0x%x", gpu->node, va,
              (unsigned long long)size, flags);
}

static void model_freed_memory(struct model_gpu *gpu, void *va, uint64_t size)
{
    uint64_t v = (uint64_t)(uintptr_t)va;
    uint32_t flags = 0;
    int found = 0;
    pthread_mutex_lock(&gpu->lock);
    for (struct model_alloc **pp = &gpu->allocs; *pp; pp = &(*pp)->next) {
        if ((*pp)->va == v) {
            struct model_alloc *a = *pp;
            flags = a->flags;
            found = 1;
            *pp = a->next;
            free(a);
            break;
        }
    }
    pthread_mutex_unlock(&gpu->lock);
    if (found)
        model_log("free node=%u va=%p size=0x%llx flags=0x%x", gpu->node, va,
                  (unsigned long long)size, flags);
    else
        model_log("free node=%u va=%p size=0x%llx flags=unknown", gpu->node, va,
                  (unsigned long long)size);
}

static void model_set_notify_event(struct model_gpu *gpu, void (*cb)(void *), void *data)
{
    (void)gpu, (void)cb, (void)data; /* deprecated in the interface; unused */
}

static void model_set_wait_event(struct model_gpu *gpu,
                                 void (*cb)(void *, uint64_t, uint64_t), void *data)
{
    (void)gpu, (void)cb, (void)data; /* only a model that blocks on events needs it */
}

static void model_set_set_event(struct model_gpu *gpu, model_set_event_fn fn, void *data)
{
    gpu->set_event = fn;
    gpu->set_event_data = data;
}

static void model_set_memory_fault(struct model_gpu *gpu, model_memory_fault_fn fn, void *data)
{
    gpu->memory_fault = fn;
    gpu->memory_fault_data = data;
}

/* Whether [va, va + size) lies inside one live allocation. */
static int covered(struct model_gpu *gpu, uint64_t va, uint64_t size)
{
    int hit = 0;
    pthread_mutex_lock(&gpu->lock);
    for (struct model_alloc *a = gpu->allocs; a && !hit; a = a->next)
        hit = va >= a->va && va - a->va < a->size && size <= a->size - (va - a->va);
    pthread_mutex_unlock(&gpu->lock);
    return hit;
}

/* Where the implicit arguments begin in a kernel-argument segment of `size`
 * bytes (code object v5: hidden_block_count_x/y/z as uint32 then
 * hidden_group_size_x/y/z as uint16, at an 8-byte aligned offset), or `size`. */
static uint32_t explicit_bytes(const char *pkt, const char *args, uint32_t size)
{
    uint16_t wg[3];
    uint32_t grid[3], want[6];
    memcpy(wg, pkt + AQL_DISPATCH_WORKGROUP_OFF, sizeof wg);
    memcpy(grid, pkt + AQL_DISPATCH_GRID_OFF, sizeof grid);
    for (int i = 0; i < 3; i++) {
        if (!wg[i])
            return size;
        want[i] = (grid[i] + wg[i] - 1) / wg[i];
        want[3 + i] = wg[i];
    }
    for (uint32_t off = 0; off + 18 <= size; off += 8) {
        uint32_t counts[3];
        uint16_t groups[3];
        memcpy(counts, args + off, sizeof counts);
        memcpy(groups, args + off + 12, sizeof groups);
        if (counts[0] == want[0] && counts[1] == want[1] && counts[2] == want[2] &&
            groups[0] == want[3] && groups[1] == want[4] && groups[2] == want[5])
            return off;
    }
    return size;
}

/* The first word of a dispatch's kernel arguments that points into the
 * aperture where no live allocation is, or 0. */
static uint64_t uncovered_argument(struct model_gpu *gpu, const char *pkt)
{
    uint64_t kd, kernarg;
    memcpy(&kd, pkt + AQL_DISPATCH_KERNEL_OBJECT_OFF, sizeof kd);
    memcpy(&kernarg, pkt + AQL_DISPATCH_KERNARG_OFF, sizeof kernarg);
    if (!kd || !kernarg || !covered(gpu, kd, KERNEL_DESCRIPTOR_BYTES))
        return 0;
    uint32_t size;
    memcpy(&size, (char *)gpu_addr(gpu, kd) + KERNEL_DESCRIPTOR_KERNARG_SIZE, sizeof size);
    if (!size || !covered(gpu, kernarg, size))
        return 0;
    pthread_mutex_lock(&gpu->lock);
    uint64_t low = gpu->va_low;
    pthread_mutex_unlock(&gpu->lock);
    const char *args = gpu_addr(gpu, kernarg);
    size = explicit_bytes(pkt, args, size);
    for (uint32_t off = 0; off + 8 <= size; off += 8) {
        uint64_t v;
        memcpy(&v, args + off, sizeof v);
        if (low && v >= low && v < gpu->aperture_size && !covered(gpu, v, 1))
            return v;
    }
    return 0;
}

struct pending_fault {
    struct model_gpu *gpu;
    uint64_t va;
};

static void *deliver_fault(void *arg)
{
    struct pending_fault *f = arg;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    model_log("fault_raised node=%u va=0x%llx monotonic_ns=%llu", f->gpu->node,
              (unsigned long long)f->va,
              (unsigned long long)now.tv_sec * 1000000000ull + (unsigned long long)now.tv_nsec);
    f->gpu->memory_fault(f->gpu->memory_fault_data, f->va, MODEL_FAULT_NOT_PRESENT);
    free(f);
    return NULL;
}

/* Raises the fault from a thread of its own: libhsakmt takes its ioctl lock
 * in the callback, and destroy_queue joins the queue thread under it. */
static void raise_fault(struct model_gpu *gpu, uint64_t va)
{
    struct pending_fault *f = malloc(sizeof *f);
    pthread_t t;
    pthread_attr_t attr;
    if (!f)
        return;
    f->gpu = gpu;
    f->va = va;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, deliver_fault, f) != 0) {
        model_log("fault node=%u va=0x%llx undelivered", gpu->node, (unsigned long long)va);
        free(f);
    }
    pthread_attr_destroy(&attr);
}

static void pause_us(long us)
{
    struct timespec ts = {0, us * 1000L};
    nanosleep(&ts, NULL);
}

/* What a packet processor does when a packet completes: decrement the
 * completion signal and, for a signal with an event, set that event. */
static void complete_signal(struct model_gpu *gpu, uint64_t handle)
{
    if (!handle)
        return;
    char *sig = gpu_addr(gpu, handle);
    atomic_fetch_sub_explicit((_Atomic int64_t *)(sig + AMD_SIGNAL_VALUE_OFF), 1,
                              memory_order_acq_rel);
    uint64_t mailbox = atomic_load_explicit((_Atomic uint64_t *)(sig + AMD_SIGNAL_MAILBOX_OFF),
                                            memory_order_acquire);
    uint32_t event_id = atomic_load_explicit((_Atomic uint32_t *)(sig + AMD_SIGNAL_EVENT_ID_OFF),
                                             memory_order_acquire);
    if (mailbox && event_id && gpu->set_event) {
        model_log("event node=%u id=%u", gpu->node, event_id);
        gpu->set_event(gpu->set_event_data, event_id);
    }
}

/* A barrier-AND packet completes once all its dependency signals are 0. */
static int barrier_ready(struct model_gpu *gpu, const char *pkt)
{
    for (unsigned i = 0; i < AQL_BARRIER_DEPS; i++) {
        uint64_t dep;
        memcpy(&dep, pkt + AQL_BARRIER_DEP_OFF + 8 * i, sizeof dep);
        if (dep && atomic_load_explicit(
                       (_Atomic int64_t *)((char *)gpu_addr(gpu, dep) + AMD_SIGNAL_VALUE_OFF),
                       memory_order_acquire) != 0)
            return 0;
    }
    return 1;
}

static void *queue_thread(void *arg)
{
    struct model_queue *q = arg;
    struct model_gpu *gpu = q->gpu;
    _Atomic uint64_t *wptr = gpu_addr(gpu, q->desc.write_ptr);
    _Atomic uint64_t *rptr = gpu_addr(gpu, q->desc.read_ptr);
    char *ring = gpu_addr(gpu, q->desc.ring_base);
    uint64_t slots = q->desc.ring_bytes / AQL_PACKET_BYTES;
    long idle_us = 50;

    while (!atomic_load_explicit(&q->stop, memory_order_acquire)) {
        if (q->faulted) {
            pause_us(2000);
            continue;
        }
        uint64_t r = atomic_load_explicit(rptr, memory_order_acquire);
        uint64_t w = atomic_load_explicit(wptr, memory_order_acquire);
        int progressed = 0;
        while (r < w && !atomic_load_explicit(&q->stop, memory_order_acquire)) {
            char *pkt = ring + (r % slots) * AQL_PACKET_BYTES;
            _Atomic uint16_t *header = (_Atomic uint16_t *)pkt;
            unsigned type = atomic_load_explicit(header, memory_order_acquire) & 0xffu;
            if (type == AQL_TYPE_INVALID)
                break; /* reserved but not yet published by the producer */
            if (type == AQL_TYPE_BARRIER_AND && !barrier_ready(gpu, pkt))
                break;
            uint64_t signal;
            memcpy(&signal, pkt + AQL_COMPLETION_SIGNAL_OFF, sizeof signal);
            if (type == AQL_TYPE_VENDOR_SPECIFIC) {
                uint16_t format;
                memcpy(&format, pkt + 2, sizeof format);
                model_log("packet node=%u queue=%u type=%u vendor_format=%u", gpu->node, q->id,
                          type, format);
            } else {
                model_log("packet node=%u queue=%u type=%u", gpu->node, q->id, type);
            }
            uint64_t bad = type == AQL_TYPE_KERNEL_DISPATCH && gpu->memory_fault
                               ? uncovered_argument(gpu, pkt)
                               : 0;
            if (bad) {
                uint64_t kd;
                memcpy(&kd, pkt + AQL_DISPATCH_KERNEL_OBJECT_OFF, sizeof kd);
                model_log("fault node=%u queue=%u va=0x%llx reason=not_present kernel_object=0x%llx",
                          gpu->node, q->id, (unsigned long long)bad, (unsigned long long)kd);
                q->faulted = 1;
                raise_fault(gpu, bad);
                break;
            }
            complete_signal(gpu, signal);
            atomic_store_explicit(header, (uint16_t)AQL_TYPE_INVALID, memory_order_release);
            r++;
            atomic_store_explicit(rptr, r, memory_order_release);
            q->retired++;
            progressed = 1;
        }
        if (progressed)
            idle_us = 50;
        else if (idle_us < 2000)
            idle_us *= 2;
        pause_us(idle_us);
    }
    return NULL;
}

static struct model_queue *model_register_queue(struct model_gpu *gpu, struct model_queue_desc *d)
{
    struct model_queue *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->gpu = gpu;
    q->desc = *d;
    pthread_mutex_lock(&gpu->lock);
    q->id = gpu->next_queue_id++;
    q->next = gpu->queues;
    gpu->queues = q;
    pthread_mutex_unlock(&gpu->lock);
    model_log("queue node=%u queue=%u type=%u ring=0x%llx bytes=0x%x", gpu->node, q->id,
              d->queue_type, (unsigned long long)d->ring_base, d->ring_bytes);
    if (d->queue_type == KFD_QUEUE_COMPUTE_AQL && d->ring_bytes >= AQL_PACKET_BYTES) {
        if (pthread_create(&q->thread, NULL, queue_thread, q) != 0) {
            model_log("queue node=%u queue=%u thread_failed", gpu->node, q->id);
            q->thread = 0;
        }
    }
    return q;
}

static void model_destroy_queue(struct model_gpu *gpu, struct model_queue *q)
{
    if (!q)
        return;
    atomic_store_explicit(&q->stop, 1, memory_order_release);
    if (q->thread)
        pthread_join(q->thread, NULL);
    pthread_mutex_lock(&gpu->lock);
    for (struct model_queue **pp = &gpu->queues; *pp; pp = &(*pp)->next) {
        if (*pp == q) {
            *pp = q->next;
            break;
        }
    }
    pthread_mutex_unlock(&gpu->lock);
    model_log("queue_destroyed node=%u queue=%u retired=%lu", gpu->node, q->id, q->retired);
    free(q);
}

static const struct model_functions_v0_5 functions = {
    .version_major = MODEL_IFACE_MAJOR,
    .version_minor = MODEL_IFACE_MINOR,
    .create = model_create,
    .destroy = model_destroy,
    .set_global_aperture = model_set_global_aperture,
    .alloced_memory = model_alloced_memory,
    .freed_memory = model_freed_memory,
    .set_notify_event = model_set_notify_event,
    .set_wait_event = model_set_wait_event,
    .register_queue = model_register_queue,
    .set_set_event = model_set_set_event,
    .destroy_queue = model_destroy_queue,
    .set_memory_fault = model_set_memory_fault,
};

const struct model_functions_v0_5 *get_hsakmt_model_functions(void);
const struct model_functions_v0_5 *get_hsakmt_model_functions(void)
{
    return &functions;
}
