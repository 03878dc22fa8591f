//! PyTorch probe: runs `python -c` with a timeout and reads torch.version.hip
//! and the architectures the build carries code for.

use crate::json::{self, Json};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PROBE: &str = r#"
import json, sys
try:
    import torch
except Exception as e:
    print(json.dumps({"torch": None, "error": repr(e)[:300]}))
    sys.exit(0)
d = {"torch": torch.__version__, "hip": getattr(torch.version, "hip", None), "cuda": getattr(torch.version, "cuda", None)}
archs = None
try:
    flags = torch._C._cuda_getArchFlags()
    if flags:
        archs = flags.replace(";", " ").split()
except Exception:
    pass
if archs is None:
    try:
        archs = torch.cuda.get_arch_list()
    except Exception:
        archs = None
d["arch_list"] = archs
print(json.dumps(d))
"#;

pub enum Probe {
    /// The interpreter could not be started.
    NoPython(String),
    /// It ran but `import torch` failed.
    NoTorch { python: String, error: String },
    Torch {
        python: String,
        version: String,
        hip: Option<String>,
        cuda: Option<String>,
        arch_list: Option<Vec<String>>,
    },
    /// Timed out, crashed or printed something unreadable.
    Failed { python: String, why: String },
}

pub fn run(python: &str, timeout: Duration) -> Probe {
    let mut child = match Command::new(python)
        .arg("-c")
        .arg(PROBE)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .env("HIP_VISIBLE_DEVICES", "-1") // do not touch the GPU from doctor
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return Probe::NoPython(format!("{python}: {e}")),
    };
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() < timeout => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Probe::Failed {
                    python: python.to_string(),
                    why: format!("no answer within {} s", timeout.as_secs()),
                };
            }
        }
    }
    let out = match child.wait_with_output() {
        Ok(o) => o,
        Err(e) => {
            return Probe::Failed {
                python: python.to_string(),
                why: e.to_string(),
            }
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(v) = text.lines().rev().find_map(|l| json::parse(l.trim())) else {
        return Probe::Failed {
            python: python.to_string(),
            why: format!("unreadable output (exit status {})", out.status),
        };
    };
    match v.get("torch") {
        Some(Json::String(ver)) => Probe::Torch {
            python: python.to_string(),
            version: ver.clone(),
            hip: v.get("hip").and_then(Json::as_str).map(str::to_string),
            cuda: v.get("cuda").and_then(Json::as_str).map(str::to_string),
            arch_list: v.get("arch_list").and_then(Json::as_array).map(|a| {
                a.iter()
                    .filter_map(Json::as_str)
                    .map(str::to_string)
                    .collect()
            }),
        },
        _ => Probe::NoTorch {
            python: python.to_string(),
            error: v
                .get("error")
                .and_then(Json::as_str)
                .unwrap_or("import failed")
                .to_string(),
        },
    }
}

/// The architecture part of an arch-list entry ("gfx90a:xnack-" -> "gfx90a",
/// "sm_86" stays).
pub fn arch_base(s: &str) -> &str {
    s.split(':').next().unwrap_or(s)
}
