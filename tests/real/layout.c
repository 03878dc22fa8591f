/* Prints the ABI facts rmcp relies on (src/abi.rs), as the real ROCm headers
 * it is compiled against state them: one "key value" per line, decimal.
 * tests/real_rocm.rs compiles it against ROCm 5.2.3, 6.4.3 and 7.2.4 and compares. */
#include <stddef.h>
#include <stdio.h>

#include <hip/hip_runtime_api.h>
#include <hsa/hsa.h>
#include <hsa/hsa_ext_amd.h>
#if HIP_VERSION_MAJOR >= 6
#include <hip/hip_deprecated.h> /* hipDeviceProp_tR0000; hip_runtime_api.h does not include it */
#endif

#define V(key, value) printf("%s %lld\n", key, (long long)(value))
#define U(key, value) printf("%s %llu\n", key, (unsigned long long)(value))

int main(void)
{
    V("hip.version.major", HIP_VERSION_MAJOR);
    V("hip.version.minor", HIP_VERSION_MINOR);

    /* hipDeviceProp_t layouts. Before ROCm 6 hipDeviceProp_t IS the R0000 layout;
     * from 6.0 hip_deprecated.h names it hipDeviceProp_tR0000 and
     * hipDeviceProp_t is #defined to hipDeviceProp_tR0600. */
#if HIP_VERSION_MAJOR >= 6
    typedef hipDeviceProp_tR0000 r0000_t;
    U("props.r0600.size", sizeof(hipDeviceProp_tR0600));
    U("props.r0600.gcnArchName", offsetof(hipDeviceProp_tR0600, gcnArchName));
    U("props.r0600.integrated", offsetof(hipDeviceProp_tR0600, integrated));
    U("props.r0600.gcnArchName.len", sizeof(((hipDeviceProp_tR0600 *)0)->gcnArchName));
#else
    typedef hipDeviceProp_t r0000_t;
#endif
    U("props.r0000.size", sizeof(r0000_t));
    U("props.r0000.gcnArchName", offsetof(r0000_t, gcnArchName));
    U("props.r0000.integrated", offsetof(r0000_t, integrated));
    U("props.r0000.gcnArchName.len", sizeof(((r0000_t *)0)->gcnArchName));

    V("hipSuccess", hipSuccess);
    V("hipErrorInvalidValue", hipErrorInvalidValue);
    V("hipErrorOutOfMemory", hipErrorOutOfMemory);
    V("hipErrorNotInitialized", hipErrorNotInitialized);
    V("hipErrorNoDevice", hipErrorNoDevice);
    V("hipErrorInvalidDevice", hipErrorInvalidDevice);
    V("hipErrorNotSupported", hipErrorNotSupported);
    U("sizeof.hipError_t", sizeof(hipError_t));

    U("hipHostMallocDefault", hipHostMallocDefault);
    U("hipHostMallocPortable", hipHostMallocPortable);
    U("hipHostMallocMapped", hipHostMallocMapped);
    U("hipHostMallocWriteCombined", hipHostMallocWriteCombined);
    U("hipHostMallocNumaUser", hipHostMallocNumaUser);
    U("hipHostMallocCoherent", hipHostMallocCoherent);
    U("hipHostMallocNonCoherent", hipHostMallocNonCoherent);
#ifdef hipHostMallocUncached /* ROCm >= 7 */
    U("hipHostMallocUncached", hipHostMallocUncached);
    U("hipHostAllocUncached", hipHostAllocUncached);
#endif
#ifdef hipHostAllocPortable
    U("hipHostAllocPortable", hipHostAllocPortable);
    U("hipHostAllocMapped", hipHostAllocMapped);
    U("hipHostAllocWriteCombined", hipHostAllocWriteCombined);
#endif
    U("hipDeviceMallocDefault", hipDeviceMallocDefault);
    U("hipDeviceMallocFinegrained", hipDeviceMallocFinegrained);
    U("hipMallocSignalMemory", hipMallocSignalMemory);
#ifdef hipDeviceMallocUncached
    U("hipDeviceMallocUncached", hipDeviceMallocUncached);
#endif
#ifdef hipDeviceMallocContiguous
    U("hipDeviceMallocContiguous", hipDeviceMallocContiguous);
#endif
    U("hipMemAttachGlobal", hipMemAttachGlobal);
    U("hipMemAttachHost", hipMemAttachHost);
    V("hipMemAdviseSetCoarseGrain", hipMemAdviseSetCoarseGrain);

    V("HSA_STATUS_SUCCESS", HSA_STATUS_SUCCESS);
    V("HSA_STATUS_INFO_BREAK", HSA_STATUS_INFO_BREAK);
    V("HSA_STATUS_ERROR", HSA_STATUS_ERROR);
    V("HSA_STATUS_ERROR_INVALID_ARGUMENT", HSA_STATUS_ERROR_INVALID_ARGUMENT);
    V("HSA_STATUS_ERROR_NOT_INITIALIZED", HSA_STATUS_ERROR_NOT_INITIALIZED);
    U("sizeof.hsa_status_t", sizeof(hsa_status_t));
    U("HSA_AGENT_INFO_NAME", HSA_AGENT_INFO_NAME);
    U("HSA_AGENT_INFO_DEVICE", HSA_AGENT_INFO_DEVICE);
    U("HSA_DEVICE_TYPE_CPU", HSA_DEVICE_TYPE_CPU);
    U("HSA_DEVICE_TYPE_GPU", HSA_DEVICE_TYPE_GPU);
    U("HSA_AMD_AGENT_INFO_DRIVER_NODE_ID", HSA_AMD_AGENT_INFO_DRIVER_NODE_ID);
    U("HSA_AMD_MEMORY_POOL_INFO_SEGMENT", HSA_AMD_MEMORY_POOL_INFO_SEGMENT);
    U("HSA_AMD_MEMORY_POOL_INFO_GLOBAL_FLAGS", HSA_AMD_MEMORY_POOL_INFO_GLOBAL_FLAGS);
    U("HSA_AMD_MEMORY_POOL_INFO_SIZE", HSA_AMD_MEMORY_POOL_INFO_SIZE);
    U("HSA_AMD_SEGMENT_GLOBAL", HSA_AMD_SEGMENT_GLOBAL);
    U("HSA_AMD_MEMORY_POOL_GLOBAL_FLAG_KERNARG_INIT", HSA_AMD_MEMORY_POOL_GLOBAL_FLAG_KERNARG_INIT);
    U("HSA_AMD_MEMORY_POOL_GLOBAL_FLAG_FINE_GRAINED", HSA_AMD_MEMORY_POOL_GLOBAL_FLAG_FINE_GRAINED);
    U("HSA_AMD_MEMORY_POOL_GLOBAL_FLAG_COARSE_GRAINED",
      HSA_AMD_MEMORY_POOL_GLOBAL_FLAG_COARSE_GRAINED);
#if HIP_VERSION_MAJOR >= 6 /* the enumerator is absent from ROCm 5.2's hsa_ext_amd.h */
    U("HSA_AMD_MEMORY_POOL_GLOBAL_FLAG_EXTENDED_SCOPE_FINE_GRAINED",
      HSA_AMD_MEMORY_POOL_GLOBAL_FLAG_EXTENDED_SCOPE_FINE_GRAINED);
#endif
    U("HSA_AMD_GPU_MEMORY_FAULT_EVENT", HSA_AMD_GPU_MEMORY_FAULT_EVENT);
    U("HSA_AMD_MEMORY_FAULT_PAGE_NOT_PRESENT", HSA_AMD_MEMORY_FAULT_PAGE_NOT_PRESENT);
    U("HSA_AMD_MEMORY_FAULT_READ_ONLY", HSA_AMD_MEMORY_FAULT_READ_ONLY);
    U("HSA_AMD_MEMORY_FAULT_NX", HSA_AMD_MEMORY_FAULT_NX);
    U("HSA_AMD_MEMORY_FAULT_HOST_ONLY", HSA_AMD_MEMORY_FAULT_HOST_ONLY);
    U("HSA_AMD_MEMORY_FAULT_DRAMECC", HSA_AMD_MEMORY_FAULT_DRAMECC);
    U("HSA_AMD_MEMORY_FAULT_IMPRECISE", HSA_AMD_MEMORY_FAULT_IMPRECISE);
    U("HSA_AMD_MEMORY_FAULT_SRAMECC", HSA_AMD_MEMORY_FAULT_SRAMECC);
    U("HSA_AMD_MEMORY_FAULT_HANG", (unsigned)HSA_AMD_MEMORY_FAULT_HANG);

    U("sizeof.hsa_agent_t", sizeof(hsa_agent_t));
    U("sizeof.hsa_amd_memory_pool_t", sizeof(hsa_amd_memory_pool_t));
    U("sizeof.hsa_amd_gpu_memory_fault_info_t", sizeof(hsa_amd_gpu_memory_fault_info_t));
    U("offsetof.fault_info.agent", offsetof(hsa_amd_gpu_memory_fault_info_t, agent));
    U("offsetof.fault_info.virtual_address",
      offsetof(hsa_amd_gpu_memory_fault_info_t, virtual_address));
    U("offsetof.fault_info.fault_reason_mask",
      offsetof(hsa_amd_gpu_memory_fault_info_t, fault_reason_mask));
    U("offsetof.hsa_amd_event_t.event_type", offsetof(hsa_amd_event_t, event_type));
    U("offsetof.hsa_amd_event_t.memory_fault", offsetof(hsa_amd_event_t, memory_fault));
    U("sizeof.hsa_amd_event_type_t", sizeof(hsa_amd_event_type_t));
    return 0;
}
