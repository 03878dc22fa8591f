//! Harness shared by rmcp's integration tests.
//!
//! We have no AMD GPU, so behaviour is proven against C test doubles of the HIP and HSA
//! runtimes (`tests/double/`) driven by small C programs (`tests/programs/`), all run under
//! the real dynamic loader. [`fixtures`] builds them once per test binary; [`Scenario`] runs
//! one program with a chosen device list, optional `LD_PRELOAD` of `librmcp.so`, and
//! returns a [`Run`] holding the output and the calls the doubles recorded.
//!
//! Fixture layout (`<target>/rmcp-fixtures/<test binary>/<pid>/`):
//!
//! ```text
//! libamdhip64.so.6  libamdhip64.so -> .so.6     ROCm-6-like HIP double
//! libhsa-runtime64.so.1  libhsa-runtime64.so     HSA double
//! librocblas.so.4                                 "ROCm library" allocating from HSA pools
//! librccl.so.1                                    "ROCm library" making HIP allocations
//! libctor_early.so                                calls hipHostMalloc from its constructor
//! libinterposer.so                                self-test only: preloadable hipHostMalloc
//! libdriver_module.so                             driver as a module (mode b)
//! driver_exe  driver_exe5  dlopen_host  ctor_exe  props_probe  props_probe5
//! hip5/libamdhip64.so.5  hip5/libamdhip64.so      ROCm-5-like HIP double
//! hip5/libdriver_module.so                        module linked against the 5.x double
//! rmcp/librmcp.so -> the cargo-built cdylib       (only once driver_direct is built)
//! driver_direct                                   mode (c), built on first use
//! ```
#![allow(dead_code)]

pub mod model;

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

