//! HSA hooks: hsa_amd_memory_pool_allocate / _free, and hsa_init (to
//! register the fault handler as soon as the runtime is open).
//!
//! Coherence belongs to the pool in HSA. On a targeted GPU agent, an
//! allocation from a fine-grained pool made by application code is sent to
//! the same agent's coarse-grained pool. Allocations made by the ROCm
//! libraries themselves are never touched: the HIP runtime allocates
//! signals and kernel arguments through this symbol and needs them
//! fine-grained. Knowing the caller needs the return address, which Rust
//! cannot read, so the exported symbol is a two-instruction naked
//! trampoline that passes it on as an extra argument. (A C trampoline would
//! not do: a cdylib's version script hides symbols that come from C.)
#![allow(non_snake_case)]

use super::{after, boundary, decide};
use crate::abi::{hsa, hsa_agent_t, hsa_amd_memory_pool_t, hsa_status_t};
use crate::entry::Entry;
use crate::fault;
use crate::policy::{self, Forward, PoolKind};
use crate::registry::Memory;
use crate::shim::{self, hsa_fn, hsa_sym, STATS};
use crate::sync::InitOnce;
use once_cell::sync::OnceCell;
use std::ffi::c_void;
use std::sync::atomic::{AtomicU64, Ordering};

/// The real function `index` as `F`, or the status to return when the HSA
/// runtime or the function is missing (warned once per entry point).
///
/// # Safety
/// `F` must be the C prototype of symbol `index`.
unsafe fn real<F: Copy>(entry: Entry, index: usize) -> Result<F, hsa_status_t> {
    // SAFETY: the caller guarantees F is the symbol's function type.
    match unsafe { shim::hsa_real::<F>(index) } {
        Some(f) => Ok(f),
        None => {
            shim::warn_once(
                entry,
                format_args!("{} was called but no HSA runtime was found", entry.name()),
            );
            Err(hsa::STATUS_ERROR_NOT_INITIALIZED)
        }
    }
}

/// One memory pool with its agent, as mapped once from the runtime.
#[derive(Clone, Copy, Debug)]
pub struct PoolInfo {
    pub pool: u64,
    pub agent: u64,
    pub kind: PoolKind,
    /// The same agent's coarse-grained pool, if it has one.
    pub coarse_sibling: Option<u64>,
    /// GLOBAL_FLAGS of that coarse-grained pool (0 if none).
    pub coarse_sibling_flags: u32,
    /// Copied from the agent when mapped, so an allocation needs one lookup:
    /// the agent is a targeted GPU, and its KFD node.
    pub agent_target: bool,
    pub agent_node: u32,
}

/// One agent: its name ("gfx1030") and KFD node.
#[derive(Clone, Copy, Debug)]
pub struct AgentInfo {
    pub agent: u64,
    pub name: [u8; 64],
    pub node: u32,
    pub is_gpu: bool,
    /// A GPU whose name is in the configured targets, decided once when the
    /// topology is mapped (not parsed again on every allocation).
    pub target: bool,
}

impl AgentInfo {
    pub fn name_str(&self) -> &str {
        let len = self
            .name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.name.len());
        std::str::from_utf8(&self.name[..len]).unwrap_or("?")
    }
}

#[derive(Default, Debug)]
pub struct Topology {
    pub agents: Vec<AgentInfo>,
    pub pools: Vec<PoolInfo>,
}

static TOPOLOGY_ONCE: InitOnce = InitOnce::new();
static TOPOLOGY: OnceCell<Topology> = OnceCell::new();

/// The agents and pools, mapped on first use (needs an initialised runtime).
#[inline]
pub fn topology() -> Option<&'static Topology> {
    if let Some(t) = TOPOLOGY.get() {
        return Some(t);
    }
    TOPOLOGY_ONCE.call(|| {
        if let Some(t) = map_topology() {
            let _ = TOPOLOGY.set(t);
        }
    });
    TOPOLOGY.get()
}

