//! HIP and HSA ABI facts rmcp relies on: error codes, flag values, struct
//! offsets. Every value here is checked against the real ROCm 5.2.3, 6.4.3 and
//! 7.2.4 headers by `tests/real_rocm.rs` (the C compiler and bindgen on
//! hip_runtime_api.h, hip_ext.h, hsa.h and hsa_ext_amd.h of Debian's
//! libamdhip64-dev 5.2.3, sid's 6.4.3 and experimental's 7.2.4).

#![allow(non_camel_case_types)]

use std::ffi::c_void;

pub type hipError_t = i32;
pub type hipStream_t = *mut c_void;
pub type hipMemPool_t = *mut c_void;
pub type hipFunction_t = *mut c_void;
pub type hipGraphExec_t = *mut c_void;
pub type hipEvent_t = *mut c_void;

/// HIP's `dim3`, passed BY VALUE to hipLaunchKernel and friends: 12 bytes,
/// which the x86-64 SysV ABI passes in two integer registers (x|y, z).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct dim3 {
    pub x: u32,
    pub y: u32,
    pub z: u32,
}
pub type hsa_status_t = i32;

/// hipLaunchConfig_t (hipLaunchKernelExC, ROCm >= 6.5).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct hipLaunchConfig_t {
    pub grid: dim3,
    pub block: dim3,
    pub shared: usize,
    pub stream: hipStream_t,
    pub attrs: *mut c_void,
    pub num_attrs: u32,
}

/// HIP_LAUNCH_CONFIG (hipDrvLaunchKernelEx, ROCm >= 6.5).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct HIP_LAUNCH_CONFIG {
    pub grid: [u32; 3],
    pub block: [u32; 3],
    pub shared: u32,
    pub stream: hipStream_t,
    pub attrs: *mut c_void,
    pub num_attrs: u32,
}

/// hipLaunchParams: one launch of hipLaunchCooperativeKernelMultiDevice and
/// hipExtLaunchMultiKernelMultiDevice.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct hipLaunchParams {
    pub func: *mut c_void,
    pub grid: dim3,
    pub block: dim3,
    pub args: *mut *mut c_void,
    pub shared: usize,
    pub stream: hipStream_t,
}

/// hipFunctionLaunchParams: one launch of
/// hipModuleLaunchCooperativeKernelMultiDevice.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct hipFunctionLaunchParams {
    pub function: hipFunction_t,
    pub grid: [u32; 3],
    pub block: [u32; 3],
    pub shared: u32,
    pub stream: hipStream_t,
    pub params: *mut *mut c_void,
}

/// hipMemGenericAllocationHandle_t: an opaque pointer (hipMemCreate).
pub type hipMemGenericAllocationHandle_t = *mut c_void;

/// HIP's `hipExtent`, passed BY VALUE to hipMalloc3D (24 bytes: in memory).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct hipExtent {
    pub width: usize,
    pub height: usize,
    pub depth: usize,
}

/// HIP's `hipPitchedPtr`, written by hipMalloc3D.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct hipPitchedPtr {
    pub ptr: *mut c_void,
    pub pitch: usize,
    pub xsize: usize,
    pub ysize: usize,
}

pub const HIP_SUCCESS: hipError_t = 0;
pub const HIP_ERROR_INVALID_VALUE: hipError_t = 1;
pub const HIP_ERROR_OUT_OF_MEMORY: hipError_t = 2;
pub const HIP_ERROR_NOT_INITIALIZED: hipError_t = 3;
pub const HIP_ERROR_NO_DEVICE: hipError_t = 100;
pub const HIP_ERROR_INVALID_DEVICE: hipError_t = 101;
pub const HIP_ERROR_NOT_SUPPORTED: hipError_t = 801;

/// hipHostMalloc / hipHostAlloc / hipExtHostAlloc flags.
pub mod host {
    pub const DEFAULT: u32 = 0x0;
    pub const PORTABLE: u32 = 0x1;
    pub const MAPPED: u32 = 0x2;
    pub const WRITE_COMBINED: u32 = 0x4;
    pub const NUMA_USER: u32 = 0x2000_0000;
    pub const COHERENT: u32 = 0x4000_0000;
    pub const NON_COHERENT: u32 = 0x8000_0000;
    /// hipHostMallocUncached / hipHostAllocUncached, new in the ROCm 7 headers:
    /// extended-scope fine-grained (MTYPE_UC) host memory; ROCm 7 rejects it
    /// together with Coherent or NonCoherent. Not in `KNOWN`: rmcp forwards
    /// requests carrying it untouched.
    pub const UNCACHED: u32 = 0x1000_0000;
    /// Every flag rmcp knows the meaning of; other bits are forwarded untouched.
    pub const KNOWN: u32 = PORTABLE | MAPPED | WRITE_COMBINED | NUMA_USER | COHERENT | NON_COHERENT;
    /// The only flags hipHostAlloc accepts.
    pub const HOST_ALLOC_ACCEPTED: u32 = PORTABLE | MAPPED | WRITE_COMBINED;
}