/// A fresh, empty directory under the system temp dir, unique to this
/// process, `tag` and moment.
pub fn tempdir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let d = std::env::temp_dir().join(format!("rmcp-test-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&d).expect("create temp dir");
    d
}

/// The `rmcp` command under test, run in a clean environment: every variable
/// that changes what it reports or what its child sees (librmcp's own and
/// ROCm's from `rmcp::config`, `RMCP_LIBRARY`, the preload and audit lists,
/// the visible-device lists, `NO_COLOR`) is removed; `env` sets what a test
/// needs.
///
/// ```ignore
/// let out = Cli::new(&["doctor", "--json"]).env("RMCP_MODE", "off").run();
/// assert_eq!(out.code, 0, "{out}");
/// ```
pub struct Cli {
    cmd: Command,
}

/// What one [`Cli`] run printed and how it ended.
pub struct CliRun {
    /// The exit status; a run ended by a signal panics in [`Cli::run`].
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Cli {
    pub fn new(args: &[&str]) -> Cli {
        Cli::wrapped(&[], args)
    }

    /// `rmcp ARGS` run by another program: `wrapper[0] wrapper[1..] rmcp ARGS`
    /// (`unshare --pid --fork`, say), with the same clean environment.
    pub fn wrapped(wrapper: &[&str], args: &[&str]) -> Cli {
        let rmcp = env!("CARGO_BIN_EXE_rmcp");
        let mut cmd = match wrapper.split_first() {
            Some((program, wrapper_args)) => {
                let mut c = Command::new(program);
                c.args(wrapper_args).arg(rmcp);
                c
            }
            None => Command::new(rmcp),
        };
        cmd.args(args);
        let others = [
            "RMCP_LIBRARY",
            "HSA_FORCE_FINE_GRAIN_PCIE",
            "LD_PRELOAD",
            "LD_AUDIT",
            "HIP_VISIBLE_DEVICES",
            "CUDA_VISIBLE_DEVICES",
            "NO_COLOR",
        ];
        for k in rmcp::config::RMCP_VARIABLES
            .iter()
            .chain(rmcp::config::ROCM_VARIABLES)
            .chain(&others)
        {
            cmd.env_remove(k);
        }
        Cli { cmd }
    }

    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Cli {
        self.cmd.arg(a);
        self
    }

    pub fn args<A: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = A>) -> Cli {
        self.cmd.args(args);
        self
    }

    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Cli {
        self.cmd.env(k, v);
        self
    }

    pub fn envs(mut self, vars: &[(&str, &str)]) -> Cli {
        self.cmd.envs(vars.iter().copied());
        self
    }

    pub fn current_dir(mut self, d: impl AsRef<Path>) -> Cli {
        self.cmd.current_dir(d);
        self
    }

    /// The command as built, for a test that spawns it or runs it with a
    /// deadline.
    pub fn into_command(self) -> Command {
        self.cmd
    }

    /// Runs to the end and returns the raw output: for a test that expects
    /// rmcp to end by a signal or reads bytes, not text.
    pub fn output(mut self) -> std::process::Output {
        self.cmd.output().expect("run the rmcp binary")
    }

    pub fn run(mut self) -> CliRun {
        let out = self.cmd.output().expect("run the rmcp binary");
        let run = CliRun {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert!(
            out.status.code().is_some(),
            "rmcp ended by {:?}\n{run}",
            out.status.signal()
        );
        run
    }
}

impl CliRun {
    /// stdout as JSON; panics with both outputs when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{self}"))
    }
}

impl fmt::Display for CliRun {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Root of the crate (where Cargo.toml is).
pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `<target>/<profile>/deps/<test>-<hash>` → `<target>/<profile>`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("test executable has a parent dir");
    if deps.file_name() == Some(OsStr::new("deps")) {
        deps.parent().expect("profile dir").to_path_buf()
    } else {
        deps.to_path_buf()
    }
}

/// The cargo target directory of this test run.
pub fn target_dir() -> PathBuf {
    profile_dir().parent().expect("target dir").to_path_buf()
}

/// The `librmcp.so` cargo built for this test run. `cargo test` builds the crate's cdylib
/// into `<target>/<profile>/deps/` (it is only copied up to `<target>/<profile>/` when the
/// library itself is a requested target, e.g. by `cargo build`), so deps/ is preferred.
pub fn librmcp() -> PathBuf {
    let profile = profile_dir();
    let candidates = [profile.join("deps/librmcp.so"), profile.join("librmcp.so")];
    for c in &candidates {
        if c.is_file() {
            return c.clone();
        }
    }
    panic!(
        "librmcp.so not found (looked at {} and {}); it is built by cargo as the crate's \
         cdylib when integration tests are built",
        candidates[0].display(),
        candidates[1].display()
    );
}

/// The LD_AUDIT module (`librmcp-audit.so`) that build.rs puts in the profile directory.
pub fn librmcp_audit() -> PathBuf {
    let p = profile_dir().join("librmcp-audit.so");
    assert!(
        p.is_file(),
        "{} not found; build.rs builds it with the crate",
        p.display()
    );
    p
}

/// True if `valgrind` can be run (for [`Scenario::valgrind`]).
pub fn valgrind_available() -> bool {
    Command::new("valgrind")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// True once the project's public header exists (needed for [`Program::DriverDirect`]).
pub fn rmcp_header_exists() -> bool {
    manifest_dir().join("include/rmcp.h").is_file()
}

/// The built doubles and programs.
pub struct Fixtures {
    /// Fixture directory (ROCm 6 double, HSA double, programs).
    pub dir: PathBuf,
    /// Subdirectory holding the ROCm 5 double (`libamdhip64.so.5`) and its module.
    pub hip5_dir: PathBuf,
    /// `libamdhip64.so.6`
    pub hip6: PathBuf,
    /// `hip5/libamdhip64.so.5`
    pub hip5: PathBuf,
    /// `libhsa-runtime64.so.1`
    pub hsa: PathBuf,
    /// `librocblas.so.4` (the ROCm-like library)
    pub rocmlike: PathBuf,
    /// `libctor_early.so`
    pub ctor_lib: PathBuf,
    /// `libinterposer.so` (self-test: an unversioned preloadable hipHostMalloc)
    pub interposer: PathBuf,
}

static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
static DRIVER_DIRECT: OnceLock<PathBuf> = OnceLock::new();

/// Builds (once per test binary) and returns the fixtures.
pub fn fixtures() -> &'static Fixtures {
    FIXTURES.get_or_init(build_fixtures)
}

fn src(rel: &str) -> PathBuf {
    manifest_dir().join("tests").join(rel)
}

/// Compiles C `sources` into `out` with the cc crate's compiler, `-std=c11 -Wall -Wextra
/// -Werror` first and `extra` (later `-std=` wins; libraries go here) last. Panics with
/// the compiler's output on failure.
pub fn compile_c(out: &Path, sources: &[PathBuf], extra: &[&str]) {
    let tool = cc::Build::new()
        .target("x86_64-unknown-linux-gnu")
        .host("x86_64-unknown-linux-gnu")
        .opt_level(1)
        .debug(true)
        .warnings(false)
        .cargo_metadata(false)
        .cargo_warnings(false)
        .cargo_output(false)
        .emit_rerun_if_env_changed(false)
        .try_get_compiler()
        .unwrap_or_else(|e| panic!("cc: no C compiler: {e}"));
    let mut cmd = tool.to_command();
    cmd.args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-fPIC"])
        .arg("-I")
        .arg(src("programs"))
        .args(sources)
        .arg("-o")
        .arg(out)
        .args(extra)
        .arg("-lpthread");
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run C compiler {cmd:?}: {e}"));
    if !output.status.success() {
        panic!(
            "compiling {} failed ({}):\n{:?}\n--- stdout\n{}\n--- stderr\n{}",
            out.display(),
            output.status,
            cmd,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// A harmless x86-64 shared object named `name` in `dir`: stands in for
/// librmcp.so where a test needs `rmcp run` to accept RMCP_LIBRARY (an ELF
/// library for this machine) without the shim being loaded.
pub fn stand_in_library(dir: &Path, name: &str) -> PathBuf {
    let c = dir.join("stand_in.c");
    std::fs::write(&c, "int rmcp_test_stand_in;\n").expect("write stand_in.c");
    let out = dir.join(name);
    compile_c(&out, &[c], &["-shared"]);
    out
}

/// A copy of the ELF file `from` at `to` that claims another machine
/// (e_machine = AArch64): a library for the wrong architecture.
pub fn wrong_architecture_copy(from: &Path, to: &Path) {
    let mut bytes = std::fs::read(from).expect("read ELF file");
    assert_eq!(&bytes[..4], b"\x7fELF", "{} is not ELF", from.display());
    // e_machine: 2 bytes little-endian at offset 18; EM_AARCH64 = 183.
    bytes[18..20].copy_from_slice(&183u16.to_le_bytes());
    std::fs::write(to, bytes).expect("write wrong-architecture copy");
}

fn symlink(target: &str, link: &Path) {
    let _ = std::fs::remove_file(link);
    std::os::unix::fs::symlink(target, link)
        .unwrap_or_else(|e| panic!("symlink {} -> {target}: {e}", link.display()));
}

fn s(p: &Path) -> String {
    p.to_str().expect("utf-8 path").to_string()
}

fn build_fixtures() -> Fixtures {
    let exe = std::env::current_exe().expect("current_exe");
    let stem = exe
        .file_stem()
        .expect("exe name")
        .to_string_lossy()
        .into_owned();
    // One directory per process (<stem>/<pid>), so two runs of the same test binary never
    // rebuild files under each other; directories of dead processes are removed.
    let base = target_dir().join("rmcp-fixtures").join(stem);
    if let Ok(entries) = std::fs::read_dir(&base) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.parse::<u32>().is_ok() && !Path::new("/proc").join(&name).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let dir = base.join(std::process::id().to_string());
    let hip5_dir = dir.join("hip5");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&hip5_dir)
        .unwrap_or_else(|e| panic!("create {}: {e}", hip5_dir.display()));

    let f = Fixtures {
        hip6: dir.join("libamdhip64.so.6"),
        hip5: hip5_dir.join("libamdhip64.so.5"),
        hsa: dir.join("libhsa-runtime64.so.1"),
        rocmlike: dir.join("librocblas.so.4"),
        ctor_lib: dir.join("libctor_early.so"),
        interposer: dir.join("libinterposer.so"),
        dir: dir.clone(),
        hip5_dir: hip5_dir.clone(),
    };
    let l6 = format!("-L{}", s(&dir));
    let l5 = format!("-L{}", s(&hip5_dir));
    let hip_map = format!("-Wl,--version-script={}", s(&src("double/hip.map")));
    let hip5_map = format!("-Wl,--version-script={}", s(&src("double/hip5.map")));
    let hsa_map = format!("-Wl,--version-script={}", s(&src("double/hsa.map")));

    // Stage 1: the runtimes (the programs link against them).
    std::thread::scope(|sc| {
        sc.spawn(|| {
            compile_c(
                &f.hip6,
                &[src("double/fake_hip.c")],
                &["-shared", "-Wl,-soname,libamdhip64.so.6", &hip_map, "-ldl"],
            )
        });
        sc.spawn(|| {
            compile_c(
                &f.hip5,
                &[src("double/fake_hip.c")],
                &[
                    "-DFAKE_HIP_5",
                    "-shared",
                    "-Wl,-soname,libamdhip64.so.5",
                    &hip5_map,
                    "-ldl",
                ],
            )
        });
        sc.spawn(|| {
            compile_c(
                &f.hsa,
                &[src("double/fake_hsa.c")],
                &["-shared", "-Wl,-soname,libhsa-runtime64.so.1", &hsa_map],
            )
        });
    });
    symlink("libamdhip64.so.6", &dir.join("libamdhip64.so"));
    symlink("libhsa-runtime64.so.1", &dir.join("libhsa-runtime64.so"));
    symlink("libamdhip64.so.5", &hip5_dir.join("libamdhip64.so"));

    // Stage 2: everything else, in parallel. The 5.x builds search hip5/ first so
    // -lamdhip64 resolves to the 5.x double, and the HSA double from dir.
    let driver = [src("programs/driver.c")];
    let rt6: &[&str] = &[&l6, "-lamdhip64", "-lhsa-runtime64", "-ldl"];
    let rt5: &[&str] = &[&l5, &l6, "-lamdhip64", "-lhsa-runtime64", "-ldl"];
    std::thread::scope(|sc| {
        let exe6 = [&driver[..], &[src("programs/driver_exe.c")]].concat();
        let module = [&driver[..], &[src("programs/driver_module.c")]].concat();
        let exe5 = exe6.clone();
        let module5 = module.clone();
        let dir = &dir;
        let hip5_dir = &hip5_dir;
        let l6 = &l6;
        let l5 = &l5;
        sc.spawn(move || compile_c(&dir.join("driver_exe"), &exe6, rt6));
        sc.spawn(move || compile_c(&dir.join("driver_exe5"), &exe5, rt5));
        sc.spawn(move || {
            let mut a = vec!["-shared"];
            a.extend_from_slice(rt6);
            compile_c(&dir.join("libdriver_module.so"), &module, &a)
        });
        sc.spawn(move || {
            let mut a = vec!["-shared"];
            a.extend_from_slice(rt5);
            compile_c(&hip5_dir.join("libdriver_module.so"), &module5, &a)
        });
        sc.spawn(move || {
            compile_c(
                &dir.join("dlopen_host"),
                &[src("programs/dlopen_host.c")],
                &["-ldl"],
            )
        });
        sc.spawn(move || {
            compile_c(
                &dir.join("librocblas.so.4"),
                &[src("programs/rocmlike_lib.c")],
                &[
                    "-shared",
                    "-Wl,-soname,librocblas.so.4",
                    l6,
                    "-lhsa-runtime64",
                ],
            )
        });
        sc.spawn(move || {
            compile_c(
                &dir.join("librccl.so.1"),
                &[src("programs/rocmlike_lib.c")],
                &[
                    "-DROCMLIKE_HIP",
                    "-shared",
                    "-Wl,-soname,librccl.so.1",
                    l6,
                    "-lamdhip64",
                    "-lhsa-runtime64",
                ],
            )
        });
        sc.spawn(move || {
            compile_c(
                &dir.join("libctor_early.so"),
                &[src("programs/ctor_lib.c")],
                &["-shared", "-Wl,-soname,libctor_early.so", l6, "-lamdhip64"],
            );
            // ctor_exe = driver_exe that also links libctor_early.so (kept despite
            // --as-needed, since nothing references it).
            let mut srcs = driver.to_vec();
            srcs.push(src("programs/driver_exe.c"));
            compile_c(
                &dir.join("ctor_exe"),
                &srcs,
                &[
                    l6,
                    "-Wl,--no-as-needed",
                    "-lctor_early",
                    "-lamdhip64",
                    "-lhsa-runtime64",
                    "-ldl",
                ],
            );
        });
        sc.spawn(move || {
            compile_c(
                &dir.join("libinterposer.so"),
                &[src("programs/interposer.c")],
                &["-shared", "-ldl"],
            )
        });
        sc.spawn(move || {
            compile_c(
                &dir.join("props_probe"),
                &[src("programs/props_probe.c")],
                &[l6, "-Wl,--no-as-needed", "-lamdhip64", "-ldl"],
            )
        });
        sc.spawn(move || {
            compile_c(
                &dir.join("props_probe5"),
                &[src("programs/props_probe.c")],
                &[l5, "-Wl,--no-as-needed", "-lamdhip64", "-ldl"],
            )
        });
    });
    f
}

/// Mode (c): the driver compiled with `-DDRIVER_WITH_RMCP` against `include/rmcp.h` and
/// linked to `librmcp.so` before the runtimes. Built on first use; panics if the header is
/// missing.
pub fn driver_direct() -> &'static Path {
    DRIVER_DIRECT.get_or_init(|| {
        let f = fixtures();
        if !rmcp_header_exists() {
            panic!("Program::DriverDirect needs include/rmcp.h, which does not exist yet");
        }
        let rmcp_dir = f.dir.join("rmcp");
        std::fs::create_dir_all(&rmcp_dir).expect("create rmcp fixture dir");
        symlink(&s(&librmcp()), &rmcp_dir.join("librmcp.so"));
        let out = f.dir.join("driver_direct");
        let inc = format!("-I{}", s(&manifest_dir().join("include")));
        let lr = format!("-L{}", s(&rmcp_dir));
        let l6 = format!("-L{}", s(&f.dir));
        compile_c(
            &out,
            &[src("programs/driver.c"), src("programs/driver_exe.c")],
            &[
                "-std=c99",
                "-DDRIVER_WITH_RMCP",
                &inc,
                "-Wl,--no-as-needed",
                &lr,
                "-lrmcp",
                &l6,
                "-lamdhip64",
                "-lhsa-runtime64",
                "-ldl",
            ],
        );
        out
    })
}

/// Which program a [`Scenario`] runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Program {
    /// Mode (a): `driver_exe`, linked to the ROCm 6 double.
    DriverExe,
    /// `driver_exe5`, linked to the ROCm 5 double.
    DriverExe5,
    /// Mode (b): `dlopen_host` opening `libdriver_module.so` (ROCm 6) with RTLD_LOCAL.
    DlopenHost,
    /// Mode (b) with the module linked against the ROCm 5 double.
    DlopenHost5,
    /// Mode (c): the driver linked directly to librmcp (needs include/rmcp.h).
    DriverDirect,
    /// `driver_exe` also linked to `libctor_early.so` (hipHostMalloc from a constructor).
    CtorExe,
    /// `props_probe` (ROCm 6): bytes written by the property functions.
    PropsProbe,
    /// `props_probe5` (ROCm 5).
    PropsProbe5,
    /// Any other executable, run with the ROCm 6 library path.
    Path(PathBuf),
}

impl Program {
    /// True for programs that run against the ROCm 5 double.
    pub fn is_rocm5(&self) -> bool {
        matches!(
            self,
            Program::DriverExe5 | Program::DlopenHost5 | Program::PropsProbe5
        )
    }

    /// Path of the executable (builds fixtures as needed).
    pub fn path(&self) -> PathBuf {
        let f = fixtures();
        match self {
            Program::DriverExe => f.dir.join("driver_exe"),
            Program::DriverExe5 => f.dir.join("driver_exe5"),
            Program::DlopenHost | Program::DlopenHost5 => f.dir.join("dlopen_host"),
            Program::DriverDirect => driver_direct().to_path_buf(),
            Program::CtorExe => f.dir.join("ctor_exe"),
            Program::PropsProbe => f.dir.join("props_probe"),
            Program::PropsProbe5 => f.dir.join("props_probe5"),
            Program::Path(p) => p.clone(),
        }
    }

    /// LD_LIBRARY_PATH directories for this program, first searched first.
    pub fn library_dirs(&self) -> Vec<PathBuf> {
        let f = fixtures();
        let mut dirs = Vec::new();
        if self.is_rocm5() {
            dirs.push(f.hip5_dir.clone());
        }
        if *self == Program::DriverDirect {
            dirs.push(f.dir.join("rmcp"));
        }
        dirs.push(f.dir.clone());
        dirs
    }
}

/// One line of the doubles' record (`FAKE_HIP_LOG`): `<func> key=value ...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub func: String,
    pub fields: BTreeMap<String, String>,
}

