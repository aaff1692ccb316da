//! An apt repository with its signing key in a dedicated keyring (`signed-by`), as the
//! Kubernetes and Docker install guides do it: never apt-key, never a global trust.
//!
//! The key is trusted by its fingerprint, never by its URL: the host downloads it, lists it
//! with `gpg --show-keys --with-colons` and installs the keyring only when the file holds
//! exactly one primary key and that key's fingerprint is pinned (`key_fingerprints`).
//! Otherwise the step fails with both fingerprints and nothing is installed. The plan reads the
//! installed keyring's fingerprint from its bytes (an OpenPGP packet walk), so a keyring whose
//! key is not the pinned one is replaced, not kept because it exists.

use serde::{Deserialize, Serialize};
use sha1::Digest as _;

use super::{Action, Change, Check, CheckContext, CheckError, ContentChange, Fetch, FetchCheck, Resource};
use crate::facts::FactQuery;
use crate::shell::{QuoteError, quote};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AptRepository {
    /// Name of the list file: /etc/apt/sources.list.d/NAME.list.
    pub name: String,
    /// Where the signing key is fetched (ASCII-armoured or binary).
    pub key_url: String,
    /// The fingerprints the key may have (40 or 64 hex digits, spaces allowed). Required
    /// unless `insecure_skip_key_fingerprint`.
    #[serde(default)]
    pub key_fingerprints: Vec<String>,
    /// Install the key without checking its fingerprint (a mirror with a key of its own that
    /// the operator chose not to pin). Every plan shows it as unverified.
    #[serde(default)]
    pub insecure_skip_key_fingerprint: bool,
    /// Keyring path, e.g. /etc/apt/keyrings/kubernetes-apt-keyring.gpg.
    pub keyring: String,
    /// Repository URI, e.g. https://pkgs.k8s.io/core:/stable:/v1.34/deb/
    pub uri: String,
    /// Suite ("bookworm", or "/" for a flat repository).
    pub suite: String,
    #[serde(default)]
    pub components: Vec<String>,
    /// dpkg architecture to restrict the entry to (Docker's guide sets it).
    #[serde(default)]
    pub arch: Option<String>,
}

impl AptRepository {
    pub fn list_path(&self) -> String {
        format!("/etc/apt/sources.list.d/{}.list", self.name)
    }

    pub fn list_content(&self) -> String {
        let mut opts = vec![];
        if let Some(a) = &self.arch {
            opts.push(format!("arch={a}"));
        }
        opts.push(format!("signed-by={}", self.keyring));
        let mut line = format!("deb [{}] {} {}", opts.join(" "), self.uri, self.suite);
        for c in &self.components {
            line.push(' ');
            line.push_str(c);
        }
        format!("# Managed by kprov.\n{line}\n")
    }

    /// The pinned fingerprints, normalised; an error when none is pinned (and the check is not
    /// skipped) or one is not a fingerprint.
    fn pinned(&self) -> Result<Vec<String>, CheckError> {
        let mut out = vec![];
        for f in &self.key_fingerprints {
            match crate::digest::normalize_fingerprint(f) {
                Some(n) => out.push(n),
                None => {
                    return Err(CheckError::Unsupported(format!(
                        "apt repository {}: `{f}` is not an OpenPGP fingerprint (40 or 64 hex digits)",
                        self.name
                    )));
                }
            }
        }
        if out.is_empty() && !self.insecure_skip_key_fingerprint {
            return Err(CheckError::Unsupported(format!(
                "apt repository {}: no key fingerprint is pinned for {}; set key_fingerprints (or, knowingly, insecure_skip_key_fingerprint)",
                self.name, self.key_url
            )));
        }
        Ok(out)
    }
}

