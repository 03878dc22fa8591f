//! The entry points rmcp interposes and the runtime functions it calls,
//! declared once in `hook_table!`. Everything that lists them is generated
//! from that table: the `Entry` enum (stats, registry, C API), the symbol
//! tables the runtimes are resolved with (`crate::interpose::symbols::{hip_sym, hsa_sym}`),
//! the real functions' pointer types (`hip_fn`, `hsa_fn`), the
//! hipGetProcAddress redirection (`crate::interpose::hooks::own_hook`), the list of
//! exported hooks the export audit checks (`crate::interpose::hooks::EXPORTED`), and a
//! compile-time check that every hook has its table prototype.
//!
//! Adding a hook: one line in `hip_hooks` or `hsa_hooks`, and the
//! `#[no_mangle]` function with its policy in `crate::interpose::hooks`. The build
//! fails until both exist and agree.

/// The table. Each line: `Variant symbol(argument types) -> return type;`
/// (hooks) or `symbol(argument types) -> return type;` (functions rmcp only
/// calls). Expands `$then! { ... }` with the whole table, so each consumer
/// takes the parts it needs; tokens after `$then` come first (the tests'
/// consumers take a parameter that way). Exported for the tests
/// (tests/real_rocm.rs checks every hook against the real headers with it)
/// and build/real_headers.rs reads its text: it is the one list.
#[doc(hidden)]
#[macro_export]
macro_rules! hook_table {
    ($then:ident $($first:tt)*) => {
        $then! {
            $($first)*
            // Exported hooks that are entry points (stats, registry, C API),
            // in stats-table order. HIP's come first: a HIP entry point's
            // index is also its index in `hip_sym`.
            hip_hooks {
                HipMalloc hipMalloc(*mut *mut c_void, usize) -> hipError_t;
                HipFree hipFree(*mut c_void) -> hipError_t;
                HipHostMalloc hipHostMalloc(*mut *mut c_void, usize, c_uint) -> hipError_t;
                HipHostAlloc hipHostAlloc(*mut *mut c_void, usize, c_uint) -> hipError_t;
                HipExtHostAlloc hipExtHostAlloc(*mut *mut c_void, usize, c_uint) -> hipError_t;
                HipMallocHost hipMallocHost(*mut *mut c_void, usize) -> hipError_t;
                HipMemAllocHost hipMemAllocHost(*mut *mut c_void, usize) -> hipError_t;
                HipHostFree hipHostFree(*mut c_void) -> hipError_t;
                HipFreeHost hipFreeHost(*mut c_void) -> hipError_t;
                HipExtMallocWithFlags hipExtMallocWithFlags(*mut *mut c_void, usize, c_uint) -> hipError_t;
                HipMallocManaged hipMallocManaged(*mut *mut c_void, usize, c_uint) -> hipError_t;
                HipHostRegister hipHostRegister(*mut c_void, usize, c_uint) -> hipError_t;
                HipHostUnregister hipHostUnregister(*mut c_void) -> hipError_t;
                HipMallocAsync hipMallocAsync(*mut *mut c_void, usize, hipStream_t) -> hipError_t;
                HipMallocFromPoolAsync hipMallocFromPoolAsync(*mut *mut c_void, usize, hipMemPool_t, hipStream_t) -> hipError_t;
                HipFreeAsync hipFreeAsync(*mut c_void, hipStream_t) -> hipError_t;
                HipGetProcAddress hipGetProcAddress(*const c_char, *mut *mut c_void, c_int, u64, *mut c_int) -> hipError_t;
                HipGetDriverEntryPoint hipGetDriverEntryPoint(*const c_char, *mut *mut c_void, u64, *mut c_int) -> hipError_t;
                HipGetDriverEntryPointSpt hipGetDriverEntryPoint_spt(*const c_char, *mut *mut c_void, u64, *mut c_int) -> hipError_t;
                // Allocations recorded, never rewritten: pitched and 3D
                // memory, and VMM (reserved ranges, physical handles and
                // their mappings, `crate::core::vmm`).
                HipMallocPitch hipMallocPitch(*mut *mut c_void, *mut usize, usize, usize) -> hipError_t;
                HipMalloc3D hipMalloc3D(*mut hipPitchedPtr, hipExtent) -> hipError_t;
                HipMemAddressReserve hipMemAddressReserve(*mut *mut c_void, usize, usize, *mut c_void, u64) -> hipError_t;
                HipMemAddressFree hipMemAddressFree(*mut c_void, usize) -> hipError_t;
                HipMemCreate hipMemCreate(*mut hipMemGenericAllocationHandle_t, usize, *const c_void, u64) -> hipError_t;
                HipMemRelease hipMemRelease(hipMemGenericAllocationHandle_t) -> hipError_t;
                HipMemMap hipMemMap(*mut c_void, usize, usize, hipMemGenericAllocationHandle_t, u64) -> hipError_t;
                HipMemSetAccess hipMemSetAccess(*mut c_void, usize, *const c_void, usize) -> hipError_t;
                HipMemUnmap hipMemUnmap(*mut c_void, usize) -> hipError_t;
                // Kernel launches (recorded in the per-device launch rings)
                // and what tells rmcp which device and whether they finished.
                HipLaunchKernel hipLaunchKernel(*const c_void, dim3, dim3, *mut *mut c_void, usize, hipStream_t) -> hipError_t;
                HipModuleLaunchKernel hipModuleLaunchKernel(hipFunction_t, c_uint, c_uint, c_uint, c_uint, c_uint, c_uint, c_uint, hipStream_t, *mut *mut c_void, *mut *mut c_void) -> hipError_t;
                HipExtLaunchKernel hipExtLaunchKernel(*const c_void, dim3, dim3, *mut *mut c_void, usize, hipStream_t, hipEvent_t, hipEvent_t, c_int) -> hipError_t;
                HipExtModuleLaunchKernel hipExtModuleLaunchKernel(hipFunction_t, u32, u32, u32, u32, u32, u32, usize, hipStream_t, *mut *mut c_void, *mut *mut c_void, hipEvent_t, hipEvent_t, u32) -> hipError_t;
                HipLaunchCooperativeKernel hipLaunchCooperativeKernel(*const c_void, dim3, dim3, *mut *mut c_void, c_uint, hipStream_t) -> hipError_t;
                HipGraphLaunch hipGraphLaunch(hipGraphExec_t, hipStream_t) -> hipError_t;
                HipSetDevice hipSetDevice(c_int) -> hipError_t;
                HipDeviceSynchronize hipDeviceSynchronize() -> hipError_t;
                HipStreamSynchronize hipStreamSynchronize(hipStream_t) -> hipError_t;
                // The per-thread-default-stream (_spt) forms, and the
                // cooperative module launch.
                HipLaunchKernelSpt hipLaunchKernel_spt(*const c_void, dim3, dim3, *mut *mut c_void, usize, hipStream_t) -> hipError_t;
                HipLaunchCooperativeKernelSpt hipLaunchCooperativeKernel_spt(*const c_void, dim3, dim3, *mut *mut c_void, u32, hipStream_t) -> hipError_t;
                HipGraphLaunchSpt hipGraphLaunch_spt(hipGraphExec_t, hipStream_t) -> hipError_t;
                HipStreamSynchronizeSpt hipStreamSynchronize_spt(hipStream_t) -> hipError_t;
                HipModuleLaunchCooperativeKernel hipModuleLaunchCooperativeKernel(hipFunction_t, c_uint, c_uint, c_uint, c_uint, c_uint, c_uint, c_uint, hipStream_t, *mut *mut c_void) -> hipError_t;
                // Extensible and multi-device launches.
                HipLaunchKernelExC hipLaunchKernelExC(*const hipLaunchConfig_t, *const c_void, *mut *mut c_void) -> hipError_t;
                HipDrvLaunchKernelEx hipDrvLaunchKernelEx(*const HIP_LAUNCH_CONFIG, hipFunction_t, *mut *mut c_void, *mut *mut c_void) -> hipError_t;
                HipLaunchCooperativeKernelMultiDevice hipLaunchCooperativeKernelMultiDevice(*mut hipLaunchParams, c_int, c_uint) -> hipError_t;
                HipExtLaunchMultiKernelMultiDevice hipExtLaunchMultiKernelMultiDevice(*mut hipLaunchParams, c_int, c_uint) -> hipError_t;
                HipModuleLaunchCooperativeKernelMultiDevice hipModuleLaunchCooperativeKernelMultiDevice(*mut hipFunctionLaunchParams, c_uint, c_uint) -> hipError_t;
                // Streams: a launch is filed under its stream's device,
                // noted when the stream is created, forgotten when it is
                // destroyed (`crate::core::streams`).
                HipStreamCreate hipStreamCreate(*mut hipStream_t) -> hipError_t;
                HipStreamCreateWithFlags hipStreamCreateWithFlags(*mut hipStream_t, c_uint) -> hipError_t;
                HipStreamCreateWithPriority hipStreamCreateWithPriority(*mut hipStream_t, c_uint, c_int) -> hipError_t;
                HipExtStreamCreateWithCUMask hipExtStreamCreateWithCUMask(*mut hipStream_t, u32, *const u32) -> hipError_t;
                HipStreamDestroy hipStreamDestroy(hipStream_t) -> hipError_t;
            }
            hsa_hooks {
                HsaMemoryPoolAllocate hsa_amd_memory_pool_allocate(hsa_amd_memory_pool_t, usize, u32, *mut *mut c_void) -> hsa_status_t;
                HsaMemoryPoolFree hsa_amd_memory_pool_free(*mut c_void) -> hsa_status_t;
            }
            // Exported hooks that are not entry points of their own:
            // hsa_init only registers the fault handler.
            hsa_other_hooks {
                hsa_init() -> hsa_status_t;
            }
            // Runtime functions rmcp calls but does not export.
            hip_calls {
                hipGetDevice(*mut c_int) -> hipError_t;
                hipGetDeviceCount(*mut c_int) -> hipError_t;
                hipGetDeviceProperties(*mut c_void, c_int) -> hipError_t;
                hipGetDevicePropertiesR0600(*mut c_void, c_int) -> hipError_t;
                hipMemAdvise(*const c_void, usize, c_int, c_int) -> hipError_t;
                hipKernelNameRef(hipFunction_t) -> *const c_char;
                hipKernelNameRefByPtr(*const c_void, hipStream_t) -> *const c_char;
                hipStreamGetDevice(hipStream_t, *mut c_int) -> hipError_t;
            }
            hsa_calls {
                hsa_iterate_agents(Option<unsafe extern "C" fn(hsa_agent_t, *mut c_void) -> hsa_status_t>, *mut c_void) -> hsa_status_t;
                hsa_agent_get_info(hsa_agent_t, u32, *mut c_void) -> hsa_status_t;
                hsa_amd_agent_iterate_memory_pools(hsa_agent_t, Option<unsafe extern "C" fn(hsa_amd_memory_pool_t, *mut c_void) -> hsa_status_t>, *mut c_void) -> hsa_status_t;
                hsa_amd_memory_pool_get_info(hsa_amd_memory_pool_t, u32, *mut c_void) -> hsa_status_t;
                hsa_amd_register_system_event_handler(Option<unsafe extern "C" fn(*const hsa_amd_event_t, *mut c_void) -> hsa_status_t>, *mut c_void) -> hsa_status_t;
            }
        }
    };
}
pub(crate) use crate::hook_table;

