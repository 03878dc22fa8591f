/* Calls every allocation entry point of the README's "What rmcp changes"
 * table on the real HIP/ROCr 7.2.4, running on the model GPU
 * (tests/model/model_gpu.c), and prints what each call returned.
 * tests/model_gpu.rs runs it with and without librmcp.so and joins its output
 * with the model's log to get the KFD flags each allocation reached the
 * driver with.
 *
 * Built as an executable, as a module (-DPROBE_MODULE: probe_main, opened by
 * tests/real/host.c with dlopen(RTLD_LOCAL)), or linked to librmcp directly.
 *
 * Each call is bracketed by "mark" lines written into the model log
 * (RMCP_MODEL_LOG, O_APPEND, one write each), so the test knows which KFD
 * allocations happened during which call. Output lines (stdout):
 *   device dev=D arch=gfx1030 props_rc=0
 *   call label=L dev=D entry=E rc=R ptr=0x.. size=N
 *   free label=L rc=R
 *   memcpy label=L rc=R
 *   exported name=hipExtHostAlloc value=0|1
 *   describe label=L found=0|1 rc=R text=...
 *   stats entry=E calls=N rewritten=M        (when librmcp is in the process)
 *   count entry=E calls=N                    (the probe's own calls per entry point)
 *
 * PROBE_WHAT=all (default) or hostregister (hipHostRegister alone).
 * PROBE_RCCL_LIB: path of librccl.so.1 (rccl_allocations).
 * HIP_VISIBLE_DEVICES etc. are left to the caller. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hip/hip_runtime_api.h>
#include <hsa/hsa.h>
#include <hsa/hsa_ext_amd.h>

/* hipMemAllocHost and hipMallocHost are deprecated, and exactly what is tested. */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

#define MAX_RECORDS 256

struct record {
    char label[96];
    void *ptr;
    size_t size;
    /* 0 hipFree, 1 hipHostFree, 2 hipFreeHost, 3 hsa pool free, 4 hipFreeAsync,
     * 5 hipHostUnregister */
    int kind;
};

static struct record records[MAX_RECORDS];
static int nrecords;
static int model_log_fd = -1;

/* Calls per entry point name, as rmcp counts them. */
static const char *const entries[] = {
    "hipMalloc", "hipFree", "hipHostMalloc", "hipHostAlloc", "hipExtHostAlloc",
    "hipMallocHost", "hipMemAllocHost", "hipHostFree", "hipFreeHost",
    "hipExtMallocWithFlags", "hipMallocManaged", "hipHostRegister", "hipHostUnregister",
    "hipMallocAsync", "hipFreeAsync", "hipGetProcAddress", "hsa_amd_memory_pool_allocate",
    "hsa_amd_memory_pool_free",
};
#define NENTRIES (sizeof entries / sizeof entries[0])
static unsigned long counts[NENTRIES];

static void count(const char *entry)
{
    for (size_t i = 0; i < NENTRIES; i++)
        if (!strcmp(entries[i], entry))
            counts[i]++;
}

static void mark(const char *label, const char *phase)
{
    if (model_log_fd < 0)
        return;
    char line[160];
    int n = snprintf(line, sizeof line, "mark label=%s phase=%s\n", label, phase);
    if (n > 0 && write(model_log_fd, line, (size_t)n) != n) {
        /* the test notices missing marks */
    }
}

/* Size of the k-th allocation: distinct, page multiples, above the sizes the
 * runtime sub-allocates, so each call gets KFD allocations of its own. */
static size_t next_size(void)
{
    static size_t k;
    return (size_t)(1u << 20) + 4096 * ++k;
}

static void record(const char *label, const char *entry, int dev, int rc, void *p, size_t size,
                   int kind)
{
    printf("call label=%s dev=%d entry=%s rc=%d ptr=%p size=%zu\n", label, dev, entry, rc, p,
           size);
    if (rc == 0 && p && nrecords < MAX_RECORDS) {
        struct record *r = &records[nrecords++];
        snprintf(r->label, sizeof r->label, "%s", label);
        r->ptr = p;
        r->size = size;
        r->kind = kind;
    }
}

#define HIP_ALLOC(label_, entry_, dev_, kind_, call_)                       \
    do {                                                                    \
        void *p = NULL;                                                     \
        size_t size = next_size();                                          \
        mark(label_, "begin");                                              \
        count(entry_);                                                      \
        int rc_ = (int)(call_);                                             \
        mark(label_, "end");                                                \
        record(label_, entry_, dev_, rc_, p, size, kind_);                  \
    } while (0)

