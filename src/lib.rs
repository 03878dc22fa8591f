//! rmcp: an allocation-type rewriting shim for ROCm on RDNA1/RDNA2 GPUs.
//!
//! `librmcp.so` interposes the HIP and HSA allocation entry points. On target
//! devices it turns coherent/fine-grained requests into non-coherent/
//! coarse-grained ones, forwards everything else untouched, and keeps a
//! registry of live allocations so a GPU memory fault can be explained.
//!
//! Layout: pure, unit-tested code (`arch`, `config`, `policy`, `registry`,
//! `report`, `entry`, `stats`) and the thin layer that talks to the loader
//! and C (`runtime`, `devices`, `shim`, `hooks`, `capi`), where all `unsafe`
//! lives.
#![allow(non_camel_case_types)]

pub mod abi;
pub mod arch;
pub mod capi;
pub mod causes;
pub mod config;
pub mod devices;
/// cbindgen:ignore
pub mod entry;
pub mod fault;
/// The hooks keep the HIP/HSA prototypes of the runtimes' own headers, so
/// they stay out of include/rmcp.h.
/// cbindgen:ignore
pub mod hooks;
pub mod policy;
pub mod registry;
pub mod report;
pub mod runtime;
pub mod shim;
pub mod stats;
pub mod sync;