/// `concat!(name, "\0")` as a `&CStr`, at compile time.
pub(crate) const fn c_str(with_nul: &'static str) -> &'static std::ffi::CStr {
    match std::ffi::CStr::from_bytes_with_nul(with_nul.as_bytes()) {
        Ok(s) => s,
        Err(_) => panic!("not NUL-terminated"),
    }
}

macro_rules! define_entry {
    (
        hip_hooks { $($hv:ident $hs:ident ($($ha:ty),*) -> $hr:ty;)* }
        hsa_hooks { $($sv:ident $ss:ident ($($sa:ty),*) -> $sr:ty;)* }
        $($rest:tt)*
    ) => {
        /// Every exported hook that is an entry point. The order is the
        /// order of the stats table.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum Entry {
            $($hv,)*
            $($sv,)*
        }

        impl Entry {
            pub const ALL: [Entry; Entry::COUNT] = [$(Entry::$hv,)* $(Entry::$sv,)*];

            pub const COUNT: usize = [$(stringify!($hv),)* $(stringify!($sv),)*].len();

            /// The entry points of the HIP runtime, which come first.
            pub const HIP_COUNT: usize = [$(stringify!($hv),)*].len();

            /// The C symbol name.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Entry::$hv => stringify!($hs),)*
                    $(Entry::$sv => stringify!($ss),)*
                }
            }

            /// The same name as a NUL-terminated C string, for the C API.
            pub const fn c_name(self) -> &'static std::ffi::CStr {
                match self {
                    $(Entry::$hv => c_str(concat!(stringify!($hs), "\0")),)*
                    $(Entry::$sv => c_str(concat!(stringify!($ss), "\0")),)*
                }
            }
        }
    };
}
hook_table!(define_entry);

impl Entry {
    pub fn from_name(name: &str) -> Option<Entry> {
        Entry::ALL.iter().copied().find(|e| e.name() == name)
    }

    pub const fn index(self) -> usize {
        self as usize
    }

    pub fn from_index(i: usize) -> Option<Entry> {
        Entry::ALL.get(i).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        for (i, e) in Entry::ALL.iter().enumerate() {
            assert_eq!(e.index(), i);
            assert_eq!(Entry::from_index(i), Some(*e));
            assert_eq!(Entry::from_name(e.name()), Some(*e));
            assert_eq!(e.c_name().to_str().unwrap(), e.name());
            assert_eq!(
                i < Entry::HIP_COUNT,
                e.name().starts_with("hip"),
                "{}",
                e.name()
            );
        }
        assert_eq!(Entry::from_name("malloc"), None);
        assert_eq!(Entry::from_index(Entry::COUNT), None);
    }
}
