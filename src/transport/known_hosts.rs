//! Host-key verification against OpenSSH known_hosts files: plain, hashed (`|1|salt|hash`),
//! wildcard (`*`, `?`) and negated (`!`) patterns, `[host]:port` entries and `@revoked` keys.
//! (`@cert-authority` lines are skipped: kprov does not accept host certificates yet.)
//!
//! russh's own checker matches only exact or hashed names; this one follows OpenSSH.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use hmac::{KeyInit, Mac};
use russh::keys::ssh_key::known_hosts::{Entry, HostPatterns, Marker};
use russh::keys::ssh_key::{HashAlg, PublicKey};

/// What the known_hosts files say about a host's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A matching entry holds this key.
    Known { file: PathBuf, line: usize },
    /// The key is marked @revoked.
    Revoked { file: PathBuf, line: usize },
    /// Entries for this host exist, with other keys: the first one is named.
    Mismatch { file: PathBuf, line: usize },
    /// No entry for this host.
    Unknown,
}

/// The names a host is known by: e.g. its inventory address and, when different, the address
/// it resolved to. Port 22 uses bare names; others use OpenSSH's `[name]:port`.
pub fn lookup_names(names: &[&str], port: u16) -> Vec<String> {
    names.iter().filter(|n| !n.is_empty()).map(|n| if port == 22 { n.to_string() } else { format!("[{n}]:{port}") }).collect()
}

pub fn check(files: &[PathBuf], names: &[String], key: &PublicKey) -> Verdict {
    let mut mismatch = None;
    let mut known = None;
    for file in files {
        let Ok(text) = std::fs::read_to_string(file) else { continue };
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            // A line that does not parse (an unsupported key type) is skipped, as OpenSSH does.
            let Ok(entry) = Entry::from_str(line) else { continue };
            if !names.iter().any(|n| matches(entry.host_patterns(), n)) {
                continue;
            }
            let same_key = entry.public_key().key_data() == key.key_data();
            match entry.marker() {
                Some(Marker::Revoked) if same_key => return Verdict::Revoked { file: file.clone(), line: i + 1 },
                Some(Marker::Revoked) | Some(Marker::CertAuthority) => {}
                None if same_key => {
                    known.get_or_insert(Verdict::Known { file: file.clone(), line: i + 1 });
                }
                None => {
                    // A different key of the same type is a changed key; another type only
                    // means the host has several keys, which is not a mismatch on its own.
                    if entry.public_key().algorithm() == key.algorithm() {
                        mismatch.get_or_insert(Verdict::Mismatch { file: file.clone(), line: i + 1 });
                    }
                }
            }
        }
    }
    // A matching key wins; then a same-type other key is a change; else unknown.
    known.or(mismatch).unwrap_or(Verdict::Unknown)
}

/// Does `patterns` match `name` (already in `[host]:port` form when the port is not 22)?
pub fn matches(patterns: &HostPatterns, name: &str) -> bool {
    match patterns {
        HostPatterns::HashedName { salt, hash } => {
            let Ok(mut mac) = hmac::Hmac::<sha1::Sha1>::new_from_slice(salt) else { return false };
            mac.update(name.as_bytes());
            mac.verify_slice(hash).is_ok()
        }
        HostPatterns::Patterns(list) => {
            let mut hit = false;
            for p in list {
                if let Some(neg) = p.strip_prefix('!') {
                    if glob(&neg.to_ascii_lowercase(), &name.to_ascii_lowercase()) {
                        return false;
                    }
                } else if glob(&p.to_ascii_lowercase(), &name.to_ascii_lowercase()) {
                    hit = true;
                }
            }
            hit
        }
    }
}

fn glob(p: &str, s: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], s) || (!s.is_empty() && go(p, &s[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &s[1..]),
            _ => false,
        }
    }
    go(p.as_bytes(), s.as_bytes())
}

