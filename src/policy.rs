//! The rewrite rules, as pure functions of the request. No I/O, no globals:
//! the hooks ask these functions what to forward and record the answer.
//!
//! Semantics follow the HIP runtime (ROCm/clr hip_memory.cpp), summarised in
//! ../shared/FACTS.md: host memory is coherent when the flags are 0, or carry
//! Coherent, Mapped or NumaUser, or lack NonCoherent while HIP_HOST_COHERENT
//! is set; NonCoherent selects the coarse-grained system pool.

use crate::abi::{device, host, hsa};
use crate::config::Mode;

/// Whether rewriting applies to a device under `mode`.
pub fn applies(mode: Mode, device_is_target: bool) -> bool {
    match mode {
        Mode::Off => false,
        Mode::Force => true,
        Mode::Auto => device_is_target,
    }
}

/// True when the HIP runtime would hand out coherent (fine-grained) host
/// memory for these hipHostMalloc flags.
pub fn host_request_is_coherent(flags: u32, host_coherent_env: bool) -> bool {
    if flags & host::NON_COHERENT != 0 {
        return false;
    }
    flags == 0
        || flags & (host::COHERENT | host::MAPPED | host::NUMA_USER) != 0
        || host_coherent_env
}

/// Flags the runtime would reject or that rmcp does not know: forwarded
/// unchanged so the caller gets the runtime's own answer.
fn host_flags_are_ours_to_rewrite(flags: u32) -> bool {
    let both = host::COHERENT | host::NON_COHERENT;
    flags & !host::KNOWN == 0 && flags & both != both
}

/// The non-coherent form of a coherent request: Coherent cleared,
/// NonCoherent set, Portable/Mapped/WriteCombined/NumaUser kept.
fn non_coherent(flags: u32) -> u32 {
    (flags & !host::COHERENT) | host::NON_COHERENT
}

/// hipHostMalloc and hipExtHostAlloc: the flags to forward instead, or None
/// to forward the request unchanged.
pub fn rewrite_host_malloc(flags: u32, host_coherent_env: bool) -> Option<u32> {
    (host_flags_are_ours_to_rewrite(flags) && host_request_is_coherent(flags, host_coherent_env))
        .then(|| non_coherent(flags))
}

/// hipHostAlloc accepts only Portable|Mapped|WriteCombined, so a rewritten
/// request cannot go back to hipHostAlloc: it goes to hipHostMalloc with the
/// returned flags. None: forward to hipHostAlloc unchanged.
pub fn rewrite_host_alloc(flags: u32, host_coherent_env: bool) -> Option<u32> {
    (flags & !host::HOST_ALLOC_ACCEPTED == 0 && host_request_is_coherent(flags, host_coherent_env))
        .then(|| non_coherent(flags))
}

/// hipMemAllocHost is hipHostMalloc(ptr, size, 0), which is coherent: the
/// rewritten call is hipHostMalloc(ptr, size, NonCoherent).
pub const MEM_ALLOC_HOST_REWRITE: u32 = host::NON_COHERENT;

/// hipExtMallocWithFlags: Finegrained and Uncached become Default;
/// SignalMemory (needs fine-grained memory) and Contiguous stay.
pub fn rewrite_ext_malloc(flags: u32) -> Option<u32> {
    matches!(flags, device::FINEGRAINED | device::UNCACHED).then_some(device::DEFAULT)
}

/// A memory pool as rmcp sees it, for the HSA redirect decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolKind {
    /// HSA_AMD_MEMORY_POOL_INFO_GLOBAL_FLAGS of the pool.
    pub global_flags: u32,
    /// The pool belongs to a GPU agent (not the CPU).
    pub on_gpu: bool,
}

impl PoolKind {
    pub fn is_fine_grained(&self) -> bool {
        self.global_flags
            & (hsa::GLOBAL_FLAG_FINE_GRAINED | hsa::GLOBAL_FLAG_EXTENDED_SCOPE_FINE_GRAINED)
            != 0
    }
    pub fn is_kernarg(&self) -> bool {
        self.global_flags & hsa::GLOBAL_FLAG_KERNARG_INIT != 0
    }
    pub fn is_coarse_grained(&self) -> bool {
        self.global_flags & hsa::GLOBAL_FLAG_COARSE_GRAINED != 0
    }
}

