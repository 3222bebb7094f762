//! Safe decoding of one ring-buffer record.
//!
//! The fixed part of each record is copied out with `read_unaligned` after a length check, and
//! the variable-length `data[]` is split into the pieces the header documents, each checked
//! against the bytes actually received. A record that does not add up is an error, never a
//! panic: the kernel side is ours, but a decoder that trusts lengths is how parsers die.

use crate::raw;
use core::mem::size_of;

/// Why a record could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record of {got} bytes is shorter than its fixed part ({need})")]
    Short { need: usize, got: usize },
    #[error("unknown record kind {0}")]
    UnknownKind(u16),
    #[error("variable-length fields exceed the record ({need} > {got})")]
    Data { need: usize, got: usize },
}

/// A decoded record: the fixed part by value, text pieces borrowed from the ring buffer.
#[derive(Debug)]
pub enum Record<'a> {
    Fork(raw::cw_fork),
    Exec {
        rec: raw::cw_exec,
        argv: &'a [u8],
        filename: &'a [u8],
        exe: &'a [u8],
        cwd: &'a [u8],
        cgroup: &'a [u8],
    },
    Exit(raw::cw_exit),
    Net(raw::cw_net),
    File {
        rec: raw::cw_file,
        path: &'a [u8],
        path2: &'a [u8],
        dir: &'a [u8],
    },
    Cred(raw::cw_cred),
    Ptrace(raw::cw_ptrace),
    Mount {
        rec: raw::cw_mount,
        source: &'a [u8],
        target: &'a [u8],
        fstype: &'a [u8],
    },
    Module {
        rec: raw::cw_module,
        path: &'a [u8],
    },
    Bpf(raw::cw_bpf),
    Memfd {
        rec: raw::cw_memfd,
        name: &'a [u8],
    },
    /// Occurrences the kernel folded (not an event kind of its own: see `CW_REPEAT`).
    Repeat(raw::cw_repeat),
}

impl Record<'_> {
    /// The common header.
    pub fn hdr(&self) -> &raw::cw_hdr {
        match self {
            Record::Fork(r) => &r.hdr,
            Record::Exec { rec, .. } => &rec.hdr,
            Record::Exit(r) => &r.hdr,
            Record::Net(r) => &r.hdr,
            Record::File { rec, .. } => &rec.hdr,
            Record::Cred(r) => &r.hdr,
            Record::Ptrace(r) => &r.hdr,
            Record::Mount { rec, .. } => &rec.hdr,
            Record::Module { rec, .. } => &rec.hdr,
            Record::Bpf(r) => &r.hdr,
            Record::Memfd { rec, .. } => &rec.hdr,
            Record::Repeat(r) => &r.hdr,
        }
    }
}

/// Plain-old-data generated from the header: may be read from arbitrary bytes and viewed as
/// bytes (map keys and values written through the generated structs, see [`bytes_of`]).
///
/// # Safety
/// Implementors must be `repr(C)` structs of integers and integer arrays only, so that every
/// bit pattern is a valid value, and without implicit padding (the header pads explicitly),
/// so that viewing one as bytes never reads uninitialised memory. The `no_implicit_padding`
/// test checks the second property for every map key and value type.
pub unsafe trait Pod {}
unsafe impl Pod for raw::cw_hdr {}
unsafe impl Pod for raw::cw_fork {}
unsafe impl Pod for raw::cw_exec {}
unsafe impl Pod for raw::cw_exit {}
unsafe impl Pod for raw::cw_net {}
unsafe impl Pod for raw::cw_file {}
unsafe impl Pod for raw::cw_cred {}
unsafe impl Pod for raw::cw_ptrace {}
unsafe impl Pod for raw::cw_mount {}
unsafe impl Pod for raw::cw_module {}
unsafe impl Pod for raw::cw_bpf {}
unsafe impl Pod for raw::cw_memfd {}
unsafe impl Pod for raw::cw_counters {}
unsafe impl Pod for raw::cw_file_key {}
unsafe impl Pod for raw::cw_scope {}
unsafe impl Pod for raw::cw_allow_key {}
unsafe impl Pod for raw::cw_agg_key {}
unsafe impl Pod for raw::cw_agg_val {}
unsafe impl Pod for raw::cw_repeat {}

