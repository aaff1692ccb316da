//! Facts snapshots: what the planner read from every host, recorded in a file so that a plan
//! can be made later without reaching the hosts (`kprov plan --facts FILE`), for example by a
//! hosted CI runner that cannot see a homelab behind NAT.
//!
//! A snapshot is versioned JSON with one entry per host: its facts (the same typed
//! [`HostFacts`] the planner reads, serialised by their serde derives so new fact fields come
//! along), the fingerprint of the facts as they were on the host, when and by which kprov they
//! were recorded, and the digest of the inventory and roles. It never holds a secret:
//!
//! - a file's content is kept only when a non-sensitive resource needs it to plan (a diff, a
//!   line edit) and nothing in it looks like a secret ([`looks_secret`]); every other file
//!   keeps its metadata, size and SHA-256 only (admin.conf, read by a `creates:` guard, is one);
//! - the guard commands of sensitive resources are kept as digests of their text;
//! - captured values, the become password and SSH keys are never facts at all.
//!
//! The fingerprint recorded is the one of the facts as gathered (before anything was left
//! out), so a plan made from the snapshot carries the fingerprints a live gathering gives,
//! and applying it is refused when a host changed since (see `engine::saved`).
//!
//! Everything here is pure: the CLI reads and writes the file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::HostFacts;
use super::query::{BootFact, FactQuery, FactValue, FileFact, OsFact, PackageFact, ServiceFact, SwapFact};

/// Bumped whenever the JSON shape changes incompatibly; readers refuse other versions.
pub const SNAPSHOT_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub format_version: u32,
    /// The kprov that last wrote the file.
    pub kprov_version: String,
    /// When the file was last written (RFC 3339, UTC).
    pub recorded_at: String,
    /// The inventory file it was recorded for.
    pub inventory: String,
    /// Digest of the inventory and roles at the time (the same digest a saved plan holds).
    pub inventory_sha256: String,
    pub hosts: Vec<HostSnapshot>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostSnapshot {
    pub name: String,
    pub address: String,
    /// When this host's facts were read (RFC 3339, UTC) and by which kprov.
    pub recorded_at: String,
    pub kprov_version: String,
    /// `HostFacts::fingerprint` of the facts as gathered, before anything was left out.
    pub facts_fingerprint: String,
    pub facts: HostFacts,
    /// Guard commands of sensitive resources: their text as a digest, and their exit status.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hidden_commands: Vec<HiddenCommand>,
    /// Existing files whose content was left out (digest and metadata kept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content_not_recorded: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HiddenCommand {
    pub sha256: String,
    pub exit_status: i32,
}

/// What may be written down for one host, from the resources planned on it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Disclosure {
    /// Files whose content a non-sensitive resource reads to plan.
    pub content_needed: BTreeSet<String>,
    /// Files a resource marks sensitive: never their content, whoever else reads them.
    pub sensitive_files: BTreeSet<String>,
    /// Guard commands of sensitive resources.
    pub sensitive_commands: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum SnapshotError {
    #[error("{path} is not a kprov facts snapshot: {message}")]
    #[diagnostic(
        code(kprov::facts::snapshot_unreadable),
        help("write one with `kprov facts --save FILE INVENTORY` (or a successful `kprov apply`, which writes INVENTORY.facts.json)")
    )]
    Unreadable { path: String, message: String },
    #[error("{path} is a facts snapshot in format {found}; this kprov reads format {SNAPSHOT_FORMAT_VERSION}")]
    #[diagnostic(code(kprov::facts::snapshot_version), help("record it again with this kprov: kprov facts --save FILE INVENTORY"))]
    Version { path: String, found: u64 },
}

/// Where `kprov apply` writes the snapshot of `inventory`: beside it, `NAME.facts.json`.
pub fn default_path(inventory: &Path) -> PathBuf {
    inventory.with_extension("facts.json")
}

/// Does `content` hold something that looks like a credential? A safety net beside the
/// resources' own `sensitive` marks: such a file is recorded by digest only.
pub fn looks_secret(content: &[u8]) -> bool {
    let text = String::from_utf8_lossy(content);
    let lower = text.to_ascii_lowercase();
    const MARKS: &[&str] = &["private key", "client-key-data", "token:", "password", "certificatekey", "certificate-key", "certificate_key"];
    if MARKS.iter().any(|m| lower.contains(m)) {
        return true;
    }
    // A kubeadm bootstrap token (`abcdef.0123456789abcdef`) anywhere.
    static TOKEN: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    TOKEN.get_or_init(|| regex::Regex::new(r"\b[a-z0-9]{6}\.[a-z0-9]{16}\b").expect("a valid pattern")).is_match(&text)
}

