//! The install paths of README.md's "Install" section, each built and used
//! the way a user would:
//!
//! - the Python wheel: `pip wheel .` / `pip install` into a fresh venv that
//!   sees Debian's python3-torch, then `rmcp run -- python3 train.py`,
//!   `LD_PRELOAD=$(rmcp --print-library)`, and `rmcp_rocm.preload()`;
//! - the Debian package: scripts/build-deb.sh, every path checked, installed
//!   with dpkg into a throw-away bookworm root (chroot), pkg-config and a HIP
//!   program linked against the installed copy;
//! - the container: examples/container/Dockerfile.deb built with buildah on
//!   a base image made from a debootstrap tarball, its ENTRYPOINT and the
//!   /etc/ld.so.preload variant run;
//! - the Kubernetes pods: validated offline against the API schemas.
//!
//! Prerequisites come from scripts/setup.sh (buildah, debootstrap tarball in
//! .cache/rootfs, cargo-deb, tools venv in .cache/tools, python3-torch,
//! hipcc); missing ones skip the test, and fail it under CI.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The wheel's platform tag (pyproject.toml `compatibility`).
const WHEEL_TAG: &str = "manylinux_2_34_x86_64";
const DEB_LIB: &str = "/usr/lib/x86_64-linux-gnu/librmcp.so.0";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rmcp-packaging-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Prints why a test did not run; under CI (where scripts/setup.sh installed
/// every prerequisite) a skip is a failure.
fn required(what: &str, ok: bool, test: &str) -> bool {
    if ok {
        return true;
    }
    let msg = format!("SKIP {test}: {what} (scripts/setup.sh provides it)");
    if std::env::var_os("CI").is_some() {
        panic!("{msg}; CI is set, so this is a failure");
    }
    eprintln!("{msg}");
    false
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs `c`, asserts success, returns stdout.
fn ok(what: &str, c: &mut Command) -> String {
    let o = c
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    assert!(o.status.success(), "{what} failed: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let r = f();
    eprintln!("packaging: {what}: {:.1} s", t.elapsed().as_secs_f64());
    r
}

/// Highest GLIBC_x.y symbol version an ELF file needs (objdump -T).
fn glibc_floor(elf: &Path) -> (u32, u32) {
    let out = ok("objdump -T", Command::new("objdump").arg("-T").arg(elf));
    out.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .filter_map(|w| w.strip_prefix("GLIBC_"))
        .filter_map(|v| {
            let mut it = v.split('.');
            Some((
                it.next()?.parse().ok()?,
                it.next().unwrap_or("0").parse().ok()?,
            ))
        })
        .max()
        .unwrap_or_else(|| panic!("{} needs no GLIBC_ version?", elf.display()))
}

fn debian_python() -> bool {
    Command::new("/usr/bin/python3")
        .args(["-c", "import torch, venv"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Debian's PyTorch 1.13 oneDNN dies with SIGILL on AMX CPUs unless capped
/// (see tests/cli_examples.rs); the cap changes nothing else.
fn torch_env(c: &mut Command) -> &mut Command {
    if std::env::var_os("ONEDNN_MAX_CPU_ISA").is_none() {
        c.env("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16");
    }
    c.env_remove("LD_PRELOAD").env_remove("RMCP_LIBRARY")
}

#[test]
fn wheel_installs_into_a_fresh_venv_and_rmcp_finds_its_library() {
    let t = "wheel_installs_into_a_fresh_venv_and_rmcp_finds_its_library";
    if !required(
        "Debian's /usr/bin/python3 with python3-torch and python3-venv",
        debian_python(),
        t,
    ) || !required("objdump (binutils)", have("objdump"), t)
        || !required("cargo on PATH (pip's build runs it)", have("cargo"), t)
    {
        return;
    }
    let dir = tmp("wheel");
    let venv = dir.join("venv");
    let bin = venv.join("bin");
    ok(
        "python3 -m venv",
        Command::new("/usr/bin/python3")
            .args(["-m", "venv", "--system-site-packages"])
            .arg(&venv),
    );
    // `pip install .` in two steps, to look at the wheel in between.
    let wheels = dir.join("wheels");
    timed("pip wheel . (maturin)", || {
        ok(
            "pip wheel .",
            Command::new(bin.join("pip"))
                .args(["wheel", "--no-deps", "-q", "-w"])
                .arg(&wheels)
                .arg(".")
                .current_dir(root())
                .env_remove("RMCP_SONAME"),
        )
    });
    let name = format!("rmcp_rocm-{VERSION}-py3-none-{WHEEL_TAG}.whl");
    let whl = wheels.join(&name);
    assert!(
        whl.is_file(),
        "expected {name}, got {:?}",
        std::fs::read_dir(&wheels)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect::<Vec<_>>()
    );
    // Honest tag: neither ELF file may need a newer glibc than the tag says.
    let x = dir.join("unzipped");
    ok(
        "unzip wheel",
        Command::new("/usr/bin/python3")
            .args(["-m", "zipfile", "-e"])
            .arg(&whl)
            .arg(&x),
    );
    let tag_floor: (u32, u32) = (2, 34);
    assert!(
        x.join("rmcp_rocm/librmcp-audit.so").is_file(),
        "the wheel carries librmcp-audit.so beside librmcp.so (rmcp run's audit mode)"
    );
    for f in [
        x.join("rmcp_rocm/librmcp.so"),
        x.join(format!("rmcp_rocm-{VERSION}.data/scripts/rmcp")),
    ] {
        let need = glibc_floor(&f);
        eprintln!(
            "packaging: {} needs GLIBC_{}.{}",
            f.display(),
            need.0,
            need.1
        );
        assert!(
            need <= tag_floor,
            "{} needs GLIBC_{}.{} but the wheel is tagged {WHEEL_TAG}",
            f.display(),
            need.0,
            need.1
        );
    }

    ok(
        "pip install wheel",
        Command::new(bin.join("pip"))
            .args(["install", "--no-deps", "--no-index", "-q"])
            .arg(&whl),
    );
    // `rmcp` is on the venv's PATH and finds the venv's library.
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let lib = ok(
        "rmcp --print-library",
        Command::new("rmcp")
            .arg("--print-library")
            .env("PATH", &path)
            .env_remove("RMCP_LIBRARY")
            .current_dir(&dir),
    );
    let lib = PathBuf::from(lib.trim());
    let site = ok(
        "venv purelib",
        Command::new(bin.join("python3")).args([
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ]),
    );
    assert_eq!(
        lib,
        std::fs::canonicalize(Path::new(site.trim()).join("rmcp_rocm/librmcp.so")).unwrap()
    );
    assert!(
        lib.starts_with(std::fs::canonicalize(&venv).unwrap()),
        "{}",
        lib.display()
    );
    let lib_s = lib.to_string_lossy().into_owned();
    let from_py = ok(
        "python3 -m rmcp_rocm",
        Command::new(bin.join("python3"))
            .args(["-m", "rmcp_rocm"])
            .current_dir(&dir),
    );
    assert_eq!(std::fs::canonicalize(from_py.trim()).unwrap(), lib);

    let maps = "import rmcp_rocm; print(rmcp_rocm.is_loaded()); print(''.join(l for l in open('/proc/self/maps') if 'librmcp' in l))";
    let out = ok(
        "rmcp run -- python3 -c",
        torch_env(
            Command::new("rmcp")
                .args(["run", "--", "python3", "-c", maps])
                .env("PATH", &path)
                .current_dir(&dir),
        ),
    );
    assert!(out.starts_with("True\n") && out.contains(&lib_s), "{out}");

    // The design card's first line: LD_PRELOAD by hand, with the path rmcp prints.
    let out = ok(
        "LD_PRELOAD=$(rmcp --print-library) python3",
        torch_env(
            Command::new(bin.join("python3"))
                .args(["-c", maps])
                .current_dir(&dir),
        )
        .env("LD_PRELOAD", &lib),
    );
    assert!(out.starts_with("True\n") && out.contains(&lib_s), "{out}");

    let out = timed("rmcp run -- python3 train.py", || {
        ok(
            "rmcp run -- python3 examples/pytorch/train.py",
            torch_env(
                Command::new("rmcp")
                    .args(["run", "--", "python3"])
                    .arg(root().join("examples/pytorch/train.py"))
                    .args(["--device", "cpu", "--steps", "2"])
                    .env("PATH", &path)
                    .current_dir(&dir),
            ),
        )
    });
    common::assert_train_example_output(&out);

    // rmcp_rocm.preload() at the top of train.py: one re-exec, then the
    // library is loaded and the script runs once to the end.
    let src = std::fs::read_to_string(root().join("examples/pytorch/train.py")).unwrap();
    let at = src
        .find("\nimport argparse\n")
        .expect("train.py imports argparse")
        + 1;
    let marker = "import sys; print('preload-marker', file=sys.stderr, flush=True)\n";
    let patched = format!(
        "{}{marker}import rmcp_rocm\nassert rmcp_rocm.preload() is True\n{}",
        &src[..at],
        &src[at..]
    );
    let script = dir.join("train.py");
    std::fs::write(&script, patched).unwrap();
    let o = timed("python3 train.py with rmcp_rocm.preload()", || {
        torch_env(
            Command::new(bin.join("python3"))
                .arg(&script)
                .args(["--device", "cpu", "--steps", "2"])
                .current_dir(&dir),
        )
        .output()
        .unwrap()
    });
    assert!(o.status.success(), "{}", text(&o));
    common::assert_train_example_output(&String::from_utf8_lossy(&o.stdout));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        err.matches("preload-marker").count(),
        2,
        "expected one re-exec:\n{err}"
    );

    // Already loaded (under rmcp run): preload() returns at once, no re-exec.
    let once =
        "import sys; print('start', file=sys.stderr); import rmcp_rocm; print(rmcp_rocm.preload())";
    let o = Command::new("rmcp")
        .args(["run", "--", "python3", "-c", once])
        .env("PATH", &path)
        .env_remove("LD_PRELOAD")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "True\n");
    assert_eq!(
        String::from_utf8_lossy(&o.stderr).matches("start").count(),
        1,
        "{}",
        text(&o)
    );

    // `python3 -c` is re-executed from sys.orig_argv.
    let o = Command::new(bin.join("python3"))
        .args(["-c", once])
        .env_remove("LD_PRELOAD")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "True\n");
    assert_eq!(
        String::from_utf8_lossy(&o.stderr).matches("start").count(),
        2,
        "{}",
        text(&o)
    );

    // Where re-exec cannot work it says why, returns False, and the process goes on.
    // (A notebook kernel is stood in for by an `ipykernel` module: there is
    // no Jupyter here.)
    let kernel = "import sys, types; sys.modules['ipykernel'] = types.ModuleType('ipykernel'); exec(sys.stdin.read())";
    for (args, why) in [
        (&["-i", "-q"][..], "interactive interpreter"),
        (&["-"][..], "standard input"),
        (&["-c", kernel][..], "Jupyter/IPython kernel"),
    ] {
        let mut c = Command::new(bin.join("python3"));
        c.args(args)
            .env_remove("LD_PRELOAD")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"import rmcp_rocm\nprint('preload', rmcp_rocm.preload())\n")
            .unwrap();
        let o = child.wait_with_output().unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            out.contains("preload False"),
            "python3 {args:?}: {}",
            text(&o)
        );
        assert!(
            err.contains("rmcp_rocm: not re-executing: ") && err.contains(why),
            "python3 {args:?}: {}",
            text(&o)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Builds the Debian package once per test run (the container test uses it too).
fn deb_package(test: &str) -> Option<PathBuf> {
    static DEB: OnceLock<Mutex<Option<PathBuf>>> = OnceLock::new();
    let cell = DEB.get_or_init(|| Mutex::new(None));
    let mut g = cell.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = g.as_ref() {
        return Some(p.clone());
    }
    if !required(
        "cargo-deb (cargo install --locked cargo-deb)",
        have("cargo-deb"),
        test,
    ) || !required("dpkg-deb", have("dpkg-deb"), test)
    {
        return None;
    }
    timed("scripts/build-deb.sh", || {
        ok(
            "scripts/build-deb.sh",
            Command::new("bash")
                .arg(root().join("scripts/build-deb.sh"))
                .arg("--quiet"),
        )
    });
    let p = root().join(format!("target/debian/rmcp_{VERSION}-1_amd64.deb"));
    assert!(p.is_file(), "{} not built", p.display());
    *g = Some(p.clone());
    Some(p)
}

/// The debootstrap tarball scripts/setup.sh caches.
fn rootfs_tarball() -> PathBuf {
    root().join(".cache/rootfs/bookworm-minbase.tar")
}

#[test]
fn deb_package_installs_into_a_throwaway_root_and_links() {
    let t = "deb_package_installs_into_a_throwaway_root_and_links";
    let Some(deb) = deb_package(t) else { return };

    // Every path of the package, and nothing else.
    let listing = ok("dpkg-deb -c", Command::new("dpkg-deb").arg("-c").arg(&deb));
    let mut files: Vec<String> = listing
        .lines()
        .filter(|l| !l.starts_with('d'))
        .map(|l| {
            let path = l.split_whitespace().nth(5).unwrap_or_default();
            let path = path.trim_start_matches('.');
            match l.split_once(" -> ") {
                Some((_, target)) => format!("{path} -> {target}"),
                None => path.to_string(),
            }
        })
        .collect();
    files.sort();
    let mut want = vec![
        "/usr/bin/rmcp".to_string(),
        DEB_LIB.to_string(),
        "/usr/lib/x86_64-linux-gnu/librmcp.so -> librmcp.so.0".to_string(),
        "/usr/lib/x86_64-linux-gnu/librmcp-audit.so".to_string(),
        "/usr/lib/x86_64-linux-gnu/pkgconfig/rmcp.pc".to_string(),
        "/usr/include/rmcp.h".to_string(),
        "/usr/share/doc/rmcp/README.md".to_string(),
        "/usr/share/doc/rmcp/LICENSE-MIT".to_string(),
        "/usr/share/doc/rmcp/LICENSE-APACHE".to_string(),
        "/usr/share/doc/rmcp/copyright".to_string(),
    ];
    want.sort();
    assert_eq!(files, want, "{listing}");
    let control = ok(
        "dpkg-deb -f",
        Command::new("dpkg-deb")
            .arg("-f")
            .arg(&deb)
            .args(["Package", "Version", "Depends"]),
    );
    assert!(
        control.contains("Package: rmcp\n") && control.contains(&format!("Version: {VERSION}-1\n")),
        "{control}"
    );
    assert!(control.contains("libc6 (>= 2.34)"), "{control}");

    let dir = tmp("deb");
    let x = dir.join("x");
    ok(
        "dpkg-deb -x",
        Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&x),
    );
    let lib = x.join(DEB_LIB.trim_start_matches('/'));
    let dynamic = ok("readelf -d", Command::new("readelf").arg("-d").arg(&lib));
    assert!(
        dynamic.contains("Library soname: [librmcp.so.0]"),
        "{dynamic}"
    );
    assert!(
        std::fs::read(x.join("usr/include/rmcp.h")).unwrap()
            == std::fs::read(root().join("include/rmcp.h")).unwrap()
    );

    // pkg-config as a user of the installed package sees it (system dirs are
    // left out of the output), and with the extracted tree as sysroot.
    let pcdir = x.join("usr/lib/x86_64-linux-gnu/pkgconfig");
    if required("pkg-config", have("pkg-config"), t) {
        let flags = ok(
            "pkg-config",
            Command::new("pkg-config")
                .args(["--cflags", "--libs", "rmcp"])
                .env("PKG_CONFIG_PATH", &pcdir)
                .env_remove("PKG_CONFIG_SYSROOT_DIR"),
        );
        assert_eq!(flags.trim(), "-Wl,--no-as-needed -lrmcp");
        let v = ok(
            "pkg-config --modversion",
            Command::new("pkg-config")
                .args(["--modversion", "rmcp"])
                .env("PKG_CONFIG_PATH", &pcdir),
        );
        assert_eq!(v.trim(), VERSION);
        let pc = std::fs::read_to_string(pcdir.join("rmcp.pc")).unwrap();
        assert!(
            pc.contains("libdir=${prefix}/lib/x86_64-linux-gnu\n") && !pc.contains("rpath"),
            "{pc}"
        );
    }

    // examples/cpp built against the installed copy (one hipcc command, flags
    // from pkg-config with the extracted tree as sysroot).
    if required(
        "hipcc and pkg-config",
        have("hipcc") && have("pkg-config"),
        t,
    ) {
        let flags = ok(
            "pkg-config sysroot",
            Command::new("pkg-config")
                .args(["--cflags", "--libs", "rmcp"])
                .env("PKG_CONFIG_PATH", &pcdir)
                .env("PKG_CONFIG_SYSROOT_DIR", &x),
        );
        assert!(
            flags.contains(&format!("-I{}/usr/include", x.display())),
            "{flags}"
        );
        let exe = dir.join("rmcp_hip_example");
        timed("hipcc examples/cpp against the .deb", || {
            ok(
                "hipcc",
                Command::new("hipcc")
                    .arg("--offload-arch=gfx1030")
                    .arg(root().join("examples/cpp/main.cpp"))
                    .args(flags.split_whitespace())
                    .arg("-o")
                    .arg(&exe),
            )
        });
        let d = ok(
            "readelf -d exe",
            Command::new("readelf").arg("-d").arg(&exe),
        );
        let pos = |n: &str| d.find(n).unwrap_or_else(|| panic!("{n} not NEEDED:\n{d}"));
        assert!(pos("[librmcp.so.0]") < pos("[libamdhip64.so"), "{d}");
        let libdir = x.join("usr/lib/x86_64-linux-gnu");
        let ldd = ok(
            "ldd",
            Command::new("ldd")
                .arg(&exe)
                .env("LD_LIBRARY_PATH", &libdir),
        );
        assert!(
            ldd.contains(&format!(
                "librmcp.so.0 => {}",
                libdir.join("librmcp.so.0").display()
            )),
            "{ldd}"
        );
        let out = ok(
            "rmcp_hip_example",
            Command::new(&exe)
                .env("LD_LIBRARY_PATH", &libdir)
                .env_remove("LD_PRELOAD"),
        );
        assert!(out.contains(&format!("librmcp {VERSION}")), "{out}");
    }

    // dpkg -i in a throw-away bookworm root; there `rmcp run` and a bare
    // `LD_PRELOAD=librmcp.so` find the installed library.
    let tarball = rootfs_tarball();
    if !required(
        &format!("root, unshare, /usr/sbin/chroot and {}", tarball.display()),
        is_root()
            && have("unshare")
            && Path::new("/usr/sbin/chroot").is_file()
            && tarball.is_file(),
        t,
    ) {
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    let r = dir.join("root");
    std::fs::create_dir_all(&r).unwrap();
    timed("unpack rootfs", || {
        ok(
            "tar -x",
            Command::new("tar")
                .arg("-C")
                .arg(&r)
                .arg("-xf")
                .arg(&tarball),
        )
    });
    std::fs::copy(&deb, r.join("tmp/rmcp.deb")).unwrap();
    let chroot = |args: &[&str]| {
        let mut c = Command::new("unshare");
        c.args(["--mount", "--pid", "--fork"])
            .arg(format!("--mount-proc={}", r.join("proc").display()))
            // By path: a PATH without /usr/sbin is common outside root shells.
            .arg("/usr/sbin/chroot")
            .arg(&r)
            .args(["/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"])
            .args(args);
        c
    };
    ok(
        "dpkg -i in chroot",
        &mut chroot(&["dpkg", "-i", "/tmp/rmcp.deb"]),
    );
    let p = ok(
        "chroot rmcp --print-library",
        &mut chroot(&["rmcp", "--print-library"]),
    );
    assert_eq!(p.trim(), DEB_LIB);
    let m = ok(
        "chroot rmcp run",
        &mut chroot(&["rmcp", "run", "--", "grep", "librmcp", "/proc/self/maps"]),
    );
    assert!(m.contains(DEB_LIB), "{m}");
    let m = ok(
        "chroot LD_PRELOAD=librmcp.so",
        &mut chroot(&[
            "env",
            "LD_PRELOAD=librmcp.so",
            "grep",
            "librmcp",
            "/proc/self/maps",
        ]),
    );
    assert!(m.contains(DEB_LIB), "{m}");
    let o = chroot(&["rmcp", "run", "--", "sh", "-c", "exit 3"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

/// buildah with private storage (vfs, chroot isolation) under `dir`.
fn buildah(dir: &Path) -> Command {
    let mut c = Command::new("buildah");
    c.arg("--storage-driver=vfs")
        .arg("--root")
        .arg(dir.join("storage"))
        .arg("--runroot")
        .arg(dir.join("run"));
    c
}

/// The image's ENTRYPOINT and CMD, as a container engine would join them.
fn image_argv(dir: &Path, image: &str) -> Vec<String> {
    let json = ok(
        "buildah inspect",
        buildah(dir).args(["inspect", "--type", "image", image]),
    );
    let mut py = Command::new("/usr/bin/python3");
    py.args([
        "-c",
        "import json,sys; c=json.load(sys.stdin)['OCIv1']['config']; print('\\n'.join((c.get('Entrypoint') or []) + (c.get('Cmd') or [])))",
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped());
    let mut child = py.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(json.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// A working container of `image`: `buildah from` copies the whole image
/// with vfs storage (seconds each), so each test makes one per image and
/// runs several commands in it.
struct Ctr<'a> {
    dir: &'a Path,
    id: String,
}

impl<'a> Ctr<'a> {
    fn new(dir: &'a Path, image: &str) -> Ctr<'a> {
        let id = ok(
            "buildah from",
            buildah(dir).args(["from", "--quiet", image]),
        );
        Ctr {
            dir,
            id: id.trim().to_string(),
        }
    }

    /// Runs argv in the container (buildah run), returns the output.
    fn run(&self, argv: &[String]) -> Output {
        buildah(self.dir)
            .args(["run", "--isolation=chroot", &self.id, "--"])
            .args(argv)
            .output()
            .unwrap()
    }
}

impl Drop for Ctr<'_> {
    fn drop(&mut self) {
        let _ = buildah(self.dir).args(["rm", &self.id]).output();
    }
}

#[test]
fn container_example_builds_and_runs_with_buildah() {
    let t = "container_example_builds_and_runs_with_buildah";
    let tarball = rootfs_tarball();
    if !required("root and buildah", is_root() && have("buildah"), t)
        || !required(
            &format!("{} (debootstrap)", tarball.display()),
            tarball.is_file(),
            t,
        )
    {
        return;
    }
    let Some(_deb) = deb_package(t) else { return };
    let dir = tmp("container");
    let start = Instant::now();
    // The base image: Debian's own packages (debootstrap), no registry.
    timed("base image from the debootstrap tarball", || {
        let ctr = ok(
            "buildah from scratch",
            buildah(&dir).args(["from", "scratch"]),
        );
        let ctr = ctr.trim();
        ok(
            "buildah add",
            buildah(&dir).args(["add", ctr]).arg(&tarball).arg("/"),
        );
        ok(
            "buildah commit",
            buildah(&dir).args(["commit", "--quiet", ctr, "localhost/rmcp-bookworm-minbase"]),
        );
        ok("buildah rm", buildah(&dir).args(["rm", ctr]));
    });
    let bud = |target: &str, tag: &str| {
        ok(
            &format!("buildah bud --target {target}"),
            buildah(&dir)
                .args([
                    "bud",
                    "--isolation=chroot",
                    "--quiet",
                    "--pull-never",
                    "--layers=false",
                ])
                .args(["-f", "examples/container/Dockerfile.deb"])
                .args([
                    "--ignorefile",
                    "examples/container/Dockerfile.deb.dockerignore",
                ])
                .args(["--build-arg", "BASE_IMAGE=localhost/rmcp-bookworm-minbase"])
                // --target preload builds the entrypoint stage again (no layer cache:
                // with vfs every cached layer is a full copy, which is slower).
                .args(["--target", target, "-t", tag, "."])
                .current_dir(root()),
        )
    };
    timed("buildah bud Dockerfile.deb (entrypoint)", || {
        bud("entrypoint", "localhost/rmcp-deb")
    });

    // ENTRYPOINT + CMD as configured: `rmcp run -- grep librmcp /proc/self/maps`.
    let argv = image_argv(&dir, "localhost/rmcp-deb");
    assert_eq!(&argv[..3], ["rmcp", "run", "--"], "{argv:?}");
    let ctr = Ctr::new(&dir, "localhost/rmcp-deb");
    let o = ctr.run(&argv);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && out.contains(DEB_LIB), "{}", text(&o));
    // The entrypoint with another command: its exit status comes through.
    let mut other: Vec<String> = argv[..3].to_vec();
    other.extend(["sh", "-c", "exit 3"].map(String::from));
    let o = ctr.run(&other);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    // Without the entrypoint, nothing loads the library.
    let o = ctr.run(&[
        "grep".into(),
        "-c".into(),
        "librmcp".into(),
        "/proc/self/maps".into(),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "0",
        "{}",
        text(&o)
    );
    drop(ctr);

    // The /etc/ld.so.preload variant: no entrypoint, every process has it.
    timed("buildah bud Dockerfile.deb (preload)", || {
        bud("preload", "localhost/rmcp-preload")
    });
    let argv = image_argv(&dir, "localhost/rmcp-preload");
    assert_eq!(argv.first().map(String::as_str), Some("grep"), "{argv:?}");
    let ctr = Ctr::new(&dir, "localhost/rmcp-preload");
    let o = ctr.run(&argv);
    assert!(
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains(DEB_LIB),
        "{}",
        text(&o)
    );
    let o = ctr.run(&[
        "sh".into(),
        "-c".into(),
        "env -i /bin/grep librmcp /proc/self/maps".into(),
    ]);
    assert!(
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains(DEB_LIB),
        "cleared env still preloads: {}",
        text(&o)
    );
    drop(ctr);
    eprintln!(
        "packaging: container test total {:.1} s",
        start.elapsed().as_secs_f64()
    );

    let _ = buildah(&dir).args(["rm", "--all"]).output();
    let _ = buildah(&dir).args(["rmi", "--all", "--force"]).output();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn kubernetes_examples_validate_against_the_api_schemas() {
    let t = "kubernetes_examples_validate_against_the_api_schemas";
    let tools = root().join(".cache/tools/bin");
    let kv = tools.join("kubernetes-validate");
    if !required(
        &format!("{} (PyPI kubernetes-validate)", kv.display()),
        kv.is_file(),
        t,
    ) {
        return;
    }
    let dir = root().join("examples/kubernetes");
    let pods = ["pod-ld-preload.yaml", "pod-ld-so-preload.yaml"];
    let o = timed("kubernetes-validate", || {
        Command::new(&kv)
            .args(["--strict", "-k", "1.30.0"])
            .args(pods)
            .current_dir(&dir)
            .output()
            .unwrap()
    });
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout)
            .matches(" passed for resource pod/")
            .count(),
        2,
        "{}",
        text(&o)
    );

    // The validator rejects a broken pod (so the pass above means something).
    let tmpd = tmp("k8s");
    let bad = std::fs::read_to_string(dir.join(pods[0]))
        .unwrap()
        .replacen("mountPath: /rmcp\n", "mountPth: /rmcp\n", 1);
    std::fs::write(tmpd.join("bad.yaml"), bad).unwrap();
    let o = Command::new(&kv)
        .args(["--strict", "-k", "1.30.0"])
        .arg(tmpd.join("bad.yaml"))
        .output()
        .unwrap();
    assert!(
        !o.status.success(),
        "a pod with a misspelt field passed: {}",
        text(&o)
    );

    // What the schema cannot check: the library path lands in the shared
    // emptyDir the init container fills, and the GPU is requested.
    let check = r#"
import sys, yaml
for f in sys.argv[1:]:
    pod = yaml.safe_load(open(f))
    spec = pod["spec"]
    empty = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
    init = spec["initContainers"][0]
    init_dir = [m["mountPath"] for m in init["volumeMounts"] if m["name"] in empty][0]
    assert init_dir + "/librmcp.so" in " ".join(init["command"]), (f, init["command"])
    main = spec["containers"][0]
    assert main["resources"]["limits"]["amd.com/gpu"] == 1, f
    mounts = {m["mountPath"]: m for m in main["volumeMounts"] if m["name"] in empty}
    env = {e["name"]: e.get("value") for e in main.get("env", [])}
    if "LD_PRELOAD" in env:
        d = env["LD_PRELOAD"].rsplit("/", 1)[0]
        assert d in mounts and mounts[d].get("readOnly"), (f, env, mounts)
    else:
        m = mounts["/etc/ld.so.preload"]
        assert m["subPath"] == "ld.so.preload" and "/rmcp/ld.so.preload" in init["command"][-1], f
    print("checked", f)
"#;
    let o = Command::new(tools.join("python3"))
        .args(["-c", check])
        .args(pods)
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let _ = std::fs::remove_dir_all(tmpd);
}
