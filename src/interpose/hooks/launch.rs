//! Kernel-launch hooks: always forwarded unchanged; a launch is recorded in
//! its device's ring (`crate::interpose::launch_state`), which the fault
//! report and `rmcp_recent_launches` read.
//!
//! These run once per kernel, millions of times in a training job, so the
//! path after the forwarded call is kept to atomics and plain stores: no
//! lock, no allocation, no call into the runtime except the first time a
//! kernel is seen (its name is resolved then, see `resolve_name`), and no
//! `catch_unwind` frame (nothing on it can panic: indices are masked).
//!
//! The device a launch is filed under is its stream's: the stream-creation
//! hooks note each new stream's device in `launch_state::STREAMS`
//! (`core::streams`) and hipStreamDestroy forgets it, so a launch on a
//! stream created on device 1 is filed under device 1 even while the
//! launching thread's current device is 0. The null stream and HIP's
//! special handles (hipStreamLegacy, hipStreamPerThread) run on the
//! thread's current device, tracked by the hipSetDevice hook in the
//! thread's word (`crate::interpose::threads`) together with the thread
//! id, so those launches ask the runtime nothing. A stream rmcp did not see
//! created is asked of the runtime once (hipStreamGetDevice) at its first
//! launch; where the runtime cannot say (ROCm 5.2.3 has no
//! hipStreamGetDevice), its launches go under the thread's current device.
//! Only hipLaunchKernel and hipModuleLaunchKernel have an assembly fast
//! path.
#![allow(non_snake_case)]

use super::forward::{after, real, real_or_return};
use crate::abi::{
    dim3, hipError_t, hipEvent_t, hipFunctionLaunchParams, hipFunction_t, hipGraphExec_t,
    hipLaunchConfig_t, hipLaunchParams, hipStream_t, HIP_LAUNCH_CONFIG, HIP_SUCCESS,
};
use crate::core::demangle::demangle;
use crate::core::entry::Entry;
use crate::core::launches::{self, Launcher, Ring};
use crate::core::streams;
use crate::interpose::devices;
use crate::interpose::launch_state::{self, ring, ticks, NAMES, STREAMS};
use crate::interpose::process;
use crate::interpose::symbols::{self, hip_fn, hip_sym};
use crate::interpose::threads;
use std::ffi::{c_int, c_uint, c_void, CStr};
use std::fmt::Write;

/// The calling thread's word (`launches::thread_word`): id and current HIP
/// device. None when rmcp is disabled (AT_SECURE): nothing is recorded.
#[inline(always)]
fn ctx() -> Option<u64> {
    match threads::word() {
        Some((w, _)) => Some(w),
        None => ctx_slow(),
    }
}

#[cold]
#[inline(never)]
fn ctx_slow() -> Option<u64> {
    if !process::config().enabled {
        return None;
    }
    let w = threads::slow_word();
    if w != 0 {
        return Some(w);
    }
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() } as u32;
    let mut dev = 0;
    after(|| dev = devices::current_device(process::config()).unwrap_or(0));
    let w = launches::thread_word(tid, dev);
    set_word(w);
    launch_state::start_clock();
    Some(w)
}

/// Keeps the thread's word, with its device's ring at hand.
fn set_word(w: u64) {
    threads::set_word(w, ring(launches::word_device(w)) as *const Ring as usize);
}

/// Records a launch before it is forwarded, so that the forward is the
/// hook's last act (the compiler makes it a jump: nothing is kept across
/// the call). Two consequences, both stated in the report's docs: a launch
/// the runtime refuses is recorded too, and a device synchronisation that
/// another thread completes between this record and the forward counts
/// this launch as completed.
#[inline(always)]
fn record(l: Launcher, handle: usize, grid_xy: u64, block_xy: u64, zz: u64, stream: hipStream_t) {
    let Some(w) = ctx() else {
        return;
    };
    let w = on_stream_device(w, stream);
    let who = w | (l as u64) << 48;
    ring(launches::word_device(w)).record_packed(
        who,
        handle,
        grid_xy,
        block_xy,
        zz,
        stream as usize,
        ticks(),
    );
    if !l.is_graph() && !NAMES.seen(handle) {
        resolve_name(l, handle, stream);
    }
}

/// The thread word `w` with `stream`'s device in place of the thread's
/// current device: a launch (or a synchronisation) on an explicit stream
/// belongs to the device the stream was created on. The null stream and
/// HIP's special handles (`streams::SPECIAL_MAX`) run on the thread's
/// current device, and so does a stream whose device neither the table nor
/// the runtime knows.
#[inline(always)]
fn on_stream_device(w: u64, stream: hipStream_t) -> u64 {
    let s = stream as usize;
    if s <= streams::SPECIAL_MAX {
        return w;
    }
    let dev = match STREAMS.get(s) {
        Some(d) => d,
        None => match ask_stream_device(stream) {
            Some(d) => d,
            None => return w,
        },
    };
    launches::thread_word(w as u32, dev)
}

/// A stream rmcp did not see created (before rmcp was loaded, or through a
/// path that bypassed the hooks): its device is asked of the runtime once
/// (hipStreamGetDevice, ROCm >= 5.5) and kept. None when the runtime cannot
/// say.
#[cold]
#[inline(never)]
fn ask_stream_device(stream: hipStream_t) -> Option<i32> {
    let mut dev = None;
    after(|| {
        dev = runtime_stream_device(stream);
        if let Some(d) = dev {
            STREAMS.insert(stream as usize, d);
        }
    });
    dev
}

