//! Builds librmcp-audit.so (src/audit/rmcp_audit.c, the LD_AUDIT module) and puts it
//! beside librmcp.so in the profile directory (`target/<profile>/`), where `rmcp run`
//! and the tests look for it. It is a freestanding C object: no libc, no Rust (a Rust
//! std cdylib in the audit namespace costs ~150k instructions per process start, see
//! docs/audit.md).

use std::path::{Path, PathBuf};

const SOURCE: &str = "src/audit/rmcp_audit.c";
const LIST: &str = "src/rocm_libraries.txt";
pub const NAME: &str = "librmcp-audit.so";

/// `target/<profile>` (or `target/<triple>/<profile>`) from OUT_DIR
/// (`<that>/build/<pkg>-<hash>/out`).
fn profile_dir(out: &Path) -> Option<PathBuf> {
    out.ancestors().nth(3).map(Path::to_path_buf)
}

/// The ROCm library stems as C string literals, one per line, from the list
/// that src/core/policy.rs also reads.
fn list_header(list: &str) -> String {
    list.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            assert!(
                l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'+'),
                "{LIST}: unexpected character in {l:?}"
            );
            // src/audit/rmcp_audit.c stores them as char[24].
            assert!(l.len() < 24, "{LIST}: {l:?} is longer than 23 bytes");
            format!("\"{l}\",\n")
        })
        .collect()
}

pub fn build() {
    println!("cargo:rerun-if-changed={SOURCE}");
    println!("cargo:rerun-if-changed={LIST}");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let list = std::fs::read_to_string(LIST).unwrap_or_else(|e| panic!("{LIST}: {e}"));
    std::fs::write(out.join("rocm_libraries.h"), list_header(&list)).expect("write header");

    let target = std::env::var("TARGET").unwrap_or_default();
    if !target.contains("linux") || !target.contains("gnu") {
        // The audit interface is glibc's; nothing to build elsewhere.
        return;
    }
    let compiler = cc::Build::new()
        .opt_level(2)
        .cargo_metadata(false)
        .try_get_compiler()
        .unwrap_or_else(|e| panic!("librmcp-audit.so needs a C compiler: {e}"));
    let lib = out.join(NAME);
    let mut cmd = compiler.to_command();
    cmd.args([
        "-std=c11",
        "-Wall",
        "-Wextra",
        "-shared",
        "-fPIC",
        // No libc, no startup files, no stack protector or builtins that call into
        // libc; -z defs fails the link if anything would still need one.
        "-nostdlib",
        "-ffreestanding",
        "-fno-stack-protector",
        "-fvisibility=hidden",
        "-Wl,-z,defs",
        "-Wl,--hash-style=gnu",
        "-Wl,-soname,librmcp-audit.so",
    ])
    .arg("-I")
    .arg(&out)
    .arg(SOURCE)
    .arg("-o")
    .arg(&lib);
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {cmd:?}: {e}"));
    if !output.status.success() {
        panic!(
            "building {NAME} failed:\n{cmd:?}\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    for line in String::from_utf8_lossy(&output.stderr).lines() {
        println!("cargo:warning={line}");
    }
    if let Some(dir) = profile_dir(&out) {
        let dest = dir.join(NAME);
        // Copy to a temporary name and rename, so a process that has the old file
        // mapped keeps a consistent copy.
        let tmp = dir.join(format!(".{NAME}.{}", std::process::id()));
        std::fs::copy(&lib, &tmp)
            .and_then(|_| std::fs::rename(&tmp, &dest))
            .unwrap_or_else(|e| panic!("copy {NAME} to {}: {e}", dest.display()));
    }
}
