// `--features real-headers`: bindgen on the real ROCm headers (see the module).
#[cfg(feature = "real-headers")]
#[path = "build/real_headers.rs"]
mod real_headers;

#[path = "build/audit.rs"]
mod audit;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // librmcp registers atexit and pthread_atfork handlers that point into
    // its own code: it must never be unmapped, even if someone dlcloses it.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    soname();
    audit::build();
    #[cfg(feature = "real-headers")]
    real_headers::generate();
}

/// RMCP_SONAME=librmcp.so.0 gives the library that DT_SONAME; only the
/// packaged builds set it (scripts/build-deb.sh). Everyday builds carry no
/// soname, so programs and tests linked with -lrmcp against target/ need
/// target/*/librmcp.so and nothing else.
fn soname() {
    println!("cargo:rerun-if-env-changed=RMCP_SONAME");
    let Ok(name) = std::env::var("RMCP_SONAME") else {
        return;
    };
    if name.is_empty() {
        return;
    }
    let version = name.strip_prefix("librmcp.so.").unwrap_or("");
    if version.is_empty()
        || !version
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        panic!("RMCP_SONAME='{name}' is not accepted: use librmcp.so.N (e.g. librmcp.so.0) or leave it unset");
    }
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{name}");
}
