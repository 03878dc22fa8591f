//! The pure core: what rmcp decides and records, as functions of their
//! inputs. Nothing here calls the loader or a runtime, so all of it is
//! unit-tested directly.

pub mod arch;
pub mod backing;
pub mod causes;
pub mod config;
pub mod demangle;
/// cbindgen:ignore
pub mod entry;
pub mod fault_outcome;
pub mod fault_report;
pub mod hash;
pub mod launches;
pub mod policy;
pub mod registry;
pub mod report;
pub mod report_path;
pub mod stats;
pub mod streams;
/// Crate-private, as `interpose` (see lib.rs): the clock's function pointer
/// and the thread id stay hidden, reached PC-relative.
pub(crate) mod sync;
pub mod vmm;