fn parse_num(v: &str) -> Option<u64> {
    if let Some(h) = v.strip_prefix("0x") {
        u64::from_str_radix(h, 16).ok()
    } else {
        v.parse().ok()
    }
}

impl Call {
    /// Parses one record line; None for an empty line.
    pub fn parse(line: &str) -> Option<Call> {
        let mut it = line.split_whitespace();
        let func = it.next()?.to_string();
        let fields = it
            .filter_map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect();
        Some(Call { func, fields })
    }
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }
    /// A numeric field (decimal or 0x-hex).
    pub fn num(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(parse_num)
    }
    /// `flags=0x..` as received by the runtime.
    pub fn flags(&self) -> Option<u64> {
        self.num("flags")
    }
    pub fn size(&self) -> Option<u64> {
        self.num("size")
    }
    pub fn ptr(&self) -> Option<u64> {
        self.num("ptr")
    }
    pub fn dev(&self) -> Option<i64> {
        self.get("dev").and_then(|v| v.parse().ok())
    }
    pub fn rc(&self) -> Option<i64> {
        self.get("rc").and_then(|v| v.parse().ok())
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.func)?;
        for (k, v) in &self.fields {
            write!(f, " {k}={v}")?;
        }
        Ok(())
    }
}

/// One stdout line of the driver: `<op item> rc=<code>[ key=value...]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpLine {
    /// The op exactly as given on the command line, e.g. `hipHostMalloc:4096:0`.
    pub op: String,
    pub fields: BTreeMap<String, String>,
}

