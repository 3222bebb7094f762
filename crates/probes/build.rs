//! Compile `bpf/causeway.bpf.c` with clang and generate its libbpf-rs skeleton.

use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bpf");
    let src = root.join("causeway.bpf.c");
    let out =
        PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join("causeway.skel.rs");
    for f in ["causeway.bpf.c", "include/causeway_events.h", "vmlinux.h"] {
        println!("cargo:rerun-if-changed={}", root.join(f).display());
    }
    let include = format!("-I{}", root.display());
    let include2 = format!("-I{}", root.join("include").display());
    if let Err(e) = libbpf_cargo::SkeletonBuilder::new()
        .source(&src)
        .clang_args([
            include.as_str(),
            include2.as_str(),
            "-Wall",
            "-Wno-unused-function",
        ])
        .build_and_generate(&out)
    {
        panic!(
            "building {}: {e:#}. It needs clang (Debian: clang llvm libelf-dev pkg-config)",
            src.display()
        );
    }
}
