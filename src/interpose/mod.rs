//! The layer that talks to the dynamic loader, the ROCm runtimes and C.
//!
//! Dependencies point one way (each module uses only those below it, and
//! `core`; tests/imports.rs checks the whole library for cycles):
//!
//! ```text
//! hooks            the hook table, EXPORTED, hipGetProcAddress
//!   hip hsa launch the hooks; none uses another
//!   vmm
//!   forward        what every hook does around the forwarded call
//!   nested         what this thread's HIP hook is doing (allocating,
//!                  freeing), for the HSA hooks its real call reaches
//! fault            the GPU memory-fault handler: gathers facts, writes
//!                  the report `core::fault_report` builds
//! launch_state     launch rings, kernel names, launch clock
//! process          configuration, registry, stats, logger, fork/exit
//! topology devices the HSA agents and pools; the HIP devices
//! symbols          the runtimes' symbol tables
//! runtime threads  finding a runtime; the per-thread word
//! ```
//!
//! In detail (`cargo test --test imports -- --nocapture` prints the graph
//! of the whole library): `hooks` -> hip, hsa, launch, vmm, forward,
//! process, symbols; hip -> forward, nested, devices, threads, process,
//! symbols; hsa -> forward, nested, fault, topology, process, symbols;
//! launch -> forward, launch_state, devices, threads, process, symbols,
//! runtime (the layouts its assembly uses); vmm -> forward, nested,
//! threads, process, symbols; nested -> core only; forward -> fault,
//! runtime, topology, process, symbols; `fault` -> launch_state, topology,
//! process, symbols; `launch_state` -> core only; `process` -> devices,
//! threads, symbols (to reset and summarise them) and, in test-counters
//! builds, launch_state; `topology`, `devices` -> symbols; `symbols` ->
//! runtime. `crate::capi` reads `launch_state` and `process`.

pub mod devices;
pub mod fault;
pub mod hooks;
pub mod launch_state;
pub mod process;
pub mod runtime;
pub mod symbols;
pub mod threads;
pub mod topology;