impl OpLine {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }
    /// `rc=` as text ("0", "1", "missing", "nopool", ...).
    pub fn rc(&self) -> &str {
        self.get("rc").unwrap_or("")
    }
    pub fn ptr(&self) -> Option<u64> {
        self.get("ptr").and_then(parse_num)
    }
}

/// The result of one [`Scenario::run`].
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// Raw text of the record file.
    pub log: String,
    /// The record, in order.
    pub calls: Vec<Call>,
    /// Command line, for messages.
    pub command: String,
}

impl Run {
    /// Recorded calls of one function, in order.
    pub fn calls_named(&self, func: &str) -> Vec<&Call> {
        self.calls.iter().filter(|c| c.func == func).collect()
    }
    /// The flags the recorded calls to `func` arrived with, in call order.
    pub fn flags_of(&self, func: &str) -> Vec<u64> {
        self.calls_named(func)
            .iter()
            .map(|c| c.flags().expect("recorded call without flags"))
            .collect()
    }
    /// Recorded calls whose function name starts with `prefix` (`"hip"`, `"hsa_"`).
    pub fn calls_prefixed(&self, prefix: &str) -> Vec<&Call> {
        self.calls
            .iter()
            .filter(|c| c.func.starts_with(prefix))
            .collect()
    }
    /// The driver's stdout lines, parsed.
    pub fn ops(&self) -> Vec<OpLine> {
        self.stdout
            .lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                let op = it.next()?.to_string();
                let fields = it
                    .filter_map(|kv| {
                        kv.split_once('=')
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                    })
                    .collect();
                Some(OpLine { op, fields })
            })
            .collect()
    }
    /// The first stdout line for `op` (the op item as given); panics if absent.
    pub fn op(&self, op: &str) -> OpLine {
        self.ops()
            .into_iter()
            .find(|o| o.op == op)
            .unwrap_or_else(|| panic!("no output line for op {op:?}\n{self}"))
    }
    /// The terminating signal, if the program was killed by one.
    pub fn signal(&self) -> Option<i32> {
        self.status.signal()
    }
    pub fn success(&self) -> bool {
        self.status.success()
    }
    /// Panics with everything the run printed unless it exited 0.
    pub fn assert_success(&self) -> &Run {
        assert!(self.status.success(), "program failed\n{self}");
        self
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "command: {}\nstatus: {:?}\n--- stdout\n{}--- stderr\n{}--- record\n{}",
            self.command, self.status, self.stdout, self.stderr, self.log
        )
    }
}