struct pool_ctx {
    hsa_agent_t agent;
    int agent_index;
    char agent_name[64];
    int pool_index;
};

static hsa_status_t visit_pool(hsa_amd_memory_pool_t pool, void *data)
{
    struct pool_ctx *ctx = data;
    int index = ctx->pool_index++;
    hsa_amd_segment_t segment;
    uint32_t flags = 0;
    bool alloc_allowed = false;
    if (hsa_amd_memory_pool_get_info(pool, HSA_AMD_MEMORY_POOL_INFO_SEGMENT, &segment) != 0 ||
        segment != HSA_AMD_SEGMENT_GLOBAL)
        return HSA_STATUS_SUCCESS;
    hsa_amd_memory_pool_get_info(pool, HSA_AMD_MEMORY_POOL_INFO_GLOBAL_FLAGS, &flags);
    hsa_amd_memory_pool_get_info(pool, HSA_AMD_MEMORY_POOL_INFO_RUNTIME_ALLOC_ALLOWED,
                                 &alloc_allowed);
    if (!alloc_allowed)
        return HSA_STATUS_SUCCESS;
    const char *kind = (flags & HSA_AMD_MEMORY_POOL_GLOBAL_FLAG_KERNARG_INIT) ? "kernarg"
                       : (flags & HSA_AMD_MEMORY_POOL_GLOBAL_FLAG_EXTENDED_SCOPE_FINE_GRAINED)
                           ? "extfine"
                       : (flags & HSA_AMD_MEMORY_POOL_GLOBAL_FLAG_FINE_GRAINED) ? "fine"
                       : (flags & HSA_AMD_MEMORY_POOL_GLOBAL_FLAG_COARSE_GRAINED) ? "coarse"
                                                                                 : "other";
    char label[96];
    snprintf(label, sizeof label, "hsa_pool(%s,%s)", ctx->agent_name, kind);
    void *p = NULL;
    size_t size = next_size();
    mark(label, "begin");
    count("hsa_amd_memory_pool_allocate");
    int rc = (int)hsa_amd_memory_pool_allocate(pool, size, 0, &p);
    mark(label, "end");
    printf("pool agent=%d name=%s pool=%d flags=0x%x\n", ctx->agent_index, ctx->agent_name,
           index, flags);
    record(label, "hsa_amd_memory_pool_allocate", -1, rc, p, size, 3);
    return HSA_STATUS_SUCCESS;
}

static hsa_status_t visit_agent(hsa_agent_t agent, void *data)
{
    int *n = data;
    struct pool_ctx ctx = {.agent = agent, .agent_index = (*n)++};
    hsa_device_type_t type;
    hsa_agent_get_info(agent, HSA_AGENT_INFO_DEVICE, &type);
    char name[64] = {0};
    hsa_agent_get_info(agent, HSA_AGENT_INFO_NAME, name);
    /* CPU agents are named after the host CPU, which differs between machines. */
    snprintf(ctx.agent_name, sizeof ctx.agent_name, "%s",
             type == HSA_DEVICE_TYPE_CPU ? "cpu" : name);
    hsa_amd_agent_iterate_memory_pools(agent, visit_pool, &ctx);
    return HSA_STATUS_SUCCESS;
}

/* hipHostRegister: with a node that reports SVM support (as the topologies
 * do), ROCr locks the range through the SVM ioctl, which model mode accepts
 * without telling the model, so no KFD allocation appears; without SVM
 * support it takes the userptr path, which model mode aborts on
 * (PROBE_WHAT=hostregister runs only this, for that case). */
static void host_register(void)
{
    size_t size = next_size();
    void *page = aligned_alloc(4096, size);
    memset(page, 0, size);
    mark("hipHostRegister(Default)", "begin");
    count("hipHostRegister");
    int rc = (int)hipHostRegister(page, size, hipHostRegisterDefault);
    mark("hipHostRegister(Default)", "end");
    record("hipHostRegister(Default)", "hipHostRegister", 0, rc, page, size, 5);
    if (rc != 0)
        free(page);
}

