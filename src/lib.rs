//! rmcp: an allocation-type rewriting shim for ROCm on RDNA1/RDNA2 GPUs.
//!
//! `librmcp.so` interposes the HIP and HSA allocation entry points. On target
//! devices it turns coherent/fine-grained requests into non-coherent/
//! coarse-grained ones, forwards everything else untouched, and keeps a
//! registry of live allocations so a GPU memory fault can be explained.
//!
//! Layout:
//! - `core`: pure, unit-tested code: the hook table (`entry`), the
//!   configuration, the rewrite policy, the registry, the reports, stats and
//!   the fork-safe locks. No loader, no runtime calls.
//! - `interpose`: the layer that talks to the dynamic loader and the
//!   runtimes: finding them (`runtime`, `symbols`), the process state
//!   (`process`), HIP devices and the HSA topology, the exported hooks and
//!   the fault handler.
//! - `capi`: the C API (include/rmcp.h); `abi`: the ROCm ABI facts rmcp
//!   relies on.
//!
//! `unsafe` is where rmcp talks to the loader or C (`interpose`, `capi`) and
//! in the two lock-free primitives of `core::sync` and the registry's
//! fork protocol; every block says why it is sound.
#![allow(non_camel_case_types)]

pub mod abi;
pub mod capi;
pub mod core;
/// The hooks keep the HIP/HSA prototypes of the runtimes' own headers, so
/// they stay out of include/rmcp.h. Crate-private (only `hooks` is
/// re-exported, for the tests' symbol list): the rlib then exports none of
/// its statics, which stay hidden in librmcp.so, so a hook reaches the
/// registry, the statistics, the configuration and the symbol table
/// PC-relative instead of through a GOT load each (issue 17).
/// cbindgen:ignore
pub(crate) mod interpose;

// The paths tests, benches and the CLI use.
pub use crate::core::report_path;
pub use crate::core::{arch, causes, config, entry, policy, registry, report, stats};
pub use crate::interpose::hooks;