impl HostSnapshot {
    /// Record `facts` of one host, leaving out what `disclosure` does not allow.
    pub fn record(name: &str, address: &str, facts: &HostFacts, disclosure: &Disclosure, recorded_at: &str) -> HostSnapshot {
        let mut kept = HostFacts::default();
        let mut hidden_commands = vec![];
        let mut content_not_recorded = vec![];
        for (q, v) in &facts.values {
            match (q, v) {
                (FactQuery::Command { command }, FactValue::Command { exit_status }) if disclosure.sensitive_commands.contains(command) => {
                    hidden_commands.push(HiddenCommand { sha256: crate::digest::sha256_hex(command.as_bytes()), exit_status: *exit_status });
                }
                (FactQuery::File { path }, FactValue::File(f)) if f.content.is_some() => {
                    let allowed = disclosure.content_needed.contains(path)
                        && !disclosure.sensitive_files.contains(path)
                        && !f.content.as_deref().is_some_and(looks_secret);
                    if allowed {
                        kept.insert(q.clone(), v.clone());
                    } else {
                        content_not_recorded.push(path.clone());
                        kept.insert(q.clone(), FactValue::File(FileFact { content: None, ..f.clone() }));
                    }
                }
                _ => kept.insert(q.clone(), v.clone()),
            }
        }
        hidden_commands.sort_by(|a, b| a.sha256.cmp(&b.sha256));
        HostSnapshot {
            name: name.to_string(),
            address: address.to_string(),
            recorded_at: recorded_at.to_string(),
            kprov_version: env!("CARGO_PKG_VERSION").to_string(),
            facts_fingerprint: facts.fingerprint(),
            facts: kept,
            hidden_commands,
            content_not_recorded,
        }
    }

    /// The facts for `queries` as recorded, and the labels of the queries the snapshot has no
    /// answer for (they get the answer of an empty host, see [`empty_value`]).
    pub fn facts_for(&self, queries: &[FactQuery]) -> (HostFacts, Vec<String>) {
        let mut facts = HostFacts::default();
        let mut unrecorded = vec![];
        for q in queries {
            let recorded = self.facts.get(q).cloned().or_else(|| match q {
                FactQuery::Command { command } => {
                    let digest = crate::digest::sha256_hex(command.as_bytes());
                    self.hidden_commands.iter().find(|h| h.sha256 == digest).map(|h| FactValue::Command { exit_status: h.exit_status })
                }
                _ => None,
            });
            let value = recorded.unwrap_or_else(|| {
                unrecorded.push(q.label());
                empty_value(q)
            });
            facts.insert(q.clone(), value);
        }
        (facts, unrecorded)
    }
}

/// What a host kprov knows nothing about looks like to the planner: files absent, packages
/// not installed, services absent, kernel modules neither loaded nor built in, sysctls unset,
/// no swap, guard commands failing (so an `unless` guard's command is planned to run and an
/// `only_if` guard's is not), and an unknown OS (no ID, no CPUs: OS-specific steps such as
/// the Raspberry Pi's are skipped, and preflight is left to apply).
pub fn empty_value(q: &FactQuery) -> FactValue {
    match q {
        FactQuery::Os => FactValue::Os(OsFact::default()),
        FactQuery::File { .. } => FactValue::File(FileFact::default()),
        FactQuery::Sysctl { .. } => FactValue::Sysctl { value: None },
        FactQuery::Module { .. } => FactValue::Module { loaded: false, builtin: false },
        FactQuery::Swap => FactValue::Swap(SwapFact::default()),
        FactQuery::Package { .. } => FactValue::Package(PackageFact::default()),
        FactQuery::Service { .. } => FactValue::Service(ServiceFact::default()),
        FactQuery::Command { .. } => FactValue::Command { exit_status: 1 },
        // No cmdline and no cgroup controllers known: the reboot's checks are left to apply.
        FactQuery::Boot => FactValue::Boot(BootFact::default()),
        // Nothing interrupted: the repair is left to a live plan.
        FactQuery::Dpkg => FactValue::Dpkg(Default::default()),
    }
}

/// The facts of an empty host for `queries`.
pub fn empty_host(queries: &[FactQuery]) -> HostFacts {
    let mut facts = HostFacts::default();
    for q in queries {
        facts.insert(q.clone(), empty_value(q));
    }
    facts
}

