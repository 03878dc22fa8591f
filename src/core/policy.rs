//! The rewrite rules, as pure functions of the request. No I/O, no globals:
//! the hooks ask these functions what to forward and record the answer.
//!
//! Semantics follow the HIP runtime (ROCm/clr, hipamd/src/hip_memory.cpp,
//! where hipHostMalloc picks the memory pool): host memory is coherent when
//! the flags are 0, or carry Coherent, Mapped or NumaUser, or lack
//! NonCoherent while HIP_HOST_COHERENT is set; NonCoherent selects the
//! coarse-grained system pool. The unit tests below hold
//! `rewrite_host_malloc` to an independent statement of that rule over
//! every flag combination.

use crate::abi::{device, host, hsa};
use crate::core::config::Mode;
use crate::core::entry::Entry;

/// Whether rewriting applies to a device under `mode`. `device_is_target`
/// is asked only in auto mode (it may probe the device).
#[inline(always)]
pub fn applies(mode: Mode, device_is_target: impl FnOnce() -> bool) -> bool {
    match mode {
        Mode::Off => false,
        Mode::Force => true,
        Mode::Auto => device_is_target(),
    }
}

/// What a hook does with a call: forward it to `target` (a real function,
/// or for HSA a memory pool) with `flags`; `rewritten` when that differs
/// from what the application asked because of rmcp. The hooks execute this
/// and record it; they decide nothing themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Forward<T> {
    pub target: T,
    pub flags: u32,
    pub rewritten: bool,
}

impl<T> Forward<T> {
    /// `rewrite`'s flags to `to` when the rule rewrote the call, else the
    /// call unchanged (`flags`) to `from`.
    #[inline(always)]
    fn rewrite_or(rewrite: Option<u32>, to: T, from: T, flags: u32) -> Forward<T> {
        match rewrite {
            Some(f) => Forward {
                target: to,
                flags: f,
                rewritten: true,
            },
            None => Forward::unchanged(from, flags),
        }
    }

    /// The call as the application made it.
    #[inline(always)]
    pub const fn unchanged(target: T, flags: u32) -> Forward<T> {
        Forward {
            target,
            flags,
            rewritten: false,
        }
    }
}

/// The target of a call that can only go to the function the application
/// called (the type says which hooks can send a call elsewhere).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Called;

/// What the policy needs to know about a call besides its flags.
#[derive(Clone, Copy, Debug)]
pub struct Rules {
    pub mode: Mode,
    /// HIP_HOST_COHERENT is set (flagless host memory is then coherent).
    pub host_coherent_env: bool,
    /// RMCP_ROCM_CALLERS=include: calls from ROCm's own libraries are
    /// rewritten too.
    pub include_rocm_callers: bool,
}

/// The caller rule, shared by every rewriting hook: a call from a ROCm
/// library is never rewritten (they may need the memory they ask for:
/// RCCL's host flags, polled by GPU kernels; signals; kernel arguments),
/// unless RMCP_ROCM_CALLERS=include. Asked only once the mode and the device
/// would allow a rewrite.
#[inline(always)]
fn caller_may_be_rewritten(rules: Rules, caller_is_rocm: impl FnOnce() -> bool) -> bool {
    rules.include_rocm_callers || !caller_is_rocm()
}

/// hipHostMalloc and hipExtHostAlloc: forwarded to themselves, with the
/// non-coherent flags on a target. `has_memory` is false for
/// requests the runtime answers without memory (NULL out-pointer, size 0):
/// those are forwarded unchanged so the caller gets the runtime's own
/// answer. `any_target`: whether any visible device is a target.
#[inline(always)]
pub fn host_malloc(
    flags: u32,
    has_memory: bool,
    rules: Rules,
    any_target: impl FnOnce() -> bool,
    caller_is_rocm: impl FnOnce() -> bool,
) -> Forward<Called> {
    let rw = if has_memory
        && applies(rules.mode, any_target)
        && caller_may_be_rewritten(rules, caller_is_rocm)
    {
        rewrite_host_malloc(flags, rules.host_coherent_env)
    } else {
        None
    };
    Forward::rewrite_or(rw, Called, Called, flags)
}

