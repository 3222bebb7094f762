//! The kernel↔user record ABI. The types in [`raw`] are generated at build time by bindgen
//! from `bpf/include/causeway_events.h`, the single source of truth shared with the BPF C
//! code; bindgen's compile-time layout assertions turn any size or offset drift into a build
//! error. On top, [`decode`] turns the bytes of one ring-buffer record into a borrowed, typed
//! view with every length checked, so no malformed or truncated record can cause a panic or
//! an out-of-bounds read.

pub mod decode;

/// Generated from `causeway_events.h`.
#[allow(
    non_camel_case_types,
    non_upper_case_globals,
    dead_code,
    unsafe_op_in_unsafe_fn,
    clippy::all
)]
pub mod raw {
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

pub use decode::{bytes_of, decode, DecodeError, Pod, Record};