impl Snapshot {
    /// A snapshot of `hosts`; entries of `previous` for hosts of the inventory (`known`) not
    /// recorded now (left out by `--limit`, or unreachable this time) are kept with their own
    /// time, and entries of hosts no longer in the inventory are dropped.
    pub fn merge(
        previous: Option<Snapshot>,
        known: &[&str],
        inventory: &str,
        inventory_sha256: &str,
        recorded_at: &str,
        hosts: Vec<HostSnapshot>,
    ) -> Snapshot {
        let mut all = hosts;
        if let Some(prev) = previous {
            for h in prev.hosts {
                if known.contains(&h.name.as_str()) && !all.iter().any(|n| n.name == h.name) {
                    all.push(h);
                }
            }
        }
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Snapshot {
            format_version: SNAPSHOT_FORMAT_VERSION,
            kprov_version: env!("CARGO_PKG_VERSION").to_string(),
            recorded_at: recorded_at.to_string(),
            inventory: inventory.to_string(),
            inventory_sha256: inventory_sha256.to_string(),
            hosts: all,
        }
    }

    pub fn host(&self, name: &str) -> Option<&HostSnapshot> {
        self.hosts.iter().find(|h| h.name == name)
    }

    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("snapshots always serialize");
        s.push('\n');
        s
    }

    /// Parse the text of the file `path` (named in errors).
    pub fn parse(path: &str, text: &str) -> Result<Snapshot, SnapshotError> {
        let unreadable = |e: serde_json::Error| SnapshotError::Unreadable { path: path.to_string(), message: e.to_string() };
        let probe: serde_json::Value = serde_json::from_str(text).map_err(unreadable)?;
        let found = probe.get("format_version").and_then(|v| v.as_u64());
        match found {
            Some(v) if v == u64::from(SNAPSHOT_FORMAT_VERSION) => {}
            Some(v) => {
                return Err(SnapshotError::Version { path: path.to_string(), found: v });
            }
            None => {
                return Err(SnapshotError::Unreadable { path: path.to_string(), message: "it has no format_version".into() });
            }
        }
        serde_json::from_value(probe).map_err(unreadable)
    }
}

/// Seconds since the Unix epoch now.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// `secs` since the epoch as RFC 3339 in UTC: `2026-12-01T21:40:04Z`.
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rest = secs % 86_400;
    // Civil date from days since 1970-01-01 (the proleptic Gregorian calendar).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest % 3600 / 60, rest % 60)
}

/// The inverse of [`rfc3339`] (UTC only, `Z`); None for anything else.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' || b[19] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r).filter(|t| t.bytes().all(|c| c.is_ascii_digit())).and_then(|t| t.parse::<i64>().ok());
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, m, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    // Days since the epoch from a civil date.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + h * 3600 + m * 60 + sec).ok()
}