/// hipHostAlloc: a rewritten request goes to hipHostMalloc, because
/// hipHostAlloc accepts no NonCoherent flag (same memory, freed by
/// hipHostFree/hipFreeHost).
#[inline(always)]
pub fn host_alloc(
    flags: u32,
    has_memory: bool,
    rules: Rules,
    any_target: impl FnOnce() -> bool,
    caller_is_rocm: impl FnOnce() -> bool,
) -> Forward<Entry> {
    let rw = if has_memory
        && applies(rules.mode, any_target)
        && caller_may_be_rewritten(rules, caller_is_rocm)
    {
        rewrite_host_alloc(flags, rules.host_coherent_env)
    } else {
        None
    };
    Forward::rewrite_or(rw, Entry::HipHostMalloc, Entry::HipHostAlloc, flags)
}

/// hipMemAllocHost(ptr, size) is the runtime's hipHostMalloc(ptr, size, 0),
/// made inside the runtime where a hipHostMalloc hook cannot see it; on a
/// target it becomes hipHostMalloc(ptr, size, NonCoherent). Its requested
/// flags are 0.
#[inline(always)]
pub fn mem_alloc_host(
    has_memory: bool,
    rules: Rules,
    any_target: impl FnOnce() -> bool,
    caller_is_rocm: impl FnOnce() -> bool,
) -> Forward<Entry> {
    let rw = (has_memory
        && applies(rules.mode, any_target)
        && caller_may_be_rewritten(rules, caller_is_rocm))
    .then_some(MEM_ALLOC_HOST_REWRITE);
    Forward::rewrite_or(rw, Entry::HipHostMalloc, Entry::HipMemAllocHost, 0)
}

/// hipExtMallocWithFlags: Finegrained and Uncached become Default on a
/// target device. Whether the device is a target is asked first, whatever
/// the request.
#[inline(always)]
pub fn ext_malloc(
    flags: u32,
    has_memory: bool,
    rules: Rules,
    device_is_target: impl FnOnce() -> bool,
    caller_is_rocm: impl FnOnce() -> bool,
) -> Forward<Called> {
    let rw = if applies(rules.mode, device_is_target)
        && has_memory
        && caller_may_be_rewritten(rules, caller_is_rocm)
    {
        rewrite_ext_malloc(flags)
    } else {
        None
    };
    Forward::rewrite_or(rw, Called, Called, flags)
}

