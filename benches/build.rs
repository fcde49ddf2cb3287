//! Compiles the C parts of the benches (`c/*.c`: baselines and a thread
//! CPU clock) with `cc`.
//!
//! Natively on x86-64 or aarch64 the C is tuned for the build machine
//! (`-march=native` / `-mcpu=native`), like the Rust kernels' runtime
//! dispatch; a cross build cannot know the target CPU, so it gets plain
//! `-O3`.

fn main() {
    println!("cargo:rerun-if-changed=c/sgemm_naive.c");
    println!("cargo:rerun-if-changed=c/thread_cpu_time.c");
    let target = std::env::var("TARGET").unwrap_or_default();
    let host = std::env::var("HOST").unwrap_or_default();
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();

    let mut build = cc::Build::new();
    build.file("c/sgemm_naive.c").file("c/thread_cpu_time.c").opt_level(3).warnings(true);
    if target == host {
        match arch.as_str() {
            "x86_64" => {
                build.flag_if_supported("-march=native");
            }
            "aarch64" => {
                build.flag_if_supported("-mcpu=native");
            }
            _ => {}
        }
    }
    // The bench binaries name the library in a `#[link]` attribute, so only
    // the search path is passed on (cc's own `rustc-link-lib` would attach
    // it to the benches' lib crate, which the bench binaries do not link).
    build.cargo_metadata(false).compile("edgecl_bench_c");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR for build scripts");
    println!("cargo:rustc-link-search=native={out}");
}
