/*
 * fake_rocm.h - the few HIP and HSA declarations rmcp's test programs need. There are no
 * ROCm headers on the test machine; these match the x86-64 ABI described in
 * /work/shared/FACTS.md (and the doubles in tests/double/). Usable from C99 and C11.
 */
#ifndef RMCP_TEST_FAKE_ROCM_H
#define RMCP_TEST_FAKE_ROCM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- HIP ---------------------------------------------------------------- */
typedef int hipError_t;
#define hipSuccess 0
#define hipErrorInvalidValue 1
#define hipErrorNoDevice 100
#define hipErrorInvalidDevice 101
#define hipErrorNotFound 500

#define hipHostMallocDefault 0x0u
#define hipHostMallocPortable 0x1u
#define hipHostMallocMapped 0x2u
#define hipHostMallocWriteCombined 0x4u
#define hipHostMallocNumaUser 0x20000000u
#define hipHostMallocCoherent 0x40000000u
#define hipHostMallocNonCoherent 0x80000000u

#define HIP_PROPS_R0000_SIZE 792
#define HIP_PROPS_R0000_ARCH 396
#define HIP_PROPS_R0000_INTEGRATED 652
#define HIP_PROPS_R0600_SIZE 1472
#define HIP_PROPS_R0600_ARCH 1160
#define HIP_PROPS_R0600_INTEGRATED 396

hipError_t hipMalloc(void **ptr, size_t size);
hipError_t hipFree(void *ptr);
hipError_t hipHostMalloc(void **ptr, size_t size, unsigned flags);
hipError_t hipHostAlloc(void **ptr, size_t size, unsigned flags);
/* hipExtHostAlloc (ROCm >= 6.3) is looked up at run time: the 5.x runtime lacks it. */
hipError_t hipHostFree(void *ptr);
hipError_t hipFreeHost(void *ptr);
hipError_t hipMallocHost(void **ptr, size_t size);
hipError_t hipMemAllocHost(void **ptr, size_t size);
hipError_t hipExtMallocWithFlags(void **ptr, size_t size, unsigned flags);
hipError_t hipMallocManaged(void **ptr, size_t size, unsigned flags);
hipError_t hipMemAdvise(const void *ptr, size_t size, int advice, int device);
hipError_t hipHostRegister(void *ptr, size_t size, unsigned flags);
hipError_t hipHostUnregister(void *ptr);
hipError_t hipMallocAsync(void **ptr, size_t size, void *stream);
hipError_t hipMallocFromPoolAsync(void **ptr, size_t size, void *pool, void *stream);
hipError_t hipFreeAsync(void *ptr, void *stream);
hipError_t hipGetDevice(int *dev);
hipError_t hipSetDevice(int dev);
hipError_t hipGetDeviceCount(int *count);
hipError_t hipGetDeviceProperties(void *prop, int dev); /* R0000 layout */
hipError_t hipDeviceGetPCIBusId(char *buf, int len, int dev);
hipError_t hipRuntimeGetVersion(int *version);
const char *hipGetErrorString(hipError_t e);
/* Looked up at run time (ROCm >= 6 only): */
typedef hipError_t (*hipGetDevicePropertiesR0600_fn)(void *prop, int dev);
typedef hipError_t (*hipGetProcAddress_fn)(const char *symbol, void **pfn, int hipVersion,
                                           uint64_t flags, int *symbolStatus);
typedef hipError_t (*hip_host_malloc_shaped_fn)(void **ptr, size_t size, unsigned flags);
typedef hipError_t (*hip_malloc_shaped_fn)(void **ptr, size_t size);

/* ---- HSA ---------------------------------------------------------------- */
typedef int hsa_status_t;
#define HSA_STATUS_SUCCESS 0
#define HSA_STATUS_INFO_BREAK 1
#define HSA_STATUS_ERROR 0x1000
#define HSA_STATUS_ERROR_INVALID_ARGUMENT 0x1001
#define HSA_STATUS_ERROR_NOT_INITIALIZED 0x100B

