//! Generate the Rust types of every kernel→user record from the one C header, so the two can
//! never drift: bindgen emits compile-time size/offset assertions for each struct.

use std::path::PathBuf;

fn main() {
    let include = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bpf/include");
    let header = include.join("causeway_events.h");
    // The record header includes the per-architecture syscall table (cw_syscall_nr.h).
    for f in ["causeway_events.h", "cw_syscall_nr.h"] {
        println!("cargo:rerun-if-changed={}", include.join(f).display());
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into()));
    let bindings = bindgen::Builder::default()
        .header(header.to_string_lossy())
        .clang_arg(format!("-I{}", include.display()))
        .allowlist_type("cw_.*")
        .allowlist_var("CW_.*")
        .derive_default(true)
        .derive_debug(true)
        .layout_tests(true)
        .use_core()
        .generate();
    match bindings {
        Ok(b) => {
            if let Err(e) = b.write_to_file(out.join("bindings.rs")) {
                panic!("writing bindings: {e}");
            }
        }
        Err(e) => panic!(
            "bindgen failed on {}: {e}. It needs libclang (Debian: libclang-dev)",
            header.display()
        ),
    }
}