/// Reads a pipe to its end on a thread; the bytes arrive on the returned channel.
fn read_all(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = pipe.read_to_end(&mut v);
        let _ = tx.send(v);
    });
    rx
}

/// Environment variable prefixes never inherited by a scenario.
const SCRUBBED_PREFIXES: &[&str] = &["RMCP_", "FAKE_", "HIP_", "HSA_", "ROCR_", "AMD_"];
const SCRUBBED: &[&str] = &["LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "LD_BIND_NOW"];

static RUN_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Builder for one run of a fixture program.
///
/// Defaults: no devices (`FAKE_HIP_DEVICES` unset), no preload, 60 s timeout, a fresh
/// `FAKE_HIP_LOG` file, LD_LIBRARY_PATH = the program's fixture dirs, and inherited
/// `RMCP_*`, `FAKE_*`, `HIP_*`, `HSA_*`, `ROCR_*`, `AMD_*`, `LD_PRELOAD`, `LD_LIBRARY_PATH`
/// removed; the rest of the environment (PATH...) is kept.
#[derive(Clone, Debug)]
pub struct Scenario {
    program: Program,
    devices: Option<String>,
    preload: Option<PathBuf>,
    env: Vec<(OsString, Option<OsString>)>,
    args: Vec<OsString>,
    extra_lib_dirs: Vec<PathBuf>,
    timeout: Duration,
    valgrind: bool,
    current_dir: Option<PathBuf>,
}

impl Scenario {
    pub fn new(program: Program) -> Scenario {
        Scenario {
            program,
            devices: None,
            preload: None,
            env: Vec::new(),
            args: Vec::new(),
            extra_lib_dirs: Vec::new(),
            timeout: Duration::from_secs(60),
            valgrind: false,
            current_dir: None,
        }
    }
    /// The working directory the program starts in (default: the test's).
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Scenario {
        self.current_dir = Some(dir.into());
        self
    }
    /// Sets `FAKE_HIP_DEVICES` (read by both doubles), e.g. `"gfx1030,gfx1035@igpu"`.
    pub fn devices(mut self, devices: &str) -> Scenario {
        self.devices = Some(devices.to_string());
        self
    }
    /// `LD_PRELOAD` the librmcp.so built for this test run (or not).
    pub fn preload(mut self, on: bool) -> Scenario {
        self.preload = if on { Some(librmcp()) } else { None };
        self
    }
    /// `LD_PRELOAD` a specific library.
    pub fn preload_path(mut self, lib: impl Into<PathBuf>) -> Scenario {
        self.preload = Some(lib.into());
        self
    }
    /// Sets a variable (applied after the defaults, so it can override them).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Scenario {
        self.env
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }
    /// Removes a variable from the child's environment.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Scenario {
        self.env.push((key.as_ref().to_owned(), None));
        self
    }
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Scenario {
        self.args.push(arg.as_ref().to_owned());
        self
    }
    pub fn args<I, S>(mut self, args: I) -> Scenario
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }
    /// Searches `dir` before the fixture dirs.
    pub fn lib_dir(mut self, dir: impl Into<PathBuf>) -> Scenario {
        self.extra_lib_dirs.push(dir.into());
        self
    }
    pub fn timeout(mut self, t: Duration) -> Scenario {
        self.timeout = t;
        self
    }
    /// Runs the program under `valgrind -q --error-exitcode=99` (memcheck; follows forks,
    /// LD_PRELOAD still applies). Memory errors then show as exit status 99 and
    /// "Invalid read"/"Invalid write" on stderr. Check [`valgrind_available`] first.
    pub fn valgrind(mut self, on: bool) -> Scenario {
        self.valgrind = on;
        self
    }

    /// Runs the program and collects its output and record. Panics (with what it printed)
    /// if it cannot start or exceeds the timeout.
    pub fn run(self) -> Run {
        let path = self.program.path();
        let fx = fixtures();
        let log_dir = fx.dir.join("logs");
        std::fs::create_dir_all(&log_dir).expect("create log dir");
        let log_path = log_dir.join(format!(
            "run-{}-{}.log",
            std::process::id(),
            RUN_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&log_path);

        let mut cmd = if self.valgrind {
            let mut c = Command::new("valgrind");
            c.args(["-q", "--error-exitcode=99", "--trace-children=yes"])
                .arg(&path);
            c
        } else {
            Command::new(&path)
        };
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, _) in std::env::vars_os() {
            let ks = k.to_string_lossy();
            if SCRUBBED_PREFIXES.iter().any(|p| ks.starts_with(p)) || SCRUBBED.contains(&&*ks) {
                cmd.env_remove(&k);
            }
        }
        let mut dirs = self.extra_lib_dirs.clone();
        dirs.extend(self.program.library_dirs());
        cmd.env(
            "LD_LIBRARY_PATH",
            std::env::join_paths(&dirs).expect("join lib dirs"),
        );
        cmd.env("FAKE_HIP_LOG", &log_path);
        if let Some(d) = &self.current_dir {
            cmd.current_dir(d);
        }
        if let Some(d) = &self.devices {
            cmd.env("FAKE_HIP_DEVICES", d);
        }
        if let Some(p) = &self.preload {
            cmd.env("LD_PRELOAD", p);
        }
        for (k, v) in &self.env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        let command = format!(
            "{}{}{}{} {}",
            self.devices
                .as_ref()
                .map(|d| format!("FAKE_HIP_DEVICES={d} "))
                .unwrap_or_default(),
            self.preload
                .as_ref()
                .map(|p| format!("LD_PRELOAD={} ", p.display()))
                .unwrap_or_default(),
            if self.valgrind { "valgrind " } else { "" },
            path.display(),
            self.args
                .iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" ")
        );

        // Own process group, so a timeout kills forked children too.
        cmd.process_group(0);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {command}: {e}"));
        let pgid = child.id() as libc::pid_t;
        let out_rx = read_all(child.stdout.take().expect("stdout"));
        let err_rx = read_all(child.stderr.take().expect("stderr"));
        let text = |rx: &mpsc::Receiver<Vec<u8>>, wait: Duration| {
            String::from_utf8_lossy(&rx.recv_timeout(wait).unwrap_or_default()).into_owned()
        };
        let start = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) if start.elapsed() > self.timeout => {
                    // SAFETY: plain syscall on the group we created.
                    unsafe { libc::kill(-pgid, libc::SIGKILL) };
                    let _ = child.wait();
                    let stdout = text(&out_rx, Duration::from_secs(5));
                    let stderr = text(&err_rx, Duration::from_secs(5));
                    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    panic!(
                        "timed out after {:?}: {command}\n--- stdout\n{stdout}--- stderr\n\
                         {stderr}--- record\n{log}",
                        self.timeout
                    );
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => panic!("wait {command}: {e}"),
            }
        };
        // The pipes close when every process holding them is gone. The driver waits for
        // its forked children, but a stray grandchild must not hang the test: after a grace
        // period, kill what is left of the group.
        let grace = Duration::from_secs(10);
        let stdout = match out_rx.recv_timeout(grace) {
            Ok(v) => String::from_utf8_lossy(&v).into_owned(),
            Err(_) => {
                // SAFETY: as above.
                unsafe { libc::kill(-pgid, libc::SIGKILL) };
                text(&out_rx, grace)
            }
        };
        let stderr = text(&err_rx, grace);
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let _ = std::fs::remove_file(&log_path);
        let calls = log.lines().filter_map(Call::parse).collect();
        Run {
            status,
            stdout,
            stderr,
            log,
            calls,
            command,
        }
    }
}