/// The runtime's answer to hipStreamGetDevice(stream), if it has the
/// function and knows the stream.
fn runtime_stream_device(stream: hipStream_t) -> Option<i32> {
    let f = symbols::hip(process::config(), hip_sym::hipStreamGetDevice)?;
    let mut d: c_int = -1;
    // SAFETY: hipStreamGetDevice(hipStream_t, int*); the caller just handed
    // this stream to the runtime, which answers an unknown one with an error.
    let rc = unsafe { std::mem::transmute::<usize, hip_fn::hipStreamGetDevice>(f)(stream, &mut d) };
    (rc == HIP_SUCCESS && d >= 0).then_some(d)
}

#[inline(always)]
fn xy(d: dim3) -> u64 {
    d.x as u64 | (d.y as u64) << 32
}

#[inline(always)]
fn zz(g: u32, b: u32) -> u64 {
    g as u64 | (b as u64) << 32
}

/// First launch of a kernel: ask the runtime for its name (hipKernelNameRef
/// for a hipFunction_t, hipKernelNameRefByPtr for a host stub), demangle it,
/// and keep it. Done here, in the launching thread, because the fault
/// handler must not call into HIP: it runs on the HSA runtime's event
/// thread while an application thread may hold HIP's locks.
#[cold]
#[inline(never)]
fn resolve_name(l: Launcher, handle: usize, stream: hipStream_t) {
    after(|| {
        NAMES.insert(handle, |w| {
            let cfg = process::config();
            let p = if l.takes_function() {
                symbols::hip(cfg, hip_sym::hipKernelNameRef).map(|f| {
                    // SAFETY: hipKernelNameRef(hipFunction_t); the runtime
                    // just accepted this function for a launch.
                    unsafe {
                        std::mem::transmute::<usize, hip_fn::hipKernelNameRef>(f)(
                            handle as hipFunction_t,
                        )
                    }
                })
            } else {
                symbols::hip(cfg, hip_sym::hipKernelNameRefByPtr).map(|f| {
                    // SAFETY: hipKernelNameRefByPtr(host stub, stream); the
                    // runtime just launched this stub on this stream.
                    unsafe {
                        std::mem::transmute::<usize, hip_fn::hipKernelNameRefByPtr>(f)(
                            handle as *const c_void,
                            stream,
                        )
                    }
                })
            };
            let Some(p) = p.filter(|p| !p.is_null()) else {
                return false;
            };
            // SAFETY: the runtime returns a NUL-terminated name it owns.
            let raw = unsafe { CStr::from_ptr(p) }.to_string_lossy();
            match demangle(&raw) {
                Some(d) => {
                    let _ = w.write_str(&d);
                    true
                }
                None => {
                    let _ = w.write_str(&raw);
                    false
                }
            }
        });
    });
}

