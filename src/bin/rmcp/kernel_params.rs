//! `rmcp kernel-params`: a modprobe.d snippet for the targeted GPUs found, with
//! real parameter names and honest comments. Every option in it is commented
//! out: no amdgpu parameter is known to prevent "Page not present" faults.

use crate::kfd;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `rmcp kernel-params`: prints a commented-out /etc/modprobe.d snippet for
/// the RDNA1/RDNA2 GPUs found in the KFD topology (nothing in it is active).
#[derive(Debug, clap::Args)]
#[command(args_override_self = true)]
pub struct Args {
    /// Filesystem root for both the GPU scan (DIR/sys/...) and --write
    /// (DIR/etc/modprobe.d/amdgpu-rmcp.conf)
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Write the snippet there atomically; an existing file is replaced only
    /// if rmcp wrote it (marker line), or with --force
    #[arg(long)]
    pub write: bool,
    /// With --write: replace a file rmcp did not write
    #[arg(long)]
    pub force: bool,
}

/// First line of every file rmcp writes; its presence allows replacing it.
pub const MARKER: &str = "# rmcp-managed: written by `rmcp kernel-params --write`; rmcp replaces this file only while this line is here";
pub const FILE_NAME: &str = "amdgpu-rmcp.conf";

/// The checks clap does not make, with their one-line messages.
fn check_args(o: &Args) -> Result<(), String> {
    if o.force && !o.write {
        return Err("kernel-params: --force only applies with --write".to_string());
    }
    if !o.root.is_dir() {
        return Err(format!(
            "kernel-params: --root {}: no such directory",
            o.root.display()
        ));
    }
    Ok(())
}

/// The snippet for these GPUs (all targeted).
pub fn snippet(gpus: &[&kfd::Gpu]) -> String {
    let mut s = String::new();
    s.push_str(MARKER);
    s.push('\n');
    s.push_str("#\n# amdgpu module options for the GPUs rmcp targets here:\n");
    for g in gpus {
        s.push_str(&format!(
            "#   node {}: {} ({}, {}){}\n",
            g.node,
            g.gfx_name(),
            g.gfx.and_then(|x| x.family()).unwrap_or("?"),
            if g.integrated {
                "integrated"
            } else {
                "discrete"
            },
            g.pci
                .as_deref()
                .map(|p| format!(" at {p}"))
                .unwrap_or_default()
        ));
    }
    s.push_str(
        "#
# Every option below is commented out, on purpose. None of them is known to
# prevent \"Memory access fault by GPU ... Page not present or supervisor
# privilege\": that fault means the GPU used an address with no valid
# page-table entry, which these options are not known to change. They are
# listed with their real names and meanings for anyone who wants to
# experiment. To try one, remove the \"# \" in front of its \"options\" line,
# rebuild the initramfs if amdgpu loads from it (Debian/Ubuntu:
# update-initramfs -u; Fedora: dracut -f), reboot, and check
# /sys/module/amdgpu/parameters/.
#
# rmcp's own change (coherent/fine-grained allocations made non-coherent/
# coarse-grained) needs no module option: librmcp.so does it inside the
# process when preloaded (rmcp run -- CMD).
#
# noretry: 0 = retry faults enabled, 1 = retry disabled, -1 = auto (the
# default; RDNA2 already defaults to no-retry). With retry enabled the GPU
# retries a translation miss instead of reporting it at once. Its effect on
# these faults is not established.
# options amdgpu noretry=0
#
# gttsize: size of GTT (system memory the GPU can map) in MiB; -1 = auto (the
# default). The parameter is \"gttsize\": \"gtt_size\" does not exist and the
# kernel ignores it. Raising it helps only when allocations fail for lack of
# GTT, not with page faults. (Default shown, to give the right name.)
# options amdgpu gttsize=-1
#
# vm_fragment_size: GPU page-table fragment size in bits, 4 = 64K up to
# 9 = 2M; -1 = auto (the default). A performance setting. (Default shown.)
# options amdgpu vm_fragment_size=-1
#
# Not listed because it does nothing on these GPUs: mtype_local (only GFX
# 9.4.3 and GFX 12).
",
    );
    if gpus.iter().any(|g| g.integrated) {
        s.push_str(
            "#
# Integrated GPUs here use system memory through GTT for most allocations;
# gttsize bounds how much of it they can map.
",
        );
    }
    s
}

fn write_atomically(dir: &Path, name: &str, content: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.rmcp-tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(content.as_bytes())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, dir.join(name))?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

pub fn main(o: Args) -> i32 {
    if let Err(e) = check_args(&o) {
        eprintln!("rmcp: {e}");
        return 2;
    }
    let (targets, problem) = kfd::targets_from_env();
    if let Some(p) = problem {
        eprintln!("rmcp: {p}");
    }
    let scan = kfd::scan(&o.root, &targets);
    let targeted: Vec<&kfd::Gpu> = scan.gpus.iter().filter(|g| g.targeted).collect();
    if targeted.is_empty() {
        println!(
            "rmcp: no targeted GPU ({targets}) in {}; nothing to suggest{}.",
            scan.topology_dir.display(),
            if o.write { ", nothing written" } else { "" }
        );
        return 0;
    }
    let text = snippet(&targeted);
    let dir = o.root.join("etc/modprobe.d");
    let path = dir.join(FILE_NAME);
    if !o.write {
        print!("{text}");
        eprintln!(
            "rmcp: printed only; `rmcp kernel-params --write` installs it as {}",
            path.display()
        );
        return 0;
    }
    match std::fs::read(&path) {
        Ok(old) => {
            let ours = String::from_utf8_lossy(&old)
                .lines()
                .take(5)
                .any(|l| l.trim_end() == MARKER);
            if !ours && !o.force {
                eprintln!(
                    "rmcp: refusing to replace {}: rmcp did not write it (no \"# rmcp-managed:\" line); use --force to replace it",
                    path.display()
                );
                return 1;
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            eprintln!("rmcp: cannot read {}: {e}", path.display());
            return 2;
        }
    }
    match write_atomically(&dir, FILE_NAME, &text) {
        Ok(()) => {
            println!(
                "rmcp: wrote {} (every option in it is commented out; nothing changes until you enable one)",
                path.display()
            );
            0
        }
        Err(e) => {
            eprintln!("rmcp: cannot write {}: {e}", path.display());
            2
        }
    }
}
