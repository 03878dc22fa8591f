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
    audit::build();
    #[cfg(feature = "real-headers")]
    real_headers::generate();
}