static void device_allocations(int dev, int ndev)
{
    char l[96];
#define L(fmt) (snprintf(l, sizeof l, fmt "%s", ndev > 1 ? (dev ? "@dev1" : "@dev0") : ""), l)
    HIP_ALLOC(L("hipMalloc"), "hipMalloc", dev, 0, hipMalloc(&p, size));
    for (unsigned f = 0; f <= 4; f++) {
        size_t sz = f == 2 ? 8 : 0; /* SignalMemory must be 8 bytes */
        char base[64];
        static const char *const names[] = {"Default", "Finegrained", "SignalMemory",
                                            "Uncached", "Contiguous"};
        snprintf(base, sizeof base, "hipExtMallocWithFlags(%s)", names[f]);
        snprintf(l, sizeof l, "%s%s", base, ndev > 1 ? (dev ? "@dev1" : "@dev0") : "");
        void *p = NULL;
        size_t size = sz ? sz : next_size();
        mark(l, "begin");
        count("hipExtMallocWithFlags");
        int rc = (int)hipExtMallocWithFlags(&p, size, f);
        mark(l, "end");
        record(l, "hipExtMallocWithFlags", dev, rc, p, size, 0);
    }
    HIP_ALLOC(L("hipMallocManaged(AttachGlobal)"), "hipMallocManaged", dev, 0,
              hipMallocManaged(&p, size, hipMemAttachGlobal));
    {
        void *p = NULL;
        size_t size = next_size();
        L("hipMallocAsync");
        mark(l, "begin");
        count("hipMallocAsync");
        int rc = (int)hipMallocAsync(&p, size, NULL);
        int sync = (int)hipStreamSynchronize(NULL);
        mark(l, "end");
        record(l, "hipMallocAsync", dev, rc, p, size, 4);
        printf("sync label=%s rc=%d\n", l, sync);
    }
#undef L
}

static void host_allocations(int dev)
{
    static const struct {
        const char *label;
        unsigned flags;
    } hm[] = {
        {"hipHostMalloc(0)", 0},
        {"hipHostMalloc(Portable)", hipHostMallocPortable},
        {"hipHostMalloc(Mapped)", hipHostMallocMapped},
        {"hipHostMalloc(Coherent)", hipHostMallocCoherent},
        {"hipHostMalloc(NonCoherent)", hipHostMallocNonCoherent},
        {"hipHostMalloc(WriteCombined)", hipHostMallocWriteCombined},
        {"hipHostMalloc(NumaUser)", hipHostMallocNumaUser},
        {"hipHostMalloc(Mapped|NonCoherent)", hipHostMallocMapped | hipHostMallocNonCoherent},
        {"hipHostMalloc(Coherent|NonCoherent)", hipHostMallocCoherent | hipHostMallocNonCoherent},
    };
    for (size_t i = 0; i < sizeof hm / sizeof hm[0]; i++)
        HIP_ALLOC(hm[i].label, "hipHostMalloc", dev, 1, hipHostMalloc(&p, size, hm[i].flags));
    HIP_ALLOC("hipHostAlloc(0)", "hipHostAlloc", dev, 1, hipHostAlloc(&p, size, 0));
    HIP_ALLOC("hipHostAlloc(Mapped)", "hipHostAlloc", dev, 1,
              hipHostAlloc(&p, size, hipHostMallocMapped));
    HIP_ALLOC("hipHostAlloc(Portable)", "hipHostAlloc", dev, 1,
              hipHostAlloc(&p, size, hipHostMallocPortable));
    HIP_ALLOC("hipMemAllocHost", "hipMemAllocHost", dev, 1, hipMemAllocHost(&p, size));
    HIP_ALLOC("hipMallocHost", "hipMallocHost", dev, 2, hipMallocHost(&p, size));

    /* hipExtHostAlloc: exported by libamdhip64.so.7? (dlsym on the runtime's
     * own handle, so a preloaded rmcp definition does not answer.) */
    void *hip = dlopen("libamdhip64.so.7", RTLD_NOW | RTLD_NOLOAD);
    printf("exported name=hipExtHostAlloc value=%d\n",
           hip && dlsym(hip, "hipExtHostAlloc") ? 1 : 0);
    /* ... and reachable through hipGetProcAddress (the dispatch table)? */
    void *fn = NULL;
    hipDriverProcAddressQueryResult status = HIP_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    count("hipGetProcAddress");
    int rc = (int)hipGetProcAddress("hipExtHostAlloc", &fn,
                                    HIP_VERSION_MAJOR * 100 + HIP_VERSION_MINOR, 0, &status);
    printf("procaddress name=hipExtHostAlloc rc=%d status=%d found=%d\n", rc, (int)status,
           fn != NULL);
    if (fn) {
        typedef hipError_t (*ext_host_alloc_t)(void **, size_t, unsigned int);
        HIP_ALLOC("hipExtHostAlloc(0)", "hipExtHostAlloc", dev, 1,
                  ((ext_host_alloc_t)fn)(&p, size, 0));
    }
    if (hip)
        dlclose(hip);
}