#[inline(always)]
fn count_slow_launch() {
    #[cfg(feature = "test-counters")]
    launch_state::SLOW_LAUNCHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// Bytes the fast paths push (rbx, r12) before they read stack arguments.
#[cfg(target_arch = "x86_64")]
const PUSHED: usize = 2 * std::mem::size_of::<u64>();

/// Defines a launch hook whose common case is written in assembly and ends
/// in a jump to the runtime, which then returns straight to the caller: a
/// Rust hook has to keep the arguments alive across the forwarded call and
/// spent ~75 instructions per launch, this spends under 60 on the null
/// stream and about 70 on a created stream, whose device it looks up
/// (bench/run.sh). It does exactly what `$slow` does when everything is
/// already set up: the runtime's function resolved, the thread's word in
/// its slot (`crate::interpose::threads`), the kernel's name known
/// (`NameCache::seen`), an explicit stream in its home entry of `STREAMS`
/// (`core::streams`: its device replaces the thread's in the word and
/// picks the ring); then it records the launch as `Ring::record_packed`
/// does (odd sequence number, fields, even sequence number; x86 stores are
/// ordered, so no fence instruction is needed). Anything else jumps to
/// `$slow` with the arguments intact. Both hooks share every instruction
/// but `$stream`, which loads the hook's stream argument into r10 (with
/// only rbx pushed), and `$store`, which stores the hook's own arguments
/// (grid, block, the z pair and the stream) into the slot at
/// `r12 + {slots}`; every layout number is a `const` operand from the
/// module that owns the layout, where it is asserted against the Rust
/// types.
///
/// Registers: the arguments are live in rdi, rsi, rdx, rcx, r8, r9 and on
/// the stack; rax, r10, r11 are free; rbx and r12 are saved around their
/// use (`PUSHED` bytes), so stack arguments are at `[rsp + {pushed} + entry
/// offset]`. rdx (whatever it holds) is kept in ebx across rdtsc; only its
/// low half is an argument in either hook.
macro_rules! launch_fast_path {
    (
        $(#[$meta:meta])*
        fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty;
        runtime: $sym:expr,
        launcher: $launcher:expr,
        slow: $slow:path,
        stream: $stream:literal,
        store: [$($store:literal),* $(,)?]
    ) => {
        $(#[$meta])*
        #[cfg(all(target_arch = "x86_64", feature = "test-counters"))]
        #[unsafe(naked)]
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            launch_fast_path!(@asm $sym, $launcher, $slow, $stream, [$($store),*],
                "lock inc qword ptr [rip + {fast_launches}]",
                fast_launches = sym launch_state::FAST_LAUNCHES,
            )
        }

        $(#[$meta])*
        #[cfg(all(target_arch = "x86_64", not(feature = "test-counters")))]
        #[unsafe(naked)]
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            launch_fast_path!(@asm $sym, $launcher, $slow, $stream, [$($store),*], "",)
        }
    };
    (@asm $sym:expr, $launcher:expr, $slow:path, $stream:literal, [$($store:literal),*], $count:literal, $($count_operand:tt)*) => {
        core::arch::naked_asm!(
            // The runtime's function: below FIRST_ADDRESS, not looked up or missing.
            "mov rax, qword ptr [rip + {hip_slots} + {sym_offset}]",
            "cmp rax, {first_address}",
            "jb 2f",
            // The thread's slot: TABLE[top_bits(tp)], owned if key == tp.
            "mov r10, qword ptr fs:[0]",
            "movabs r11, {hash}",
            "imul r11, r10",
            "shr r11, {table_shift}",
            "shl r11, {thread_slot_shift}",
            "push rbx",
            "lea rbx, [rip + {table}]",
            "add r11, rbx",
            "cmp r10, qword ptr [r11 + {thread_key}]",
            "jne 1f",
            // The kernel's name is known: NAMES entry top_bits(f) holds f.
            "movabs r10, {hash}",
            "imul r10, rdi",
            "shr r10, {name_shift}",
            "imul r10, r10, {name_size}",
            "lea rbx, [rip + {names}]",
            "cmp rdi, qword ptr [rbx + r10 + {name_key}]",
            "jne 1f",
            // The ring (aux) and the word of the thread's current device.
            "mov rbx, qword ptr [r11 + {thread_aux}]",
            "mov r11, qword ptr [r11 + {thread_word}]",
            // An explicit stream: its device's, from its home entry in
            // STREAMS (`core::streams`); not there: the slow path. The null
            // stream and HIP's special handles keep the thread's device.
            $stream,
            "cmp r10, {special_max}",
            "jbe 3f",
            "movabs rax, {hash}",
            "imul rax, r10",
            "shr rax, {streams_shift}",
            "shl r10, {stream_key_shift}",
            "lea rbx, [rip + {streams}]",
            "xor r10, qword ptr [rbx + rax * {stream_entry_size}]",
            "cmp r10, {stream_device_max}",
            "ja 1f",
            // r10 = the device: word = thread id | (device + 1) << 32, and
            // ring = RINGS + (device & DEVICE_MASK) * RING_SIZE.
            "lea eax, [r10 + 1]",
            "shl rax, 32",
            "mov r11d, r11d",
            "or r11, rax",
            "and r10d, {device_mask}",
            "imul r10, r10, {ring_size}",
            "lea rbx, [rip + {rings}]",
            "add rbx, r10",
            "3:",
            $count,
            // Claim a sequence number.
            "mov r10d, 1",
            "lock xadd qword ptr [rbx + {ring_next}], r10",
            "push r12",
            "mov r12, r10",
            "and r12d, {ring_mask}",
            "shl r12, {slot_shift}",
            "add r12, rbx",
            "lea rbx, [r10 + r10 + {seq_writing}]",
            "mov qword ptr [r12 + {slots} + {seq}], rbx",
            // who = word | launcher << 48: that byte of the word is 0.
            "mov qword ptr [r12 + {slots} + {who}], r11",
            "mov byte ptr [r12 + {slots} + {who} + {launcher_byte}], {launcher}",
            "mov qword ptr [r12 + {slots} + {handle}], rdi",
            $($store,)*
            // ticks: rdtsc writes edx:eax, stored as the two halves.
            "mov ebx, edx",
            "rdtsc",
            "mov dword ptr [r12 + {slots} + {ticks}], eax",
            "mov dword ptr [r12 + {slots} + {ticks} + {hi}], edx",
            "mov edx, ebx",
            "lea rbx, [r10 + r10 + {seq_written}]",
            "mov qword ptr [r12 + {slots} + {seq}], rbx",
            "pop r12",
            "pop rbx",
            "mov rax, qword ptr [rip + {hip_slots} + {sym_offset}]",
            "jmp rax",
            "1:",
            "pop rbx",
            "2:",
            "jmp {slow}",
            hip_slots = sym crate::interpose::symbols::HIP_SLOTS,
            sym_offset = const $sym * std::mem::size_of::<std::sync::atomic::AtomicUsize>(),
            first_address = const crate::interpose::runtime::FIRST_ADDRESS,
            hash = const crate::core::hash::FIBONACCI,
            table = sym threads::TABLE,
            table_shift = const threads::layout::TABLE_SHIFT,
            thread_slot_shift = const threads::layout::SLOT_SHIFT,
            thread_key = const threads::layout::KEY,
            thread_word = const threads::layout::WORD,
            thread_aux = const threads::layout::AUX,
            names = sym launch_state::NAMES,
            streams = sym launch_state::STREAMS,
            streams_shift = const streams::layout::SHIFT,
            stream_key_shift = const streams::layout::KEY_SHIFT,
            stream_entry_size = const streams::layout::ENTRY_SIZE,
            stream_device_max = const streams::layout::DEVICE_MAX,
            special_max = const streams::SPECIAL_MAX,
            rings = sym launch_state::RINGS,
            ring_size = const launches::layout::RING_SIZE,
            device_mask = const launches::layout::DEVICE_MASK,
            name_shift = const launches::layout::NAME_SHIFT,
            name_size = const launches::layout::NAME_ENTRY_SIZE,
            name_key = const launches::layout::NAME_KEY,
            ring_next = const launches::layout::RING_NEXT,
            ring_mask = const launches::layout::RING_MASK,
            slot_shift = const launches::layout::SLOT_SHIFT,
            slots = const launches::layout::RING_SLOTS,
            seq = const launches::layout::SEQ,
            seq_writing = const launches::layout::SEQ_WRITING,
            seq_written = const launches::layout::SEQ_WRITTEN,
            who = const launches::layout::WHO,
            launcher_byte = const launches::layout::LAUNCHER_BYTE,
            launcher = const $launcher as u8,
            handle = const launches::layout::HANDLE,
            grid_xy = const launches::layout::GRID_XY,
            block_xy = const launches::layout::BLOCK_XY,
            zz = const launches::layout::ZZ,
            stream = const launches::layout::STREAM,
            ticks = const launches::layout::TICKS,
            hi = const launches::layout::HIGH_HALF,
            pushed = const PUSHED,
            one_pushed = const PUSHED / 2,
            slow = sym $slow,
            $($count_operand)*
        )
    };
}

launch_fast_path! {
    /// hipLaunchKernel, exported: every `<<<...>>>` launch of a hipcc-built
    /// program (and PyTorch's) comes through here (see `launch_fast_path`).
    /// SysV on entry: function in rdi, grid (x|y<<32, z) in rsi/rdx, block
    /// in rcx/r8, args in r9, shared at [rsp+8], stream at [rsp+16]. The
    /// upper halves of rdx and r8 are padding.
    ///
    /// # Safety
    /// As the HIP runtime's hipLaunchKernel.
    fn hipLaunchKernel(
        function: *const c_void,
        grid: dim3,
        block: dim3,
        args: *mut *mut c_void,
        shared: usize,
        stream: hipStream_t,
    ) -> hipError_t;
    runtime: hip_sym::hipLaunchKernel,
    launcher: Launcher::LaunchKernel,
    slow: launch_kernel_slow,
    // rbx is pushed at this point: the stream is at [rsp + 8 + 16].
    stream: "mov r10, qword ptr [rsp + {one_pushed} + 16]",
    store: [
        "mov qword ptr [r12 + {slots} + {grid_xy}], rsi",
        "mov qword ptr [r12 + {slots} + {block_xy}], rcx",
        // zz = grid.z | block.z << 32, as two 32-bit halves.
        "mov dword ptr [r12 + {slots} + {zz}], edx",
        "mov dword ptr [r12 + {slots} + {zz} + {hi}], r8d",
        "mov r11, qword ptr [rsp + {pushed} + 16]",
        "mov qword ptr [r12 + {slots} + {stream}], r11",
    ]
}

#[cfg(not(target_arch = "x86_64"))]
pub use launch_kernel_slow as hipLaunchKernel;
#[cfg(not(target_arch = "x86_64"))]
pub use launch_module_slow as hipModuleLaunchKernel;

/// hipLaunchKernel without the trampoline: the first call (the runtime not
/// resolved yet), and every call on other architectures.
///
/// # Safety
/// As the HIP runtime's hipLaunchKernel.
#[cfg_attr(not(target_arch = "x86_64"), no_mangle)]
#[cfg_attr(not(target_arch = "x86_64"), export_name = "hipLaunchKernel")]
pub unsafe extern "C" fn launch_kernel_slow(
    function: *const c_void,
    grid: dim3,
    block: dim3,
    args: *mut *mut c_void,
    shared: usize,
    stream: hipStream_t,
) -> hipError_t {
    count_slow_launch();
    // SAFETY: hipLaunchKernel's prototype.
    let f: hip_fn::hipLaunchKernel =
        match unsafe { real(Entry::HipLaunchKernel, hip_sym::hipLaunchKernel) } {
            Ok(f) => f,
            Err(rc) => return rc,
        };
    record(
        Launcher::LaunchKernel,
        function as usize,
        xy(grid),
        xy(block),
        zz(grid.z, block.z),
        stream,
    );
    // SAFETY: forwarding the caller's arguments.
    unsafe { f(function, grid, block, args, shared, stream) }
}

launch_fast_path! {
    /// hipModuleLaunchKernel, exported: the launch path of code objects
    /// loaded at run time (Triton kernels of torch.compile,
    /// hipModuleLoadData), so its common case is in assembly too (see
    /// `launch_fast_path`). SysV on entry: function in rdi, grid x/y/z in
    /// esi/edx/ecx, block x/y in r8d/r9d, block z at [rsp+8], shared at
    /// [rsp+16], stream at [rsp+24]; the upper halves of the 32-bit
    /// arguments' registers are undefined, so only 32-bit halves are stored.
    ///
    /// # Safety
    /// As the HIP runtime's hipModuleLaunchKernel.
    fn hipModuleLaunchKernel(
        function: hipFunction_t,
        gx: c_uint,
        gy: c_uint,
        gz: c_uint,
        bx: c_uint,
        by: c_uint,
        bz: c_uint,
        shared: c_uint,
        stream: hipStream_t,
        params: *mut *mut c_void,
        extra: *mut *mut c_void,
    ) -> hipError_t;
    runtime: hip_sym::hipModuleLaunchKernel,
    launcher: Launcher::ModuleLaunchKernel,
    slow: launch_module_slow,
    stream: "mov r10, qword ptr [rsp + {one_pushed} + 24]",
    store: [
        "mov dword ptr [r12 + {slots} + {grid_xy}], esi",
        "mov dword ptr [r12 + {slots} + {grid_xy} + {hi}], edx",
        "mov dword ptr [r12 + {slots} + {block_xy}], r8d",
        "mov dword ptr [r12 + {slots} + {block_xy} + {hi}], r9d",
        "mov dword ptr [r12 + {slots} + {zz}], ecx",
        "mov r11d, dword ptr [rsp + {pushed} + 8]",
        "mov dword ptr [r12 + {slots} + {zz} + {hi}], r11d",
        "mov r11, qword ptr [rsp + {pushed} + 24]",
        "mov qword ptr [r12 + {slots} + {stream}], r11",
    ]
}

/// hipModuleLaunchKernel without the fast path: the first launch of each
/// kernel, anything not set up yet, and every call on other architectures.
///
/// # Safety
/// As the HIP runtime's hipModuleLaunchKernel.
#[cfg_attr(not(target_arch = "x86_64"), export_name = "hipModuleLaunchKernel")]
pub unsafe extern "C" fn launch_module_slow(
    function: hipFunction_t,
    gx: c_uint,
    gy: c_uint,
    gz: c_uint,
    bx: c_uint,
    by: c_uint,
    bz: c_uint,
    shared: c_uint,
    stream: hipStream_t,
    params: *mut *mut c_void,
    extra: *mut *mut c_void,
) -> hipError_t {
    count_slow_launch();
    // SAFETY: hipModuleLaunchKernel's prototype.
    let f: hip_fn::hipModuleLaunchKernel =
        match unsafe { real(Entry::HipModuleLaunchKernel, hip_sym::hipModuleLaunchKernel) } {
            Ok(f) => f,
            Err(rc) => return rc,
        };
    record(
        Launcher::ModuleLaunchKernel,
        function as usize,
        zz(gx, gy),
        zz(bx, by),
        zz(gz, bz),
        stream,
    );
    // SAFETY: forwarding the caller's arguments.
    unsafe {
        f(
            function, gx, gy, gz, bx, by, bz, shared, stream, params, extra,
        )
    }
}

/// # Safety
/// As the HIP runtime's hipExtLaunchKernel.
#[no_mangle]
pub unsafe extern "C" fn hipExtLaunchKernel(
    function: *const c_void,
    grid: dim3,
    block: dim3,
    args: *mut *mut c_void,
    shared: usize,
    stream: hipStream_t,
    start: hipEvent_t,
    stop: hipEvent_t,
    flags: c_int,
) -> hipError_t {
    let f = real_or_return!(Entry::HipExtLaunchKernel, hipExtLaunchKernel);
    record(
        Launcher::ExtLaunchKernel,
        function as usize,
        xy(grid),
        xy(block),
        zz(grid.z, block.z),
        stream,
    );
    // SAFETY: forwarding the caller's arguments.
    unsafe {
        f(
            function, grid, block, args, shared, stream, start, stop, flags,
        )
    }
}

/// hipExtModuleLaunchKernel takes the global work size (grid x block), not
/// the grid: the ring stores the grid in blocks, like the other launches.
///
/// # Safety
/// As the HIP runtime's hipExtModuleLaunchKernel.
#[no_mangle]
pub unsafe extern "C" fn hipExtModuleLaunchKernel(
    function: hipFunction_t,
    gwx: u32,
    gwy: u32,
    gwz: u32,
    bx: u32,
    by: u32,
    bz: u32,
    shared: usize,
    stream: hipStream_t,
    params: *mut *mut c_void,
    extra: *mut *mut c_void,
    start: hipEvent_t,
    stop: hipEvent_t,
    flags: u32,
) -> hipError_t {
    let f = real_or_return!(Entry::HipExtModuleLaunchKernel, hipExtModuleLaunchKernel);
    let blocks = |w: u32, b: u32| if b == 0 { w } else { w.div_ceil(b) };
    record(
        Launcher::ExtModuleLaunchKernel,
        function as usize,
        zz(blocks(gwx, bx), blocks(gwy, by)),
        zz(bx, by),
        zz(blocks(gwz, bz), bz),
        stream,
    );
    // SAFETY: forwarding the caller's arguments.
    unsafe {
        f(
            function, gwx, gwy, gwz, bx, by, bz, shared, stream, params, extra, start, stop, flags,
        )
    }
}

/// # Safety
/// As the HIP runtime's hipLaunchCooperativeKernel.
#[no_mangle]
pub unsafe extern "C" fn hipLaunchCooperativeKernel(
    function: *const c_void,
    grid: dim3,
    block: dim3,
    args: *mut *mut c_void,
    shared: c_uint,
    stream: hipStream_t,
) -> hipError_t {
    let f = real_or_return!(
        Entry::HipLaunchCooperativeKernel,
        hipLaunchCooperativeKernel
    );
    record(
        Launcher::LaunchCooperativeKernel,
        function as usize,
        xy(grid),
        xy(block),
        zz(grid.z, block.z),
        stream,
    );
    // SAFETY: forwarding the caller's arguments.
    unsafe { f(function, grid, block, args, shared, stream) }
}

/// A graph launch is recorded with the graph's handle; its kernels are not
/// listed one by one.
///
/// # Safety
/// As the HIP runtime's hipGraphLaunch.
#[no_mangle]
pub unsafe extern "C" fn hipGraphLaunch(graph: hipGraphExec_t, stream: hipStream_t) -> hipError_t {
    let f = real_or_return!(Entry::HipGraphLaunch, hipGraphLaunch);
    record(Launcher::GraphLaunch, graph as usize, 0, 0, 0, stream);
    // SAFETY: forwarding the caller's arguments.
    unsafe { f(graph, stream) }
}

/// hipSetDevice, forwarded; on success the thread's current device is
/// noted, so launches need not ask the runtime.
///
/// # Safety
/// As the HIP runtime's hipSetDevice.
#[no_mangle]
pub unsafe extern "C" fn hipSetDevice(device: c_int) -> hipError_t {
    let f = real_or_return!(Entry::HipSetDevice, hipSetDevice);
    // SAFETY: forwarding the caller's argument.
    let rc = unsafe { f(device) };
    if rc == HIP_SUCCESS {
        if let Some(w) = ctx() {
            set_word(launches::thread_word(w as u32, device));
        }
    }
    rc
}

/// After a successful stream creation: notes the new stream's device, as
/// the runtime answers hipStreamGetDevice, or else the creating thread's
/// current device (where HIP creates a stream). Replaces whatever was noted
/// for that address: a stream destroyed behind rmcp's back may leave it.
#[cold]
#[inline(never)]
fn note_created_stream(rc: hipError_t, out: *mut hipStream_t) {
    if rc != HIP_SUCCESS || out.is_null() {
        return;
    }
    after(|| {
        if !process::config().enabled {
            return;
        }
        // SAFETY: success: the runtime wrote the new stream to *out.
        let stream = unsafe { *out };
        let dev = runtime_stream_device(stream).unwrap_or_else(threads::current_device);
        STREAMS.insert(stream as usize, dev);
    });
}

/// # Safety
/// As the HIP runtime's hipStreamCreate.
#[no_mangle]
pub unsafe extern "C" fn hipStreamCreate(stream: *mut hipStream_t) -> hipError_t {
    let f = real_or_return!(Entry::HipStreamCreate, hipStreamCreate);
    // SAFETY: forwarding the caller's argument.
    let rc = unsafe { f(stream) };
    note_created_stream(rc, stream);
    rc
}

/// # Safety
/// As the HIP runtime's hipStreamCreateWithFlags.
#[no_mangle]
pub unsafe extern "C" fn hipStreamCreateWithFlags(
    stream: *mut hipStream_t,
    flags: c_uint,
) -> hipError_t {
    let f = real_or_return!(Entry::HipStreamCreateWithFlags, hipStreamCreateWithFlags);
    // SAFETY: forwarding the caller's arguments.
    let rc = unsafe { f(stream, flags) };
    note_created_stream(rc, stream);
    rc
}

/// # Safety
/// As the HIP runtime's hipStreamCreateWithPriority.
#[no_mangle]
pub unsafe extern "C" fn hipStreamCreateWithPriority(
    stream: *mut hipStream_t,
    flags: c_uint,
    priority: c_int,
) -> hipError_t {
    let f = real_or_return!(
        Entry::HipStreamCreateWithPriority,
        hipStreamCreateWithPriority
    );
    // SAFETY: forwarding the caller's arguments.
    let rc = unsafe { f(stream, flags, priority) };
    note_created_stream(rc, stream);
    rc
}

/// # Safety
/// As the HIP runtime's hipExtStreamCreateWithCUMask.
#[no_mangle]
pub unsafe extern "C" fn hipExtStreamCreateWithCUMask(
    stream: *mut hipStream_t,
    cu_mask_size: u32,
    cu_mask: *const u32,
) -> hipError_t {
    let f = real_or_return!(
        Entry::HipExtStreamCreateWithCUMask,
        hipExtStreamCreateWithCUMask
    );
    // SAFETY: forwarding the caller's arguments.
    let rc = unsafe { f(stream, cu_mask_size, cu_mask) };
    note_created_stream(rc, stream);
    rc
}

/// hipStreamDestroy: the stream's device is forgotten first, so a stream
/// created later at the same address is asked anew.
///
/// # Safety
/// As the HIP runtime's hipStreamDestroy.
#[no_mangle]
pub unsafe extern "C" fn hipStreamDestroy(stream: hipStream_t) -> hipError_t {
    let f = real_or_return!(Entry::HipStreamDestroy, hipStreamDestroy);
    STREAMS.remove(stream as usize);
    // SAFETY: forwarding the caller's argument.
    unsafe { f(stream) }
}

/// hipDeviceSynchronize, forwarded; on success every launch the device had
/// before the call is marked completed.
///
/// # Safety
/// As the HIP runtime's hipDeviceSynchronize.
#[no_mangle]
pub unsafe extern "C" fn hipDeviceSynchronize() -> hipError_t {
    let f = real_or_return!(Entry::HipDeviceSynchronize, hipDeviceSynchronize);
    let Some(w) = ctx() else {
        // SAFETY: no arguments.
        return unsafe { f() };
    };
    let r = ring(launches::word_device(w));
    let mark = r.mark();
    // SAFETY: no arguments.
    let rc = unsafe { f() };
    if rc == HIP_SUCCESS {
        r.device_synced(mark);
    }
    rc
}

/// hipStreamSynchronize, forwarded; on success the launches on that stream
/// before the call are marked completed.
///
/// # Safety
/// As the HIP runtime's hipStreamSynchronize.
#[no_mangle]
pub unsafe extern "C" fn hipStreamSynchronize(stream: hipStream_t) -> hipError_t {
    let f = real_or_return!(Entry::HipStreamSynchronize, hipStreamSynchronize);
    // SAFETY: f is the runtime's hipStreamSynchronize.
    unsafe { stream_synchronize(f, stream) }
}

/// The body of both stream synchronisations: forwards, and on success
/// marks the launches on `stream` before the call completed.
///
/// # Safety
/// `f` is the runtime's hipStreamSynchronize or hipStreamSynchronize_spt.
#[inline(always)]
unsafe fn stream_synchronize(f: hip_fn::hipStreamSynchronize, stream: hipStream_t) -> hipError_t {
    let Some(w) = ctx() else {
        // SAFETY: forwarding the caller's stream.
        return unsafe { f(stream) };
    };
    let r = ring(launches::word_device(on_stream_device(w, stream)));
    let mark = r.mark();
    // SAFETY: forwarding the caller's stream.
    let rc = unsafe { f(stream) };
    if rc == HIP_SUCCESS {
        r.stream_synced(stream as usize, mark);
    }
    rc
}

/// hipLaunchKernel on the per-thread default stream, recorded as its own
/// entry point (Rust only: the assembly fast path is hipLaunchKernel's).
///
/// # Safety
/// As the HIP runtime's hipLaunchKernel_spt.
#[no_mangle]
pub unsafe extern "C" fn hipLaunchKernel_spt(
    function: *const c_void,
    grid: dim3,
    block: dim3,
    args: *mut *mut c_void,
    shared: usize,
    stream: hipStream_t,
) -> hipError_t {
    let f = real_or_return!(Entry::HipLaunchKernelSpt, hipLaunchKernel_spt);
    record(
        Launcher::LaunchKernelSpt,
        function as usize,
        xy(grid),
        xy(block),
        zz(grid.z, block.z),
        stream,
    );
    // SAFETY: forwarding the caller's arguments.
    unsafe { f(function, grid, block, args, shared, stream) }
}

/// # Safety
/// As the HIP runtime's hipLaunchCooperativeKernel_spt.
#[no_mangle]
pub unsafe extern "C" fn hipLaunchCooperativeKernel_spt(
    function: *const c_void,
    grid: dim3,
    block: dim3,
    args: *mut *mut c_void,
    shared: u32,
    stream: hipStream_t,
) -> hipError_t {
    let f = real_or_return!(
        Entry::HipLaunchCooperativeKernelSpt,
        hipLaunchCooperativeKernel_spt
    );
    record(
        Launcher::LaunchCooperativeKernelSpt,
        function as usize,
        xy(grid),
        xy(block),
        zz(grid.z, block.z),
        stream,
    );
    // SAFETY: forwarding the caller's arguments.
    unsafe { f(function, grid, block, args, shared, stream) }
}

/// # Safety
/// As the HIP runtime's hipGraphLaunch_spt.
#[no_mangle]
pub unsafe extern "C" fn hipGraphLaunch_spt(
    graph: hipGraphExec_t,
    stream: hipStream_t,
) -> hipError_t {
    let f = real_or_return!(Entry::HipGraphLaunchSpt, hipGraphLaunch_spt);
    record(Launcher::GraphLaunchSpt, graph as usize, 0, 0, 0, stream);
    // SAFETY: forwarding the caller's arguments.
    unsafe { f(graph, stream) }
}

/// hipModuleLaunchCooperativeKernel: hipModuleLaunchKernel's arguments
/// without `extra`.
///
/// # Safety
/// As the HIP runtime's hipModuleLaunchCooperativeKernel.
#[no_mangle]
pub unsafe extern "C" fn hipModuleLaunchCooperativeKernel(
    function: hipFunction_t,
    gx: c_uint,
    gy: c_uint,
    gz: c_uint,
    bx: c_uint,
    by: c_uint,
    bz: c_uint,
    shared: c_uint,
    stream: hipStream_t,
    params: *mut *mut c_void,
) -> hipError_t {
    let f = real_or_return!(
        Entry::HipModuleLaunchCooperativeKernel,
        hipModuleLaunchCooperativeKernel
    );
    record(
        Launcher::ModuleLaunchCooperativeKernel,
        function as usize,
        zz(gx, gy),
        zz(bx, by),
        zz(gz, bz),
        stream,
    );
    // SAFETY: forwarding the caller's arguments.
    unsafe { f(function, gx, gy, gz, bx, by, bz, shared, stream, params) }
}

/// hipStreamSynchronize on the per-thread default stream, as
/// hipStreamSynchronize.
///
/// # Safety
/// As the HIP runtime's hipStreamSynchronize_spt.
#[no_mangle]
pub unsafe extern "C" fn hipStreamSynchronize_spt(stream: hipStream_t) -> hipError_t {
    let f = real_or_return!(Entry::HipStreamSynchronizeSpt, hipStreamSynchronize_spt);
    // SAFETY: f is the runtime's hipStreamSynchronize_spt.
    unsafe { stream_synchronize(f, stream) }
}

/// hipLaunchKernelExC: the grid, block and stream come in the config.
///
/// # Safety
/// As the HIP runtime's hipLaunchKernelExC (ROCm >= 6.5).
#[no_mangle]
pub unsafe extern "C" fn hipLaunchKernelExC(
    config: *const hipLaunchConfig_t,
    function: *const c_void,
    args: *mut *mut c_void,
) -> hipError_t {
    let f = real_or_return!(Entry::HipLaunchKernelExC, hipLaunchKernelExC);
    if !config.is_null() {
        // SAFETY: a non-NULL config the caller hands to the runtime.
        let c = unsafe { *config };
        record(
            Launcher::LaunchKernelExC,
            function as usize,
            xy(c.grid),
            xy(c.block),
            zz(c.grid.z, c.block.z),
            c.stream,
        );
    }
    // SAFETY: forwarding the caller's arguments.
    unsafe { f(config, function, args) }
}

/// hipDrvLaunchKernelEx: hipModuleLaunchKernel's launch with its
/// dimensions and stream in the config.
///
/// # Safety
/// As the HIP runtime's hipDrvLaunchKernelEx (ROCm >= 6.5).
#[no_mangle]
pub unsafe extern "C" fn hipDrvLaunchKernelEx(
    config: *const HIP_LAUNCH_CONFIG,
    function: hipFunction_t,
    params: *mut *mut c_void,
    extra: *mut *mut c_void,
) -> hipError_t {
    let f = real_or_return!(Entry::HipDrvLaunchKernelEx, hipDrvLaunchKernelEx);
    if !config.is_null() {
        // SAFETY: a non-NULL config the caller hands to the runtime.
        let c = unsafe { *config };
        record(
            Launcher::DrvLaunchKernelEx,
            function as usize,
            zz(c.grid[0], c.grid[1]),
            zz(c.block[0], c.block[1]),
            zz(c.grid[2], c.block[2]),
            c.stream,
        );
    }
    // SAFETY: forwarding the caller's arguments.
    unsafe { f(config, function, params, extra) }
}

/// Records each launch of a hipLaunchParams list under its stream's device.
///
/// # Safety
/// `list` is NULL or holds `n` entries (the caller hands it to the runtime).
unsafe fn record_params_list(l: Launcher, list: *const hipLaunchParams, n: c_int) {
    if list.is_null() {
        return;
    }
    for i in 0..(n.max(0) as usize).min(launches::DEVICES) {
        // SAFETY: i < n entries, per the caller.
        let p = unsafe { *list.add(i) };
        record(
            l,
            p.func as usize,
            xy(p.grid),
            xy(p.block),
            zz(p.grid.z, p.block.z),
            p.stream,
        );
    }
}

/// # Safety
/// As the HIP runtime's hipLaunchCooperativeKernelMultiDevice.
#[no_mangle]
pub unsafe extern "C" fn hipLaunchCooperativeKernelMultiDevice(
    list: *mut hipLaunchParams,
    n: c_int,
    flags: c_uint,
) -> hipError_t {
    let f = real_or_return!(
        Entry::HipLaunchCooperativeKernelMultiDevice,
        hipLaunchCooperativeKernelMultiDevice
    );
    // SAFETY: the caller's list of n launches.
    unsafe { record_params_list(Launcher::LaunchCooperativeKernelMultiDevice, list, n) };
    // SAFETY: forwarding the caller's arguments.
    unsafe { f(list, n, flags) }
}

/// # Safety
/// As the HIP runtime's hipExtLaunchMultiKernelMultiDevice.
#[no_mangle]
pub unsafe extern "C" fn hipExtLaunchMultiKernelMultiDevice(
    list: *mut hipLaunchParams,
    n: c_int,
    flags: c_uint,
) -> hipError_t {
    let f = real_or_return!(
        Entry::HipExtLaunchMultiKernelMultiDevice,
        hipExtLaunchMultiKernelMultiDevice
    );
    // SAFETY: the caller's list of n launches.
    unsafe { record_params_list(Launcher::ExtLaunchMultiKernelMultiDevice, list, n) };
    // SAFETY: forwarding the caller's arguments.
    unsafe { f(list, n, flags) }
}

/// # Safety
/// As the HIP runtime's hipModuleLaunchCooperativeKernelMultiDevice.
#[no_mangle]
pub unsafe extern "C" fn hipModuleLaunchCooperativeKernelMultiDevice(
    list: *mut hipFunctionLaunchParams,
    n: c_uint,
    flags: c_uint,
) -> hipError_t {
    let f = real_or_return!(
        Entry::HipModuleLaunchCooperativeKernelMultiDevice,
        hipModuleLaunchCooperativeKernelMultiDevice
    );
    if !list.is_null() {
        for i in 0..(n as usize).min(launches::DEVICES) {
            // SAFETY: i < n entries of the caller's list.
            let p = unsafe { *list.add(i) };
            record(
                Launcher::ModuleLaunchCooperativeKernelMultiDevice,
                p.function as usize,
                zz(p.grid[0], p.grid[1]),
                zz(p.block[0], p.block[1]),
                zz(p.grid[2], p.block[2]),
                p.stream,
            );
        }
    }
    // SAFETY: forwarding the caller's arguments.
    unsafe { f(list, n, flags) }
}