/// Checks the output of `examples/pytorch/train.py --device cpu`: one line
/// from each workload, bfloat16 autocast, no pinning on the CPU, and `ok`
/// last.
pub fn assert_train_example_output(out: &str) {
    let lines: Vec<&str> = out.lines().collect();
    for w in [
        "eeg-conv:",
        "yolo-conv:",
        "attention:",
        "autocast:",
        "dataloader:",
        "memory:",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(w)),
            "no {w} line in:\n{out}"
        );
    }
    assert!(out.contains("autocast: 2 steps in bfloat16"), "{out}");
    assert!(
        out.contains("pin_memory=False"),
        "no pinning on the CPU:\n{out}"
    );
    assert_eq!(lines.last().copied(), Some("ok"), "{out}");
}

/// Under CI (which runs scripts/setup.sh first) or RMCP_REQUIRE_REAL_ROCM=1, a
/// missing prerequisite is a failure, not a skip.
pub fn prerequisites_required() -> bool {
    std::env::var("RMCP_REQUIRE_REAL_ROCM").is_ok_and(|v| v == "1")
        || std::env::var_os("CI").is_some()
}

/// Says why `test` did not run, where a person sees it even under capture
/// (stderr and stdout), or fails when prerequisites are required.
pub fn skip_test(test: &str, why: &str, hint: &str) {
    if prerequisites_required() {
        panic!("{test}: {why}; CI / RMCP_REQUIRE_REAL_ROCM=1 forbids skipping ({hint})");
    }
    let line = format!("{test}: skipped: {why}: {hint}\n");
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
    print!("{line}");
}
