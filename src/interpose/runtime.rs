//! Finding the real ROCm runtimes (libamdhip64, libhsa-runtime64) that the
//! process uses, and resolving their symbols. This is the only module that
//! talks to the dynamic loader.
//!
//! Search order (first hit wins):
//! 1. a copy already loaded under any name (.so.5/.6/.7, or a copy bundled in
//!    a Python wheel), found with dl_iterate_phdr and pinned with
//!    dlopen(RTLD_NOLOAD);
//! 2. dlsym(RTLD_NEXT), which finds copies in the global scope (NULL when the
//!    runtime came in through dlopen(RTLD_LOCAL), hence step 1);
//! 3. RMCP_HIP_LIBRARY / RMCP_HSA_LIBRARY;
//! 4. the default sonames in the directories the loader searches for the
//!    main program's own libraries (its RUNPATH/RPATH, LD_LIBRARY_PATH, the
//!    system directories): a program linked `-lrmcp -lamdhip64` whose HIP
//!    calls are all hooked loses libamdhip64 from its NEEDED entries under
//!    `--as-needed` (gcc's default on Debian), and then only its RUNPATH
//!    says where the runtime is;
//! 5. the default sonames, as dlopen from librmcp finds them.
//!
//! Steps 3 and 4 only run when no copy is loaded: rmcp never brings a second
//! runtime into a process. Handles are resolved once and cached; function
//! pointers are cached per symbol in atomics.

use crate::core::sync::InitOnce;
use std::ffi::{c_char, c_int, c_void, CStr, CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// A runtime library rmcp forwards to.
pub struct Runtime {
    /// Human name for messages ("HIP", "HSA").
    pub what: &'static str,
    /// File names start with this ("libamdhip64").
    stem: &'static [u8],
    /// Default sonames, newest first.
    sonames: &'static [&'static CStr],
    /// A symbol every version exports, for the RTLD_NEXT probe.
    probe: &'static CStr,
    /// Symbol names, indexed by the runtime's symbol enum.
    names: &'static [&'static CStr],
    once: InitOnce,
    handle: AtomicPtr<c_void>,
    /// 0 = not looked up yet, 1 = absent, else the address.
    syms: &'static [AtomicUsize],
}

/// A symbol slot's value before the symbol is looked up.
pub(crate) const NOT_LOOKED_UP: usize = 0;
/// A symbol slot's value when the runtime lacks the symbol.
pub(crate) const ABSENT: usize = 1;
/// Slot values from this one up are addresses (the launch hooks' assembly
/// takes it as a `const` operand: `cmp` and `jb` to the slow path).
pub(crate) const FIRST_ADDRESS: usize = 2;
// Every value below FIRST_ADDRESS is one of the two above.
const _: () = assert!(NOT_LOOKED_UP == 0 && ABSENT == 1 && FIRST_ADDRESS == 2);

/// Where the runtime was found, for the debug log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Found {
    AlreadyLoaded,
    RtldNext,
    EnvPath,
    ProgramSearchPath,
    DefaultSoname,
}

