//! Stable ids: `<slug>-<8 hex>`, the slug readable, the hash over the full identity key so
//! two names that slug alike still differ. Both parts match Threagile's `^[a-zA-Z0-9\-]+$`.

/// FNV-1a, 64 bits: tiny, dependency-free, and fixed forever (ids are persisted in annotation
/// files and in Threagile risk tracking, so the function must never change).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Lowercase ASCII letters and digits, other runs collapsed to one `-`, at most 40 chars.
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    let mut dash = false;
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.push(c.to_ascii_lowercase());
            if out.len() >= 40 {
                break;
            }
        } else {
            dash = true;
        }
    }
    if out.is_empty() {
        out.push('x');
    }
    out
}

/// The stable id of an element with this display name and identity key.
pub fn stable_id(name: &str, key: &str) -> String {
    format!("{}-{:08x}", slug(name), fnv1a64(key.as_bytes()) as u32)
}

/// A deterministic UUID (RFC 9562 version 8, "custom") from an id, for Threat Dragon cells.
pub fn uuid_of(id: &str) -> String {
    let a = fnv1a64(id.as_bytes());
    let b = fnv1a64(format!("{id}\u{0}uuid").as_bytes());
    let hi = (a & !0xf000) | 0x8000; // version 8 in bits 12..16 of the third group
    let lo = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000; // RFC variant
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_safe() {
        assert_eq!(
            slug("/usr/bin/Python3 -m http.server"),
            "usr-bin-python3-m-http-server"
        );
        assert_eq!(slug("\"; rm -rf /"), "rm-rf");
        assert_eq!(slug("..."), "x");
        let id = stable_id("api.service", "service\u{0}api.service");
        assert_eq!(id, stable_id("api.service", "service\u{0}api.service"));
        assert!(id.starts_with("api-service-"));
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        // The FNV-1a reference value for "a" (never change the function: ids are persisted).
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        let u = uuid_of(&id);
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "8");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"), "{u}");
    }
}