fn map_topology() -> Option<Topology> {
    // SAFETY: each F below is the prototype of the named symbol.
    let (iterate_agents, agent_info, iterate_pools, pool_info) = unsafe {
        (
            shim::hsa_real::<hsa_fn::hsa_iterate_agents>(hsa_sym::hsa_iterate_agents)?,
            shim::hsa_real::<hsa_fn::hsa_agent_get_info>(hsa_sym::hsa_agent_get_info)?,
            shim::hsa_real::<hsa_fn::hsa_amd_agent_iterate_memory_pools>(
                hsa_sym::hsa_amd_agent_iterate_memory_pools,
            )?,
            shim::hsa_real::<hsa_fn::hsa_amd_memory_pool_get_info>(
                hsa_sym::hsa_amd_memory_pool_get_info,
            )?,
        )
    };
    unsafe extern "C" fn push_agent(agent: hsa_agent_t, data: *mut c_void) -> hsa_status_t {
        // SAFETY: data is the Vec passed below, alive for the iteration.
        unsafe { (*(data as *mut Vec<hsa_agent_t>)).push(agent) };
        hsa::STATUS_SUCCESS
    }
    unsafe extern "C" fn push_pool(pool: hsa_amd_memory_pool_t, data: *mut c_void) -> hsa_status_t {
        // SAFETY: data is the Vec passed below, alive for the iteration.
        unsafe { (*(data as *mut Vec<hsa_amd_memory_pool_t>)).push(pool) };
        hsa::STATUS_SUCCESS
    }
    let mut agents: Vec<hsa_agent_t> = Vec::new();
    // SAFETY: the callback only pushes into `agents`, which outlives the call.
    let rc = unsafe { iterate_agents(Some(push_agent), &mut agents as *mut _ as *mut c_void) };
    if rc != hsa::STATUS_SUCCESS {
        log::debug!("hsa_iterate_agents returned {rc:#x}; HSA pools not mapped yet");
        return None;
    }
    let mut topo = Topology::default();
    for agent in agents {
        let mut name = [0u8; 64];
        let mut device: u32 = u32::MAX;
        let mut node: u32 = 0;
        // SAFETY: NAME writes char[64], DEVICE and DRIVER_NODE_ID a uint32.
        unsafe {
            agent_info(agent, hsa::AGENT_INFO_NAME, name.as_mut_ptr().cast());
            agent_info(
                agent,
                hsa::AGENT_INFO_DEVICE,
                (&mut device as *mut u32).cast(),
            );
            agent_info(
                agent,
                hsa::AMD_AGENT_INFO_DRIVER_NODE_ID,
                (&mut node as *mut u32).cast(),
            );
        }
        name[63] = 0;
        let is_gpu = device == hsa::DEVICE_TYPE_GPU;
        let mut info = AgentInfo {
            agent: agent.handle,
            name,
            node,
            is_gpu,
            target: false,
        };
        info.target = is_gpu && shim::config().targets.contains_name(info.name_str());
        topo.agents.push(info);
        let mut pools: Vec<hsa_amd_memory_pool_t> = Vec::new();
        // SAFETY: the callback only pushes into `pools`, which outlives the call.
        unsafe { iterate_pools(agent, Some(push_pool), &mut pools as *mut _ as *mut c_void) };
        let first = topo.pools.len();
        for pool in pools {
            let mut segment: u32 = u32::MAX;
            let mut flags: u32 = 0;
            // SAFETY: SEGMENT and GLOBAL_FLAGS each write a uint32.
            unsafe {
                pool_info(
                    pool,
                    hsa::POOL_INFO_SEGMENT,
                    (&mut segment as *mut u32).cast(),
                );
                pool_info(
                    pool,
                    hsa::POOL_INFO_GLOBAL_FLAGS,
                    (&mut flags as *mut u32).cast(),
                );
            }
            if segment != hsa::SEGMENT_GLOBAL {
                continue;
            }
            topo.pools.push(PoolInfo {
                pool: pool.handle,
                agent: agent.handle,
                kind: PoolKind {
                    global_flags: flags,
                    on_gpu: is_gpu,
                },
                coarse_sibling: None,
                coarse_sibling_flags: 0,
                agent_target: info.target,
                agent_node: info.node,
            });
        }
        let coarse = topo.pools[first..]
            .iter()
            .find(|p| p.kind.is_coarse_grained())
            .map(|p| (p.pool, p.kind.global_flags));
        topo.pools[first..].iter_mut().for_each(|p| {
            p.coarse_sibling = coarse.map(|c| c.0);
            p.coarse_sibling_flags = coarse.map_or(0, |c| c.1);
        });
    }
    log::debug!(
        "HSA: mapped {} agents, {} global pools",
        topo.agents.len(),
        topo.pools.len()
    );
    Some(topo)
}