/* RCCL's own allocations, made from inside a library named like RCCL
 * (tests/programs/rocmlike_lib.c built as librccl.so.1, PROBE_RCCL_LIB): its
 * host-side flags (hipHostMalloc(Mapped)) and cross-GPU flags
 * (hipExtMallocWithFlags(Finegrained)). rmcp must forward both as asked. */
static void rccl_allocations(int dev)
{
    const char *path = getenv("PROBE_RCCL_LIB");
    void *lib = path ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : NULL;
    void *sym = lib ? dlsym(lib, "rocmlike_hip_alloc") : NULL;
    printf("rccl lib=%s loaded=%d\n", path ? path : "(unset)", sym != NULL);
    if (!sym)
        return;
    int (*fn)(const char *, size_t, unsigned, void **);
    memcpy(&fn, &sym, sizeof fn);
    HIP_ALLOC("librccl:hipHostMalloc(Mapped)", "hipHostMalloc", dev, 1,
              fn("hipHostMalloc", size, hipHostMallocMapped, &p));
    HIP_ALLOC("librccl:hipExtMallocWithFlags(Finegrained)", "hipExtMallocWithFlags", dev, 0,
              fn("hipExtMallocWithFlags", size, hipDeviceMallocFinegrained, &p));
}

/* hipMemcpy both ways between a hipHostMalloc(0) buffer (the PyTorch pinned
 * memory case, rewritten on targets) and device memory. With SDMA off the
 * runtime copies with blit kernels, whose packets the model retires; no data
 * moves, so only return codes are compared. */
static void copies(void)
{
    void *h = NULL, *d = NULL;
    size_t hsize = next_size(), dsize = next_size();
    mark("hipMemcpy-host:hipHostMalloc(0)", "begin");
    count("hipHostMalloc");
    int rh = (int)hipHostMalloc(&h, hsize, 0);
    mark("hipMemcpy-host:hipHostMalloc(0)", "end");
    record("hipMemcpy-host:hipHostMalloc(0)", "hipHostMalloc", 0, rh, h, hsize, 1);
    mark("hipMemcpy-device:hipMalloc", "begin");
    count("hipMalloc");
    int rd = (int)hipMalloc(&d, dsize);
    mark("hipMemcpy-device:hipMalloc", "end");
    record("hipMemcpy-device:hipMalloc", "hipMalloc", 0, rd, d, dsize, 0);
    if (!h || !d)
        return;
    size_t size = (size_t)1 << 20;
    memset(h, 0x5a, size);
    mark("hipMemcpy(HostToDevice)", "begin");
    int rc = (int)hipMemcpy(d, h, size, hipMemcpyHostToDevice);
    mark("hipMemcpy(HostToDevice)", "end");
    printf("memcpy label=hipMemcpy(HostToDevice) rc=%d\n", rc);
    mark("hipMemcpy(DeviceToHost)", "begin");
    rc = (int)hipMemcpy(h, d, size, hipMemcpyDeviceToHost);
    mark("hipMemcpy(DeviceToHost)", "end");
    printf("memcpy label=hipMemcpy(DeviceToHost) rc=%d\n", rc);
    printf("memcpy label=hipDeviceSynchronize rc=%d\n", (int)hipDeviceSynchronize());
}

typedef int (*describe_fn)(const void *, char *, size_t, size_t *);
typedef int (*stats_fn)(const char *, uint64_t *, uint64_t *);

