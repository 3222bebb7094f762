//! Lossless text form of bytes the observed workload controls (argv, paths, names).
//!
//! Linux argv and paths are arbitrary bytes; JSON strings are Unicode. We keep every byte:
//! valid UTF-8 passes through unchanged except `\`, which becomes `\\`; every byte that is not
//! part of valid UTF-8 becomes `\xNN` (two lowercase hex digits). [`unescape`] inverts it
//! exactly. Escaping the backslash always (not only in strings with bad bytes) is what makes
//! the form unambiguous: `\x41` in a string always means the *byte* 0x41 was invalid, never
//! the four characters.

/// Escape arbitrary bytes into the documented lossless text form.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Error from [`unescape`]: the text is not in the escaped form.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid escape at byte {0}")]
pub struct UnescapeError(pub usize);

/// Invert [`escape_bytes`].
pub fn unescape(text: &str) -> Result<Vec<u8>, UnescapeError> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'\\') => {
                out.push(b'\\');
                i += 2;
            }
            Some(b'x') => {
                let hex = text.get(i + 2..i + 4).ok_or(UnescapeError(i))?;
                let v = u8::from_str_radix(hex, 16).map_err(|_| UnescapeError(i))?;
                out.push(v);
                i += 4;
            }
            _ => return Err(UnescapeError(i)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_text_is_unchanged() {
        assert_eq!(escape_bytes(b"/usr/bin/python3"), "/usr/bin/python3");
        assert_eq!(escape_bytes("héllo".as_bytes()), "héllo");
    }

    #[test]
    fn invalid_bytes_and_backslash() {
        assert_eq!(escape_bytes(b"a\xffb\\c"), "a\\xffb\\\\c");
        assert_eq!(unescape("a\\xffb\\\\c").unwrap(), b"a\xffb\\c");
        assert!(unescape("bad\\q").is_err());
        assert!(unescape("bad\\x4").is_err());
    }

    proptest! {
        #[test]
        fn roundtrip(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(unescape(&escape_bytes(&bytes)).unwrap(), bytes);
        }
    }
}
