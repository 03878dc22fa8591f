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
 * packet is retired exactly like a barrier. SDMA queues are logged and never
 * served (tests run with HSA_ENABLE_SDMA=0, so copies use blit kernels).
 *
 * Log lines (all numbers hex unless named otherwise):
 *   gpu node=N aperture=0x.. size=0x..
 *   alloc node=N va=0x.. size=0x.. flags=0x..
 *   free node=N va=0x.. size=0x.. flags=0x..     (flags remembered from alloc)
 *   queue node=N type=T ring=0x.. bytes=0x..
 *   packet node=N queue=Q type=T [vendor_format=F]
 *   event node=N id=I                            (a completion signal's event set)
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

static const struct model_functions_v0_4 functions = {
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
};

const struct model_functions_v0_4 *get_hsakmt_model_functions(void);
const struct model_functions_v0_4 *get_hsakmt_model_functions(void)
{
    return &functions;
}