static void describe_all(void)
{
    describe_fn describe = (describe_fn)dlsym(RTLD_DEFAULT, "rmcp_describe_address");
    printf("rmcp present=%d\n", describe != NULL);
    if (!describe)
        return;
    for (int i = 0; i < nrecords; i++) {
        char text[1024];
        size_t needed = 0;
        /* An address inside: the description must name the allocation. */
        size_t off = records[i].size > 16 ? 16 : records[i].size / 2;
        int rc = describe((char *)records[i].ptr + off, text, sizeof text, &needed);
        for (char *c = text; rc == 0 && *c; c++)
            if (*c == '\n')
                *c = ' ';
        printf("describe label=%s ptr=%p off=%zu rc=%d text=%s\n", records[i].label,
               records[i].ptr, off, rc, rc == 0 ? text : "");
    }
}

static void stats_all(void)
{
    stats_fn stats = (stats_fn)dlsym(RTLD_DEFAULT, "rmcp_stats_get");
    for (size_t i = 0; i < NENTRIES; i++) {
        printf("count entry=%s calls=%lu\n", entries[i], counts[i]);
        uint64_t calls = 0, rewritten = 0;
        if (stats && stats(entries[i], &calls, &rewritten) == 0)
            printf("stats entry=%s calls=%llu rewritten=%llu\n", entries[i],
                   (unsigned long long)calls, (unsigned long long)rewritten);
    }
}

static void free_all(void)
{
    for (int i = 0; i < nrecords; i++) {
        struct record *r = &records[i];
        int rc;
        char label[128];
        snprintf(label, sizeof label, "free:%s", r->label);
        mark(label, "begin");
        switch (r->kind) {
        case 0: count("hipFree"); rc = (int)hipFree(r->ptr); break;
        case 1: count("hipHostFree"); rc = (int)hipHostFree(r->ptr); break;
        case 2: count("hipFreeHost"); rc = (int)hipFreeHost(r->ptr); break;
        case 3: count("hsa_amd_memory_pool_free"); rc = (int)hsa_amd_memory_pool_free(r->ptr); break;
        case 5:
            count("hipHostUnregister");
            rc = (int)hipHostUnregister(r->ptr);
            free(r->ptr);
            break;
        default:
            count("hipFreeAsync");
            rc = (int)hipFreeAsync(r->ptr, NULL);
            if (rc == 0)
                rc = (int)hipStreamSynchronize(NULL);
            break;
        }
        mark(label, "end");
        printf("free label=%s rc=%d\n", r->label, rc);
    }
}

#ifdef PROBE_MODULE
int probe_main(void)
#else
int main(void)
#endif
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *log = getenv("RMCP_MODEL_LOG");
    if (log)
        model_log_fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    const char *what = getenv("PROBE_WHAT");

    int ndev = -1;
    int rc = (int)hipGetDeviceCount(&ndev);
    printf("devices rc=%d count=%d\n", rc, ndev);
    if (rc != 0 || ndev < 1)
        return 3;
    for (int dev = 0; dev < ndev; dev++) {
        hipDeviceProp_t props;
        memset(&props, 0, sizeof props);
        int prc = (int)hipGetDeviceProperties(&props, dev);
        printf("device dev=%d arch=%s props_rc=%d\n", dev, props.gcnArchName, prc);
        /* Creates the device's context and queue before the first mark, so
         * the runtime's lazy setup is not attributed to a probe call. */
        hipSetDevice(dev);
        hipEvent_t ev = NULL;
        int erc = (int)hipEventCreate(&ev);
        int rrc = erc ? erc : (int)hipEventRecord(ev, NULL);
        int src = rrc ? rrc : (int)hipEventSynchronize(ev);
        if (ev)
            hipEventDestroy(ev);
        printf("warmup dev=%d rc=%d,%d,%d,%d\n", dev, erc, rrc, src,
               (int)hipDeviceSynchronize());
    }
    hipSetDevice(0);
    mark("warmup", "done");

    if (what && !strcmp(what, "hostregister")) {
        host_register();
        free_all();
        printf("probe: done\n");
        return 0;
    }

    host_allocations(0);
    rccl_allocations(0);
    host_register();
    for (int dev = 0; dev < ndev; dev++) {
        hipSetDevice(dev);
        device_allocations(dev, ndev);
    }
    hipSetDevice(0);

    int nagents = 0;
    printf("hsa_init rc=%d\n", (int)hsa_init());
    hsa_iterate_agents(visit_agent, &nagents);

    copies();
    describe_all();
    free_all();
    stats_all();
    printf("hsa_shut_down rc=%d\n", (int)hsa_shut_down());
    printf("probe: done\n");
    return 0;
}
