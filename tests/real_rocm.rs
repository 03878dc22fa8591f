//! librmcp.so against the REAL ROCm runtimes Debian ships (no GPU needed):
//!
//! * ROCm 5.2.3 from bookworm, installed on the system by scripts/setup-rocm.sh;
//! * ROCm 6.4.3 from sid and ROCm 7.2.4 from experimental, each unpacked with
//!   sid's glibc and loader into .rocm/sid-root and .rocm/exp-root (or under
//!   $RMCP_ROCM_DIR) and run through that root's loader:
//!   `ROOT/usr/lib64/ld-linux-x86-64.so.2 --library-path ROOT/usr/lib/x86_64-linux-gnu [--preload librmcp.so] PROG`.
//!
//! Each scenario (a C program linked to the runtime, the same program linked
//! to librmcp.so itself, the same code as a module opened with
//! dlopen(RTLD_LOCAL), a hipcc-built program that launches a kernel,
//! rocminfo) runs without and with the shim and must print the same stdout
//! and exit with the same code, with no `rmcp: error` line; a run with
//! RMCP_LOG=debug proves the shim was in the path and found the runtime we
//! meant. The layout test compiles tests/real/layout.c against each
//! runtime's headers and compares it to `rmcp::abi`; the symbol-version test
//! reads which version each runtime exports every hooked name under; with
//! `--features real-headers` the signature test checks every exported hook
//! against bindgen's reading of the real prototypes.
//!
//! Without the runtimes every test prints "skipped: run scripts/setup-rocm.sh"
//! and passes, unless RMCP_REQUIRE_REAL_ROCM=1 or CI is set, which makes it fail.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const SETUP_HINT: &str = "run scripts/setup-rocm.sh";
const TRIPLE: &str = "x86_64-unknown-linux-gnu";
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

// ------------------------------------------------------------------ setup

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn real_dir() -> PathBuf {
    repo().join("tests/real")
}

/// Says why a test did not run, or fails when CI requires the real runtimes.
fn skip(test: &str, why: &str) {
    common::skip_test(&format!("real_rocm::{test}"), why, SETUP_HINT);
}

fn say(line: &str) {
    let _ = std::io::stderr().write_all(format!("real_rocm: {line}\n").as_bytes());
}

/// An unpacked root made by scripts/setup-rocm.sh ("sid-root", "exp-root"):
/// under $RMCP_ROCM_DIR if set, else under the repo's .rocm.
fn rocm_root(name: &str) -> PathBuf {
    match std::env::var_os("RMCP_ROCM_DIR") {
        Some(d) => PathBuf::from(d).join(name),
        None => repo().join(".rocm").join(name),
    }
}

/// One real ROCm runtime: where its headers and libraries are, and how to run
/// a program on it.
#[derive(Clone, Debug)]
struct Runtime {
    /// "5.2.3", "6.4.3" or "7.2.4"
    tag: &'static str,
    name: &'static str,
    /// hipRuntimeGetVersion() prefix that proves this runtime answered.
    version_prefix: &'static str,
    /// The HIP runtime's soname (what the shim must report it found).
    soname: &'static str,
    /// The unpack root's directory name ("sid-root"), for runtimes that are
    /// not installed on the system.
    root_name: Option<&'static str>,
    include: PathBuf,
    libdir: PathBuf,
    /// The root's own loader, for runtimes that need a newer glibc than the host's.
    loader: Option<PathBuf>,
}

impl Runtime {
    fn bookworm() -> Result<Runtime, String> {
        let rt = Runtime {
            tag: "5.2.3",
            name: "ROCm 5.2.3 (Debian bookworm, system packages)",
            version_prefix: "502",
            soname: "libamdhip64.so.5",
            root_name: None,
            include: PathBuf::from("/usr/include"),
            libdir: PathBuf::from("/usr/lib/x86_64-linux-gnu"),
            loader: None,
        };
        rt.check(&["libamdhip64.so", "libamdhip64.so.5", "libhsa-runtime64.so"])?;
        Ok(rt)
    }

    fn sid() -> Result<Runtime, String> {
        Runtime::unpacked(
            "6.4.3",
            "ROCm 6.4.3 (Debian sid, unpacked, run by sid's loader)",
            "604",
            "libamdhip64.so.6",
            "sid-root",
        )
    }

    fn experimental() -> Result<Runtime, String> {
        Runtime::unpacked(
            "7.2.4",
            "ROCm 7.2.4 (Debian experimental with sid's glibc, unpacked, run by that root's loader)",
            "702",
            "libamdhip64.so.7",
            "exp-root",
        )
    }

    /// A runtime that scripts/setup-rocm.sh unpacked into `rocm_root(root_name)`
    /// with its own glibc and loader.
    fn unpacked(
        tag: &'static str,
        name: &'static str,
        version_prefix: &'static str,
        soname: &'static str,
        root_name: &'static str,
    ) -> Result<Runtime, String> {
        let root = rocm_root(root_name);
        let rt = Runtime {
            tag,
            name,
            version_prefix,
            soname,
            root_name: Some(root_name),
            include: root.join("usr/include"),
            libdir: root.join("usr/lib/x86_64-linux-gnu"),
            loader: Some(root.join("usr/lib64/ld-linux-x86-64.so.2")),
        };
        rt.check(&["libamdhip64.so", soname, "libhsa-runtime64.so"])?;
        if !rt.loader.as_ref().unwrap().exists() {
            return Err(format!(
                "ROCm {tag}: the root's loader is missing under {}",
                root.display()
            ));
        }
        Ok(rt)
    }

    /// What the shim's debug line about the HIP runtime it found must
    /// contain: the soname, and for unpacked runtimes the root's name (so
    /// that the host's 5.2.3 cannot pass for them).
    fn runtime_line(&self) -> Vec<&'static str> {
        let mut v = vec![self.soname];
        v.extend(self.root_name);
        v
    }

    fn check(&self, libs: &[&str]) -> Result<(), String> {
        for h in ["hip/hip_runtime_api.h", "hsa/hsa_ext_amd.h"] {
            if !self.include.join(h).exists() {
                return Err(format!(
                    "ROCm {} header {} is missing",
                    self.tag,
                    self.include.join(h).display()
                ));
            }
        }
        for l in libs {
            if !self.libdir.join(l).exists() {
                return Err(format!(
                    "ROCm {} library {} is missing",
                    self.tag,
                    self.libdir.join(l).display()
                ));
            }
        }
        Ok(())
    }

    /// `prog args`, through this runtime's loader if it has one, with the shim
    /// preloaded if given. The child gets no LD_* or RMCP_* from our environment.
    fn command(&self, prog: &Path, args: &[&Path], shim: Option<&Path>) -> Command {
        let mut cmd = Command::new(self.loader.as_deref().unwrap_or(prog));
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if ["LD_", "RMCP_", "HIP_", "HSA_", "AMD_", "ROCR_"]
                .iter()
                .any(|p| k.starts_with(p))
            {
                cmd.env_remove(&k);
            }
        }
        match &self.loader {
            Some(_) => {
                cmd.arg("--library-path").arg(&self.libdir);
                if let Some(s) = shim {
                    cmd.arg("--preload").arg(s);
                }
                cmd.arg(prog);
            }
            None => {
                if let Some(s) = shim {
                    cmd.env("LD_PRELOAD", s);
                }
            }
        }
        cmd.args(args);
        cmd
    }
}

/// The three runtimes, or a skip for each one missing (a failure under
/// CI or RMCP_REQUIRE_REAL_ROCM=1).
fn runtimes(test: &str) -> Vec<Runtime> {
    let mut out = Vec::new();
    for r in [Runtime::bookworm(), Runtime::sid(), Runtime::experimental()] {
        match r {
            Ok(rt) => out.push(rt),
            Err(why) => skip(test, &why),
        }
    }
    out
}

/// librmcp.so of this build (the cdylib cargo builds beside the `rmcp` binary),
/// or $RMCP_SHIM.
fn shim() -> PathBuf {
    if let Some(p) = std::env::var_os("RMCP_SHIM") {
        return PathBuf::from(p);
    }
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_rmcp"));
    let dir = bin.parent().unwrap();
    for cand in [dir.join("librmcp.so"), dir.join("deps/librmcp.so")] {
        if cand.exists() {
            return cand;
        }
    }
    panic!(
        "librmcp.so not found beside {} (build the crate first)",
        bin.display()
    );
}

// ------------------------------------------------------------------ building