typedef struct { uint64_t handle; } hsa_agent_t;
typedef struct { uint64_t handle; } hsa_amd_memory_pool_t;

#define HSA_AGENT_INFO_NAME 0
#define HSA_AGENT_INFO_DEVICE 17
/* hsa_ext_amd.h (5.2.3, 6.4.3): DRIVER_NODE_ID is 0xA004; 0xA00A is MAX_WAVES_PER_CU */
#define HSA_AMD_AGENT_INFO_DRIVER_NODE_ID 0xA004
#define HSA_AMD_AGENT_INFO_BDFID 0xA006
#define HSA_DEVICE_TYPE_CPU 0
#define HSA_DEVICE_TYPE_GPU 1
#define HSA_AMD_MEMORY_POOL_INFO_SEGMENT 0
#define HSA_AMD_MEMORY_POOL_INFO_GLOBAL_FLAGS 1
#define HSA_AMD_MEMORY_POOL_INFO_SIZE 2
#define HSA_AMD_SEGMENT_GLOBAL 0
#define HSA_AMD_MEMORY_POOL_GLOBAL_FLAG_KERNARG_INIT 1u
#define HSA_AMD_MEMORY_POOL_GLOBAL_FLAG_FINE_GRAINED 2u
#define HSA_AMD_MEMORY_POOL_GLOBAL_FLAG_COARSE_GRAINED 4u
#define HSA_AMD_MEMORY_POOL_GLOBAL_FLAG_EXTENDED_SCOPE_FINE_GRAINED 8u

hsa_status_t hsa_init(void);
hsa_status_t hsa_shut_down(void);
hsa_status_t hsa_iterate_agents(hsa_status_t (*cb)(hsa_agent_t agent, void *data), void *data);
hsa_status_t hsa_agent_get_info(hsa_agent_t agent, int attribute, void *value);
hsa_status_t hsa_amd_agent_iterate_memory_pools(
    hsa_agent_t agent, hsa_status_t (*cb)(hsa_amd_memory_pool_t pool, void *data), void *data);
hsa_status_t hsa_amd_memory_pool_get_info(hsa_amd_memory_pool_t pool, int attribute,
                                          void *value);
hsa_status_t hsa_amd_memory_pool_allocate(hsa_amd_memory_pool_t pool, size_t size,
                                          uint32_t flags, void **ptr);
hsa_status_t hsa_amd_memory_pool_free(void *ptr);
hsa_status_t hsa_status_string(hsa_status_t status, const char **str);

/* System events (ROCr's hsa_amd_event_t uses an anonymous union; named here for C99). */
#define HSA_AMD_GPU_MEMORY_FAULT_EVENT 0
typedef struct {
    uint32_t event_type;
    union {
        struct {
            hsa_agent_t agent;
            uint64_t virtual_address;
            uint32_t fault_reason_mask;
        } memory_fault;
    } u; /* offset 8 */
} hsa_amd_event_t;
typedef hsa_status_t (*hsa_amd_system_event_callback_t)(const hsa_amd_event_t *event,
                                                        void *data);
hsa_status_t hsa_amd_register_system_event_handler(hsa_amd_system_event_callback_t callback,
                                                   void *data);
/* Test-only export of the HSA double; looked up at run time. */
typedef void (*fake_hsa_raise_memory_fault_fn)(uint32_t gpu_index, uint64_t address,
                                               uint32_t reason_mask);

/* ---- pool lookup shared by the driver and the ROCm-like library ---------- */

struct rocm_pool_query {
    int want_cpu;       /* the CPU agent, or ... */
    uint32_t gpu_index; /* ... this GPU ordinal among GPU agents */
    uint32_t seen_gpus;
    hsa_agent_t agent;
    int found_agent;
    const char *kind;
    hsa_amd_memory_pool_t pool;
    int found_pool;
};