/// hsa_amd_memory_pool_allocate: redirect to the agent's coarse-grained pool
/// only for fine-grained GPU pools, only on targets, and never for calls made
/// by the ROCm libraries themselves (they need fine-grained memory for
/// signals and kernel arguments).
pub fn redirect_hsa_pool(
    mode: Mode,
    agent_is_target: bool,
    pool: PoolKind,
    caller_is_rocm: bool,
) -> bool {
    applies(mode, agent_is_target)
        && pool.on_gpu
        && pool.is_fine_grained()
        && !pool.is_kernarg()
        && !caller_is_rocm
}

/// Library base names (before ".so", "-" or "_") that belong to ROCm, one
/// per line (`#` comments). Allocations made from code in these libraries
/// are never rewritten. librmcp-audit.so is compiled with the same file
/// (build.rs), so the audit mode and the HSA caller check agree.
const ROCM_LIBRARY_LIST: &str = include_str!("rocm_libraries.txt");

fn rocm_library_prefixes() -> impl Iterator<Item = &'static str> {
    ROCM_LIBRARY_LIST
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// True when the shared object at `path` is part of ROCm: by its file name,
/// or because it lives under /opt/rocm.
pub fn is_rocm_library(path: &[u8]) -> bool {
    if path.starts_with(b"/opt/rocm") {
        return true;
    }
    let base = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
    rocm_library_prefixes().any(|p| {
        base.strip_prefix(p.as_bytes()).is_some_and(|rest| {
            rest.starts_with(b".so") || rest.starts_with(b"-") || rest.starts_with(b"_")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::host::*;

    /// Reference statement of the runtime's rule, written independently of
    /// `host_request_is_coherent` to check it over every flag combination.
    fn runtime_coherent(flags: u32, env: bool) -> bool {
        let mut atomics = flags == 0
            || flags & (COHERENT | MAPPED | NUMA_USER) != 0
            || (flags & NON_COHERENT == 0 && env);
        if flags & NON_COHERENT != 0 {
            atomics = false;
        }
        atomics
    }

    /// Every combination of the known host flags plus one unknown bit.
    fn all_host_flag_sets() -> Vec<u32> {
        let bits = [
            PORTABLE,
            MAPPED,
            WRITE_COMBINED,
            NUMA_USER,
            COHERENT,
            NON_COHERENT,
            0x10,
        ];
        (0u32..1 << bits.len())
            .map(|m| {
                bits.iter()
                    .enumerate()
                    .filter(|(i, _)| m & (1 << i) != 0)
                    .fold(0, |a, (_, b)| a | b)
            })
            .collect()
    }

    #[test]
    fn mode_decides_where_rewriting_applies() {
        assert!(applies(Mode::Auto, true));
        assert!(!applies(Mode::Auto, false));
        assert!(applies(Mode::Force, false));
        assert!(!applies(Mode::Off, true));
    }

    #[test]
    fn host_malloc_rewrite_is_exhaustively_right() {
        for env in [false, true] {
            for f in all_host_flag_sets() {
                let out = rewrite_host_malloc(f, env);
                let invalid = f & 0x10 != 0 || (f & COHERENT != 0 && f & NON_COHERENT != 0);
                if invalid || !runtime_coherent(f, env) {
                    assert_eq!(out, None, "flags {f:#x} env {env}");
                    continue;
                }
                let g = out.unwrap_or_else(|| panic!("flags {f:#x} env {env} not rewritten"));
                assert!(!runtime_coherent(g, env), "{f:#x} -> {g:#x} still coherent");
                assert_eq!(g & COHERENT, 0);
                assert_ne!(g & NON_COHERENT, 0);
                // The caller's other wishes are kept.
                assert_eq!(
                    g & (PORTABLE | MAPPED | WRITE_COMBINED | NUMA_USER),
                    f & (PORTABLE | MAPPED | WRITE_COMBINED | NUMA_USER)
                );
            }
        }
    }

    #[test]
    fn pytorch_pinned_memory_becomes_non_coherent() {
        assert_eq!(rewrite_host_malloc(0, false), Some(NON_COHERENT));
        assert_eq!(rewrite_host_malloc(PORTABLE, false), None);
        assert_eq!(
            rewrite_host_malloc(PORTABLE, true),
            Some(PORTABLE | NON_COHERENT)
        );
        assert_eq!(
            rewrite_host_malloc(COHERENT | MAPPED, false),
            Some(MAPPED | NON_COHERENT)
        );
        assert_eq!(rewrite_host_malloc(NON_COHERENT, true), None);
    }

    #[test]
    fn host_alloc_rewrite_only_for_its_accepted_flags() {
        for env in [false, true] {
            for f in all_host_flag_sets() {
                let out = rewrite_host_alloc(f, env);
                if f & !HOST_ALLOC_ACCEPTED != 0 || !runtime_coherent(f, env) {
                    assert_eq!(out, None, "{f:#x}");
                } else {
                    assert_eq!(out, Some(f | NON_COHERENT), "{f:#x}");
                }
            }
        }
    }

    #[test]
    fn ext_malloc_rewrite() {
        assert_eq!(rewrite_ext_malloc(device::DEFAULT), None);
        assert_eq!(rewrite_ext_malloc(device::FINEGRAINED), Some(0));
        assert_eq!(rewrite_ext_malloc(device::UNCACHED), Some(0));
        assert_eq!(rewrite_ext_malloc(device::SIGNAL_MEMORY), None);
        assert_eq!(rewrite_ext_malloc(device::CONTIGUOUS), None);
        for f in 5..64 {
            assert_eq!(rewrite_ext_malloc(f), None);
        }
        assert_eq!(rewrite_ext_malloc(u32::MAX), None);
    }

    #[test]
    fn hsa_redirect_rules() {
        let fine = PoolKind {
            global_flags: hsa::GLOBAL_FLAG_FINE_GRAINED,
            on_gpu: true,
        };
        let ext = PoolKind {
            global_flags: hsa::GLOBAL_FLAG_EXTENDED_SCOPE_FINE_GRAINED,
            on_gpu: true,
        };
        let coarse = PoolKind {
            global_flags: hsa::GLOBAL_FLAG_COARSE_GRAINED,
            on_gpu: true,
        };
        let kernarg = PoolKind {
            global_flags: hsa::GLOBAL_FLAG_KERNARG_INIT | hsa::GLOBAL_FLAG_FINE_GRAINED,
            on_gpu: false,
        };
        let system = PoolKind {
            global_flags: hsa::GLOBAL_FLAG_FINE_GRAINED,
            on_gpu: false,
        };
        assert!(redirect_hsa_pool(Mode::Auto, true, fine, false));
        assert!(redirect_hsa_pool(Mode::Auto, true, ext, false));
        assert!(!redirect_hsa_pool(Mode::Auto, false, fine, false));
        assert!(redirect_hsa_pool(Mode::Force, false, fine, false));
        assert!(!redirect_hsa_pool(Mode::Off, true, fine, false));
        assert!(!redirect_hsa_pool(Mode::Auto, true, fine, true));
        assert!(!redirect_hsa_pool(Mode::Auto, true, coarse, false));
        assert!(!redirect_hsa_pool(Mode::Force, true, kernarg, false));
        assert!(!redirect_hsa_pool(Mode::Force, true, system, false));
    }

    #[test]
    fn rocm_libraries_are_recognised() {
        for p in [
            "/usr/lib/x86_64-linux-gnu/libamdhip64.so.5",
            "/home/u/venv/lib/python3.11/site-packages/torch/lib/libamdhip64.so",
            "/usr/lib/libhsa-runtime64.so.1.5.0",
            "/opt/rocm-6.2.0/lib/librocblas.so.4",
            "libMIOpen.so.1",
            "/x/libhipblaslt.so.0",
        ] {
            assert!(is_rocm_library(p.as_bytes()), "{p}");
        }
        for p in [
            "/usr/lib/librmcp.so",
            "/tmp/app",
            "/usr/lib/libc.so.6",
            "/x/libamdhip64fake.so",
            "",
            "/x/librocblasx.so",
        ] {
            assert!(!is_rocm_library(p.as_bytes()), "{p}");
        }
    }
}
