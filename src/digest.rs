//! SHA-256 digests as lowercase hex, the form `sha256sum` prints on the hosts.

use sha2::{Digest, Sha256};

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A SHA-256 as 64 lowercase hex digits (`sha256:` prefix and case accepted); None when it is
/// not one.
pub fn normalize_sha256(s: &str) -> Option<String> {
    let d = s.trim().trim_start_matches("sha256:").to_ascii_lowercase();
    (d.len() == 64 && d.chars().all(|c| c.is_ascii_hexdigit())).then_some(d)
}

/// An OpenPGP fingerprint, `9DC8 5822 ...` or `9dc85822...`, as `9DC85822...`; None unless
/// 40 (v4 key) or 64 (v5/v6 key) hex digits.
pub fn normalize_fingerprint(s: &str) -> Option<String> {
    let f: String = s.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_uppercase();
    ((f.len() == 40 || f.len() == 64) && f.chars().all(|c| c.is_ascii_hexdigit())).then_some(f)
}