static inline hsa_status_t rocm_pool_query_agent_cb(hsa_agent_t agent, void *data)
{
    struct rocm_pool_query *q = (struct rocm_pool_query *)data;
    uint32_t type = 0;
    if (hsa_agent_get_info(agent, HSA_AGENT_INFO_DEVICE, &type) != HSA_STATUS_SUCCESS)
        return HSA_STATUS_SUCCESS;
    if ((q->want_cpu && type == HSA_DEVICE_TYPE_CPU) ||
        (!q->want_cpu && type == HSA_DEVICE_TYPE_GPU && q->seen_gpus++ == q->gpu_index)) {
        q->agent = agent;
        q->found_agent = 1;
        return HSA_STATUS_INFO_BREAK;
    }
    return HSA_STATUS_SUCCESS;
}

static inline hsa_status_t rocm_pool_query_pool_cb(hsa_amd_memory_pool_t pool, void *data)
{
    struct rocm_pool_query *q = (struct rocm_pool_query *)data;
    uint32_t segment = 99, flags = 0;
    if (hsa_amd_memory_pool_get_info(pool, HSA_AMD_MEMORY_POOL_INFO_SEGMENT, &segment) !=
            HSA_STATUS_SUCCESS ||
        segment != HSA_AMD_SEGMENT_GLOBAL)
        return HSA_STATUS_SUCCESS;
    if (hsa_amd_memory_pool_get_info(pool, HSA_AMD_MEMORY_POOL_INFO_GLOBAL_FLAGS, &flags) !=
        HSA_STATUS_SUCCESS)
        return HSA_STATUS_SUCCESS;
    const int kernarg = (flags & HSA_AMD_MEMORY_POOL_GLOBAL_FLAG_KERNARG_INIT) != 0;
    const int fine = (flags & HSA_AMD_MEMORY_POOL_GLOBAL_FLAG_FINE_GRAINED) != 0;
    const int coarse = (flags & HSA_AMD_MEMORY_POOL_GLOBAL_FLAG_COARSE_GRAINED) != 0;
    const int ext = (flags & HSA_AMD_MEMORY_POOL_GLOBAL_FLAG_EXTENDED_SCOPE_FINE_GRAINED) != 0;
    int match = 0;
    if (!strcmp(q->kind, "kernarg"))
        match = kernarg;
    else if (!strcmp(q->kind, "sysfine") || !strcmp(q->kind, "fine"))
        match = fine && !kernarg;
    else if (!strcmp(q->kind, "syscoarse") || !strcmp(q->kind, "coarse"))
        match = coarse;
    else if (!strcmp(q->kind, "extfine"))
        match = ext;
    if (match) {
        q->pool = pool;
        q->found_pool = 1;
        return HSA_STATUS_INFO_BREAK;
    }
    return HSA_STATUS_SUCCESS;
}

/* Finds the pool of the given kind (coarse|fine|extfine on GPU gpu_index;
 * sysfine|kernarg|syscoarse on the CPU agent). Returns 0 on success, -1 if there is no
 * such agent/pool, or an HSA error status. */
static inline int rocm_find_pool(uint32_t gpu_index, const char *kind,
                                 hsa_amd_memory_pool_t *out)
{
    struct rocm_pool_query q;
    hsa_status_t rc;
    memset(&q, 0, sizeof q);
    q.kind = kind;
    q.gpu_index = gpu_index;
    q.want_cpu = !strcmp(kind, "sysfine") || !strcmp(kind, "kernarg") ||
                 !strcmp(kind, "syscoarse");
    rc = hsa_iterate_agents(rocm_pool_query_agent_cb, &q);
    if (rc != HSA_STATUS_SUCCESS && rc != HSA_STATUS_INFO_BREAK)
        return rc;
    if (!q.found_agent)
        return -1;
    rc = hsa_amd_agent_iterate_memory_pools(q.agent, rocm_pool_query_pool_cb, &q);
    if (rc != HSA_STATUS_SUCCESS && rc != HSA_STATUS_INFO_BREAK)
        return rc;
    if (!q.found_pool)
        return -1;
    *out = q.pool;
    return 0;
}

#endif