/// A short age for people: `45s`, `12m`, `3h`, `2d`.
pub fn age_text(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7_200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A root-owned 0600 regular file holding `content`, as the fact script reports it.
    pub(crate) fn file(content: &[u8]) -> FactValue {
        FactValue::File(FileFact {
            exists: true,
            file_type: "regular file".into(),
            mode: 0o600,
            owner: "root".into(),
            group: "root".into(),
            size: content.len() as u64,
            sha256: crate::digest::sha256_hex(content),
            content: Some(content.to_vec()),
        })
    }

    fn facts() -> HostFacts {
        let mut f = HostFacts::default();
        f.insert(
            FactQuery::Os,
            FactValue::Os(OsFact {
                id: "debian".into(),
                version_id: "12".into(),
                cpus: 4,
                memory_kib: 4_000_000,
                listening: vec!["tcp/22".into()],
                ..Default::default()
            }),
        );
        f.insert(FactQuery::File { path: "/etc/sysctl.d/k8s.conf".into() }, file(b"net.ipv4.ip_forward = 1\n"));
        f.insert(FactQuery::File { path: "/etc/kubernetes/admin.conf".into() }, file(b"users:\n- user:\n    client-key-data: QURNSU5LRVk=\n"));
        f.insert(FactQuery::File { path: "/etc/app/secret.yaml".into() }, file(b"plain words\n"));
        f.insert(FactQuery::File { path: "/etc/app/looks.conf".into() }, file(b"-----BEGIN RSA PRIVATE KEY-----\nMIIE\n"));
        f.insert(FactQuery::File { path: "/etc/absent".into() }, FactValue::File(FileFact::default()));
        f.insert(FactQuery::Sysctl { key: "net.ipv4.ip_forward".into() }, FactValue::Sysctl { value: Some("1".into()) });
        f.insert(FactQuery::Module { name: "overlay".into() }, FactValue::Module { loaded: false, builtin: true });
        f.insert(FactQuery::Swap, FactValue::Swap(SwapFact { active: vec!["/swap.img".into()], ..SwapFact::default() }));
        f.insert(
            FactQuery::Package { name: "kubelet".into() },
            FactValue::Package(PackageFact { installed: true, version: Some("1.34.2-1.1".into()), held: true }),
        );
        f.insert(
            FactQuery::Service { name: "kubelet".into() },
            FactValue::Service(ServiceFact { exists: true, enabled: true, active: true, enablement: "enabled".into() }),
        );
        f.insert(FactQuery::Command { command: "test -e /x".into() }, FactValue::Command { exit_status: 0 });
        f.insert(FactQuery::Command { command: "check --token abcdef.0123456789abcdef".into() }, FactValue::Command { exit_status: 3 });
        f
    }

    fn disclosure() -> Disclosure {
        Disclosure {
            content_needed: ["/etc/sysctl.d/k8s.conf", "/etc/app/secret.yaml", "/etc/app/looks.conf"].map(String::from).into(),
            sensitive_files: ["/etc/app/secret.yaml".to_string()].into(),
            sensitive_commands: ["check --token abcdef.0123456789abcdef".to_string()].into(),
        }
    }

    #[test]
    fn a_snapshot_round_trips_and_gives_the_planner_what_it_recorded() {
        let f = facts();
        let h = HostSnapshot::record("h1", "10.0.0.1", &f, &disclosure(), "2026-12-01T21:40:04Z");
        assert_eq!(h.facts_fingerprint, f.fingerprint(), "the fingerprint is the live facts' one");
        let snap = Snapshot::merge(None, &["h1"], "inv.yaml", "abc", "2026-12-01T21:40:04Z", vec![h.clone()]);
        let back = Snapshot::parse("s.json", &snap.to_json()).unwrap();
        assert_eq!(back, snap);
        let queries: Vec<FactQuery> = f.values.keys().cloned().collect();
        let (planned, unrecorded) = back.host("h1").unwrap().facts_for(&queries);
        assert!(unrecorded.is_empty(), "{unrecorded:?}");
        for (q, v) in &f.values {
            let got = planned.get(q).unwrap();
            match (v, got) {
                // Content left out, everything else as it was.
                (FactValue::File(live), FactValue::File(rec)) if rec.content.is_none() => {
                    assert_eq!(FileFact { content: None, ..live.clone() }, *rec, "{q:?}");
                }
                _ => assert_eq!(v, got, "{q:?}"),
            }
        }
        assert_eq!(planned.file("/etc/sysctl.d/k8s.conf").unwrap().content.as_deref(), Some(&b"net.ipv4.ip_forward = 1\n"[..]));
        let mut withheld = back.hosts[0].content_not_recorded.clone();
        withheld.sort();
        assert_eq!(withheld, ["/etc/app/looks.conf", "/etc/app/secret.yaml", "/etc/kubernetes/admin.conf"]);
    }

    /// The snapshot's JSON with every recorded file content decoded beside it: contents are
    /// serialised as byte arrays, which a plain text search would never match.
    pub(crate) fn readable(json: &str) -> String {
        fn walk(v: &serde_json::Value, out: &mut String) {
            match v {
                serde_json::Value::Object(m) => {
                    for (k, v) in m {
                        if let (true, serde_json::Value::Array(bytes)) = (k == "content", v) {
                            let bytes: Vec<u8> = bytes.iter().filter_map(|b| b.as_u64()).map(|b| b as u8).collect();
                            out.push_str(&String::from_utf8_lossy(&bytes));
                            out.push('\n');
                        }
                        walk(v, out);
                    }
                }
                serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
                _ => {}
            }
        }
        let mut out = json.to_string();
        walk(&serde_json::from_str(json).expect("snapshot JSON"), &mut out);
        out
    }

    #[test]
    fn no_secret_reaches_a_snapshot() {
        let json = Snapshot::merge(
            None,
            &["h1"],
            "i",
            "d",
            "2026-12-01T21:40:04Z",
            vec![HostSnapshot::record("h1", "a", &facts(), &disclosure(), "2026-12-01T21:40:04Z")],
        )
        .to_json();
        let text = readable(&json);
        assert!(text.contains("net.ipv4.ip_forward = 1"), "the decoding sees the content that is kept: {text}");
        for secret in ["client-key-data", "QURNSU5LRVk", "plain words", "PRIVATE KEY", "abcdef.0123456789abcdef", "0123456789abcdef"] {
            assert!(!text.contains(secret), "{secret} reached the snapshot:\n{text}");
        }
        // What is not secret stays: digests, metadata, the needed content (base64 bytes).
        assert!(json.contains(&crate::digest::sha256_hex(b"users:\n- user:\n    client-key-data: QURNSU5LRVk=\n")), "{json}");
        assert!(json.contains("\"test -e /x\""), "{json}");
    }

    #[test]
    fn unknown_queries_and_hosts_are_planned_as_empty() {
        let h = HostSnapshot::record("h1", "a", &facts(), &disclosure(), "2026-12-01T21:40:04Z");
        let new = FactQuery::Package { name: "containerd.io".into() };
        let (f, unrecorded) = h.facts_for(&[FactQuery::Os, new.clone()]);
        assert_eq!(unrecorded, ["package containerd.io"]);
        assert_eq!(f.get(&new), Some(&FactValue::Package(PackageFact::default())));
        let empty = empty_host(&[FactQuery::Os, FactQuery::Command { command: "x".into() }, FactQuery::File { path: "/f".into() }]);
        assert_eq!(empty.os(), Some(&OsFact::default()));
        assert_eq!(empty.get(&FactQuery::Command { command: "x".into() }), Some(&FactValue::Command { exit_status: 1 }));
        assert!(!empty.file("/f").unwrap().exists);
        // A hidden guard is found again by its text.
        let (f, unrecorded) = h.facts_for(&[FactQuery::Command { command: "check --token abcdef.0123456789abcdef".into() }]);
        assert!(unrecorded.is_empty());
        assert_eq!(f.values.values().next(), Some(&FactValue::Command { exit_status: 3 }));
    }

    #[test]
    fn merge_keeps_hosts_not_recorded_now() {
        let f = facts();
        let at = "2026-11-01T00:00:00Z";
        let old = Snapshot::merge(
            None,
            &["h1", "h2", "h3"],
            "i",
            "d",
            at,
            ["h3", "h2", "h1"].iter().map(|n| HostSnapshot::record(n, "b", &f, &Disclosure::default(), at)).collect(),
        );
        // h3 left the inventory since.
        let new = Snapshot::merge(
            Some(old),
            &["h1", "h2"],
            "i",
            "d2",
            "2026-12-01T00:00:00Z",
            vec![HostSnapshot::record("h1", "a", &f, &Disclosure::default(), "2026-12-01T00:00:00Z")],
        );
        let times: Vec<(&str, &str)> = new.hosts.iter().map(|h| (h.name.as_str(), h.recorded_at.as_str())).collect();
        assert_eq!(times, [("h1", "2026-12-01T00:00:00Z"), ("h2", "2026-11-01T00:00:00Z")]);
        assert_eq!(new.inventory_sha256, "d2");
    }

    #[test]
    fn other_versions_and_garbage_are_clear_errors() {
        assert!(matches!(Snapshot::parse("s", "{\"format_version\": 99}"), Err(SnapshotError::Version { found: 99, .. })));
        assert!(matches!(Snapshot::parse("s", "{}"), Err(SnapshotError::Unreadable { .. })));
        assert!(matches!(Snapshot::parse("s", "hosts: []"), Err(SnapshotError::Unreadable { .. })));
    }

    #[test]
    fn times_round_trip() {
        for (secs, text) in [(0, "1970-01-01T00:00:00Z"), (951_782_400, "2000-02-29T00:00:00Z"), (1_796_161_204, "2026-12-01T21:40:04Z")] {
            assert_eq!(rfc3339(secs), text);
            assert_eq!(parse_rfc3339(text), Some(secs));
        }
        for s in (0..4_000_000_000u64).step_by(86_399 * 37) {
            assert_eq!(parse_rfc3339(&rfc3339(s)), Some(s));
        }
        for bad in ["", "2026-12-01 21:40:04Z", "2026-13-01T00:00:00Z", "2026-12-01T21:40:04+01:00"] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        assert_eq!(default_path(Path::new("/x/inventory.yaml")), Path::new("/x/inventory.facts.json"));
        assert_eq!((age_text(30), age_text(600), age_text(10_800), age_text(200_000)), ("30s".into(), "10m".into(), "3h".into(), "2d".into()));
    }
}
