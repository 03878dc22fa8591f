//! `--features real-headers`: bindgen reads the real ROCm headers (through the
//! top-level wrapper.h) of bookworm's ROCm 5.2.3 (/usr/include), sid's
//! ROCm 6.4.3 ($RMCP_ROCM_DIR/sid-root/usr/include, default
//! .rocm/sid-root/usr/include) and experimental's ROCm 7.2.4 (exp-root in the
//! same place), all put there by scripts/setup-rocm.sh, and writes
//! $OUT_DIR/real_rocm_5_2_3.rs, real_rocm_6_4_3.rs and real_rocm_7_2_4.rs. tests/real_rocm.rs
//! includes them to prove, at compile time, that each exported hook has the
//! real prototype, and to compare rmcp::abi with bindgen's layouts.
//! Needs libclang (libclang-dev, installed by the setup script); without the
//! feature nothing here is compiled and no libclang is needed.

use std::path::{Path, PathBuf};

/// The functions bindgen keeps: every function of `hook_table!` (the hooks
/// and the runtime functions rmcp calls, read from src/core/entry.rs, the one
/// list), and `hipGetDevicePropertiesR0000`, whose struct layout the test
/// compares with rmcp::abi. (hipExtHostAlloc and hipExtModuleLaunchKernel
/// have no C prototype in these headers; the test says how it checks them.)
fn functions(manifest: &Path) -> String {
    let entry = manifest.join("src/core/entry.rs");
    println!("cargo:rerun-if-changed={}", entry.display());
    let text = std::fs::read_to_string(&entry)
        .unwrap_or_else(|e| panic!("feature real-headers: reading {}: {e}", entry.display()));
    let start = text
        .find("macro_rules! hook_table")
        .expect("hook_table! in src/core/entry.rs");
    let end = start
        + text[start..]
            .find("\n}\n")
            .expect("the end of hook_table! in src/core/entry.rs");
    // A table line: `[Variant] symbol(argument types) -> return type;`.
    let mut names: Vec<&str> = text[start..end]
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("//") && l.ends_with(';') && l.contains(") -> "))
        .filter_map(|l| l.split('(').next()?.split_whitespace().last())
        .collect();
    assert!(
        names.len() >= 30 && names.contains(&"hipMalloc") && names.contains(&"hsa_init"),
        "hook_table! in src/core/entry.rs no longer reads as expected: {names:?}"
    );
    names.push("hipGetDevicePropertiesR0000");
    names.join("|")
}

const TYPES: &str = "hipDeviceProp_t|hipDeviceProp_tR0000|hipDeviceProp_tR0600|hipError_t|\
hsa_status_t|hsa_amd_event_t|hsa_amd_gpu_memory_fault_info_t|hsa_amd_memory_pool_global_flag_t|\
hsa_amd_memory_pool_info_t|hsa_amd_segment_t|hsa_agent_info_t|hsa_device_type_t|hsa_amd_agent_info_t|\
hsa_amd_event_type_t|hsa_amd_memory_fault_reason_t|hipMemoryAdvise";

const VARS: &str =
    "HIP_VERSION_MAJOR|HIP_VERSION_MINOR|hipHostMalloc.*|hipHostAlloc.*|hipDeviceMalloc.*|\
hipMallocSignalMemory|hipMemAttach.*";

pub fn generate() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    let wrapper = manifest.join("wrapper.h");
    println!("cargo:rerun-if-changed={}", wrapper.display());
    println!("cargo:rerun-if-changed=build/real_headers.rs");
    println!("cargo:rerun-if-env-changed=RMCP_ROCM_DIR");
    let functions = functions(&manifest);
    let unpacked = |root: &str| match std::env::var_os("RMCP_ROCM_DIR") {
        Some(d) => PathBuf::from(d).join(root).join("usr/include"),
        None => manifest.join(".rocm").join(root).join("usr/include"),
    };
    for (tag, include) in [
        ("5_2_3", PathBuf::from("/usr/include")),
        ("6_4_3", unpacked("sid-root")),
        ("7_2_4", unpacked("exp-root")),
    ] {
        let api = include.join("hip/hip_runtime_api.h");
        if !api.exists() {
            panic!(
                "feature real-headers: {} is missing; run scripts/setup-rocm.sh (it installs ROCm 5.2.3 \
                 and unpacks ROCm 6.4.3's and 7.2.4's headers), or build without --features real-headers",
                api.display()
            );
        }
        println!("cargo:rerun-if-changed={}", api.display());
        println!(
            "cargo:rerun-if-changed={}",
            include.join("hsa/hsa_ext_amd.h").display()
        );
        generate_one(
            &wrapper,
            &include,
            &functions,
            &out.join(format!("real_rocm_{tag}.rs")),
        );
    }
}

fn generate_one(wrapper: &Path, include: &Path, functions: &str, out: &Path) {
    let bindings = bindgen::Builder::default()
        .header(wrapper.to_str().unwrap())
        .clang_arg(format!("-I{}", include.display()))
        .clang_arg("-D__HIP_PLATFORM_AMD__")
        .allowlist_function(functions)
        .allowlist_type(TYPES)
        .allowlist_var(VARS)
        // Enums become distinct newtypes, so a hook that used a plain integer
        // where the header has an enum is caught (and allowed only where the
        // test says so explicitly).
        .default_enum_style(bindgen::EnumVariation::NewType {
            is_bitfield: false,
            is_global: false,
        })
        // Function prototypes become fields of a struct (never loaded), so the
        // test gets their exact types without referencing the symbols.
        .dynamic_library_name("RealApi")
        .dynamic_link_require_all(true)
        .layout_tests(false)
        .derive_debug(false)
        .derive_copy(false)
        .generate_comments(false)
        .generate()
        .unwrap_or_else(|e| {
            panic!(
                "bindgen on {} with -I{}: {e}",
                wrapper.display(),
                include.display()
            )
        });
    bindings
        .write_to_file(out)
        .unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
}