/// The fingerprints of the primary keys in a binary OpenPGP keyring (what `gpg --dearmor`
/// writes), in order: v4 keys by SHA-1 of `0x99 || len16 || body`, v5/v6 by SHA-256 of
/// `0x9A/0x9B || len32 || body` (RFC 4880 §12.2, RFC 9580 §5.5.4). None when the bytes are not
/// a sequence of well-formed packets.
pub fn keyring_fingerprints(bytes: &[u8]) -> Option<Vec<String>> {
    let mut out = vec![];
    let mut i = 0;
    while i < bytes.len() {
        let tag_byte = bytes[i];
        if tag_byte & 0x80 == 0 {
            return None;
        }
        i += 1;
        let (tag, len) = if tag_byte & 0x40 != 0 {
            let tag = tag_byte & 0x3f;
            let first = *bytes.get(i)? as usize;
            i += 1;
            let len = match first {
                0..=191 => first,
                192..=223 => {
                    let second = *bytes.get(i)? as usize;
                    i += 1;
                    ((first - 192) << 8) + second + 192
                }
                255 => {
                    let b = bytes.get(i..i + 4)?;
                    i += 4;
                    u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
                }
                // Partial lengths are not allowed for key material.
                _ => return None,
            };
            (tag, len)
        } else {
            let tag = (tag_byte >> 2) & 0x0f;
            let len = match tag_byte & 0x03 {
                0 => {
                    let b = *bytes.get(i)? as usize;
                    i += 1;
                    b
                }
                1 => {
                    let b = bytes.get(i..i + 2)?;
                    i += 2;
                    u16::from_be_bytes([b[0], b[1]]) as usize
                }
                2 => {
                    let b = bytes.get(i..i + 4)?;
                    i += 4;
                    u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
                }
                _ => return None,
            };
            (tag, len)
        };
        let body = bytes.get(i..i.checked_add(len)?)?;
        i += len;
        if tag == 6 {
            let fingerprint = match body.first()? {
                4 => {
                    let mut h = sha1::Sha1::new();
                    h.update([0x99]);
                    h.update(u16::try_from(body.len()).ok()?.to_be_bytes());
                    h.update(body);
                    hex::encode_upper(h.finalize())
                }
                v @ (5 | 6) => {
                    let mut h = sha2::Sha256::new();
                    h.update([if *v == 5 { 0x9a } else { 0x9b }]);
                    h.update(u32::try_from(body.len()).ok()?.to_be_bytes());
                    h.update(body);
                    hex::encode_upper(h.finalize())
                }
                _ => return None,
            };
            out.push(fingerprint);
        }
    }
    Some(out)
}

impl Resource for AptRepository {
    fn facts(&self) -> Vec<FactQuery> {
        vec![FactQuery::File { path: self.keyring.clone() }, FactQuery::File { path: self.list_path() }]
    }

    fn check(&self, ctx: &CheckContext<'_>) -> Result<Check, CheckError> {
        let pinned = self.pinned()?;
        let key = ctx.facts.file(&self.keyring).ok_or_else(|| super::missing(&FactQuery::File { path: self.keyring.clone() }))?;
        let list_path = self.list_path();
        let list = ctx.facts.file(&list_path).ok_or_else(|| super::missing(&FactQuery::File { path: list_path.clone() }))?;
        let want = self.list_content();
        let list_ok = list.exists && list.content.as_deref() == Some(want.as_bytes());
        // The installed keyring must hold exactly the one pinned key.
        let installed = if key.exists && key.size > 0 { key.content.as_deref().and_then(keyring_fingerprints) } else { None };
        let key_ok =
            key.exists && key.size > 0 && (self.insecure_skip_key_fingerprint || matches!(installed.as_deref(), Some([f]) if pinned.contains(f)));
        if key_ok && list_ok {
            return Ok(Check::NoOp { reason: "key and source present".into() });
        }
        let action = if key.exists || list.exists { Action::Update } else { Action::Create };
        let mut change = Change::new(action, format!("apt repository {} ({})", self.name, self.uri));
        if !key_ok {
            let old = key.exists.then(|| match installed.as_deref() {
                Some([]) | None => format!("{} (no OpenPGP key kprov can read)", self.keyring),
                Some(f) => format!("{} (key fingerprint {}, not pinned)", self.keyring, f.join(", ")),
            });
            let check = if self.insecure_skip_key_fingerprint {
                "NOT VERIFIED: insecure_skip_key_fingerprint".to_string()
            } else {
                format!("key fingerprint {}", pinned.join(" or "))
            };
            change = change.attribute("keyring", old, Some(format!("{} from {} ({check})", self.keyring, self.key_url)));
        }
        if !list_ok {
            change.content = Some(ContentChange { path: list_path, old: list.content.as_deref().and_then(super::as_text), new: want });
        }
        Ok(Check::Change(change))
    }

    fn apply_script(&self, _ctx: &CheckContext<'_>, change: &Change) -> Result<String, QuoteError> {
        let mut s = String::new();
        if change.attributes.iter().any(|a| a.name == "keyring") {
            s.push_str(&self.key_script()?);
        }
        if change.content.is_some() {
            s.push_str(&super::write_file_script(&self.list_path(), self.list_content().as_bytes(), 0o644, "root", "root")?);
        }
        Ok(s)
    }

    fn fetches(&self) -> Vec<Fetch> {
        let check = match self.pinned() {
            _ if self.insecure_skip_key_fingerprint => FetchCheck::Unverified { reason: "insecure_skip_key_fingerprint is set".into() },
            Ok(f) => FetchCheck::KeyFingerprint { fingerprints: f },
            Err(e) => FetchCheck::Unverified { reason: e.to_string() },
        };
        vec![Fetch { url: self.key_url.clone(), check }]
    }
}

