//! rmcp: an allocation-type rewriting shim for ROCm on RDNA1/RDNA2 GPUs.
//!
//! `librmcp.so` interposes the HIP and HSA allocation entry points. On target
//! devices it turns coherent/fine-grained requests into non-coherent/
//! coarse-grained ones, forwards everything else untouched, and keeps a
//! registry of live allocations so a GPU memory fault can be explained.
//!
//! Layout: pure, unit-tested policy (`arch`, `config`, `policy`, `registry`,
//! `report`, `entry`) and the thin unsafe layer that talks to the loader and C
//! (`runtime`, `devices`, `hooks`, `capi`).

pub mod abi;
pub mod arch;
pub mod config;
pub mod entry;
pub mod policy;
pub mod registry;