impl Topology {
    pub fn pool(&self, handle: u64) -> Option<&PoolInfo> {
        self.pools.iter().find(|p| p.pool == handle)
    }
    pub fn agent(&self, handle: u64) -> Option<&AgentInfo> {
        self.agents.iter().find(|a| a.agent == handle)
    }
}

/// Whether the code at `caller` belongs to a ROCm library. Cached in a small
/// direct-mapped table: the answer for an address never changes while the
/// library stays loaded, and dladdr takes the loader lock.
pub fn caller_is_rocm(caller: usize) -> bool {
    const SLOTS: usize = 64;
    // Each slot holds (caller << 1 | verdict); 0 means empty. User-space
    // addresses on x86-64 and aarch64 fit in 48 bits.
    static CACHE: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];
    let slot = &CACHE[(caller.wrapping_mul(0x9E37_79B9) >> 7) % SLOTS];
    let cached = slot.load(Ordering::Relaxed);
    if cached != 0 && (cached >> 1) as usize == caller {
        return cached & 1 == 1;
    }
    let verdict = crate::runtime::object_of(caller)
        .is_some_and(|path| policy::is_rocm_library(path.to_bytes()));
    slot.store(((caller as u64) << 1) | verdict as u64, Ordering::Relaxed);
    verdict
}

/// The Rust side of the trampoline: the exported symbol's arguments plus
/// the address it was called from.
extern "C" fn pool_allocate_from(
    pool: hsa_amd_memory_pool_t,
    size: usize,
    flags: u32,
    ptr: *mut *mut c_void,
    caller: usize,
) -> hsa_status_t {
    boundary(hsa::STATUS_ERROR, || {
        let entry = Entry::HsaMemoryPoolAllocate;
        // SAFETY: hsa_amd_memory_pool_allocate's prototype.
        let f: hsa_fn::hsa_amd_memory_pool_allocate =
            match unsafe { real(entry, hsa_sym::hsa_amd_memory_pool_allocate) } {
                Ok(f) => f,
                Err(rc) => return rc,
            };
        // The decision, the pool's requested GLOBAL_FLAGS and its agent's
        // node; None when the pool is not in the map (forwarded unchanged).
        let plan = decide(|cfg| {
            let info = *topology()?.pool(pool.handle)?;
            let fwd = policy::hsa_pool(
                cfg.mode,
                policy::Pool {
                    handle: info.pool,
                    kind: info.kind,
                    coarse_sibling: info.coarse_sibling.map(|s| (s, info.coarse_sibling_flags)),
                    agent_target: info.agent_target,
                },
                || caller_is_rocm(caller),
            );
            Some((fwd, info.kind.global_flags, info.agent_node as i32))
        })
        .flatten();
        let (fwd, requested, node) = plan.unwrap_or((Forward::unchanged(pool.handle, 0), 0, -1));
        // SAFETY: forwarding the caller's arguments to the decided pool.
        let rc = unsafe {
            f(
                hsa_amd_memory_pool_t { handle: fwd.target },
                size,
                flags,
                ptr,
            )
        };
        after(|| {
            STATS.record(entry, fwd.rewritten);
            if rc == hsa::STATUS_SUCCESS && !ptr.is_null() && shim::config().enabled {
                // SAFETY: success: the runtime wrote *ptr.
                let base = unsafe { *ptr } as usize;
                super::record_range(
                    entry,
                    base,
                    size,
                    requested,
                    fwd.flags,
                    fwd.rewritten,
                    Memory::HsaPool(node),
                );
            }
            super::ensure_fault_handler();
        });
        rc
    })
}