/// hipMallocManaged: always forwarded unchanged; true when the returned
/// range is then to be advised coarse-grained (hipMemAdvise SetCoarseGrain).
#[inline(always)]
pub fn advise_managed_coarse(
    rules: Rules,
    device_is_target: impl FnOnce() -> bool,
    caller_is_rocm: impl FnOnce() -> bool,
) -> bool {
    applies(rules.mode, device_is_target) && caller_may_be_rewritten(rules, caller_is_rocm)
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
#[inline(always)]
pub fn rewrite_host_malloc(flags: u32, host_coherent_env: bool) -> Option<u32> {
    // The common request (flags 0: PyTorch's pinned memory) decided first,
    // in two instructions; the general rule gives the same answer.
    if flags == 0 {
        return Some(host::NON_COHERENT);
    }
    (host_flags_are_ours_to_rewrite(flags) && host_request_is_coherent(flags, host_coherent_env))
        .then(|| non_coherent(flags))
}

/// hipHostAlloc accepts only Portable|Mapped|WriteCombined, so a rewritten
/// request cannot go back to hipHostAlloc: it goes to hipHostMalloc with the
/// returned flags. None: forward to hipHostAlloc unchanged.
#[inline(always)]
pub fn rewrite_host_alloc(flags: u32, host_coherent_env: bool) -> Option<u32> {
    // Flags 0 first, as in `rewrite_host_malloc`.
    if flags == 0 {
        return Some(host::NON_COHERENT);
    }
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
    applies(mode, || agent_is_target)
        && pool.on_gpu
        && pool.is_fine_grained()
        && !pool.is_kernarg()
        && !caller_is_rocm
}

/// A pool as mapped from the runtime, as far as the redirect needs it.
#[derive(Clone, Copy, Debug)]
pub struct Pool {
    pub handle: u64,
    pub kind: PoolKind,
    /// The same agent's coarse-grained pool and its GLOBAL_FLAGS.
    pub coarse_sibling: Option<(u64, u32)>,
    /// The pool's agent is a targeted GPU.
    pub agent_target: bool,
}

/// hsa_amd_memory_pool_allocate: the pool to allocate from, with its
/// GLOBAL_FLAGS as `flags` (in HSA the pool carries the coherence).
/// `caller_is_rocm` is asked only when the pool has a coarse sibling.
#[inline(always)]
pub fn hsa_pool(mode: Mode, pool: Pool, caller_is_rocm: impl FnOnce() -> bool) -> Forward<u64> {
    match pool.coarse_sibling {
        Some((sibling, flags))
            if redirect_hsa_pool(mode, pool.agent_target, pool.kind, caller_is_rocm()) =>
        {
            Forward::rewrite_or(Some(flags), sibling, pool.handle, 0)
        }
        _ => Forward::unchanged(pool.handle, pool.kind.global_flags),
    }
}

/// Library base names (before ".so", "-" or "_") that belong to ROCm, one
/// per line (`#` comments). Allocations made from code in these libraries
/// are never rewritten. librmcp-audit.so is compiled with the same file
/// (build.rs), so the audit mode and the HSA caller check agree.
const ROCM_LIBRARY_LIST: &str = include_str!("../rocm_libraries.txt");

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
        assert!(applies(Mode::Auto, || true));
        assert!(!applies(Mode::Auto, || false));
        assert!(applies(Mode::Force, || unreachable!("not asked")));
        assert!(!applies(Mode::Off, || unreachable!("not asked")));
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

    const AUTO: Rules = Rules {
        mode: Mode::Auto,
        host_coherent_env: false,
        include_rocm_callers: false,
    };

    /// The application's call (not a ROCm library); never asked when
    /// nothing would be rewritten.
    fn app() -> bool {
        false
    }

    #[test]
    fn decisions_name_the_function_the_call_goes_to() {
        let f = host_malloc(0, true, AUTO, || true, app);
        assert_eq!((f.flags, f.rewritten), (NON_COHERENT, true));
        let unchanged = Forward::unchanged(Called, 0);
        let not_asked = || -> bool { unreachable!("caller not asked") };
        assert_eq!(
            host_malloc(0, false, AUTO, || unreachable!(), not_asked),
            unchanged
        );
        assert_eq!(host_malloc(0, true, AUTO, || false, not_asked), unchanged);
        // hipHostAlloc has no NonCoherent flag: a rewrite goes to hipHostMalloc.
        let f = host_alloc(MAPPED, true, AUTO, || true, app);
        assert_eq!(f.target, Entry::HipHostMalloc);
        assert_eq!((f.flags, f.rewritten), (MAPPED | NON_COHERENT, true));
        let f = host_alloc(0x10, true, AUTO, || true, app);
        assert_eq!(f, Forward::unchanged(Entry::HipHostAlloc, 0x10));
        // The hipHostAlloc hook tells the two targets apart by `rewritten`.
        for flags in (0..64).chain([NON_COHERENT, COHERENT, u32::MAX]) {
            for target in [true, false] {
                let f = host_alloc(flags, true, AUTO, || target, app);
                assert_eq!(f.target == Entry::HipHostMalloc, f.rewritten, "{flags:#x}");
            }
        }
        let f = mem_alloc_host(true, AUTO, || true, app);
        assert_eq!(
            (f.target, f.flags, f.rewritten),
            (Entry::HipHostMalloc, NON_COHERENT, true)
        );
        assert_eq!(
            mem_alloc_host(true, AUTO, || false, not_asked),
            Forward::unchanged(Entry::HipMemAllocHost, 0)
        );
        // The device is asked about even for a request without memory.
        let mut asked = false;
        let f = ext_malloc(
            device::FINEGRAINED,
            false,
            AUTO,
            || {
                asked = true;
                true
            },
            not_asked,
        );
        assert!(asked);
        assert_eq!(f, Forward::unchanged(Called, 1));
        assert!(advise_managed_coarse(AUTO, || true, app));
        assert!(!advise_managed_coarse(AUTO, || false, not_asked));
    }

    #[test]
    fn rocm_libraries_get_what_they_ask_for_unless_included() {
        let rocm = || true;
        let include = Rules {
            include_rocm_callers: true,
            ..AUTO
        };
        let force = Rules {
            mode: Mode::Force,
            ..AUTO
        };
        // RCCL's host flags and cross-GPU flags, from RCCL: untouched.
        assert_eq!(
            host_malloc(MAPPED, true, force, || true, rocm),
            Forward::unchanged(Called, MAPPED)
        );
        assert_eq!(
            ext_malloc(device::FINEGRAINED, true, force, || true, rocm),
            Forward::unchanged(Called, device::FINEGRAINED)
        );
        assert_eq!(
            host_alloc(0, true, AUTO, || true, rocm),
            Forward::unchanged(Entry::HipHostAlloc, 0)
        );
        assert_eq!(
            mem_alloc_host(true, AUTO, || true, rocm),
            Forward::unchanged(Entry::HipMemAllocHost, 0)
        );
        assert!(!advise_managed_coarse(AUTO, || true, rocm));
        // The same calls from the application, or with the switch: rewritten.
        for (rules, caller) in [(AUTO, false), (include, true)] {
            let is = || caller;
            assert!(host_malloc(MAPPED, true, rules, || true, is).rewritten);
            assert!(ext_malloc(device::FINEGRAINED, true, rules, || true, is).rewritten);
            assert!(host_alloc(0, true, rules, || true, is).rewritten);
            assert!(mem_alloc_host(true, rules, || true, is).rewritten);
            assert!(advise_managed_coarse(rules, || true, is));
        }
        // With the switch the caller is not even looked up.
        assert!(host_malloc(0, true, include, || true, || unreachable!()).rewritten);
    }

    #[test]
    fn hsa_decision_names_the_pool() {
        let fine = Pool {
            handle: 7,
            kind: PoolKind {
                global_flags: hsa::GLOBAL_FLAG_FINE_GRAINED,
                on_gpu: true,
            },
            coarse_sibling: Some((9, hsa::GLOBAL_FLAG_COARSE_GRAINED)),
            agent_target: true,
        };
        let f = hsa_pool(Mode::Auto, fine, || false);
        assert_eq!(
            (f.target, f.flags, f.rewritten),
            (9, hsa::GLOBAL_FLAG_COARSE_GRAINED, true)
        );
        let from_rocm = hsa_pool(Mode::Auto, fine, || true);
        assert_eq!(
            from_rocm,
            Forward::unchanged(7, hsa::GLOBAL_FLAG_FINE_GRAINED)
        );
        let lonely = Pool {
            coarse_sibling: None,
            ..fine
        };
        assert_eq!(
            hsa_pool(Mode::Force, lonely, || unreachable!(
                "not asked without a sibling"
            )),
            Forward::unchanged(7, hsa::GLOBAL_FLAG_FINE_GRAINED)
        );
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