fn work_dir(tag: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("real_rocm")
        .join(tag);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn c_compiler() -> Command {
    let tool = cc::Build::new()
        .target(TRIPLE)
        .host(TRIPLE)
        .opt_level(0)
        .cargo_metadata(false)
        .get_compiler();
    tool.to_command()
}

fn check_status(what: &str, cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{cmd:?}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);

/// Builds `name` for `rt` once per test process.
fn built(rt: &Runtime, name: &str, build: impl FnOnce(&Runtime, &Path)) -> PathBuf {
    let key = format!("{}/{}", rt.tag, name);
    let mut guard = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let map = guard.get_or_insert_with(HashMap::new);
    if let Some(p) = map.get(&key) {
        return p.clone();
    }
    // Built under a private name and renamed into place, so that test
    // processes running side by side (cargo nextest) never see a half-written
    // file or remove one another's.
    let out = work_dir(rt.tag).join(name);
    let tmp = work_dir(rt.tag).join(format!(".{name}.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    build(rt, &tmp);
    assert!(tmp.exists(), "building {key} produced nothing");
    std::fs::rename(&tmp, &out).unwrap();
    map.insert(key, out.clone());
    out
}

/// Compiler flags that compile C against `rt`'s headers and link its runtimes.
fn rocm_c_flags(cmd: &mut Command, rt: &Runtime) {
    cmd.arg("-D__HIP_PLATFORM_AMD__")
        .arg("-Wno-deprecated-declarations")
        .arg("-I")
        .arg(&rt.include);
}

fn rocm_link_flags(cmd: &mut Command, rt: &Runtime) {
    cmd.arg("-L").arg(&rt.libdir);
    if rt.loader.is_some() {
        // The unpacked libraries need sid's newer glibc, which exists only at
        // run time (through the root's loader); the link uses the host's libc.
        cmd.arg(format!("-Wl,-rpath-link,{}", rt.libdir.display()))
            .arg("-Wl,--allow-shlib-undefined");
    }
    cmd.arg("-lamdhip64").arg("-lhsa-runtime64");
}

fn probe_exe(rt: &Runtime) -> PathBuf {
    built(rt, "probe", |rt, out| {
        let mut c = c_compiler();
        rocm_c_flags(&mut c, rt);
        c.arg(real_dir().join("probe.c")).arg("-o").arg(out);
        rocm_link_flags(&mut c, rt);
        check_status("compiling tests/real/probe.c", &mut c);
    })
}

/// The probe linked to librmcp.so itself (the third load mode: no preload).
/// `-lrmcp` comes before `-lamdhip64`, as the README says, so the program's
/// references resolve to the shim first; librmcp.so is found at run time
/// through the RUNPATH to the directory cargo built it in.
fn probe_linked_to_shim(rt: &Runtime) -> PathBuf {
    let lib = shim();
    assert_eq!(
        lib.file_name().and_then(|n| n.to_str()),
        Some("librmcp.so"),
        "-lrmcp needs the shim to be called librmcp.so"
    );
    let dir = lib.parent().unwrap().to_path_buf();
    built(rt, "probe_rmcp", |rt, out| {
        let mut c = c_compiler();
        rocm_c_flags(&mut c, rt);
        c.arg(real_dir().join("probe.c")).arg("-o").arg(out);
        c.arg("-Wl,--no-as-needed")
            .arg("-L")
            .arg(&dir)
            .arg(format!("-Wl,-rpath,{}", dir.display()))
            .arg("-lrmcp");
        rocm_link_flags(&mut c, rt);
        check_status("compiling tests/real/probe.c linked to librmcp.so", &mut c);
    })
}

fn probe_module(rt: &Runtime) -> PathBuf {
    built(rt, "probe_mod.so", |rt, out| {
        let mut c = c_compiler();
        rocm_c_flags(&mut c, rt);
        c.args(["-DPROBE_MODULE", "-shared", "-fPIC"])
            .arg(real_dir().join("probe.c"))
            .arg("-o")
            .arg(out);
        rocm_link_flags(&mut c, rt);
        check_status("compiling tests/real/probe.c as a module", &mut c);
    })
}

fn host_exe(rt: &Runtime) -> PathBuf {
    built(rt, "host", |_, out| {
        let mut c = c_compiler();
        c.arg(real_dir().join("host.c"))
            .arg("-o")
            .arg(out)
            .arg("-ldl");
        check_status("compiling tests/real/host.c", &mut c);
    })
}

// ------------------------------------------------------------------ running

#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run(mut cmd: Command) -> Run {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = work_dir("runs");
    let (o, e) = (
        dir.join(format!("{}-{n}.out", std::process::id())),
        dir.join(format!("{}-{n}.err", std::process::id())),
    );
    cmd.stdin(Stdio::null())
        .stdout(File::create(&o).unwrap())
        .stderr(File::create(&e).unwrap());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|err| panic!("cannot run {cmd:?}: {err}"));
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > RUN_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} ran longer than {RUN_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let r = Run {
        code: status.code(),
        stdout: std::fs::read_to_string(&o).unwrap_or_default(),
        stderr: String::from_utf8_lossy(&std::fs::read(&e).unwrap_or_default()).into_owned(),
    };
    let _ = std::fs::remove_file(o);
    let _ = std::fs::remove_file(e);
    r
}

fn rmcp_errors(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.trim_start().starts_with("rmcp: error"))
        .collect()
}

/// Runs `make(shim)` without the shim, with it, and with it at RMCP_LOG=debug;
/// requires the same stdout and exit code each time, no `rmcp: error` line,
/// and (debug run) an `rmcp:` line that names the runtime it found and
/// contains every string of `runtime_line` (the runtime's soname, and for
/// sid its unpack root): the shim was in the path and forwarded to the
/// runtime we meant. Returns the plain run.
fn assert_transparent(
    label: &str,
    runtime_line: &[&str],
    make: &dyn Fn(Option<&Path>) -> Command,
) -> Run {
    assert_transparent_with(label, Some(runtime_line), make)
}

/// As assert_transparent; `runtime_line` None for programs that may call no
/// hooked function at all (rocminfo without a GPU stops before allocating).
fn assert_transparent_with(
    label: &str,
    runtime_line: Option<&[&str]>,
    make: &dyn Fn(Option<&Path>) -> Command,
) -> Run {
    let lib = shim();
    let plain = run(make(None));
    let shimmed = run(make(Some(&lib)));
    let mut debug_cmd = make(Some(&lib));
    debug_cmd.env("RMCP_LOG", "debug");
    let debug = run(debug_cmd);

    for (what, r) in [
        ("with the shim", &shimmed),
        ("with the shim at RMCP_LOG=debug", &debug),
    ] {
        assert_eq!(
            plain.code, r.code,
            "{label}: exit code differs {what}\n--- without stderr:\n{}\n--- {what} stderr:\n{}",
            plain.stderr, r.stderr
        );
        if plain.stdout != r.stdout {
            panic!(
                "{label}: stdout differs {what}:\n{}",
                line_diff(&plain.stdout, &r.stdout)
            );
        }
        let errs = rmcp_errors(&r.stderr);
        assert!(
            errs.is_empty(),
            "{label}: rmcp error lines {what}:\n{}",
            errs.join("\n")
        );
    }
    let debug_lines: Vec<&str> = debug
        .stderr
        .lines()
        .filter(|l| l.contains("rmcp:"))
        .collect();
    if let Some(needles) = runtime_line {
        assert!(
            !debug_lines.is_empty(),
            "{label}: RMCP_LOG=debug printed no `rmcp:` line, so the shim was not in the path\n--- stderr:\n{}",
            debug.stderr
        );
        assert!(
            debug_lines
                .iter()
                .any(|l| l.contains("runtime") && needles.iter().all(|n| l.contains(n))),
            "{label}: no `rmcp:` debug line names the runtime it found ({needles:?})\n--- stderr:\n{}",
            debug.stderr
        );
    }
    say(&format!(
        "{label}: exit {:?}, {} stdout lines identical without/with the shim; {} rmcp debug lines{}",
        plain.code,
        plain.stdout.lines().count(),
        debug_lines.len(),
        debug_lines
            .iter()
            .find(|l| l.contains("HIP runtime"))
            .map(|l| format!(", {}", l.trim()))
            .unwrap_or_default()
    ));
    plain
}

fn line_diff(a: &str, b: &str) -> String {
    let (al, bl): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let mut s = String::new();
    for i in 0..al.len().max(bl.len()) {
        let (x, y) = (
            al.get(i).copied().unwrap_or("<none>"),
            bl.get(i).copied().unwrap_or("<none>"),
        );
        if x != y {
            s += &format!(
                "  line {}: without: {x}\n  line {}:    with: {y}\n",
                i + 1,
                i + 1
            );
        }
    }
    s
}

/// The probe's output must come from the runtime we meant (not the host's).
fn assert_probe_ran_on(rt: &Runtime, label: &str, r: &Run) {
    let v = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("runtimeVersion"))
        .map(str::trim)
        .unwrap_or_else(|| {
            panic!(
                "{label}: probe printed no runtimeVersion:\n{}\n{}",
                r.stdout, r.stderr
            )
        });
    assert!(
        v.starts_with(rt.version_prefix),
        "{label}: runtime version {v}, expected {}*",
        rt.version_prefix
    );
    assert!(
        r.stdout.contains("probe: done"),
        "{label}: probe did not finish:\n{}\n{}",
        r.stdout,
        r.stderr
    );
    say(&format!(
        "{label}: hipRuntimeGetVersion = {v}; {}",
        summarize_rcs(&r.stdout)
    ));
}

