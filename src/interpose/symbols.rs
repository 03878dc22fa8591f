//! The real HIP and HSA runtimes and the functions rmcp resolves in them:
//! symbol tables generated from `hook_table!` (src/core/entry.rs), one
//! atomic slot per symbol, and the lookups. Below everything else in
//! `interpose`: it takes the configuration as an argument instead of
//! reaching for the process state.

use crate::core::config::Config;
use crate::core::entry::{c_str, hook_table, Entry};
use crate::interpose::runtime::Runtime;
use std::ffi::CStr;
use std::sync::atomic::AtomicUsize;

macro_rules! define_symbols {
    (
        hip_hooks { $($hv:ident $hs:ident ($($ha:ty),*) -> $hr:ty;)* }
        hsa_hooks { $($sv:ident $ss:ident ($($sa:ty),*) -> $sr:ty;)* }
        hsa_other_hooks { $($os:ident ($($oa:ty),*) -> $or:ty;)* }
        hip_calls { $($cs:ident ($($ca:ty),*) -> $cr:ty;)* }
        hsa_calls { $($ds:ident ($($da:ty),*) -> $dr:ty;)* }
    ) => {
        /// Indices into the HIP runtime's symbol table, named after the
        /// symbol: the hooks' real functions, then the ones rmcp only calls.
        /// (One per symbol of the table, used or not.)
        #[allow(non_upper_case_globals, dead_code)]
        pub mod hip_sym {
            #[allow(non_camel_case_types, dead_code)]
            enum I { $($hs,)* $($cs,)* Count }
            $(pub const $hs: usize = I::$hs as usize;)*
            $(pub const $cs: usize = I::$cs as usize;)*
            pub const COUNT: usize = I::Count as usize;
        }

        /// Indices into the HSA runtime's symbol table, as `hip_sym`.
        #[allow(non_upper_case_globals, dead_code)]
        pub mod hsa_sym {
            #[allow(non_camel_case_types, dead_code)]
            enum I { $($ss,)* $($os,)* $($ds,)* Count }
            $(pub const $ss: usize = I::$ss as usize;)*
            $(pub const $os: usize = I::$os as usize;)*
            $(pub const $ds: usize = I::$ds as usize;)*
            pub const COUNT: usize = I::Count as usize;
        }

        /// The real HIP functions' types, named after the symbol.
        #[allow(non_camel_case_types, dead_code)]
        pub mod hip_fn {
            use crate::abi::*;
            use std::ffi::*;
            $(pub type $hs = unsafe extern "C" fn($($ha),*) -> $hr;)*
            $(pub type $cs = unsafe extern "C" fn($($ca),*) -> $cr;)*
        }

        /// The real HSA functions' types, named after the symbol.
        #[allow(non_camel_case_types, dead_code)]
        pub mod hsa_fn {
            use crate::abi::*;
            use std::ffi::*;
            $(pub type $ss = unsafe extern "C" fn($($sa),*) -> $sr;)*
            $(pub type $os = unsafe extern "C" fn($($oa),*) -> $or;)*
            $(pub type $ds = unsafe extern "C" fn($($da),*) -> $dr;)*
        }

        static HIP_NAMES: [&CStr; hip_sym::COUNT] = [
            $(c_str(concat!(stringify!($hs), "\0")),)*
            $(c_str(concat!(stringify!($cs), "\0")),)*
        ];
        static HSA_NAMES: [&CStr; hsa_sym::COUNT] = [
            $(c_str(concat!(stringify!($ss), "\0")),)*
            $(c_str(concat!(stringify!($os), "\0")),)*
            $(c_str(concat!(stringify!($ds), "\0")),)*
        ];
    };
}
hook_table!(define_symbols);

// A HIP entry point's index is its symbol's index: hooks pass `Entry`
// values where a symbol is meant (`policy::Forward::target`).
const _: () = assert!(hip_sym::hipMalloc == Entry::HipMalloc as usize);
const _: () = assert!(hip_sym::hipGetProcAddress == Entry::HipGetProcAddress as usize);
const _: () = assert!(hip_sym::hipGetDevice == Entry::HIP_COUNT);

pub(crate) static HIP_SLOTS: [AtomicUsize; hip_sym::COUNT] =
    [const { AtomicUsize::new(0) }; hip_sym::COUNT];
static HSA_SLOTS: [AtomicUsize; hsa_sym::COUNT] = [const { AtomicUsize::new(0) }; hsa_sym::COUNT];

pub static HIP: Runtime = Runtime::new(
    "HIP",
    b"libamdhip64",
    &[
        c"libamdhip64.so.7",
        c"libamdhip64.so.6",
        c"libamdhip64.so.5",
        c"libamdhip64.so",
    ],
    c"hipMalloc",
    &HIP_NAMES,
    &HIP_SLOTS,
);

pub static HSA: Runtime = Runtime::new(
    "HSA",
    b"libhsa-runtime64",
    &[c"libhsa-runtime64.so.1", c"libhsa-runtime64.so"],
    c"hsa_init",
    &HSA_NAMES,
    &HSA_SLOTS,
);

/// The address of real HIP function `index` (a `hip_sym` constant) once it
/// has been resolved: `Some(None)` when it is missing, `None` when not
/// looked up yet. The hooks' fast path: one load.
#[inline(always)]
pub fn hip_cached(index: usize) -> Option<Option<usize>> {
    Runtime::cached(&HIP_SLOTS[index])
}

/// The address of a real HIP function, or None.
#[inline]
pub fn hip(cfg: &Config, index: usize) -> Option<usize> {
    match hip_cached(index) {
        Some(p) => p,
        None => HIP.sym(index, cfg.hip_library.as_deref()),
    }
}

/// `hip_cached` for HSA function `index` (an `hsa_sym` constant).
#[inline(always)]
pub fn hsa_cached(index: usize) -> Option<Option<usize>> {
    Runtime::cached(&HSA_SLOTS[index])
}

/// The address of a real HSA function, or None.
#[inline]
pub fn hsa(cfg: &Config, index: usize) -> Option<usize> {
    match hsa_cached(index) {
        Some(p) => p,
        None => HSA.sym(index, cfg.hsa_library.as_deref()),
    }
}

/// The real HSA function `index` as `F`, or None when the runtime or the
/// function is missing.
///
/// # Safety
/// `F` must be the C prototype of symbol `index` (an `hsa_fn` type).
#[inline]
pub(crate) unsafe fn hsa_real<F: Copy>(cfg: &Config, index: usize) -> Option<F> {
    debug_assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<usize>());
    // SAFETY: the caller guarantees F is the symbol's function type.
    hsa(cfg, index).map(|p| unsafe { std::mem::transmute_copy::<usize, F>(&p) })
}