impl AptRepository {
    /// Download the key, list it in a throw-away GNUPGHOME, refuse unless it is exactly one
    /// pinned key, then write the keyring (dearmoured) atomically.
    fn key_script(&self) -> Result<String, QuoteError> {
        let dir = quote(super::parent_dir(&self.keyring))?;
        let url = quote(&self.key_url)?;
        let name = quote(&self.name)?;
        let pinned = self.pinned().unwrap_or_default();
        let verify = if self.insecure_skip_key_fingerprint {
            format!(
                "echo \"kprov: apt repository \"{name}\": installing the key from \"{url}\" WITHOUT a fingerprint check (insecure_skip_key_fingerprint)\" >&2\n"
            )
        } else {
            format!(
                "want={want}\n\
if ! listing=$(GNUPGHOME=\"$gnupg\" gpg --batch --no-options --with-colons --show-keys \"$key\" 2>\"$gnupg/err\"); then\n\
  echo \"kprov: apt repository \"{name}\": the download from \"{url}\" is not an OpenPGP key (expected fingerprint $want); nothing installed: $(cat \"$gnupg/err\")\" >&2\n\
  exit 1\n\
fi\n\
got=$(printf '%s\\n' \"$listing\" | awk -F: '$1 == \"pub\" {{ p = 1; next }} $1 == \"fpr\" && p {{ print $10; p = 0 }}')\n\
count=$(printf '%s\\n' \"$got\" | grep -c . || true)\n\
if [ \"$count\" != 1 ]; then\n\
  echo \"kprov: apt repository \"{name}\": the download from \"{url}\" holds $count primary keys ($(echo $got)); expected exactly one, fingerprint $want; nothing installed\" >&2\n\
  exit 1\n\
fi\n\
case \" $want \" in\n\
  *\" $got \"*) ;;\n\
  *) echo \"kprov: apt repository \"{name}\": key fingerprint mismatch for \"{url}\": expected $want, got $got; nothing installed\" >&2; exit 1 ;;\n\
esac\n",
                want = quote(&pinned.join(" "))?,
            )
        };
        // The download and gpg's home live in a temp directory of their own, removed by the
        // same traps as the keyring's temp file (set before either exists).
        let producer = "if grep -q 'BEGIN PGP PUBLIC KEY BLOCK' \"$key\"; then GNUPGHOME=\"$gnupg\" gpg --batch --no-options --dearmor -o - \"$key\"; else cat \"$key\"; fi";
        let write = crate::shell::atomic_write_script(&self.keyring, producer, 0o644, None, Some("gnupg"))?;
        Ok(format!(
            "install -d -m 0755 {dir}\n\
gnupg=\n\
trap 'rm -rf ${{gnupg:+\"$gnupg\"}}' EXIT\n\
trap 'rm -rf ${{gnupg:+\"$gnupg\"}}; trap - EXIT; exit 129' HUP\n\
trap 'rm -rf ${{gnupg:+\"$gnupg\"}}; trap - EXIT; exit 130' INT\n\
trap 'rm -rf ${{gnupg:+\"$gnupg\"}}; trap - EXIT; exit 141' PIPE\n\
trap 'rm -rf ${{gnupg:+\"$gnupg\"}}; trap - EXIT; exit 143' TERM\n\
gnupg=$(mktemp -u /tmp/.kprov.XXXXXX)\n\
[ -z \"${{KPROV_BATCH:-}}\" ] || printf '%s\\n' \"$gnupg\" >> \"$KPROV_BATCH/tmpfiles\"\n\
mkdir -m 0700 \"$gnupg\"\n\
key=\"$gnupg/key\"\n\
curl -fsSL --retry 3 --connect-timeout 20 {url} -o \"$key\"\n\
{verify}\
{write}\
rm -rf \"$gnupg\"\n\
gnupg=\n"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A v4 public-key packet in the old format, and the same key in the new format, give the
    /// fingerprint gpg computes: SHA-1 over 0x99, the two-byte length and the body.
    #[test]
    fn fingerprints_of_old_and_new_format_packets() {
        let body: Vec<u8> = [4u8, 0x5e, 0, 0, 0, 22].iter().copied().chain((0..32).map(|i| i as u8)).collect();
        let mut h = sha1::Sha1::new();
        h.update([0x99]);
        h.update((body.len() as u16).to_be_bytes());
        h.update(&body);
        let want = hex::encode_upper(h.finalize());
        let old: Vec<u8> = [0x98, body.len() as u8].iter().copied().chain(body.iter().copied()).collect();
        let new: Vec<u8> = [0xc6, body.len() as u8].iter().copied().chain(body.iter().copied()).collect();
        assert_eq!(keyring_fingerprints(&old), Some(vec![want.clone()]));
        assert_eq!(keyring_fingerprints(&new), Some(vec![want.clone()]));
        // A user id packet after the key is walked over; a second key is a second fingerprint.
        let uid = [0xcd, 3, b'a', b'b', b'c'];
        let two: Vec<u8> = old.iter().chain(uid.iter()).chain(new.iter()).copied().collect();
        assert_eq!(keyring_fingerprints(&two), Some(vec![want.clone(), want]));
        // Truncated, empty-length garbage, armour: not a keyring.
        assert_eq!(keyring_fingerprints(&old[..old.len() - 1]), None);
        assert_eq!(keyring_fingerprints(b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n"), None);
        assert_eq!(keyring_fingerprints(b""), Some(vec![]));
    }
}