/// "hipMalloc(4096)=101 ..." from the probe's output, for the report.
fn summarize_rcs(stdout: &str) -> String {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for l in stdout.lines() {
        let Some((name, rest)) = l.split_once(" rc=") else {
            continue;
        };
        let rc = rest.split_whitespace().next().unwrap_or("?").to_string();
        m.entry(rc).or_default().push(name.trim().to_string());
    }
    m.iter()
        .map(|(rc, names)| format!("rc {rc}: {}", names.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

// ------------------------------------------------------------------ tests

#[test]
fn real_runtimes_are_installed() {
    let rts = runtimes("real_runtimes_are_installed");
    for rt in &rts {
        say(&format!(
            "found {} (headers {}, libraries {})",
            rt.name,
            rt.include.display(),
            rt.libdir.display()
        ));
    }
}

#[test]
fn linked_program_same_with_and_without_shim() {
    for rt in runtimes("linked_program_same_with_and_without_shim") {
        let exe = probe_exe(&rt);
        let label = format!("linked C program on ROCm {}", rt.tag);
        let plain = assert_transparent(&label, &rt.runtime_line(), &|s| rt.command(&exe, &[], s));
        assert_probe_ran_on(&rt, &label, &plain);
    }
}

/// The third load mode: the probe linked to librmcp.so (`-lrmcp -lamdhip64`,
/// no preload) prints exactly what the probe linked to the runtime alone
/// prints, and the shim's debug line names the runtime we meant.
#[test]
fn program_linked_to_librmcp_same_as_without_shim() {
    for rt in runtimes("program_linked_to_librmcp_same_as_without_shim") {
        let (plain_exe, linked_exe) = (probe_exe(&rt), probe_linked_to_shim(&rt));
        let label = format!("C program linked to librmcp.so on ROCm {}", rt.tag);
        let plain = assert_transparent(&label, &rt.runtime_line(), &|s| match s {
            None => rt.command(&plain_exe, &[], None),
            Some(_) => rt.command(&linked_exe, &[], None),
        });
        assert_probe_ran_on(&rt, &label, &plain);
    }
}

/// `RMCP_MODE=force` rewrites coherent requests whatever the device, so the
/// rewrite paths (not only the forward-unchanged ones) reach the real
/// runtime: the program must still see exactly what it sees without the shim,
/// and the shim's exit summary must count rewritten hipHostMalloc calls.
#[test]
fn forced_rewrites_reach_real_runtime_unchanged() {
    let lib = shim();
    for rt in runtimes("forced_rewrites_reach_real_runtime_unchanged") {
        let exe = probe_exe(&rt);
        let plain = run(rt.command(&exe, &[], None));
        let linked = probe_linked_to_shim(&rt);
        for (mode, forced_cmd) in [
            ("preloaded", rt.command(&exe, &[], Some(&lib))),
            ("linked to librmcp.so", rt.command(&linked, &[], None)),
        ] {
            let label = format!(
                "C program on ROCm {}, shim {mode}, at RMCP_MODE=force",
                rt.tag
            );
            let mut cmd = forced_cmd;
            cmd.env("RMCP_MODE", "force").env("RMCP_LOG", "debug");
            let forced = run(cmd);
            assert_eq!(
                plain.code, forced.code,
                "{label}: exit code differs:\n{}",
                forced.stderr
            );
            if plain.stdout != forced.stdout {
                panic!(
                    "{label}: stdout differs:\n{}",
                    line_diff(&plain.stdout, &forced.stdout)
                );
            }
            let errs = rmcp_errors(&forced.stderr);
            assert!(
                errs.is_empty(),
                "{label}: rmcp error lines:\n{}",
                errs.join("\n")
            );
            // "... hipHostMalloc CALLS/REWRITTEN, ..." in the summary line.
            let counts = forced
                .stderr
                .lines()
                .filter(|l| l.starts_with("rmcp:"))
                .find_map(|l| {
                    let rest = l.split_once("hipHostMalloc ")?.1;
                    let (calls, rest) = rest.split_once('/')?;
                    let rewritten: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    Some((calls.parse::<u32>().ok()?, rewritten.parse::<u32>().ok()?))
                });
            let Some((calls, rewritten)) = counts else {
                panic!(
                    "{label}: no `hipHostMalloc CALLS/REWRITTEN` in the shim's summary\n{}",
                    forced.stderr
                )
            };
            assert!(
                calls >= 4 && rewritten >= 1,
                "{label}: hipHostMalloc {calls}/{rewritten}"
            );
            say(&format!(
            "{label}: {} stdout lines identical; hipHostMalloc {calls} calls, {rewritten} rewritten and forwarded",
            plain.stdout.lines().count()
        ));
        }
    }
}

#[test]
fn dlopen_local_module_same_with_and_without_shim() {
    for rt in runtimes("dlopen_local_module_same_with_and_without_shim") {
        let (host, module) = (host_exe(&rt), probe_module(&rt));
        let label = format!("module opened with dlopen(RTLD_LOCAL) on ROCm {}", rt.tag);
        let plain = assert_transparent(&label, &rt.runtime_line(), &|s| {
            rt.command(&host, &[&module], s)
        });
        assert!(
            plain.stdout.starts_with("host: module opened RTLD_LOCAL"),
            "{label}: {}",
            plain.stdout
        );
        assert_probe_ran_on(&rt, &label, &plain);
    }
}

#[test]
fn hip_kernel_program_same_with_and_without_shim() {
    const T: &str = "hip_kernel_program_same_with_and_without_shim";
    let Some(rt) = runtimes(T).into_iter().find(|r| r.tag == "5.2.3") else {
        return;
    };
    let hipcc = Path::new("/usr/bin/hipcc");
    if !hipcc.exists() {
        return skip(T, "/usr/bin/hipcc (bookworm) is not installed");
    }
    let t0 = Instant::now();
    let exe = built(&rt, "kernel", |_, out| {
        let mut c = Command::new(hipcc);
        c.arg("--offload-arch=gfx1030")
            .arg("-o")
            .arg(out)
            .arg(real_dir().join("kernel.hip"));
        check_status("hipcc --offload-arch=gfx1030 tests/real/kernel.hip", &mut c);
    });
    say(&format!(
        "hipcc --offload-arch=gfx1030 kernel.hip: {:.1} s",
        t0.elapsed().as_secs_f64()
    ));
    let plain = assert_transparent(
        "hipcc-built kernel program on ROCm 5.2.3",
        &rt.runtime_line(),
        &|s| rt.command(&exe, &[], s),
    );
    assert!(plain.stdout.contains("kernel: done"), "{}", plain.stdout);
    say(&format!(
        "kernel program output: {}",
        plain.stdout.replace('\n', " | ")
    ));
}

#[test]
fn rocminfo_same_with_and_without_shim() {
    const T: &str = "rocminfo_same_with_and_without_shim";
    let Some(rt) = runtimes(T).into_iter().find(|r| r.tag == "5.2.3") else {
        return;
    };
    let rocminfo = Path::new("/usr/bin/rocminfo");
    if !rocminfo.exists() {
        return skip(T, "/usr/bin/rocminfo (bookworm) is not installed");
    }
    let plain = assert_transparent_with("rocminfo 5.2.3", None, &|s| rt.command(rocminfo, &[], s));
    say(&format!(
        "rocminfo: exit {:?}, stdout {:?}",
        plain.code,
        plain.stdout.trim()
    ));
}

/// One `binding file A [n] to B [m]: normal symbol `S' [V]` line of
/// LD_DEBUG=bindings.
#[derive(Debug)]
struct Binding {
    from: String,
    to: String,
    sym: String,
    /// The symbol version the reference asks for ("hip_5.1"), if any.
    version: Option<String>,
}

fn bindings(stderr: &str) -> Vec<Binding> {
    let mut v = Vec::new();
    for l in stderr.lines() {
        let Some(rest) = l.split_once("binding file ").map(|x| x.1) else {
            continue;
        };
        let Some((from, rest)) = rest.split_once(" [") else {
            continue;
        };
        let Some((_, rest)) = rest.split_once("] to ") else {
            continue;
        };
        let Some((to, rest)) = rest.split_once(" [") else {
            continue;
        };
        let Some((sym, rest)) = rest.split_once('`').and_then(|x| x.1.split_once('\'')) else {
            continue;
        };
        let version = rest
            .trim()
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .map(str::to_string);
        v.push(Binding {
            from: from.to_string(),
            to: to.to_string(),
            sym: sym.to_string(),
            version,
        });
    }
    v
}

fn file_name(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// The allocation entry points librmcp.so exports (every defined dynamic
/// symbol except the rmcp_* C API), read from the built library with nm.
fn shim_hooks() -> Vec<String> {
    let lib = shim();
    let out = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(&lib)
        .output()
        .unwrap_or_else(|e| panic!("nm -D {}: {e}", lib.display()));
    assert!(out.status.success(), "nm -D {}", lib.display());
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 3 && f[1] == "T" && !f[2].starts_with("rmcp_")).then(|| f[2].to_string())
        })
        .collect();
    v.sort();
    assert!(v.len() >= 19, "librmcp.so exports only {v:?}");
    v
}

/// The hooks tests/real/probe.c calls on `rt`: all of them except
/// hipExtHostAlloc (no runtime exports it, no header declares it) and, on
/// 5.2.3, hipGetProcAddress (added in 6.1) and hipExtModuleLaunchKernel
/// (not exported).
fn hooks_probe_calls(rt: &Runtime) -> Vec<String> {
    shim_hooks()
        .into_iter()
        .filter(|h| {
            h != "hipExtHostAlloc"
                && !(rt.tag == "5.2.3"
                    && (h == "hipGetProcAddress" || h == "hipExtModuleLaunchKernel"))
                && !(rt.tag != "7.2.4" && h.starts_with("hipGetDriverEntryPoint"))
                && !(rt.tag == "5.2.3"
                    && (h == "hipGraphLaunch_spt"
                        || h == "hipModuleLaunchCooperativeKernel"
                        || h == "hipModuleLaunchCooperativeKernelMultiDevice"))
                && !(rt.tag != "7.2.4"
                    && (h == "hipLaunchKernelExC" || h == "hipDrvLaunchKernelEx"))
        })
        .collect()
}

/// Builds the command of one case, with or without the shim preloaded.
type CaseCommand<'a> = &'a dyn Fn(Option<&Path>) -> Command;

/// Under LD_DEBUG=bindings, every hook the probe calls is bound to librmcp.so
/// in each load mode (and to the runtime without the shim), whatever symbol
/// version the reference asks for: the runtimes export them as hip_4.2,
/// hip_5.1, hip_6.1 and ROCR_1, librmcp.so unversioned.
#[test]
fn symbol_bindings_go_through_shim() {
    let lib = shim();
    let lib_name = file_name(lib.to_str().unwrap()).to_string();
    for rt in runtimes("symbol_bindings_go_through_shim") {
        let exe = probe_exe(&rt);
        let linked = probe_linked_to_shim(&rt);
        let (host, module) = (host_exe(&rt), probe_module(&rt));
        let hooks = hooks_probe_calls(&rt);
        // (what, command, the object whose references we read without / with the shim)
        let cases: [(&str, CaseCommand, &str, &str); 3] = [
            (
                "preloaded, linked program",
                &|s| rt.command(&exe, &[], s),
                "probe",
                "probe",
            ),
            (
                "preloaded, dlopen(RTLD_LOCAL) module",
                &|s| rt.command(&host, &[&module], s),
                "probe_mod.so",
                "probe_mod.so",
            ),
            (
                "program linked to librmcp.so",
                &|s| match s {
                    None => rt.command(&exe, &[], None),
                    Some(_) => rt.command(&linked, &[], None),
                },
                "probe",
                "probe_rmcp",
            ),
        ];
        for (what, make, app_plain, app_shim) in cases {
            let label = format!("{what} on ROCm {}", rt.tag);
            let traced = |shim: Option<&Path>| {
                let mut cmd = make(shim);
                cmd.env("LD_DEBUG", "bindings");
                bindings(&run(cmd).stderr)
            };
            let (plain, shimmed) = (traced(None), traced(Some(&lib)));
            let mut versions = BTreeMap::<String, usize>::new();
            for sym in &hooks {
                let to = |b: &[Binding], app: &str| -> Vec<String> {
                    b.iter()
                        .filter(|b| file_name(&b.from) == app && &b.sym == sym)
                        .map(|b| file_name(&b.to).to_string())
                        .collect()
                };
                let (p, s) = (to(&plain, app_plain), to(&shimmed, app_shim));
                assert!(
                    !p.is_empty() && s.iter().all(|t| t == &lib_name) && !s.is_empty(),
                    "{label}: `{sym}` is bound to {s:?} with the shim ({p:?} without), not to {lib_name}"
                );
                assert!(
                    !p.contains(&lib_name),
                    "{label}: `{sym}` bound to {lib_name} without the shim"
                );
                for b in shimmed
                    .iter()
                    .filter(|b| file_name(&b.from) == app_shim && &b.sym == sym)
                {
                    *versions
                        .entry(b.version.clone().unwrap_or_else(|| "unversioned".into()))
                        .or_default() += 1;
                }
            }
            // The shim forwards through dlsym(runtime handle, "hipMalloc"), which
            // LD_DEBUG shows as an unversioned lookup inside libamdhip64's own
            // scope; the runtime alone makes no such lookup.
            let own = |b: &[Binding]| {
                b.iter()
                    .filter(|b| {
                        b.sym == "hipMalloc"
                            && b.from == b.to
                            && file_name(&b.to).starts_with("libamdhip64.so")
                    })
                    .count()
            };
            let (p, s) = (own(&plain), own(&shimmed));
            assert!(
                s > p,
                "{label}: no lookup of hipMalloc in libamdhip64 by the shim ({s} with the shim, {p} without)"
            );
            say(&format!(
                "{label}: all {} hooks {app_shim} calls bound to {lib_name} (references by version: {versions:?}); \
                 the shim looked hipMalloc up in libamdhip64 ({s} lookups with the shim, {p} without)",
                hooks.len()
            ));
        }
    }
}

// ------------------------------------------------------------------ symbol versions

/// The functions rmcp looks up in the runtimes besides its hooks
/// (src/shim.rs HIP_NAMES and HSA_NAMES): devices.rs reads the architecture
/// through hipGetDevicePropertiesR0600 where it exists, else through the plain
/// hipGetDeviceProperties; R0000 is listed to show what the plain name is.
const FORWARDED_NAMES: [&str; 13] = [
    "hipGetDevice",
    "hipGetDeviceCount",
    "hipGetDeviceProperties",
    "hipGetDevicePropertiesR0000",
    "hipGetDevicePropertiesR0600",
    "hipMemAdvise",
    "hsa_init",
    "hsa_iterate_agents",
    "hsa_agent_get_info",
    "hsa_amd_agent_iterate_memory_pools",
    "hsa_amd_memory_pool_get_info",
    "hsa_amd_memory_pool_allocate",
    "hsa_amd_register_system_event_handler",
];

/// The version `rt` must export `name` under, and the library that defines
/// it; None: not exported at all.
fn expected_export(rt: &Runtime, name: &str) -> Option<(&'static str, &'static str)> {
    let hip = rt.soname;
    let rocm5 = rt.tag == "5.2.3";
    match name {
        // In no runtime here: AMD's 6.3+ builds export it, Debian's do not
        // (only the dispatch table has it); the hook stays for the builds that do.
        "hipExtHostAlloc" => None,
        "hipGetProcAddress" if !rocm5 => Some(("hip_6.1", hip)),
        "hipGetDevicePropertiesR0600" if !rocm5 => Some(("hip_6.0", hip)),
        "hipGetDevicePropertiesR0000" if !rocm5 => Some(("hip_4.2", hip)),
        "hipGetProcAddress" | "hipGetDevicePropertiesR0600" | "hipGetDevicePropertiesR0000" => None,
        "hipMallocAsync" | "hipMallocFromPoolAsync" | "hipFreeAsync" => Some(("hip_5.1", hip)),
        "hipGraphLaunch" => Some(("hip_4.3", hip)),
        "hipLaunchKernel_spt" | "hipLaunchCooperativeKernel_spt" | "hipStreamSynchronize_spt" => {
            Some(("hip_5.2", hip))
        }
        "hipGraphLaunch_spt"
        | "hipModuleLaunchCooperativeKernel"
        | "hipModuleLaunchCooperativeKernelMultiDevice"
            if rocm5 =>
        {
            None
        }
        "hipModuleLaunchCooperativeKernelMultiDevice" => Some(("hip_5.5", hip)),
        "hipLaunchKernelExC" | "hipDrvLaunchKernelEx" if rt.tag == "7.2.4" => {
            Some(("hip_6.5", hip))
        }
        "hipLaunchKernelExC" | "hipDrvLaunchKernelEx" => None,
        "hipGraphLaunch_spt" => Some(("hip_5.3", hip)),
        "hipModuleLaunchCooperativeKernel" => Some(("hip_5.5", hip)),
        "hipMemAddressReserve"
        | "hipMemAddressFree"
        | "hipMemCreate"
        | "hipMemRelease"
        | "hipMemMap"
        | "hipMemSetAccess"
        | "hipMemUnmap" => Some(("hip_5.1", hip)),
        // New in ROCm 7.1.
        "hipGetDriverEntryPoint" | "hipGetDriverEntryPoint_spt" if rt.tag == "7.2.4" => {
            Some(("hip_7.1", hip))
        }
        "hipGetDriverEntryPoint" | "hipGetDriverEntryPoint_spt" => None,
        // Not in 5.2.3; 6.4.3 and 7.2.4 export it under hip_4.2.
        "hipExtModuleLaunchKernel" if rocm5 => None,
        n if n.starts_with("hsa_") => Some(("ROCR_1", "libhsa-runtime64.so.1")),
        n if n.starts_with("hip") => Some(("hip_4.2", hip)),
        _ => panic!("no expected symbol version for `{name}`: add it to expected_export"),
    }
}

/// Which version each runtime exports every hooked and forwarded name under,
/// read with dlvsym by tests/real/symvers.c on the runtime itself. The hooks
/// are unversioned (tests/hip_shim.rs), and symbol_bindings_go_through_shim
/// shows references to these versions binding to them; a runtime that moved a
/// hook to a new version, or stopped exporting a name rmcp forwards to, fails
/// here. Also proves that no runtime here exports hipExtHostAlloc.
#[test]
fn hooked_symbol_versions_on_real_runtimes() {
    let mut names = shim_hooks();
    names.extend(FORWARDED_NAMES.iter().map(|s| s.to_string()));
    names.sort();
    names.dedup();
    let versions: Vec<String> = (4..=7)
        .flat_map(|major| (0..=9).map(move |minor| format!("hip_{major}.{minor}")))
        .chain(["ROCR_1".to_string()])
        .collect();
    for rt in runtimes("hooked_symbol_versions_on_real_runtimes") {
        let exe = built(&rt, "symvers", |_, out| {
            let mut c = c_compiler();
            c.arg(real_dir().join("symvers.c"))
                .arg("-o")
                .arg(out)
                .arg("-ldl");
            check_status("compiling tests/real/symvers.c", &mut c);
        });
        let lib = rt.libdir.join(rt.soname);
        let mut args: Vec<&Path> = vec![lib.as_path()];
        let joined = versions.join(",");
        args.push(Path::new(&joined));
        args.extend(names.iter().map(Path::new));
        let r = run(rt.command(&exe, &args, None));
        assert_eq!(r.code, Some(0), "symvers on ROCm {}: {}", rt.tag, r.stderr);
        let got: BTreeMap<&str, Vec<&str>> = r
            .stdout
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                Some((f.next()?, f.collect()))
            })
            .collect();
        let mut bad = Vec::new();
        let mut by_version = BTreeMap::<String, Vec<&str>>::new();
        for name in &names {
            let want = expected_export(&rt, name);
            let have = got.get(name.as_str()).cloned().unwrap_or_default();
            let ok = match want {
                None => have == ["absent"],
                Some((v, file)) => have == [v, file],
            };
            if !ok {
                bad.push(format!("{name}: exported as {have:?}, expected {want:?}"));
            }
            by_version
                .entry(have.first().copied().unwrap_or("?").to_string())
                .or_default()
                .push(name);
        }
        assert!(
            bad.is_empty(),
            "ROCm {} exports rmcp's names differently:\n{}",
            rt.tag,
            bad.join("\n")
        );
        say(&format!(
            "symbol versions on ROCm {} ({}): {}",
            rt.tag,
            rt.soname,
            by_version
                .iter()
                .map(|(v, n)| format!("{v}: {}", n.join(" ")))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
}

// ------------------------------------------------------------------ layout

fn layout_values(rt: &Runtime) -> BTreeMap<String, u64> {
    let exe = built(rt, "layout", |rt, out| {
        let mut c = c_compiler();
        rocm_c_flags(&mut c, rt);
        c.arg(real_dir().join("layout.c")).arg("-o").arg(out);
        check_status("compiling tests/real/layout.c", &mut c);
    });
    // layout.c links nothing from ROCm: it runs on the host's libc directly.
    let r = run(Command::new(&exe));
    assert_eq!(r.code, Some(0), "layout ({}) failed: {}", rt.tag, r.stderr);
    r.stdout
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(' ').unwrap();
            (
                k.to_string(),
                v.parse::<i64>()
                    .map(|x| x as u64)
                    .unwrap_or_else(|_| v.parse().unwrap()),
            )
        })
        .collect()
}

