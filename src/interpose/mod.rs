//! The layer that talks to the dynamic loader, the ROCm runtimes and C.
//! Dependencies point one way: `hooks` uses everything below it; `fault`
//! uses `topology`, `symbols` and `process`; `devices` and `topology` use
//! `symbols`; `process` (configuration, registry, fork and exit handlers)
//! uses `devices` and `symbols` only to reset and summarise them.

pub mod devices;
pub mod fault;
pub mod hooks;
pub mod process;
pub mod runtime;
pub mod symbols;
pub mod topology;