/// Record a newly accepted key (`accept-new`): append one line to `file`, creating it with
/// mode 0600. Appends from this process are serialised so concurrent hosts never interleave.
pub fn append(file: &Path, name: &str, key: &PublicKey) -> std::io::Result<usize> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let existing = std::fs::read_to_string(file).unwrap_or_default();
    let key_text = key.to_openssh().map_err(std::io::Error::other)?;
    let mut f = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(file)?;
    let mut line = String::new();
    if !existing.is_empty() && !existing.ends_with('\n') {
        line.push('\n');
    }
    line.push_str(&format!("{name} {key_text}\n"));
    f.write_all(line.as_bytes())?;
    f.sync_all()?;
    Ok(existing.lines().count() + 1)
}

pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    const KEY_A: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMN7PIU2RbZ1MmzL5t1Mzq4Qe3hm6kJmB2nbhTMPjfpl";
    const KEY_B: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJSjaVSV+ZcRd6/Uh7ayXjXbO2XDr9Uhb2iyZF4prUDN";

    fn key(s: &str) -> PublicKey {
        PublicKey::from_openssh(s).unwrap()
    }

    fn hashed(name: &str, salt: &[u8]) -> String {
        let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(salt).unwrap();
        mac.update(name.as_bytes());
        let e = base64::engine::general_purpose::STANDARD;
        format!("|1|{}|{}", e.encode(salt), e.encode(mac.finalize().into_bytes()))
    }

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("known_hosts");
        std::fs::write(&p, text).unwrap();
        (d, p)
    }

    #[test]
    fn plain_hashed_pattern_and_port_entries() {
        let text = format!(
            "# comment\nother.lan {KEY_B}\n{} {KEY_A}\n*.k8s.lan,!bad.k8s.lan {KEY_A}\n[10.0.0.9]:2222 {KEY_A}\n",
            hashed("10.0.0.5", b"0123456789abcdefghij")
        );
        let (_d, p) = file(&text);
        let files = [p.clone()];
        assert_eq!(check(&files, &lookup_names(&["10.0.0.5"], 22), &key(KEY_A)), Verdict::Known { file: p.clone(), line: 3 });
        assert_eq!(check(&files, &lookup_names(&["node1.k8s.lan"], 22), &key(KEY_A)), Verdict::Known { file: p.clone(), line: 4 });
        assert_eq!(check(&files, &lookup_names(&["bad.k8s.lan"], 22), &key(KEY_A)), Verdict::Unknown);
        assert_eq!(check(&files, &lookup_names(&["10.0.0.9"], 2222), &key(KEY_A)), Verdict::Known { file: p.clone(), line: 5 });
        assert_eq!(check(&files, &lookup_names(&["10.0.0.9"], 22), &key(KEY_A)), Verdict::Unknown);
    }

    #[test]
    fn a_changed_key_names_the_line_and_revoked_keys_are_refused() {
        let (_d, p) = file(&format!("10.0.0.5 {KEY_B}\n@revoked * {KEY_A}\n"));
        let files = [p.clone()];
        assert_eq!(check(&files, &lookup_names(&["10.0.0.6"], 22), &key(KEY_A)), Verdict::Revoked { file: p.clone(), line: 2 });
        let (_d2, p2) = file(&format!("\n\n10.0.0.5 {KEY_B}\n"));
        assert_eq!(check(std::slice::from_ref(&p2), &lookup_names(&["10.0.0.5"], 22), &key(KEY_A)), Verdict::Mismatch { file: p2, line: 3 });
    }

    #[test]
    fn append_records_a_line_that_then_matches() {
        let (_d, p) = file(&format!("other {KEY_B}"));
        let line = append(&p, "10.0.0.7", &key(KEY_A)).unwrap();
        assert_eq!(line, 2);
        assert_eq!(check(std::slice::from_ref(&p), &lookup_names(&["10.0.0.7"], 22), &key(KEY_A)), Verdict::Known { file: p, line: 2 });
    }
}
