// `--features real-headers`: bindgen on the real ROCm headers (see the module).
#[cfg(feature = "real-headers")]
#[path = "build/real_headers.rs"]
mod real_headers;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // librmcp registers atexit and pthread_atfork handlers that point into
    // its own code: it must never be unmapped, even if someone dlcloses it.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    // librmcp's own references to its exported hooks (the hipGetProcAddress
    // table) bind inside the library: without this each is a symbolic
    // relocation the loader looks up in every process at start (about 700
    // instructions each; see bench/run.sh's /bin/true row). Calls from the
    // application still reach the hooks through the global scope.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-Bsymbolic-functions");
    #[cfg(feature = "real-headers")]
    real_headers::generate();
}