#[test]
fn layout_matches_real_headers() {
    use rmcp::abi::{self, device, host, hsa, managed, props};
    for rt in runtimes("layout_matches_real_headers") {
        let v = layout_values(&rt);
        let mut checked = 0;
        let mut bad = Vec::new();
        let mut expect = |key: &str, ours: u64| match v.get(key) {
            Some(&real) if real == ours => checked += 1,
            Some(&real) => bad.push(format!("{key}: real {real:#x}, rmcp::abi {ours:#x}")),
            None => bad.push(format!("{key}: not printed by layout.c for {}", rt.tag)),
        };
        expect("props.r0000.size", props::R0000_SIZE as u64);
        expect("props.r0000.gcnArchName", props::R0000_GCN_ARCH_NAME as u64);
        expect("props.r0000.integrated", props::R0000_INTEGRATED as u64);
        expect(
            "props.r0000.gcnArchName.len",
            props::GCN_ARCH_NAME_LEN as u64,
        );
        if rt.tag != "5.2.3" {
            expect("props.r0600.size", props::R0600_SIZE as u64);
            expect("props.r0600.gcnArchName", props::R0600_GCN_ARCH_NAME as u64);
            expect("props.r0600.integrated", props::R0600_INTEGRATED as u64);
            expect(
                "props.r0600.gcnArchName.len",
                props::GCN_ARCH_NAME_LEN as u64,
            );
            expect("hipHostAllocPortable", host::PORTABLE as u64);
            expect("hipHostAllocMapped", host::MAPPED as u64);
            expect("hipHostAllocWriteCombined", host::WRITE_COMBINED as u64);
            expect("hipDeviceMallocUncached", device::UNCACHED as u64);
            expect("hipDeviceMallocContiguous", device::CONTIGUOUS as u64);
            expect(
                "HSA_AMD_MEMORY_POOL_GLOBAL_FLAG_EXTENDED_SCOPE_FINE_GRAINED",
                hsa::GLOBAL_FLAG_EXTENDED_SCOPE_FINE_GRAINED as u64,
            );
        }
        if rt.tag != "5.2.3" && rt.tag != "6.4.3" {
            expect("hipHostMallocUncached", host::UNCACHED as u64);
            expect("hipHostAllocUncached", host::UNCACHED as u64);
            // ROCm 7 accepts Uncached in hipHostMalloc and hipHostAlloc but
            // rejects it beside Coherent or NonCoherent: rmcp must forward every
            // request that carries it untouched (adding NonCoherent would turn
            // a valid request into hipErrorInvalidValue).
            let real = v["hipHostMallocUncached"] as u32;
            let known = [
                host::PORTABLE,
                host::MAPPED,
                host::WRITE_COMBINED,
                host::NUMA_USER,
                host::COHERENT,
                host::NON_COHERENT,
            ];
            for subset in 0..1u32 << known.len() {
                let flags = known
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| subset & (1 << i) != 0)
                    .fold(real, |f, (_, bit)| f | bit);
                for env in [false, true] {
                    assert_eq!(
                        rmcp::policy::rewrite_host_malloc(flags, env),
                        None,
                        "hipHostMalloc({flags:#x}) with ROCm {}'s Uncached flag would be rewritten",
                        rt.tag
                    );
                    assert_eq!(
                        rmcp::policy::rewrite_host_alloc(flags, env),
                        None,
                        "hipHostAlloc({flags:#x}) with ROCm {}'s Uncached flag would be rewritten",
                        rt.tag
                    );
                }
            }
        } else {
            assert!(!v.contains_key("hipHostMallocUncached"), "{}", rt.tag);
        }
        assert!(props::PROPS_BUFFER_BYTES as u64 >= v["props.r0000.size"]);
        assert!(
            props::PROPS_BUFFER_BYTES as u64 >= v.get("props.r0600.size").copied().unwrap_or(0)
        );

        expect("hipSuccess", abi::HIP_SUCCESS as u64);
        expect("hipErrorInvalidValue", abi::HIP_ERROR_INVALID_VALUE as u64);
        expect("hipErrorOutOfMemory", abi::HIP_ERROR_OUT_OF_MEMORY as u64);
        expect(
            "hipErrorNotInitialized",
            abi::HIP_ERROR_NOT_INITIALIZED as u64,
        );
        expect("hipErrorNoDevice", abi::HIP_ERROR_NO_DEVICE as u64);
        expect(
            "hipErrorInvalidDevice",
            abi::HIP_ERROR_INVALID_DEVICE as u64,
        );
        expect("hipErrorNotSupported", abi::HIP_ERROR_NOT_SUPPORTED as u64);
        expect(
            "sizeof.hipError_t",
            std::mem::size_of::<abi::hipError_t>() as u64,
        );

        expect("hipHostMallocDefault", host::DEFAULT as u64);
        expect("hipHostMallocPortable", host::PORTABLE as u64);
        expect("hipHostMallocMapped", host::MAPPED as u64);
        expect("hipHostMallocWriteCombined", host::WRITE_COMBINED as u64);
        expect("hipHostMallocNumaUser", host::NUMA_USER as u64);
        expect("hipHostMallocCoherent", host::COHERENT as u64);
        expect("hipHostMallocNonCoherent", host::NON_COHERENT as u64);
        expect("hipDeviceMallocDefault", device::DEFAULT as u64);
        expect("hipDeviceMallocFinegrained", device::FINEGRAINED as u64);
        expect("hipMallocSignalMemory", device::SIGNAL_MEMORY as u64);
        expect("hipMemAttachGlobal", managed::ATTACH_GLOBAL as u64);
        expect("hipMemAttachHost", managed::ATTACH_HOST as u64);
        expect(
            "hipMemAdviseSetCoarseGrain",
            abi::HIP_MEM_ADVISE_SET_COARSE_GRAIN as u64,
        );

        expect("HSA_STATUS_SUCCESS", hsa::STATUS_SUCCESS as u64);
        expect("HSA_STATUS_INFO_BREAK", hsa::STATUS_INFO_BREAK as u64);
        expect("HSA_STATUS_ERROR", hsa::STATUS_ERROR as u64);
        expect(
            "HSA_STATUS_ERROR_INVALID_ARGUMENT",
            hsa::STATUS_ERROR_INVALID_ARGUMENT as u64,
        );
        expect(
            "HSA_STATUS_ERROR_NOT_INITIALIZED",
            hsa::STATUS_ERROR_NOT_INITIALIZED as u64,
        );
        expect(
            "sizeof.hsa_status_t",
            std::mem::size_of::<abi::hsa_status_t>() as u64,
        );
        expect("HSA_AGENT_INFO_NAME", hsa::AGENT_INFO_NAME as u64);
        expect("HSA_AGENT_INFO_DEVICE", hsa::AGENT_INFO_DEVICE as u64);
        expect("HSA_DEVICE_TYPE_CPU", hsa::DEVICE_TYPE_CPU as u64);
        expect("HSA_DEVICE_TYPE_GPU", hsa::DEVICE_TYPE_GPU as u64);
        expect(
            "HSA_AMD_AGENT_INFO_DRIVER_NODE_ID",
            hsa::AMD_AGENT_INFO_DRIVER_NODE_ID as u64,
        );
        expect(
            "HSA_AMD_MEMORY_POOL_INFO_SEGMENT",
            hsa::POOL_INFO_SEGMENT as u64,
        );
        expect(
            "HSA_AMD_MEMORY_POOL_INFO_GLOBAL_FLAGS",
            hsa::POOL_INFO_GLOBAL_FLAGS as u64,
        );
        expect("HSA_AMD_MEMORY_POOL_INFO_SIZE", hsa::POOL_INFO_SIZE as u64);
        expect("HSA_AMD_SEGMENT_GLOBAL", hsa::SEGMENT_GLOBAL as u64);
        expect(
            "HSA_AMD_MEMORY_POOL_GLOBAL_FLAG_KERNARG_INIT",
            hsa::GLOBAL_FLAG_KERNARG_INIT as u64,
        );
        expect(
            "HSA_AMD_MEMORY_POOL_GLOBAL_FLAG_FINE_GRAINED",
            hsa::GLOBAL_FLAG_FINE_GRAINED as u64,
        );
        expect(
            "HSA_AMD_MEMORY_POOL_GLOBAL_FLAG_COARSE_GRAINED",
            hsa::GLOBAL_FLAG_COARSE_GRAINED as u64,
        );
        expect(
            "HSA_AMD_GPU_MEMORY_FAULT_EVENT",
            hsa::EVENT_GPU_MEMORY_FAULT as u64,
        );
        for (key, bit) in [
            (
                "HSA_AMD_MEMORY_FAULT_PAGE_NOT_PRESENT",
                hsa::FAULT_PAGE_NOT_PRESENT,
            ),
            ("HSA_AMD_MEMORY_FAULT_READ_ONLY", hsa::FAULT_READ_ONLY),
            ("HSA_AMD_MEMORY_FAULT_NX", hsa::FAULT_NX),
            ("HSA_AMD_MEMORY_FAULT_HOST_ONLY", hsa::FAULT_HOST_ONLY),
            ("HSA_AMD_MEMORY_FAULT_DRAMECC", hsa::FAULT_DRAMECC),
            ("HSA_AMD_MEMORY_FAULT_IMPRECISE", hsa::FAULT_IMPRECISE),
            ("HSA_AMD_MEMORY_FAULT_SRAMECC", hsa::FAULT_SRAMECC),
            ("HSA_AMD_MEMORY_FAULT_HANG", hsa::FAULT_HANG),
        ] {
            expect(key, bit as u64);
        }
        // Every reason bit the report names is one the header defines.
        for (bit, _) in hsa::FAULT_REASONS {
            assert!(
                v.iter()
                    .any(|(k, &x)| k.starts_with("HSA_AMD_MEMORY_FAULT_") && x == bit as u64),
                "{bit:#x}"
            );
        }

        // Struct layouts, measured on our #[repr(C)] types.
        let ev = std::mem::MaybeUninit::<abi::hsa_amd_event_t>::uninit();
        let fi = std::mem::MaybeUninit::<abi::hsa_amd_gpu_memory_fault_info_t>::uninit();
        let (evp, fip) = (ev.as_ptr(), fi.as_ptr());
        let off = |base: *const u8, field: *const u8| field as u64 - base as u64;
        // SAFETY: addr_of! on fields of an uninitialised value computes addresses only.
        unsafe {
            expect(
                "offsetof.hsa_amd_event_t.event_type",
                off(evp.cast(), std::ptr::addr_of!((*evp).event_type).cast()),
            );
            expect(
                "offsetof.hsa_amd_event_t.memory_fault",
                off(evp.cast(), std::ptr::addr_of!((*evp).memory_fault).cast()),
            );
            expect(
                "offsetof.fault_info.agent",
                off(fip.cast(), std::ptr::addr_of!((*fip).agent).cast()),
            );
            expect(
                "offsetof.fault_info.virtual_address",
                off(
                    fip.cast(),
                    std::ptr::addr_of!((*fip).virtual_address).cast(),
                ),
            );
            expect(
                "offsetof.fault_info.fault_reason_mask",
                off(
                    fip.cast(),
                    std::ptr::addr_of!((*fip).fault_reason_mask).cast(),
                ),
            );
        }
        expect(
            "sizeof.hsa_agent_t",
            std::mem::size_of::<abi::hsa_agent_t>() as u64,
        );
        expect(
            "sizeof.hsa_amd_memory_pool_t",
            std::mem::size_of::<abi::hsa_amd_memory_pool_t>() as u64,
        );
        expect(
            "sizeof.hsa_amd_gpu_memory_fault_info_t",
            std::mem::size_of::<abi::hsa_amd_gpu_memory_fault_info_t>() as u64,
        );
        assert!(
            bad.is_empty(),
            "rmcp::abi disagrees with the real ROCm {} headers:\n{}",
            rt.tag,
            bad.join("\n")
        );
        say(&format!(
            "layout: {checked} values of rmcp::abi match the real ROCm {} headers",
            rt.tag
        ));
    }
}

