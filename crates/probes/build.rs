//! Compile the C probes with clang and generate their libbpf-rs skeletons: the core object
//! (`causeway.bpf.c`) and the optional BPF-LSM object (`causeway_lsm.bpf.c`).

use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bpf");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    for f in [
        "causeway.bpf.c",
        "causeway_lsm.bpf.c",
        "include",
        "vmlinux.h",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(f).display());
    }
    let include = format!("-I{}", root.display());
    let include2 = format!("-I{}", root.join("include").display());
    for (src, skel) in [
        ("causeway.bpf.c", "causeway.skel.rs"),
        ("causeway_lsm.bpf.c", "causeway_lsm.skel.rs"),
    ] {
        let src = root.join(src);
        if let Err(e) = libbpf_cargo::SkeletonBuilder::new()
            .source(&src)
            .clang_args([
                include.as_str(),
                include2.as_str(),
                "-Wall",
                // BPF ISA v3: atomic exchange and compare-and-swap (the fold table's
                // exact accounting); every kernel Causeway targets (5.12+) runs it.
                "-mcpu=v3",
                "-Wno-unused-function",
            ])
            .build_and_generate(out_dir.join(skel))
        {
            panic!(
                "building {}: {e:#}. It needs clang (Debian: clang llvm libelf-dev pkg-config)",
                src.display()
            );
        }
    }
}
