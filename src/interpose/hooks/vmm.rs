//! Allocations rmcp records but never rewrites: pitched and 3D memory
//! (hipMallocPitch, hipMalloc3D: coarse-grained device memory, freed by
//! hipFree) and HIP's virtual memory management, which PyTorch's
//! `expandable_segments` and llama.cpp's VMM pool use. A reserved range
//! (hipMemAddressReserve) is a registry record, so a fault inside it is
//! found like any allocation; the handles and mappings go to
//! `process::VMM` (`crate::core::vmm`), which says which handle and offset
//! the address hit, or that the piece was unmapped or never mapped.
#![allow(non_snake_case)]

use super::forward::{after, boundary, forward_free, real_or_return, record_range, settle_held};
use super::nested;
use crate::abi::{
    hipError_t, hipExtent, hipMemGenericAllocationHandle_t, hipPitchedPtr,
    HIP_ERROR_NOT_INITIALIZED, HIP_SUCCESS,
};
use crate::core::entry::Entry;
use crate::core::registry::Memory;
use crate::core::sync::now_ns;
use crate::interpose::process::{self, STATS, VMM};
use crate::interpose::threads;
use std::ffi::c_void;

/// Counts a call and, when it succeeded and rmcp is enabled, runs `record`.
fn counted(entry: Entry, rc: hipError_t, record: impl FnOnce()) {
    after(|| {
        STATS.record(entry, false);
        if rc == HIP_SUCCESS && process::config().enabled {
            record();
        }
    });
}

/// Runs `call`, a pitched or 3D allocation's real call, through
/// `nested::hip_alloc`, counts it and, when it succeeded, records the range
/// `range()` reads, on the current device; an HSA allocation the runtime
/// made meanwhile is recorded unless it backs that range (`core::backing`).
fn alloc_counted(
    entry: Entry,
    call: impl FnOnce() -> hipError_t,
    range: impl Fn() -> Option<(usize, usize)>,
) -> hipError_t {
    let rc = nested::hip_alloc(call, |&rc, held| {
        let (base, size) = (rc == HIP_SUCCESS).then(&range).flatten().unwrap_or((0, 0));
        settle_held(held, base, size);
    });
    counted(entry, rc, || {
        if let Some((base, size)) = range() {
            let dev = Memory::hip_device(threads::current_device());
            record_range(entry, base, size, 0, 0, false, dev);
        }
    });
    rc
}

/// # Safety
/// As the HIP runtime's hipMallocPitch.
#[no_mangle]
pub unsafe extern "C" fn hipMallocPitch(
    ptr: *mut *mut c_void,
    pitch: *mut usize,
    width: usize,
    height: usize,
) -> hipError_t {
    boundary(HIP_ERROR_NOT_INITIALIZED, || {
        let entry = Entry::HipMallocPitch;
        let f = real_or_return!(entry, hipMallocPitch);
        // SAFETY: forwarding the caller's arguments.
        alloc_counted(
            entry,
            || unsafe { f(ptr, pitch, width, height) },
            || {
                (!ptr.is_null() && !pitch.is_null()).then(|| {
                    // SAFETY: success: the runtime wrote both out-pointers.
                    let (base, pitch) = unsafe { (*ptr as usize, *pitch) };
                    (base, pitch.saturating_mul(height))
                })
            },
        )
    })
}

/// # Safety
/// As the HIP runtime's hipMalloc3D.
#[no_mangle]
pub unsafe extern "C" fn hipMalloc3D(pitched: *mut hipPitchedPtr, extent: hipExtent) -> hipError_t {
    boundary(HIP_ERROR_NOT_INITIALIZED, || {
        let entry = Entry::HipMalloc3D;
        let f = real_or_return!(entry, hipMalloc3D);
        // SAFETY: forwarding the caller's arguments.
        alloc_counted(
            entry,
            || unsafe { f(pitched, extent) },
            || {
                (!pitched.is_null()).then(|| {
                    // SAFETY: success: the runtime filled the caller's struct.
                    let p = unsafe { *pitched };
                    let size = p
                        .pitch
                        .saturating_mul(extent.height.max(1))
                        .saturating_mul(extent.depth.max(1));
                    (p.ptr as usize, size)
                })
            },
        )
    })
}

/// # Safety
/// As the HIP runtime's hipMemAddressReserve.
#[no_mangle]
pub unsafe extern "C" fn hipMemAddressReserve(
    ptr: *mut *mut c_void,
    size: usize,
    alignment: usize,
    addr: *mut c_void,
    flags: u64,
) -> hipError_t {
    boundary(HIP_ERROR_NOT_INITIALIZED, || {
        let entry = Entry::HipMemAddressReserve;
        let f = real_or_return!(entry, hipMemAddressReserve);
        // SAFETY: forwarding the caller's arguments.
        let rc = unsafe { f(ptr, size, alignment, addr, flags) };
        counted(entry, rc, || {
            if !ptr.is_null() {
                // SAFETY: success: the runtime wrote *ptr.
                let base = unsafe { *ptr } as usize;
                let dev = Memory::hip_device(threads::current_device());
                record_range(entry, base, size, 0, 0, false, dev);
            }
        });
        rc
    })
}