/// hsa_amd_memory_pool_allocate, exported: passes its return address to
/// `pool_allocate_from` as a fifth argument and tail-jumps there, so the
/// stack is untouched and `pool_allocate_from` returns straight to the
/// caller.
///
/// # Safety
/// As the HSA runtime's hsa_amd_memory_pool_allocate.
#[cfg(target_arch = "x86_64")]
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn hsa_amd_memory_pool_allocate(
    pool: hsa_amd_memory_pool_t,
    size: usize,
    flags: u32,
    ptr: *mut *mut c_void,
) -> hsa_status_t {
    // SysV: pool in rdi, size rsi, flags edx, ptr rcx; the 5th argument goes
    // in r8. At entry [rsp] holds the return address.
    core::arch::naked_asm!("mov r8, [rsp]", "jmp {target}", target = sym pool_allocate_from)
}

/// See the x86_64 version; AAPCS64 keeps the return address in x30.
///
/// # Safety
/// As the HSA runtime's hsa_amd_memory_pool_allocate.
#[cfg(target_arch = "aarch64")]
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn hsa_amd_memory_pool_allocate(
    pool: hsa_amd_memory_pool_t,
    size: usize,
    flags: u32,
    ptr: *mut *mut c_void,
) -> hsa_status_t {
    core::arch::naked_asm!("mov x4, x30", "b {target}", target = sym pool_allocate_from)
}

/// # Safety
/// As the HSA runtime's hsa_amd_memory_pool_free.
#[no_mangle]
pub unsafe extern "C" fn hsa_amd_memory_pool_free(ptr: *mut c_void) -> hsa_status_t {
    boundary(hsa::STATUS_ERROR, || {
        let entry = Entry::HsaMemoryPoolFree;
        // SAFETY: hsa_amd_memory_pool_free's prototype.
        let f: hsa_fn::hsa_amd_memory_pool_free =
            match unsafe { real(entry, hsa_sym::hsa_amd_memory_pool_free) } {
                Ok(f) => f,
                Err(rc) => return rc,
            };
        // SAFETY: forwarding the caller's pointer.
        super::forward_free(
            entry,
            ptr,
            |rc| rc == hsa::STATUS_SUCCESS,
            || unsafe { f(ptr) },
        )
    })
}

/// hsa_init, forwarded; on success rmcp registers its fault handler.
///
/// # Safety
/// As the HSA runtime's hsa_init.
#[no_mangle]
pub unsafe extern "C" fn hsa_init() -> hsa_status_t {
    boundary(hsa::STATUS_ERROR, || {
        // SAFETY: hsa_init's prototype.
        // Not an entry point: no warning of its own when missing.
        let Some(f) = (unsafe { shim::hsa_real::<hsa_fn::hsa_init>(hsa_sym::hsa_init) }) else {
            return hsa::STATUS_ERROR_NOT_INITIALIZED;
        };
        // SAFETY: no arguments.
        let rc = unsafe { f() };
        if rc == hsa::STATUS_SUCCESS {
            after(fault::ensure_handler);
        }
        rc
    })
}

/// Used by the fault handler: the name and node of an agent, from the map
/// when it exists, without calling into the runtime otherwise.
pub fn agent_for_report(agent: u64) -> Option<AgentInfo> {
    TOPOLOGY.get().and_then(|t| t.agent(agent)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_cache_answers_consistently() {
        let here = caller_cache_answers_consistently as fn() as usize;
        assert!(!caller_is_rocm(here));
        assert!(!caller_is_rocm(here)); // cached
        assert!(!caller_is_rocm(1));
    }
}