impl Runtime {
    pub const fn new(
        what: &'static str,
        stem: &'static [u8],
        sonames: &'static [&'static CStr],
        probe: &'static CStr,
        names: &'static [&'static CStr],
        syms: &'static [AtomicUsize],
    ) -> Runtime {
        Runtime {
            what,
            stem,
            sonames,
            probe,
            names,
            once: InitOnce::new(),
            handle: AtomicPtr::new(std::ptr::null_mut()),
            syms,
        }
    }

    /// The runtime's handle, finding it on first use. None when there is no
    /// runtime, or when called re-entrantly while rmcp is loading it.
    pub fn handle(&self, env_path: Option<&OsStr>) -> Option<*mut c_void> {
        self.once.call(|| self.resolve(env_path));
        let h = self.handle.load(Ordering::Acquire);
        (!h.is_null()).then_some(h)
    }

    /// True when a copy of this runtime is mapped into the process, without
    /// loading anything.
    /// The file the runtime was loaded from (as the loader names it), or
    /// None when it is not in the process. Never loads it.
    pub fn loaded_path(&self, env_path: Option<&OsStr>) -> Option<CString> {
        if !self.is_loaded() {
            return None;
        }
        path_of_handle(self.handle(env_path)?, self.probe)
    }

    pub fn is_loaded(&self) -> bool {
        !self.handle.load(Ordering::Acquire).is_null() || !loaded_copies(self.stem).is_empty()
    }

    /// The address of symbol `index` once it has been looked up: `Some(None)`
    /// when it is known to be missing, `None` when not looked up yet. One
    /// atomic load: the hooks' fast path.
    #[inline(always)]
    pub fn cached_sym(&self, index: usize) -> Option<Option<usize>> {
        Runtime::cached(&self.syms[index])
    }

    /// `cached_sym` on the slot itself, for callers that can name the
    /// static slot array (no load of `syms`, no bounds check).
    #[inline(always)]
    pub fn cached(slot: &AtomicUsize) -> Option<Option<usize>> {
        match slot.load(Ordering::Acquire) {
            NOT_LOOKED_UP => None,
            ABSENT => Some(None),
            p => Some(Some(p)),
        }
    }

    /// The address of symbol `index` in the real runtime, or None if the
    /// runtime or the symbol is missing.
    #[inline]
    pub fn sym(&self, index: usize, env_path: Option<&OsStr>) -> Option<usize> {
        match self.cached_sym(index) {
            Some(p) => p,
            None => self.look_up(index, env_path),
        }
    }

    #[cold]
    #[inline(never)]
    fn look_up(&self, index: usize, env_path: Option<&OsStr>) -> Option<usize> {
        let handle = self.handle(env_path)?;
        // SAFETY: handle came from dlopen and is never closed; the name is a
        // NUL-terminated constant.
        let p = unsafe { libc::dlsym(handle, self.names[index].as_ptr()) } as usize;
        // Here the loader lock is taken anyway, and no rmcp lock is held
        // (a thread inside a library constructor, holding the loader lock,
        // may call a hook): the place to find the vDSO's clock, once.
        crate::core::sync::use_vdso_clock();
        // A runtime that hands back rmcp's own hook (RMCP_HIP_LIBRARY naming
        // librmcp.so, say) would make every forward recurse forever.
        let p = if p == 0 || is_inside_rmcp(p) {
            ABSENT
        } else {
            p
        };
        self.syms[index].store(p, Ordering::Release);
        (p >= FIRST_ADDRESS).then_some(p)
    }

    /// Fork child: a resolution interrupted by fork starts again.
    pub fn after_fork_in_child(&self) {
        self.once.reset_if_running();
    }

    fn resolve(&self, env_path: Option<&OsStr>) {
        let (handle, found) = match self.find(env_path) {
            Some(x) => x,
            None => {
                log::debug!("no {} runtime in this process", self.what);
                return;
            }
        };
        let path = path_of_handle(handle, self.probe);
        log::debug!(
            "{} runtime: {} (found {})",
            self.what,
            path.as_deref()
                .map(|p| p.to_string_lossy())
                .unwrap_or("?".into()),
            match found {
                Found::AlreadyLoaded => "already loaded",
                Found::RtldNext => "through RTLD_NEXT",
                Found::EnvPath => "through the environment",
                Found::ProgramSearchPath => "in the main program's library search path",
                Found::DefaultSoname => "by its default soname",
            }
        );
        self.handle.store(handle, Ordering::Release);
    }

    fn find(&self, env_path: Option<&OsStr>) -> Option<(*mut c_void, Found)> {
        let copies = loaded_copies(self.stem);
        if copies.len() > 1 {
            log::warn!(
                "{} runtime is loaded more than once ({}); forwarding to the first",
                self.what,
                copies
                    .iter()
                    .map(|c| c.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        for path in &copies {
            if let Some(h) = dlopen(path, libc::RTLD_NOW | libc::RTLD_NOLOAD) {
                return Some((h, Found::AlreadyLoaded));
            }
        }
        // SAFETY: RTLD_NEXT with a constant NUL-terminated name.
        let next = unsafe { libc::dlsym(libc::RTLD_NEXT, self.probe.as_ptr()) };
        if !next.is_null() {
            if let Some(h) = object_of(next as usize)
                .and_then(|p| dlopen(&p, libc::RTLD_NOW | libc::RTLD_NOLOAD))
            {
                return Some((h, Found::RtldNext));
            }
        }
        if let Some(p) = env_path {
            match CString::new(p.as_bytes())
                .ok()
                .and_then(|c| dlopen(&c, libc::RTLD_NOW | libc::RTLD_LOCAL))
            {
                Some(h) => return Some((h, Found::EnvPath)),
                None => log::warn!(
                    "could not load the {} runtime named by the environment ({}): {}",
                    self.what,
                    p.to_string_lossy(),
                    last_dlerror()
                ),
            }
        }
        for dir in program_search_path() {
            for name in self.sonames {
                let mut path = dir.as_bytes().to_vec();
                path.push(b'/');
                path.extend_from_slice(name.to_bytes());
                let Ok(path) = CString::new(path) else {
                    continue;
                };
                if let Some(h) = dlopen(&path, libc::RTLD_NOW | libc::RTLD_LOCAL) {
                    return Some((h, Found::ProgramSearchPath));
                }
            }
        }
        for name in self.sonames {
            if let Some(h) = dlopen(name, libc::RTLD_NOW | libc::RTLD_LOCAL) {
                return Some((h, Found::DefaultSoname));
            }
        }
        None
    }
}

/// The directories the dynamic loader searches for the main program's
/// dependencies, in its order (dlinfo RTLD_DI_SERINFO on the main program:
/// RPATH, LD_LIBRARY_PATH, RUNPATH, system directories; `$ORIGIN` already
/// expanded). Empty if the loader cannot say.
fn program_search_path() -> Vec<CString> {
    /// glibc's Dl_serpath and the head of Dl_serinfo (<dlfcn.h>).
    #[repr(C)]
    struct SerPath {
        name: *const c_char,
        flags: u32,
    }
    #[repr(C)]
    struct SerInfo {
        size: usize,
        count: u32,
    }
    // SAFETY: dlopen(NULL) returns the main program's handle; no file is
    // loaded.
    let main = unsafe { libc::dlopen(std::ptr::null(), libc::RTLD_LAZY) };
    if main.is_null() {
        return Vec::new();
    }
    let mut head = SerInfo { size: 0, count: 0 };
    // SAFETY: SERINFOSIZE fills the two leading fields of Dl_serinfo.
    if unsafe {
        libc::dlinfo(
            main,
            libc::RTLD_DI_SERINFOSIZE,
            (&mut head as *mut SerInfo).cast(),
        )
    } != 0
        || head.size < std::mem::size_of::<SerInfo>()
    {
        return Vec::new();
    }
    // u64 words: aligned for the structure; the loader writes the strings
    // after the array, within `size` bytes.
    let mut buf = vec![0u64; head.size.div_ceil(8)];
    let info = buf.as_mut_ptr().cast::<SerInfo>();
    // SAFETY: buf holds `size` bytes, aligned for SerInfo; SERINFO needs
    // size and count filled in as SERINFOSIZE returned them.
    unsafe {
        (*info).size = head.size;
        (*info).count = head.count;
    }
    // SAFETY: as above.
    if unsafe { libc::dlinfo(main, libc::RTLD_DI_SERINFO, info.cast()) } != 0 {
        return Vec::new();
    }
    // The array starts after the header, at the alignment of SerPath.
    let first = std::mem::size_of::<SerInfo>().next_multiple_of(std::mem::align_of::<SerPath>());
    // SAFETY: the loader wrote `count` SerPath entries from `first` on, each
    // naming a NUL-terminated string inside buf.
    (0..head.count as usize)
        .filter_map(|i| unsafe {
            let p = (buf.as_ptr().cast::<u8>().add(first) as *const SerPath).add(i);
            let name = (*p).name;
            (!name.is_null()).then(|| CStr::from_ptr(name).to_owned())
        })
        .collect()
}

/// True when `addr` lies in librmcp itself.
pub fn is_inside_rmcp(addr: usize) -> bool {
    static OWN_BASE: AtomicUsize = AtomicUsize::new(0);
    let mut own = OWN_BASE.load(Ordering::Relaxed);
    if own == 0 {
        own = object_base(is_inside_rmcp as *const c_void).unwrap_or(usize::MAX);
        OWN_BASE.store(own, Ordering::Relaxed);
    }
    object_base(addr as *const c_void) == Some(own)
}

fn object_base(addr: *const c_void) -> Option<usize> {
    let mut info = unsafe_zeroed_dl_info();
    // SAFETY: info is a valid out-pointer; dladdr only reads the address.
    (unsafe { libc::dladdr(addr, &mut info) } != 0).then_some(info.dli_fbase as usize)
}

fn dlopen(path: &CStr, flags: c_int) -> Option<*mut c_void> {
    // SAFETY: path is NUL-terminated; dlopen has no other preconditions.
    let h = unsafe { libc::dlopen(path.as_ptr(), flags) };
    (!h.is_null()).then_some(h)
}

fn last_dlerror() -> String {
    // SAFETY: dlerror returns NULL or a NUL-terminated thread-local string.
    let e = unsafe { libc::dlerror() };
    if e.is_null() {
        "unknown error".into()
    } else {
        // SAFETY: non-NULL, NUL-terminated, valid until the next dl* call.
        unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
    }
}

/// The file name of the shared object containing `addr`.
pub fn object_of(addr: usize) -> Option<CString> {
    let mut info: libc::Dl_info = unsafe_zeroed_dl_info();
    // SAFETY: info is a valid out-pointer; dladdr only reads the address.
    if unsafe { libc::dladdr(addr as *const c_void, &mut info) } == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dli_fname is a NUL-terminated string owned by the loader.
    Some(unsafe { CStr::from_ptr(info.dli_fname) }.to_owned())
}

fn unsafe_zeroed_dl_info() -> libc::Dl_info {
    libc::Dl_info {
        dli_fname: std::ptr::null(),
        dli_fbase: std::ptr::null_mut(),
        dli_sname: std::ptr::null(),
        dli_saddr: std::ptr::null_mut(),
    }
}

fn path_of_handle(handle: *mut c_void, probe: &CStr) -> Option<CString> {
    // SAFETY: handle is a live dlopen handle; probe is NUL-terminated.
    let p = unsafe { libc::dlsym(handle, probe.as_ptr()) };
    if p.is_null() {
        None
    } else {
        object_of(p as usize)
    }
}

/// True when `name` (a path) is a file whose name starts with `stem`
/// followed by ".so" or "-" (wheel-bundled copies may carry a hash).
fn is_copy_of(name: &[u8], stem: &[u8]) -> bool {
    let base = name.rsplit(|&b| b == b'/').next().unwrap_or(name);
    base.strip_prefix(stem)
        .is_some_and(|rest| rest.starts_with(b".so") || rest.starts_with(b"-"))
}

/// Paths of every mapped object that is a copy of the runtime `stem`, in
/// link-map order.
fn loaded_copies(stem: &[u8]) -> Vec<CString> {
    struct Search<'a> {
        stem: &'a [u8],
        found: Vec<CString>,
    }
    unsafe extern "C" fn visit(
        info: *mut libc::dl_phdr_info,
        _size: usize,
        data: *mut c_void,
    ) -> c_int {
        // SAFETY: data is the &mut Search passed below; info is valid for
        // the duration of the callback.
        let search = unsafe { &mut *(data as *mut Search) };
        // SAFETY: as above, info points to a valid dl_phdr_info.
        let name: *const c_char = unsafe { (*info).dlpi_name };
        if !name.is_null() {
            // SAFETY: dlpi_name is NUL-terminated.
            let name = unsafe { CStr::from_ptr(name) };
            if is_copy_of(name.to_bytes(), search.stem)
                && !search.found.iter().any(|f| f.as_c_str() == name)
            {
                search.found.push(name.to_owned());
            }
        }
        0
    }
    let mut search = Search {
        stem,
        found: Vec::new(),
    };
    // SAFETY: visit matches the callback type and only touches `search`.
    unsafe { libc::dl_iterate_phdr(Some(visit), &mut search as *mut Search as *mut c_void) };
    search.found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_runtime_copies_by_file_name() {
        for p in [
            "libamdhip64.so.6",
            "/usr/lib/libamdhip64.so.5.2.21153",
            "/v/torch/lib/libamdhip64.so",
            "/w/libamdhip64-3f2a1b.so",
        ] {
            assert!(is_copy_of(p.as_bytes(), b"libamdhip64"), "{p}");
        }
        for p in [
            "/usr/lib/librmcp.so",
            "libamdhip64fake.so",
            "/libamdhip64/libc.so",
            "",
        ] {
            assert!(!is_copy_of(p.as_bytes(), b"libamdhip64"), "{p}");
        }
    }

    #[test]
    fn the_main_programs_search_path_is_read_from_the_loader() {
        // The test binary has no RUNPATH, but the loader always searches the
        // system directory that holds libc.
        let dirs = program_search_path();
        let libc_dir = loaded_copies(b"libc")
            .first()
            .and_then(|p| {
                let p = std::path::Path::new(OsStr::from_bytes(p.to_bytes()));
                std::fs::canonicalize(p.parent()?).ok()
            })
            .expect("libc's directory");
        assert!(
            dirs.iter().any(|d| {
                std::fs::canonicalize(OsStr::from_bytes(d.to_bytes()))
                    .ok()
                    .as_ref()
                    == Some(&libc_dir)
            }),
            "{dirs:?} lacks {libc_dir:?}"
        );
    }

    #[test]
    fn finds_loaded_libc_by_stem() {
        let found = loaded_copies(b"libc");
        assert!(
            found.iter().any(|p| p.to_bytes().ends_with(b"libc.so.6")),
            "{found:?}"
        );
        assert!(loaded_copies(b"libamdhip64").is_empty());
    }
}