// ------------------------------------------------------------------ signatures (bindgen)

/// With `--features real-headers`, build/real_headers.rs has run bindgen on the
/// real ROCm 5.2.3, 6.4.3 and 7.2.4 headers (wrapper.h). The prototypes arrive as
/// function-pointer fields of `RealApi` (never loaded: no symbol is referenced),
/// and every exported hook is checked against them by the type checker: a
/// hook whose signature drifts from the real header does not compile.
#[cfg(feature = "real-headers")]
mod real_headers {
    #![allow(
        non_camel_case_types,
        non_snake_case,
        non_upper_case_globals,
        dead_code,
        unused_imports,
        // bindgen's loader code calls unsafe functions without blocks.
        unsafe_op_in_unsafe_fn
    )]
    #![allow(clippy::all, clippy::undocumented_unsafe_blocks)]

    use rmcp::abi::{self, device, host, hsa, managed, props};
    use std::ffi::{c_char, c_int, c_uint, c_void};
    use std::mem::{align_of, size_of, MaybeUninit};

    pub mod r523 {
        include!(concat!(env!("OUT_DIR"), "/real_rocm_5_2_3.rs"));
    }
    pub mod r643 {
        include!(concat!(env!("OUT_DIR"), "/real_rocm_6_4_3.rs"));
    }
    pub mod r724 {
        include!(concat!(env!("OUT_DIR"), "/real_rocm_7_2_4.rs"));
    }

    /// `Ours: AbiEq<Real>`: our type may stand where the real header has `Real`.
    /// Holds for identical scalar types, structurally for pointers and
    /// `unsafe extern "C"` function pointers, and for the few pairs listed
    /// below, each of which has the same size, alignment and passing class.
    pub trait AbiEq<Real> {}
    macro_rules! identity {
        ($($t:ty),*) => { $(impl AbiEq<$t> for $t {})* };
    }
    identity!(c_void, i8, u8, i16, u16, i32, u32, i64, u64, isize, usize);
    impl<A: AbiEq<B>, B> AbiEq<*mut B> for *mut A {}
    impl<A: AbiEq<B>, B> AbiEq<*const B> for *const A {}
    macro_rules! fn_ptr {
        ($($a:ident $b:ident),*) => {
            impl<R1: AbiEq<R2>, R2, $($a: AbiEq<$b>, $b),*>
                AbiEq<unsafe extern "C" fn($($b),*) -> R2> for unsafe extern "C" fn($($a),*) -> R1 {}
        };
    }
    fn_ptr!();
    fn_ptr!(A1 B1);
    fn_ptr!(A1 B1, A2 B2);
    fn_ptr!(A1 B1, A2 B2, A3 B3);
    fn_ptr!(A1 B1, A2 B2, A3 B3, A4 B4);
    fn_ptr!(A1 B1, A2 B2, A3 B3, A4 B4, A5 B5);
    fn_ptr!(A1 B1, A2 B2, A3 B3, A4 B4, A5 B5, A6 B6);
    fn_ptr!(A1 B1, A2 B2, A3 B3, A4 B4, A5 B5, A6 B6, A7 B7);
    fn_ptr!(A1 B1, A2 B2, A3 B3, A4 B4, A5 B5, A6 B6, A7 B7, A8 B8);
    fn_ptr!(A1 B1, A2 B2, A3 B3, A4 B4, A5 B5, A6 B6, A7 B7, A8 B8, A9 B9);
    fn_ptr!(A1 B1, A2 B2, A3 B3, A4 B4, A5 B5, A6 B6, A7 B7, A8 B8, A9 B9, A10 B10);
    fn_ptr!(A1 B1, A2 B2, A3 B3, A4 B4, A5 B5, A6 B6, A7 B7, A8 B8, A9 B9, A10 B10, A11 B11);

    /// The deliberate differences, per header version:
    /// - C enums (bindgen: 4-byte newtypes over c_uint) that rmcp passes as
    ///   i32 (`rmcp::abi::hipError_t`, `hsa_status_t`, the status out-param of
    ///   hipGetProcAddress): same size and register class; every value is < 2^31;
    /// - `void*` for the opaque handle structs behind hipStream_t / hipMemPool_t;
    /// - rmcp's own `#[repr(C)]` copies of hsa_amd_memory_pool_t and dim3
    ///   (layouts asserted).
    macro_rules! per_header {
        ($r:ident) => {
            impl AbiEq<$r::hipError_t> for i32 {}
            impl AbiEq<$r::hsa_status_t> for i32 {}
            impl AbiEq<$r::ihipStream_t> for c_void {}
            impl AbiEq<$r::ihipMemPoolHandle_t> for c_void {}
            impl AbiEq<$r::ihipModuleSymbol_t> for c_void {}
            impl AbiEq<$r::ihipEvent_t> for c_void {}
            impl AbiEq<$r::hipGraphExec> for c_void {}
            impl AbiEq<$r::hsa_amd_memory_pool_t> for abi::hsa_amd_memory_pool_t {}
            impl AbiEq<$r::dim3> for abi::dim3 {}
            // VMM: the handle is opaque; rmcp reads neither the allocation
            // properties (their layout differs between ROCm 5.2.3 and 6.x)
            // nor the access descriptors.
            impl AbiEq<$r::ihipMemGenericAllocationHandle> for c_void {}
            impl AbiEq<$r::hipMemAllocationProp> for c_void {}
            impl AbiEq<$r::hipMemAccessDesc> for c_void {}
            impl AbiEq<$r::hipPitchedPtr> for abi::hipPitchedPtr {}
            impl AbiEq<$r::hipLaunchParams> for abi::hipLaunchParams {}
            impl AbiEq<$r::hipExtent> for abi::hipExtent {}
            const _: () = {
                assert!(size_of::<$r::dim3>() == size_of::<abi::dim3>());
                assert!(size_of::<$r::hipExtent>() == size_of::<abi::hipExtent>());
                assert!(
                    std::mem::offset_of!($r::hipExtent, depth)
                        == std::mem::offset_of!(abi::hipExtent, depth)
                );
                assert!(size_of::<$r::hipPitchedPtr>() == size_of::<abi::hipPitchedPtr>());
                assert!(size_of::<$r::hipLaunchParams>() == size_of::<abi::hipLaunchParams>());
                assert!(
                    std::mem::offset_of!($r::hipLaunchParams, stream)
                        == std::mem::offset_of!(abi::hipLaunchParams, stream)
                );
                assert!(
                    std::mem::offset_of!($r::hipPitchedPtr, ysize)
                        == std::mem::offset_of!(abi::hipPitchedPtr, ysize)
                );

                assert!(align_of::<$r::dim3>() == align_of::<abi::dim3>());
                assert!(size_of::<$r::hipError_t>() == size_of::<i32>());
                assert!(size_of::<$r::hsa_status_t>() == size_of::<i32>());
                assert!(
                    size_of::<$r::hsa_amd_memory_pool_t>()
                        == size_of::<abi::hsa_amd_memory_pool_t>()
                );
                assert!(
                    align_of::<$r::hsa_amd_memory_pool_t>()
                        == align_of::<abi::hsa_amd_memory_pool_t>()
                );
                assert!(size_of::<$r::hsa_agent_t>() == size_of::<abi::hsa_agent_t>());
                assert!(
                    size_of::<$r::hsa_amd_gpu_memory_fault_info_t>()
                        == size_of::<abi::hsa_amd_gpu_memory_fault_info_t>()
                );
            };
        };
    }
    per_header!(r523);
    per_header!(r643);
    per_header!(r724);
    impl AbiEq<r643::hipDriverProcAddressQueryResult> for i32 {}
    impl AbiEq<r724::hipDriverProcAddressQueryResult> for i32 {}
    impl AbiEq<r724::hipDriverEntryPointQueryResult> for i32 {}
    // The extensible launches' configs (ROCm >= 6.5) and the module
    // multi-device launch list (>= 5.5); rmcp reads their dimensions and
    // streams, never the attributes.
    impl AbiEq<r724::hipLaunchConfig_t> for abi::hipLaunchConfig_t {}
    impl AbiEq<r724::HIP_LAUNCH_CONFIG> for abi::HIP_LAUNCH_CONFIG {}
    impl AbiEq<r643::hipFunctionLaunchParams> for abi::hipFunctionLaunchParams {}
    impl AbiEq<r724::hipFunctionLaunchParams> for abi::hipFunctionLaunchParams {}
    const _: () = {
        assert!(size_of::<r724::hipLaunchConfig_t>() == size_of::<abi::hipLaunchConfig_t>());
        assert!(
            std::mem::offset_of!(r724::hipLaunchConfig_t, stream)
                == std::mem::offset_of!(abi::hipLaunchConfig_t, stream)
        );
        assert!(size_of::<r724::HIP_LAUNCH_CONFIG>() == size_of::<abi::HIP_LAUNCH_CONFIG>());
        assert!(
            std::mem::offset_of!(r724::HIP_LAUNCH_CONFIG, hStream)
                == std::mem::offset_of!(abi::HIP_LAUNCH_CONFIG, stream)
        );
        assert!(
            size_of::<r724::hipFunctionLaunchParams>() == size_of::<abi::hipFunctionLaunchParams>()
        );
        assert!(
            std::mem::offset_of!(r643::hipFunctionLaunchParams, hStream)
                == std::mem::offset_of!(abi::hipFunctionLaunchParams, stream)
        );
        assert!(
            std::mem::offset_of!(r724::hipFunctionLaunchParams, hStream)
                == std::mem::offset_of!(abi::hipFunctionLaunchParams, stream)
        );
    };
    const _: () = assert!(size_of::<r724::hipDriverEntryPointQueryResult>() == size_of::<i32>());
    const _: () = assert!(size_of::<r643::hipDriverProcAddressQueryResult>() == size_of::<i32>());
    const _: () = assert!(size_of::<r724::hipDriverProcAddressQueryResult>() == size_of::<i32>());

    /// Compiles only if `ours` may stand for the real prototype `real` selects.
    fn same<Ours: AbiEq<Real>, Real, Api>(_ours: Ours, _real: fn(&Api) -> &Real) {}

    /// One hook against header version `$r`: its `RealApi` field, or the
    /// reason it has none, pushed to `$skipped`.
    macro_rules! check_one {
        // No C prototype anywhere: declared only in the C++ header
        // hip/hip_ext.h (default arguments, `extern "C"` blocks), which
        // bindgen's C reading of wrapper.h cannot include. For 6.4.3 and
        // 7.2.4 the dispatch table's typedef is compared below instead.
        ($r:ident, $checked:ident, $skipped:ident, hipExtModuleLaunchKernel, $($t:tt)*) => {
            $skipped.push(("hipExtModuleLaunchKernel", "only in the C++ header hip/hip_ext.h"));
        };
        // ROCm 5.2.3 has no hipGetProcAddress, and declares hipExtLaunchKernel
        // only in hip/hip_ext.h (6.x moved it to hip_runtime_api.h).
        (r523, $checked:ident, $skipped:ident, hipGetProcAddress, $($t:tt)*) => {
            $skipped.push(("hipGetProcAddress", "not in ROCm 5.2.3"));
        };
        // hipGetDriverEntryPoint is new in ROCm 7.1.
        (r523, $checked:ident, $skipped:ident, hipGetDriverEntryPoint, $($t:tt)*) => {
            $skipped.push(("hipGetDriverEntryPoint", "not before ROCm 7.1"));
        };
        (r643, $checked:ident, $skipped:ident, hipGetDriverEntryPoint, $($t:tt)*) => {
            $skipped.push(("hipGetDriverEntryPoint", "not before ROCm 7.1"));
        };
        // New in ROCm 6.5 (hipLaunchKernelExC, hipDrvLaunchKernelEx) and 5.5.
        (r523, $checked:ident, $skipped:ident, hipLaunchKernelExC, $($t:tt)*) => {
            $skipped.push(("hipLaunchKernelExC", "not before ROCm 6.5"));
        };
        (r643, $checked:ident, $skipped:ident, hipLaunchKernelExC, $($t:tt)*) => {
            $skipped.push(("hipLaunchKernelExC", "not before ROCm 6.5"));
        };
        (r523, $checked:ident, $skipped:ident, hipDrvLaunchKernelEx, $($t:tt)*) => {
            $skipped.push(("hipDrvLaunchKernelEx", "not before ROCm 6.5"));
        };
        (r643, $checked:ident, $skipped:ident, hipDrvLaunchKernelEx, $($t:tt)*) => {
            $skipped.push(("hipDrvLaunchKernelEx", "not before ROCm 6.5"));
        };
        (r523, $checked:ident, $skipped:ident, hipModuleLaunchCooperativeKernelMultiDevice, $($t:tt)*) => {
            $skipped.push(("hipModuleLaunchCooperativeKernelMultiDevice", "not in ROCm 5.2.3"));
        };
        (r523, $checked:ident, $skipped:ident, hipGraphLaunch_spt, $($t:tt)*) => {
            $skipped.push(("hipGraphLaunch_spt", "not in ROCm 5.2.3"));
        };
        (r523, $checked:ident, $skipped:ident, hipModuleLaunchCooperativeKernel, $($t:tt)*) => {
            $skipped.push(("hipModuleLaunchCooperativeKernel", "not in ROCm 5.2.3"));
        };
        (r523, $checked:ident, $skipped:ident, hipGetDriverEntryPoint_spt, $($t:tt)*) => {
            $skipped.push(("hipGetDriverEntryPoint_spt", "not before ROCm 7.1"));
        };
        (r643, $checked:ident, $skipped:ident, hipGetDriverEntryPoint_spt, $($t:tt)*) => {
            $skipped.push(("hipGetDriverEntryPoint_spt", "not before ROCm 7.1"));
        };
        (r523, $checked:ident, $skipped:ident, hipExtLaunchKernel, $($t:tt)*) => {
            $skipped.push(("hipExtLaunchKernel", "only in ROCm 5.2.3's C++ header hip/hip_ext.h"));
        };
        // No public prototype: the dispatch tables declare it with
        // hipHostAlloc's parameters (compared below), so it is checked
        // against hipHostAlloc.
        ($r:ident, $checked:ident, $skipped:ident, hipExtHostAlloc, $hook:path, ($($a:ty),*) -> $ret:ty) => {
            same($hook as unsafe extern "C" fn($($a),*) -> $ret, |a: &$r::RealApi| &a.hipHostAlloc);
            $checked.push("hipExtHostAlloc");
        };
        ($r:ident, $checked:ident, $skipped:ident, $name:ident, $hook:path, ($($a:ty),*) -> $ret:ty) => {
            same($hook as unsafe extern "C" fn($($a),*) -> $ret, |a: &$r::RealApi| &a.$name);
            $checked.push(stringify!($name));
        };
    }

    /// Every exported hook of `hook_table!` against header version `$r`:
    /// (checked, skipped with the reason).
    macro_rules! check_table {
        (
            $r:ident
            hip_hooks { $($hv:ident $hs:ident ($($ha:ty),*) -> $hr:ty;)* }
            hsa_hooks { $($sv:ident $ss:ident ($($sa:ty),*) -> $sr:ty;)* }
            hsa_other_hooks { $($os:ident ($($oa:ty),*) -> $or:ty;)* }
            $($calls:tt)*
        ) => {{
            let mut checked: Vec<&str> = Vec::new();
            let mut skipped: Vec<(&str, &str)> = Vec::new();
            $(check_one!($r, checked, skipped, $hs, rmcp::hooks::$hs, ($($ha),*) -> $hr);)*
            $(check_one!($r, checked, skipped, $ss, rmcp::hooks::$ss, ($($sa),*) -> $sr);)*
            $(check_one!($r, checked, skipped, $os, rmcp::hooks::$os, ($($oa),*) -> $or);)*
            (checked, skipped)
        }};
    }

    #[test]
    fn hook_prototypes_match_real_headers() {
        // The table's own type names, as its consumers in rmcp see them.
        use abi::{
            dim3, hipError_t, hipEvent_t, hipExtent, hipFunctionLaunchParams, hipFunction_t,
            hipGraphExec_t, hipLaunchConfig_t, hipLaunchParams, hipMemGenericAllocationHandle_t,
            hipMemPool_t, hipPitchedPtr, hipStream_t, hsa_amd_memory_pool_t, hsa_status_t,
            HIP_LAUNCH_CONFIG,
        };
        let every: Vec<&str> = rmcp::hooks::EXPORTED.to_vec();
        let mut counts = Vec::new();
        for (tag, (checked, skipped)) in [
            ("5.2.3", rmcp::hook_table!(check_table r523)),
            ("6.4.3", rmcp::hook_table!(check_table r643)),
            ("7.2.4", rmcp::hook_table!(check_table r724)),
        ] {
            // Every exported hook is either checked or skipped for a reason
            // stated above, and only these are skipped.
            let mut seen: Vec<&str> = checked
                .iter()
                .copied()
                .chain(skipped.iter().map(|s| s.0))
                .collect();
            seen.sort();
            let mut all = every.clone();
            all.sort();
            assert_eq!(seen, all, "ROCm {tag}");
            let mut names: Vec<&str> = skipped.iter().map(|s| s.0).collect();
            names.sort();
            let expected: &[&str] = match tag {
                "5.2.3" => &[
                    "hipDrvLaunchKernelEx",
                    "hipExtLaunchKernel",
                    "hipExtModuleLaunchKernel",
                    "hipGetDriverEntryPoint",
                    "hipGetDriverEntryPoint_spt",
                    "hipGetProcAddress",
                    "hipGraphLaunch_spt",
                    "hipLaunchKernelExC",
                    "hipModuleLaunchCooperativeKernel",
                    "hipModuleLaunchCooperativeKernelMultiDevice",
                ],
                "6.4.3" => &[
                    "hipDrvLaunchKernelEx",
                    "hipExtModuleLaunchKernel",
                    "hipGetDriverEntryPoint",
                    "hipGetDriverEntryPoint_spt",
                    "hipLaunchKernelExC",
                ],
                _ => &["hipExtModuleLaunchKernel"],
            };
            assert_eq!(names, expected, "ROCm {tag}");
            counts.push(format!(
                "ROCm {tag}: {} hooks match, not checked: {}",
                checked.len(),
                skipped
                    .iter()
                    .map(|(n, why)| format!("{n} ({why})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        // hipExtHostAlloc and hipExtModuleLaunchKernel: ROCm 6.4.3 and 7.2.4
        // declare their prototypes in the C++ dispatch table
        // (hip/amd_detail/hip_api_trace.hpp); the typedefs must still say
        // what the hooks were checked against.
        let squash = |s: &str| s.split_whitespace().collect::<String>();
        for (tag, root) in [
            ("6.4.3", super::rocm_root("sid-root")),
            ("7.2.4", super::rocm_root("exp-root")),
        ] {
            let trace =
                std::fs::read_to_string(root.join("usr/include/hip/amd_detail/hip_api_trace.hpp"))
                    .unwrap_or_else(|e| panic!("ROCm {tag} hip_api_trace.hpp: {e}"));
            assert!(
                squash(&trace).contains(&squash(
                    "typedef hipError_t (*t_hipExtHostAlloc)(void **ptr, size_t size, unsigned int flags);"
                )),
                "t_hipExtHostAlloc in ROCm {tag}'s hip_api_trace.hpp no longer has hipHostAlloc's parameters"
            );
            // The table's line, as C: (hipFunction_t, u32 x6, usize,
            // hipStream_t, void**, void**, hipEvent_t, hipEvent_t, u32).
            assert!(
                squash(&trace).contains(&squash(
                    "typedef hipError_t (*t_hipExtModuleLaunchKernel)(hipFunction_t f, uint32_t globalWorkSizeX, \
                     uint32_t globalWorkSizeY, uint32_t globalWorkSizeZ, uint32_t localWorkSizeX, uint32_t localWorkSizeY, \
                     uint32_t localWorkSizeZ, size_t sharedMemBytes, hipStream_t hStream, void** kernelParams, \
                     void** extra, hipEvent_t startEvent, hipEvent_t stopEvent, uint32_t flags);"
                )),
                "t_hipExtModuleLaunchKernel in ROCm {tag}'s hip_api_trace.hpp differs from hook_table!'s line"
            );
        }
        super::say(&format!(
            "signatures (bindgen on wrapper.h): {}",
            counts.join("; ")
        ));
    }

    macro_rules! offset {
        ($t:ty, $f:ident) => {{
            let u = MaybeUninit::<$t>::uninit();
            let b = u.as_ptr();
            // SAFETY: computes a field address inside an uninitialised value; never reads.
            unsafe { std::ptr::addr_of!((*b).$f) as usize - b as usize }
        }};
    }

    fn size_of_pointee<T>(_: *const T) -> usize {
        size_of::<T>()
    }
    macro_rules! field_size {
        ($t:ty, $f:ident) => {{
            let u = MaybeUninit::<$t>::uninit();
            let b = u.as_ptr();
            // SAFETY: as in offset!.
            size_of_pointee(unsafe { std::ptr::addr_of!((*b).$f) })
        }};
    }

    /// The same facts as layout_matches_real_headers, read by bindgen instead
    /// of the C compiler: two independent readings of the headers.
    #[test]
    fn bindgen_layouts_match_abi() {
        assert_eq!(r523::HIP_VERSION_MAJOR, 5);
        assert_eq!(r643::HIP_VERSION_MAJOR, 6);
        assert_eq!(r724::HIP_VERSION_MAJOR, 7);
        for (size, arch, integrated, len) in [
            (
                size_of::<r523::hipDeviceProp_t>(),
                offset!(r523::hipDeviceProp_t, gcnArchName),
                offset!(r523::hipDeviceProp_t, integrated),
                field_size!(r523::hipDeviceProp_t, gcnArchName),
            ),
            (
                size_of::<r643::hipDeviceProp_tR0000>(),
                offset!(r643::hipDeviceProp_tR0000, gcnArchName),
                offset!(r643::hipDeviceProp_tR0000, integrated),
                field_size!(r643::hipDeviceProp_tR0000, gcnArchName),
            ),
            (
                size_of::<r724::hipDeviceProp_tR0000>(),
                offset!(r724::hipDeviceProp_tR0000, gcnArchName),
                offset!(r724::hipDeviceProp_tR0000, integrated),
                field_size!(r724::hipDeviceProp_tR0000, gcnArchName),
            ),
        ] {
            assert_eq!(
                (size, arch, integrated, len),
                (
                    props::R0000_SIZE,
                    props::R0000_GCN_ARCH_NAME,
                    props::R0000_INTEGRATED,
                    props::GCN_ARCH_NAME_LEN
                )
            );
        }
        for r0600 in [
            (
                size_of::<r643::hipDeviceProp_tR0600>(),
                offset!(r643::hipDeviceProp_tR0600, gcnArchName),
                offset!(r643::hipDeviceProp_tR0600, integrated),
                field_size!(r643::hipDeviceProp_tR0600, gcnArchName),
            ),
            (
                size_of::<r724::hipDeviceProp_tR0600>(),
                offset!(r724::hipDeviceProp_tR0600, gcnArchName),
                offset!(r724::hipDeviceProp_tR0600, integrated),
                field_size!(r724::hipDeviceProp_tR0600, gcnArchName),
            ),
        ] {
            assert_eq!(
                r0600,
                (
                    props::R0600_SIZE,
                    props::R0600_GCN_ARCH_NAME,
                    props::R0600_INTEGRATED,
                    props::GCN_ARCH_NAME_LEN
                )
            );
        }
        macro_rules! consts {
            ($($r:ident)*) => {$(
                assert_eq!($r::hipHostMallocDefault, host::DEFAULT);
                assert_eq!($r::hipHostMallocPortable, host::PORTABLE);
                assert_eq!($r::hipHostMallocMapped, host::MAPPED);
                assert_eq!($r::hipHostMallocWriteCombined, host::WRITE_COMBINED);
                assert_eq!($r::hipHostMallocNumaUser, host::NUMA_USER);
                assert_eq!($r::hipHostMallocCoherent, host::COHERENT);
                assert_eq!($r::hipHostMallocNonCoherent, host::NON_COHERENT);
                assert_eq!($r::hipDeviceMallocDefault, device::DEFAULT);
                assert_eq!($r::hipDeviceMallocFinegrained, device::FINEGRAINED);
                assert_eq!($r::hipMallocSignalMemory, device::SIGNAL_MEMORY);
                assert_eq!($r::hipMemAttachGlobal, managed::ATTACH_GLOBAL);
                assert_eq!($r::hipMemAttachHost, managed::ATTACH_HOST);
                assert_eq!($r::hipMemoryAdvise::hipMemAdviseSetCoarseGrain.0 as i32, abi::HIP_MEM_ADVISE_SET_COARSE_GRAIN);
                assert_eq!($r::hipError_t::hipErrorNoDevice.0 as i32, abi::HIP_ERROR_NO_DEVICE);
                assert_eq!($r::hipError_t::hipErrorInvalidDevice.0 as i32, abi::HIP_ERROR_INVALID_DEVICE);
                assert_eq!($r::hipError_t::hipErrorNotSupported.0 as i32, abi::HIP_ERROR_NOT_SUPPORTED);
                assert_eq!($r::hsa_status_t::HSA_STATUS_ERROR_NOT_INITIALIZED.0 as i32, hsa::STATUS_ERROR_NOT_INITIALIZED);
                assert_eq!($r::hsa_amd_memory_pool_info_t::HSA_AMD_MEMORY_POOL_INFO_GLOBAL_FLAGS.0, hsa::POOL_INFO_GLOBAL_FLAGS);
                assert_eq!($r::hsa_amd_memory_pool_global_flag_s::HSA_AMD_MEMORY_POOL_GLOBAL_FLAG_FINE_GRAINED.0, hsa::GLOBAL_FLAG_FINE_GRAINED);
                assert_eq!($r::hsa_amd_memory_pool_global_flag_s::HSA_AMD_MEMORY_POOL_GLOBAL_FLAG_COARSE_GRAINED.0, hsa::GLOBAL_FLAG_COARSE_GRAINED);
                assert_eq!($r::hsa_agent_info_t::HSA_AGENT_INFO_DEVICE.0, hsa::AGENT_INFO_DEVICE);
                assert_eq!($r::hsa_amd_agent_info_s::HSA_AMD_AGENT_INFO_DRIVER_NODE_ID.0, hsa::AMD_AGENT_INFO_DRIVER_NODE_ID);
                assert_eq!($r::hsa_amd_event_type_s::HSA_AMD_GPU_MEMORY_FAULT_EVENT.0, hsa::EVENT_GPU_MEMORY_FAULT);
                // 5.2.3 writes 1 << 31 (an int enum, INT_MIN); 6.4.3 and 7.2.4 write 1U << 31.
                assert_eq!($r::hsa_amd_memory_fault_reason_t::HSA_AMD_MEMORY_FAULT_HANG.0 as u32, hsa::FAULT_HANG);
                assert_eq!(offset!($r::hsa_amd_event_t, event_type), 0);
                assert_eq!(offset!($r::hsa_amd_gpu_memory_fault_info_t, virtual_address), 8);
                assert_eq!(offset!($r::hsa_amd_gpu_memory_fault_info_t, fault_reason_mask), 16);
            )*};
        }
        consts!(r523 r643 r724);
        macro_rules! rocm6_consts {
            ($($r:ident)*) => {$(
                assert_eq!($r::hipDeviceMallocUncached, device::UNCACHED);
                assert_eq!($r::hipDeviceMallocContiguous, device::CONTIGUOUS);
                assert_eq!(
                    $r::hsa_amd_memory_pool_global_flag_s::HSA_AMD_MEMORY_POOL_GLOBAL_FLAG_EXTENDED_SCOPE_FINE_GRAINED.0,
                    hsa::GLOBAL_FLAG_EXTENDED_SCOPE_FINE_GRAINED
                );
            )*};
        }
        rocm6_consts!(r643 r724);
        assert_eq!(r724::hipHostMallocUncached, host::UNCACHED);
        assert_eq!(r724::hipHostAllocUncached, host::UNCACHED);
        super::say("bindgen layouts: hipDeviceProp_t R0000/R0600 and the HSA/HIP constants match rmcp::abi for 5.2.3, 6.4.3 and 7.2.4");
    }
}