/// hipExtMallocWithFlags values (compared as a whole, not as bits).
pub mod device {
    pub const DEFAULT: u32 = 0;
    pub const FINEGRAINED: u32 = 1;
    pub const SIGNAL_MEMORY: u32 = 2;
    pub const UNCACHED: u32 = 3;
    pub const CONTIGUOUS: u32 = 4;
}

/// hipMallocManaged attach flags.
pub mod managed {
    pub const ATTACH_GLOBAL: u32 = 1;
    pub const ATTACH_HOST: u32 = 2;
}

/// hipMemoryAdvise value that makes a managed range coarse-grained.
pub const HIP_MEM_ADVISE_SET_COARSE_GRAIN: i32 = 100;

/// Layouts of hipDeviceProp_t (x86-64). The runtime writes the whole struct,
/// so the buffer we pass is always `PROPS_BUFFER_BYTES`, larger than either.
pub mod props {
    /// hipDeviceProp_tR0000 (plain hipGetDeviceProperties).
    pub const R0000_SIZE: usize = 792;
    pub const R0000_GCN_ARCH_NAME: usize = 396;
    pub const R0000_INTEGRATED: usize = 652;
    /// hipDeviceProp_tR0600 (hipGetDevicePropertiesR0600, ROCm >= 6.0).
    pub const R0600_SIZE: usize = 1472;
    pub const R0600_GCN_ARCH_NAME: usize = 1160;
    pub const R0600_INTEGRATED: usize = 396;
    /// Both layouts declare gcnArchName as char[256].
    pub const GCN_ARCH_NAME_LEN: usize = 256;
    pub const PROPS_BUFFER_BYTES: usize = 4096;
}

/// HSA values (hsa.h, hsa_ext_amd.h).
pub mod hsa {
    pub const STATUS_SUCCESS: i32 = 0;
    pub const STATUS_INFO_BREAK: i32 = 1;
    pub const STATUS_ERROR: i32 = 0x1000;
    pub const STATUS_ERROR_INVALID_ARGUMENT: i32 = 0x1001;
    pub const STATUS_ERROR_NOT_INITIALIZED: i32 = 0x100B;

    pub const AGENT_INFO_NAME: u32 = 0;
    pub const AGENT_INFO_DEVICE: u32 = 17;
    pub const DEVICE_TYPE_CPU: u32 = 0;
    pub const DEVICE_TYPE_GPU: u32 = 1;
    /// hsa_agent_get_info(HSA_AMD_AGENT_INFO_DRIVER_NODE_ID)
    /// (0xA004 in the real 5.2.3 and 6.4.3 hsa_ext_amd.h; 0xA00A is MAX_WAVES_PER_CU.)
    pub const AMD_AGENT_INFO_DRIVER_NODE_ID: u32 = 0xA004;

    pub const POOL_INFO_SEGMENT: u32 = 0;
    pub const POOL_INFO_GLOBAL_FLAGS: u32 = 1;
    pub const POOL_INFO_SIZE: u32 = 2;
    pub const SEGMENT_GLOBAL: u32 = 0;

    pub const GLOBAL_FLAG_KERNARG_INIT: u32 = 1;
    pub const GLOBAL_FLAG_FINE_GRAINED: u32 = 2;
    pub const GLOBAL_FLAG_COARSE_GRAINED: u32 = 4;
    pub const GLOBAL_FLAG_EXTENDED_SCOPE_FINE_GRAINED: u32 = 8;

    pub const EVENT_GPU_MEMORY_FAULT: u32 = 0;

    pub const FAULT_PAGE_NOT_PRESENT: u32 = 1;
    pub const FAULT_READ_ONLY: u32 = 2;
    pub const FAULT_NX: u32 = 4;
    pub const FAULT_HOST_ONLY: u32 = 8;
    pub const FAULT_DRAMECC: u32 = 16;
    pub const FAULT_IMPRECISE: u32 = 32;
    pub const FAULT_SRAMECC: u32 = 64;
    pub const FAULT_HANG: u32 = 1 << 31;

    /// (bit, name) pairs in the order the report prints them.
    pub const FAULT_REASONS: [(u32, &str); 8] = [
        (FAULT_PAGE_NOT_PRESENT, "page not present"),
        (FAULT_READ_ONLY, "write to read-only page"),
        (FAULT_NX, "execute from no-execute page"),
        (FAULT_HOST_ONLY, "host-only page accessed by GPU"),
        (FAULT_DRAMECC, "DRAM ECC error"),
        (FAULT_IMPRECISE, "imprecise (address may be approximate)"),
        (FAULT_SRAMECC, "SRAM ECC error"),
        (FAULT_HANG, "GPU hang"),
    ];
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct hsa_agent_t {
    pub handle: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct hsa_amd_memory_pool_t {
    pub handle: u64,
}

/// Payload of HSA_AMD_GPU_MEMORY_FAULT_EVENT.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct hsa_amd_gpu_memory_fault_info_t {
    pub agent: hsa_agent_t,
    pub virtual_address: u64,
    pub fault_reason_mask: u32,
}

/// hsa_amd_event_t: an event type followed by a union whose only member rmcp
/// reads is the memory-fault payload.
#[repr(C)]
pub struct hsa_amd_event_t {
    pub event_type: u32,
    pub memory_fault: hsa_amd_gpu_memory_fault_info_t,
}