/// The bytes of a header struct, as a BPF map key or value. The map checks the length against
/// its declared key/value size (a mismatch is an error, not a short write).
pub fn bytes_of<T: Pod>(v: &T) -> &[u8] {
    // SAFETY: `T: Pod` is a padding-free `repr(C)` struct of integers, so all its
    // `size_of::<T>()` bytes are initialised; the slice borrows `v` and cannot outlive it.
    unsafe { core::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }
}

fn read<T: Pod>(bytes: &[u8]) -> Result<T, DecodeError> {
    let need = size_of::<T>();
    if bytes.len() < need {
        return Err(DecodeError::Short {
            need,
            got: bytes.len(),
        });
    }
    // SAFETY: the length was checked above, `T: Pod` accepts every bit pattern, and
    // `read_unaligned` has no alignment requirement.
    Ok(unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

/// Read a `cw_counters` value (one CPU's slot of the per-CPU counters map).
pub fn read_counters(bytes: &[u8]) -> Result<raw::cw_counters, DecodeError> {
    read(bytes)
}

/// Split `data` into consecutive pieces of the given lengths.
fn split<const N: usize>(data: &[u8], lens: [usize; N]) -> Result<[&[u8]; N], DecodeError> {
    let need: usize = lens.iter().sum();
    if need > data.len() {
        return Err(DecodeError::Data {
            need,
            got: data.len(),
        });
    }
    let mut out = [&data[..0]; N];
    let mut off = 0;
    for (slot, len) in out.iter_mut().zip(lens) {
        *slot = &data[off..off + len];
        off += len;
    }
    Ok(out)
}

/// Decode one record as received from the ring buffer.
pub fn decode(bytes: &[u8]) -> Result<Record<'_>, DecodeError> {
    let hdr: raw::cw_hdr = read(bytes)?;
    let kind = u32::from(hdr.kind);
    Ok(match kind {
        raw::cw_kind_CW_FORK => Record::Fork(read(bytes)?),
        raw::cw_kind_CW_EXEC => {
            let rec: raw::cw_exec = read(bytes)?;
            let data = &bytes[size_of::<raw::cw_exec>()..];
            let [argv, filename, exe, cwd, cgroup] = split(
                data,
                [
                    rec.argv_len as usize,
                    rec.filename_len as usize,
                    rec.exe_len as usize,
                    rec.cwd_len as usize,
                    rec.cgroup_len as usize,
                ],
            )?;
            Record::Exec {
                rec,
                argv,
                filename,
                exe,
                cwd,
                cgroup,
            }
        }
        raw::cw_kind_CW_EXIT => Record::Exit(read(bytes)?),
        raw::cw_kind_CW_CONNECT | raw::cw_kind_CW_ACCEPT | raw::cw_kind_CW_LISTEN => {
            Record::Net(read(bytes)?)
        }
        raw::cw_kind_CW_OPEN
        | raw::cw_kind_CW_RENAME
        | raw::cw_kind_CW_UNLINK
        | raw::cw_kind_CW_CHMOD => {
            let rec: raw::cw_file = read(bytes)?;
            let data = &bytes[size_of::<raw::cw_file>()..];
            let [path, path2, dir] = split(
                data,
                [
                    rec.path_len as usize,
                    rec.path2_len as usize,
                    rec.dir_len as usize,
                ],
            )?;
            Record::File {
                rec,
                path,
                path2,
                dir,
            }
        }
        raw::cw_kind_CW_CRED => Record::Cred(read(bytes)?),
        raw::cw_kind_CW_PTRACE => Record::Ptrace(read(bytes)?),
        raw::cw_kind_CW_MOUNT => {
            let rec: raw::cw_mount = read(bytes)?;
            let data = &bytes[size_of::<raw::cw_mount>()..];
            let [source, target, fstype] = split(
                data,
                [
                    rec.source_len as usize,
                    rec.target_len as usize,
                    rec.fstype_len as usize,
                ],
            )?;
            Record::Mount {
                rec,
                source,
                target,
                fstype,
            }
        }
        raw::cw_kind_CW_MODULE => {
            let rec: raw::cw_module = read(bytes)?;
            let [path] = split(
                &bytes[size_of::<raw::cw_module>()..],
                [rec.path_len as usize],
            )?;
            Record::Module { rec, path }
        }
        raw::cw_kind_CW_BPF => Record::Bpf(read(bytes)?),
        raw::cw_kind_CW_MEMFD => {
            let rec: raw::cw_memfd = read(bytes)?;
            let [name] = split(
                &bytes[size_of::<raw::cw_memfd>()..],
                [rec.name_len as usize],
            )?;
            Record::Memfd { rec, name }
        }
        raw::CW_REPEAT => Record::Repeat(read(bytes)?),
        _ => return Err(DecodeError::UnknownKind(hdr.kind)),
    })
}

/// Rebuild a path from the kernel's leaf-first component form ("passwd\0etc\0" → "/etc/passwd").
pub fn components_to_path(comp: &[u8]) -> Vec<u8> {
    let parts: Vec<&[u8]> = comp.split(|&b| b == 0).filter(|p| !p.is_empty()).collect();
    let mut out = Vec::with_capacity(comp.len() + 1);
    for p in parts.iter().rev() {
        out.push(b'/');
        out.extend_from_slice(p);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// Strip the trailing NUL (and anything after it) of a C string field.
pub fn cstr(bytes: &[u8]) -> &[u8] {
    match bytes.iter().position(|&b| b == 0) {
        Some(i) => &bytes[..i],
        None => bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned<T: Pod>(v: &T) -> Vec<u8> {
        bytes_of(v).to_vec()
    }

    #[test]
    fn no_implicit_padding() {
        // Each size is the sum of the fields' sizes: nothing uninitialised is ever viewed.
        assert_eq!(size_of::<raw::cw_file_key>(), 8 + 4 + 4);
        assert_eq!(size_of::<raw::cw_scope>(), 4 + 4);
        assert_eq!(size_of::<raw::cw_allow_key>(), 8 + 4 + 4);
        assert_eq!(size_of::<raw::cw_agg_key>(), 8 + 4 + 4 + 2 + 2 + 4);
        assert_eq!(size_of::<raw::cw_agg_val>(), 4 * 8);
        let k = raw::cw_allow_key {
            ino: 7,
            dev: 9,
            policy_id: 3,
        };
        let b = bytes_of(&k);
        assert_eq!(&b[..8], &7u64.to_ne_bytes());
        assert_eq!(&b[8..12], &9u32.to_ne_bytes());
        assert_eq!(&b[12..], &3u32.to_ne_bytes());
    }

    #[test]
    fn components() {
        assert_eq!(components_to_path(b"passwd\0etc\0"), b"/etc/passwd");
        assert_eq!(components_to_path(b""), b"/");
    }

    #[test]
    fn exec_roundtrip_and_bounds() {
        let mut rec = raw::cw_exec::default();
        rec.hdr.kind = raw::cw_kind_CW_EXEC as u16;
        rec.argv_len = 6;
        rec.filename_len = 3;
        let mut b = owned(&rec);
        b.extend_from_slice(b"ls\0-l\0ls\0");
        match decode(&b).unwrap() {
            Record::Exec {
                argv,
                filename,
                exe,
                ..
            } => {
                assert_eq!(argv, b"ls\0-l\0");
                assert_eq!(filename, b"ls\0");
                assert!(exe.is_empty());
            }
            other => panic!("{other:?}"),
        }
        // A length that points past the record is rejected, not read.
        b.truncate(b.len() - 1);
        assert!(matches!(decode(&b), Err(DecodeError::Data { .. })));
        assert!(matches!(decode(&b[..10]), Err(DecodeError::Short { .. })));
    }

    #[test]
    fn unknown_kind() {
        let mut h = raw::cw_fork::default();
        h.hdr.kind = 999;
        assert_eq!(
            decode(&owned(&h)).unwrap_err(),
            DecodeError::UnknownKind(999)
        );
    }
}