/// hipMemAddressFree: the reservation leaves the registry for its freed
/// ring, like any free.
///
/// # Safety
/// As the HIP runtime's hipMemAddressFree.
#[no_mangle]
pub unsafe extern "C" fn hipMemAddressFree(ptr: *mut c_void, size: usize) -> hipError_t {
    boundary(HIP_ERROR_NOT_INITIALIZED, || {
        let entry = Entry::HipMemAddressFree;
        let f = real_or_return!(entry, hipMemAddressFree);
        // SAFETY: forwarding the caller's arguments.
        forward_free(
            entry,
            ptr,
            |rc| rc == HIP_SUCCESS,
            || unsafe { f(ptr, size) },
        )
    })
}

/// # Safety
/// As the HIP runtime's hipMemCreate.
#[no_mangle]
pub unsafe extern "C" fn hipMemCreate(
    handle: *mut hipMemGenericAllocationHandle_t,
    size: usize,
    prop: *const c_void,
    flags: u64,
) -> hipError_t {
    boundary(HIP_ERROR_NOT_INITIALIZED, || {
        let entry = Entry::HipMemCreate;
        let f = real_or_return!(entry, hipMemCreate);
        // SAFETY: forwarding the caller's arguments.
        let rc = unsafe { f(handle, size, prop, flags) };
        counted(entry, rc, || {
            if !handle.is_null() {
                // The device is the current one: hipMemAllocationProp's
                // layout differs between ROCm 5.2.3 and 6.x, so rmcp does
                // not read its location (PyTorch and llama.cpp create
                // handles for the current device).
                // SAFETY: success: the runtime wrote *handle.
                let id = unsafe { *handle } as usize;
                VMM.created(id, size, threads::current_device(), now_ns());
            }
        });
        rc
    })
}

/// # Safety
/// As the HIP runtime's hipMemRelease.
#[no_mangle]
pub unsafe extern "C" fn hipMemRelease(handle: hipMemGenericAllocationHandle_t) -> hipError_t {
    boundary(HIP_ERROR_NOT_INITIALIZED, || {
        let entry = Entry::HipMemRelease;
        let f = real_or_return!(entry, hipMemRelease);
        // SAFETY: forwarding the caller's handle.
        let rc = unsafe { f(handle) };
        counted(entry, rc, || VMM.released(handle as usize, now_ns()));
        rc
    })
}

/// # Safety
/// As the HIP runtime's hipMemMap.
#[no_mangle]
pub unsafe extern "C" fn hipMemMap(
    ptr: *mut c_void,
    size: usize,
    offset: usize,
    handle: hipMemGenericAllocationHandle_t,
    flags: u64,
) -> hipError_t {
    boundary(HIP_ERROR_NOT_INITIALIZED, || {
        let entry = Entry::HipMemMap;
        let f = real_or_return!(entry, hipMemMap);
        // SAFETY: forwarding the caller's arguments.
        let rc = unsafe { f(ptr, size, offset, handle, flags) };
        counted(entry, rc, || {
            VMM.mapped(ptr as usize, size, offset, handle as usize, now_ns())
        });
        rc
    })
}

/// # Safety
/// As the HIP runtime's hipMemSetAccess.
#[no_mangle]
pub unsafe extern "C" fn hipMemSetAccess(
    ptr: *mut c_void,
    size: usize,
    desc: *const c_void,
    count: usize,
) -> hipError_t {
    boundary(HIP_ERROR_NOT_INITIALIZED, || {
        let entry = Entry::HipMemSetAccess;
        let f = real_or_return!(entry, hipMemSetAccess);
        // SAFETY: forwarding the caller's arguments.
        let rc = unsafe { f(ptr, size, desc, count) };
        counted(entry, rc, || VMM.access_set(ptr as usize, size));
        rc
    })
}

/// # Safety
/// As the HIP runtime's hipMemUnmap.
#[no_mangle]
pub unsafe extern "C" fn hipMemUnmap(ptr: *mut c_void, size: usize) -> hipError_t {
    boundary(HIP_ERROR_NOT_INITIALIZED, || {
        let entry = Entry::HipMemUnmap;
        let f = real_or_return!(entry, hipMemUnmap);
        // SAFETY: forwarding the caller's arguments.
        let rc = unsafe { f(ptr, size) };
        counted(entry, rc, || VMM.unmapped(ptr as usize, size, now_ns()));
        rc
    })
}
