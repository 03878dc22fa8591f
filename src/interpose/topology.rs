//! The HSA topology: agents and their global memory pools, mapped once
//! from an initialised runtime. The HSA allocation hook asks it where a
//! pool's coarse-grained sibling is; the fault handler asks it an agent's
//! name and node.

use crate::abi::{hsa, hsa_agent_t, hsa_amd_memory_pool_t, hsa_status_t};
use crate::core::config::Config;
use crate::core::policy::PoolKind;
use crate::core::sync::InitOnce;
use crate::interpose::symbols::{hsa_fn, hsa_real, hsa_sym};
use once_cell::sync::OnceCell;
use std::ffi::c_void;

/// One memory pool with its agent, as mapped once from the runtime.
#[derive(Clone, Copy, Debug)]
pub struct PoolInfo {
    pub pool: u64,
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
pub fn topology(cfg: &Config) -> Option<&'static Topology> {
    if let Some(t) = TOPOLOGY.get() {
        return Some(t);
    }
    TOPOLOGY_ONCE.call(|| {
        if let Some(t) = map_topology(cfg) {
            let _ = TOPOLOGY.set(t);
        }
    });
    TOPOLOGY.get()
}

fn map_topology(cfg: &Config) -> Option<Topology> {
    // SAFETY: each F below is the prototype of the named symbol.
    let (iterate_agents, agent_info, iterate_pools, pool_info) = unsafe {
        (
            hsa_real::<hsa_fn::hsa_iterate_agents>(cfg, hsa_sym::hsa_iterate_agents)?,
            hsa_real::<hsa_fn::hsa_agent_get_info>(cfg, hsa_sym::hsa_agent_get_info)?,
            hsa_real::<hsa_fn::hsa_amd_agent_iterate_memory_pools>(
                cfg,
                hsa_sym::hsa_amd_agent_iterate_memory_pools,
            )?,
            hsa_real::<hsa_fn::hsa_amd_memory_pool_get_info>(
                cfg,
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
        info.target = is_gpu && cfg.targets.contains_name(info.name_str());
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

/// Used by the fault handler: the HIP device ordinal of a GPU agent, which is
/// its position among the GPU agents in the runtime's order (HIP numbers the
/// GPUs ROCr shows it; HIP_VISIBLE_DEVICES renumbers them, see the report).
pub fn gpu_ordinal(agent: u64) -> Option<i32> {
    let t = TOPOLOGY.get()?;
    t.agents
        .iter()
        .filter(|a| a.is_gpu)
        .position(|a| a.agent == agent)
        .map(|i| i as i32)
}

/// Used by the fault handler: the name and node of an agent, from the map
/// when it exists, without calling into the runtime otherwise.
pub fn agent_for_report(agent: u64) -> Option<AgentInfo> {
    TOPOLOGY.get().and_then(|t| t.agent(agent)).copied()
}
