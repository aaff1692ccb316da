//! Parses the fact script's output into typed facts. Never panics: any output that does not
//! have the expected shape is a [`FactParseError`] naming what was wrong.

use std::collections::BTreeMap;

use super::HostFacts;
use super::query::{
    BootFact, ConfigFile, DpkgFact, FactQuery, FactValue, FileFact, OsFact, PackageFact, ServiceFact, SwapFact, SwapGenerator, SwapUnit,
};
use super::script::{FactScript, MARKER};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum FactParseError {
    #[error("the fact script's output ended early (no end marker): the host may have cut the connection or the script was killed")]
    #[diagnostic(code(kprov::facts::truncated))]
    Truncated,
    #[error("the fact script's output has no block for query {index} ({query})")]
    #[diagnostic(code(kprov::facts::missing))]
    Missing { index: usize, query: String },
    #[error("unexpected fact marker {marker:?}")]
    #[diagnostic(code(kprov::facts::marker))]
    BadMarker { marker: String },
    #[error("fact {query}: {message}")]
    #[diagnostic(
        code(kprov::facts::value),
        help("the host answered something kprov cannot read; run the fact script by hand with `kprov facts` to see it")
    )]
    BadValue { query: String, message: String },
}

/// Where the lines being read belong.
enum Reading {
    Nothing,
    /// The block of query N.
    Query(usize),
    /// A `file` block whose `name=` line comes next.
    FileName,
    /// The `contents` block: `name=` lines, then one `data=` line.
    Contents,
}

/// Parse `output` of `script`.
pub fn parse(script: &FactScript, output: &str) -> Result<HostFacts, FactParseError> {
    let queries = script.queries();
    let file_index: BTreeMap<&str, usize> = queries
        .iter()
        .enumerate()
        .filter_map(|(i, q)| match q {
            FactQuery::File { path } => Some((path.as_str(), i)),
            _ => None,
        })
        .collect();
    let named = |line: &str| -> Result<usize, FactParseError> {
        line.strip_prefix("name=")
            .and_then(|path| file_index.get(path).copied())
            .ok_or_else(|| FactParseError::BadValue { query: "files".into(), message: format!("{line:?} does not name a file that was asked for") })
    };
    let mut blocks: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
    let mut contents: Vec<usize> = Vec::new();
    let mut data: Option<&str> = None;
    let mut reading = Reading::Nothing;
    let mut ended = false;
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix(MARKER) {
            reading = match rest.trim() {
                "end" => {
                    ended = true;
                    Reading::Nothing
                }
                "file" => Reading::FileName,
                "contents" => Reading::Contents,
                tag => {
                    let index: usize =
                        tag.parse().ok().filter(|i| *i < queries.len()).ok_or_else(|| FactParseError::BadMarker { marker: line.to_string() })?;
                    blocks.entry(index).or_default();
                    Reading::Query(index)
                }
            };
            continue;
        }
        match reading {
            Reading::Nothing => {}
            Reading::Query(i) => {
                if !line.is_empty() {
                    blocks.entry(i).or_default().push(line);
                }
            }
            Reading::FileName => {
                let i = named(line)?;
                blocks.entry(i).or_default();
                reading = Reading::Query(i);
            }
            Reading::Contents => {
                if let Some(d) = line.strip_prefix("data=") {
                    data = Some(d);
                    reading = Reading::Nothing;
                } else if !line.is_empty() {
                    contents.push(named(line)?);
                }
            }
        }
    }
    if !ended {
        return Err(FactParseError::Truncated);
    }
    let fetched = split_contents(&blocks, &contents, data)?;
    let mut facts = HostFacts::default();
    for (index, q) in queries.iter().enumerate() {
        let lines = blocks.get(&index).ok_or_else(|| FactParseError::Missing { index, query: q.label() })?;
        let value = parse_block(q, lines, fetched.get(&index).map(Vec::as_slice))
            .map_err(|message| FactParseError::BadValue { query: q.label(), message })?;
        facts.insert(q.clone(), value);
    }
    Ok(facts)
}

/// Splits the concatenated content of the small files (in the order `contents` names them)
/// by the sizes their `stat` blocks report. A file that changed size between the `stat` and
/// the read makes the lengths disagree: an error, never content put on the wrong file.
fn split_contents(blocks: &BTreeMap<usize, Vec<&str>>, contents: &[usize], data: Option<&str>) -> Result<BTreeMap<usize, Vec<u8>>, FactParseError> {
    let bad = |message: String| FactParseError::BadValue { query: "files".into(), message };
    let mut fetched = BTreeMap::new();
    let Some(data) = data else {
        return if contents.is_empty() { Ok(fetched) } else { Err(bad("the file contents are missing".into())) };
    };
    let mut bytes = decode_base64(data).map_err(bad)?;
    let sizes = contents
        .iter()
        .map(|i| {
            let lines = blocks.get(i).map(Vec::as_slice).unwrap_or_default();
            number::<usize>(lines, "size").map_err(|e| bad(format!("a fetched file's {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let expected = sizes.iter().try_fold(0usize, |a, s| a.checked_add(*s));
    if expected != Some(bytes.len()) {
        return Err(bad(format!(
            "{} bytes of file contents arrived where stat reported {}: a file changed while it was read; run again",
            bytes.len(),
            expected.map_or_else(|| "more than can be counted".to_string(), |n| n.to_string()),
        )));
    }
    // From the end, so each piece is split off without copying the rest.
    for (i, size) in contents.iter().zip(&sizes).rev() {
        let piece = bytes.split_off(bytes.len() - size);
        if fetched.insert(*i, piece).is_some() {
            return Err(bad("a file's contents arrived twice".into()));
        }
    }
    Ok(fetched)
}

/// `key=value` lines; a line without `=` is a flag with an empty value.
fn pairs<'a>(lines: &[&'a str]) -> Vec<(&'a str, &'a str)> {
    lines.iter().map(|l| l.split_once('=').unwrap_or((l, ""))).collect()
}

fn first<'a>(lines: &[&'a str], key: &str) -> Option<&'a str> {
    pairs(lines).into_iter().find(|(k, _)| *k == key).map(|(_, v)| v)
}

fn number<T: std::str::FromStr>(lines: &[&str], key: &str) -> Result<T, String> {
    match first(lines, key) {
        None | Some("") => Err(format!("{key} is missing")),
        Some(v) => v.trim().parse().map_err(|_| format!("{key}={v:?} is not a number")),
    }
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    let stripped =
        v.strip_prefix('"').and_then(|s| s.strip_suffix('"')).or_else(|| v.strip_prefix('\'').and_then(|s| s.strip_suffix('\''))).unwrap_or(v);
    stripped.to_string()
}

fn parse_block(q: &FactQuery, lines: &[&str], fetched: Option<&[u8]>) -> Result<FactValue, String> {
    Ok(match q {
        FactQuery::Os => {
            let get = |k: &str| first(lines, k).map(unquote).unwrap_or_default();
            FactValue::Os(OsFact {
                id: get("os.ID"),
                id_like: get("os.ID_LIKE"),
                version_id: get("os.VERSION_ID"),
                codename: get("os.VERSION_CODENAME"),
                pretty_name: get("os.PRETTY_NAME"),
                arch: get("arch"),
                machine: get("machine"),
                kernel: get("kernel"),
                hostname: get("hostname"),
                cpus: number(lines, "cpus")?,
                memory_kib: number(lines, "memory_kib")?,
                board_model: get("board"),
                raspberry_pi_os: first(lines, "rpi").is_some(),
                memory_cgroup: first(lines, "memory_cgroup").is_some(),
                listening: {
                    let mut l: Vec<String> = pairs(lines).into_iter().filter(|(k, _)| *k == "listen").map(|(_, v)| v.to_string()).collect();
                    l.sort();
                    l.dedup();
                    l
                },
                macs: pairs(lines)
                    .into_iter()
                    .filter(|(k, v)| *k == "mac" && !v.is_empty() && *v != "00:00:00:00:00:00")
                    .map(|(_, v)| v.to_string())
                    .collect(),
            })
        }
        FactQuery::File { .. } => {
            if lines == ["absent"] {
                FactValue::File(FileFact::default())
            } else {
                let mode_text = first(lines, "mode").ok_or("mode is missing")?;
                let mode = u32::from_str_radix(mode_text, 8).map_err(|_| format!("mode={mode_text:?} is not octal"))?;
                let content = match (fetched, first(lines, "content")) {
                    (Some(bytes), None) => Some(bytes.to_vec()),
                    (None, Some(b64)) => Some(decode_base64(b64)?),
                    (None, None) => None,
                    (Some(_), Some(_)) => return Err("the content arrived twice".into()),
                };
                // The script sends a small file's content and a large file's digest; the
                // digest of the content is computed here rather than by one more process there.
                let sha256 = match (first(lines, "sha256"), &content) {
                    (Some(digest), _) => digest.to_string(),
                    (None, Some(bytes)) => crate::digest::sha256_hex(bytes),
                    (None, None) => String::new(),
                };
                FactValue::File(FileFact {
                    exists: true,
                    file_type: first(lines, "type").unwrap_or_default().to_string(),
                    mode,
                    owner: first(lines, "owner").unwrap_or_default().to_string(),
                    group: first(lines, "group").unwrap_or_default().to_string(),
                    size: number(lines, "size")?,
                    sha256,
                    content,
                })
            }
        }
        FactQuery::Sysctl { .. } => FactValue::Sysctl { value: first(lines, "value").map(normalize_sysctl) },
        FactQuery::Module { .. } => FactValue::Module { loaded: lines.contains(&"loaded"), builtin: lines.contains(&"builtin") },
        FactQuery::Swap => FactValue::Swap(parse_swap(lines)?),
        FactQuery::Boot => FactValue::Boot(parse_boot(lines)?),
        FactQuery::Dpkg => {
            let mut d = DpkgFact::default();
            for line in lines {
                match line.split_once('=') {
                    None if *line == "journal" => d.journal = true,
                    Some(("pkg", v)) if !v.trim().is_empty() => d.unsettled.push(v.trim().to_string()),
                    _ => return Err(format!("unexpected line {line:?}")),
                }
            }
            FactValue::Dpkg(d)
        }
        FactQuery::Package { .. } => {
            let status = first(lines, "status").unwrap_or_default().trim();
            // `ii` installed, `hi` held+installed; anything else (rc, un, iU...) is not usable.
            let installed = status.len() >= 2 && &status[1..2] == "i";
            FactValue::Package(PackageFact {
                installed,
                version: first(lines, "version").filter(|v| installed && !v.is_empty()).map(str::to_string),
                held: lines.contains(&"held") || status.starts_with('h'),
            })
        }
        FactQuery::Service { name } => {
            // `systemctl show` properties. Its blocks come in the order asked; `Names` (the
            // unit's names, aliases included) proves this block is this unit's.
            if let Some(names) = first(lines, "Names") {
                let unit = unit_name(name);
                if is_plain_unit_name(&unit) && !names.split_whitespace().any(|n| n == unit) {
                    return Err(format!("systemctl answered for {names:?}, not {unit:?}"));
                }
            }
            let enablement = first(lines, "UnitFileState").unwrap_or_default().to_string();
            let load = first(lines, "LoadState").unwrap_or_default();
            FactValue::Service(ServiceFact {
                exists: !load.is_empty() && load != "not-found",
                enabled: matches!(enablement.as_str(), "enabled" | "enabled-runtime" | "static" | "alias" | "indirect" | "generated"),
                active: first(lines, "ActiveState") == Some("active"),
                enablement,
            })
        }
        FactQuery::Command { .. } => FactValue::Command { exit_status: number(lines, "rc")? },
    })
}

/// The swap block: `active=`, `fstab=`, `unit=PATH<TAB>masked|source=...`, `wanted=NAME`,
/// `generator=PATH[<TAB>masked]`, and `conf=PATH[<TAB>masked]` followed by that file's `set=` lines.
fn parse_swap(lines: &[&str]) -> Result<SwapFact, String> {
    let mut swap = SwapFact::default();
    let split = |v: &str| -> (String, Option<String>) {
        match v.split_once('\t') {
            Some((path, rest)) => (path.to_string(), Some(rest.to_string())),
            None => (v.to_string(), None),
        }
    };
    for (k, v) in pairs(lines) {
        match k {
            "active" => swap.active.push(v.to_string()),
            "fstab" => swap.fstab.push(v.to_string()),
            "unit" => {
                let (path, rest) = split(v);
                // /lib and /usr/lib are one directory on merged-/usr systems: a name seen in a
                // directory of higher precedence hides the same name later.
                let name = path.rsplit('/').next().unwrap_or_default();
                if swap.units.iter().any(|u| u.name() == name) {
                    continue;
                }
                let unit = match rest.as_deref() {
                    Some("masked") => SwapUnit { path, masked: true, source: String::new() },
                    Some(r) => match r.strip_prefix("source=") {
                        Some(source) => SwapUnit { path, masked: false, source: source.to_string() },
                        None => return Err(format!("unexpected swap unit line {v:?}")),
                    },
                    None => return Err(format!("swap unit line {v:?} has no state")),
                };
                swap.units.push(unit);
            }
            "wanted" => {
                if !swap.wanted.iter().any(|w| w == v) {
                    swap.wanted.push(v.to_string());
                }
            }
            "generator" => {
                let (path, rest) = split(v);
                swap.generators.push(SwapGenerator { path, masked: rest.as_deref() == Some("masked") });
            }
            "conf" => {
                let (path, rest) = split(v);
                swap.configs.push(ConfigFile { path, masked: rest.as_deref() == Some("masked"), lines: vec![] });
            }
            "set" => {
                // `pairs` split at the first `=`: `v` is the line as written.
                let conf = swap.configs.last_mut().ok_or("a configuration line before any file")?;
                conf.lines.push(v.to_string());
            }
            _ => return Err(format!("unexpected line {k:?}")),
        }
    }
    Ok(swap)
}

/// The boot block: `cmdline=`, `v2=` (cgroup.controllers) and `v1_memory=` (/proc/cgroups).
fn parse_boot(lines: &[&str]) -> Result<BootFact, String> {
    let mut boot = BootFact::default();
    for line in lines {
        let (k, v) = line.split_once('=').unwrap_or((line, ""));
        match k {
            "cmdline" => boot.cmdline = v.trim().to_string(),
            "v2" => boot.cgroup_v2_controllers = Some(v.trim().to_string()),
            "v1_memory" => boot.cgroup_v1_memory = Some(v.trim() == "1"),
            _ => return Err(format!("unexpected line {k:?}")),
        }
    }
    Ok(boot)
}

/// The full unit name systemd reports for `name`: `.service` is implied when no unit type is given.
fn unit_name(name: &str) -> String {
    const TYPES: [&str; 11] = [".service", ".socket", ".target", ".timer", ".mount", ".automount", ".swap", ".path", ".slice", ".scope", ".device"];
    if TYPES.iter().any(|t| name.ends_with(t)) { name.to_string() } else { format!("{name}.service") }
}

/// A name systemd shows as given (no escaping), so it can be compared with `Names`.
fn is_plain_unit_name(unit: &str) -> bool {
    !unit.is_empty() && unit.bytes().all(|b| b.is_ascii_alphanumeric() || b":_.@-".contains(&b))
}

/// Kernel sysctl output separates multi-value entries with tabs; compare on single spaces.
pub fn normalize_sysctl(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text.trim()).map_err(|e| format!("file content is not valid base64: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::query::FILE_CONTENT_LIMIT;

    fn script() -> FactScript {
        FactScript::new([
            FactQuery::File { path: "/etc/a".into() },
            FactQuery::File { path: "/etc/missing".into() },
            FactQuery::Sysctl { key: "net.ipv4.ip_forward".into() },
            FactQuery::Module { name: "br_netfilter".into() },
            FactQuery::Swap,
            FactQuery::Package { name: "kubelet".into() },
            FactQuery::Service { name: "containerd".into() },
            FactQuery::Command { command: "test -f /x".into() },
        ])
    }

    const OUTPUT: &str = "\n@@kprov-fact 0\nos.ID=debian\nos.VERSION_ID=\"12\"\nos.VERSION_CODENAME=bookworm\nos.PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\narch=arm64\nmachine=aarch64\nkernel=6.12.47+rpt-rpi-v8\nhostname=k8s-01\ncpus=4\nmemory_kib=3882000\nboard=Raspberry Pi 4 Model B Rev 1.4\nrpi=1\n\
@@kprov-fact 1\ntype=regular file\nmode=644\nowner=root\ngroup=root\nsize=6\nsha256=abc\ncontent=aGVsbG8K\n\
@@kprov-fact 2\nabsent\n\
@@kprov-fact 3\nvalue=0\n\
@@kprov-fact 4\nbuiltin\n\
@@kprov-fact 5\nactive=/var/swap\nfstab=/swapfile none swap sw 0 0\n\
@@kprov-fact 6\nstatus=hi \nversion=1.34.2-1.1\nheld\n\
@@kprov-fact 7\nNames=containerd.service\nLoadState=loaded\nActiveState=inactive\nUnitFileState=enabled\n\
@@kprov-fact 8\nrc=1\n\
@@kprov-fact end\n";

    #[test]
    fn parses_every_kind() {
        let s = script();
        // Query order is the BTreeSet order of FactQuery, which the fixture above follows.
        assert_eq!(s.queries()[0], FactQuery::Os);
        let facts = parse(&s, OUTPUT).unwrap();
        let os = facts.os().unwrap();
        assert_eq!((os.id.as_str(), os.arch.as_str(), os.cpus), ("debian", "arm64", 4));
        assert!(os.raspberry_pi_os && !os.memory_cgroup);
        assert_eq!(os.pretty_name, "Debian GNU/Linux 12 (bookworm)");
        let f = facts.file("/etc/a").unwrap();
        assert_eq!((f.mode, f.content.as_deref()), (0o644, Some(&b"hello\n"[..])));
        assert!(!facts.file("/etc/missing").unwrap().exists);
        assert_eq!(facts.get(&FactQuery::Module { name: "br_netfilter".into() }), Some(&FactValue::Module { loaded: false, builtin: true }));
        match facts.get(&FactQuery::Package { name: "kubelet".into() }) {
            Some(FactValue::Package(p)) => {
                assert!(p.installed && p.held);
                assert_eq!(p.version.as_deref(), Some("1.34.2-1.1"));
            }
            other => panic!("{other:?}"),
        }
        match facts.get(&FactQuery::Swap) {
            Some(FactValue::Swap(s)) => assert_eq!(s.active, ["/var/swap"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_small_file_is_hashed_here_from_its_content() {
        let s = script();
        let out = OUTPUT.replace("sha256=abc\n", "");
        let f = parse(&s, &out).unwrap().file("/etc/a").unwrap().clone();
        assert_eq!(f.sha256, crate::digest::sha256_hex(b"hello\n"));
    }

    #[test]
    fn a_service_block_of_another_unit_is_an_error() {
        let out = OUTPUT.replace("Names=containerd.service", "Names=kubelet.service");
        assert!(matches!(parse(&script(), &out), Err(FactParseError::BadValue { .. })), "{out}");
        let alias = OUTPUT.replace("Names=containerd.service", "Names=containerd.service docker-containerd.service");
        assert!(parse(&script(), &alias).is_ok());
    }

    #[test]
    fn a_package_block_may_be_opened_twice() {
        // The script opens every package's block first (dpkg-query prints nothing for a
        // package it does not know), then appends what dpkg-query printed.
        let out = OUTPUT
            .replace("@@kprov-fact 6\nstatus=hi \nversion=1.34.2-1.1\nheld\n", "@@kprov-fact 6\n\n@@kprov-fact 6\nstatus=hi \nversion=1.34.2-1.1\n");
        match parse(&script(), &out).unwrap().get(&FactQuery::Package { name: "kubelet".into() }) {
            Some(FactValue::Package(p)) => assert!(p.installed && p.held),
            other => panic!("{other:?}"),
        }
    }

    /// The batched form of the file blocks: `stat`'s blocks and the contents name their
    /// file; the contents are split by the sizes `stat` reported.
    fn batched_files() -> (FactScript, String) {
        let s = FactScript::new([
            FactQuery::File { path: "/etc/a".into() },
            FactQuery::File { path: "/etc/b c".into() },
            FactQuery::File { path: "/etc/empty".into() },
            FactQuery::File { path: "/etc/missing".into() },
        ]);
        let out = "\n@@kprov-fact 0\ncpus=1\nmemory_kib=1\n\
@@kprov-fact 4\nabsent\n\
@@kprov-fact file\nname=/etc/b c\ntype=regular file\nmode=600\nowner=root\ngroup=root\nsize=3\n\
@@kprov-fact file\nname=/etc/a\ntype=regular file\nmode=644\nowner=root\ngroup=root\nsize=6\n\
@@kprov-fact file\nname=/etc/empty\ntype=regular empty file\nmode=644\nowner=root\ngroup=root\nsize=0\n\
@@kprov-fact contents\nname=/etc/a\nname=/etc/empty\nname=/etc/b c\ndata=aGVsbG8KYWJj\n\
@@kprov-fact end\n";
        (s, out.to_string())
    }

    #[test]
    fn batched_files_are_split_by_size_and_named() {
        let (s, out) = batched_files();
        let facts = parse(&s, &out).unwrap();
        let a = facts.file("/etc/a").unwrap();
        assert_eq!((a.mode, a.size, a.content.as_deref()), (0o644, 6, Some(&b"hello\n"[..])));
        assert_eq!(a.sha256, crate::digest::sha256_hex(b"hello\n"));
        let b = facts.file("/etc/b c").unwrap();
        assert_eq!((b.mode, b.content.as_deref()), (0o600, Some(&b"abc"[..])));
        assert_eq!(facts.file("/etc/empty").unwrap().content.as_deref(), Some(&b""[..]));
        assert!(!facts.file("/etc/missing").unwrap().exists);
    }

    #[test]
    fn batched_contents_that_do_not_add_up_are_an_error() {
        let (s, out) = batched_files();
        // A file grew between stat and cat: the lengths disagree.
        let grown = out.replace("data=aGVsbG8KYWJj", "data=aGVsbG8KYWJjZA==");
        let err = parse(&s, &grown).unwrap_err();
        assert!(err.to_string().contains("changed while it was read"), "{err}");
        // A name the script was not asked about, in either place.
        for bad in
            [out.replace("name=/etc/a\ntype", "name=/etc/x\ntype"), out.replace("name=/etc/a\nname=/etc/empty", "name=/etc/x\nname=/etc/empty")]
        {
            assert!(matches!(parse(&s, &bad), Err(FactParseError::BadValue { .. })), "{bad}");
        }
        // A stat block lost: that file has no answer.
        let lost = out.replace("@@kprov-fact file\nname=/etc/empty\ntype=regular empty file\nmode=644\nowner=root\ngroup=root\nsize=0\n", "");
        assert!(parse(&s, &lost).is_err());
        // Names without their data.
        let cut = out.replace("data=aGVsbG8KYWJj\n", "");
        assert!(parse(&s, &cut).is_err());
    }

    #[test]
    fn truncated_output_is_an_error() {
        let cut = &OUTPUT[..OUTPUT.len() - 20];
        assert_eq!(parse(&script(), cut), Err(FactParseError::Truncated));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for garbage in ["", "hello", "@@kprov-fact 99\n@@kprov-fact end\n", "@@kprov-fact x\n", "\u{0}\u{1}"] {
            assert!(parse(&script(), garbage).is_err(), "{garbage:?}");
        }
    }

    /// Runs the real generated script with the local `sh` (this machine is Debian too), so the
    /// script and the parser are tested together against real tools.
    #[test]
    fn real_script_output_parses() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("it's a file");
        std::fs::write(&file, "x = 1\n").unwrap();
        // The batch and the rare cases beside it: a glob character, a symbolic link, a file
        // too large to fetch, an empty one, a directory, a name with a line break.
        let star = dir.path().join("*");
        std::fs::write(&star, "star").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let large = dir.path().join("large");
        let large_content = vec![b'z'; FILE_CONTENT_LIMIT as usize + 1];
        std::fs::write(&large, &large_content).unwrap();
        let large_link = dir.path().join("large link");
        std::os::unix::fs::symlink(&large, &large_link).unwrap();
        let newline_link = dir.path().join("new\nlink");
        std::os::unix::fs::symlink(&large, &newline_link).unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "").unwrap();
        let newline = dir.path().join("new\nline");
        std::fs::write(&newline, "nl").unwrap();
        let path = |p: &std::path::Path| p.to_str().unwrap().to_string();
        let s = FactScript::new([
            FactQuery::File { path: path(&star) },
            FactQuery::File { path: path(&link) },
            FactQuery::File { path: path(&large) },
            FactQuery::File { path: path(&empty) },
            FactQuery::File { path: path(&large_link) },
            FactQuery::File { path: path(&newline_link) },
            FactQuery::File { path: path(&newline) },
            FactQuery::File { path: path(dir.path()) },
            FactQuery::File { path: file.to_str().unwrap().into() },
            FactQuery::File { path: "/nonexistent/kprov".into() },
            FactQuery::Sysctl { key: "kernel.ostype".into() },
            FactQuery::Module { name: "kprov_no_such_module".into() },
            FactQuery::Swap,
            FactQuery::Package { name: "dpkg".into() },
            FactQuery::Package { name: "kprov-no-such-package".into() },
            FactQuery::Command { command: "exit 3".into() },
            FactQuery::Service { name: "kprov-no-such.service".into() },
        ]);
        let out = std::process::Command::new("sh").arg("-c").arg(s.render().unwrap()).output().unwrap();
        let facts = parse(&s, &String::from_utf8_lossy(&out.stdout)).unwrap();
        let f = facts.file(file.to_str().unwrap()).unwrap();
        assert!(f.exists);
        assert_eq!(f.content.as_deref(), Some(&b"x = 1\n"[..]));
        assert_eq!(f.sha256.len(), 64);
        assert!(!facts.file("/nonexistent/kprov").unwrap().exists);
        let content = |p: &std::path::Path| facts.file(&path(p)).unwrap().content.clone();
        assert_eq!(content(&star).as_deref(), Some(&b"star"[..]));
        assert_eq!(content(&link).as_deref(), Some(&b"x = 1\n"[..]));
        assert_eq!(facts.file(&path(&link)).unwrap().file_type, "symbolic link");
        assert_eq!(content(&empty).as_deref(), Some(&b""[..]));
        assert_eq!(content(&newline).as_deref(), Some(&b"nl"[..]));
        let l = facts.file(&path(&large)).unwrap();
        assert_eq!((l.content.as_deref(), l.sha256.as_str()), (None, crate::digest::sha256_hex(&large_content).as_str()));
        // A link to a file too large to fetch: the target's digest, not its content.
        for link in [&large_link, &newline_link] {
            let l = facts.file(&path(link)).unwrap();
            assert_eq!((l.content.as_deref(), l.sha256.as_str()), (None, crate::digest::sha256_hex(&large_content).as_str()));
        }
        let d = facts.file(&path(dir.path())).unwrap();
        assert_eq!((d.exists, d.file_type.as_str(), d.content.as_deref()), (true, "directory", None));
        assert_eq!(facts.get(&FactQuery::Sysctl { key: "kernel.ostype".into() }), Some(&FactValue::Sysctl { value: Some("Linux".into()) }));
        assert_eq!(facts.get(&FactQuery::Module { name: "kprov_no_such_module".into() }), Some(&FactValue::Module { loaded: false, builtin: false }));
        match facts.get(&FactQuery::Package { name: "dpkg".into() }) {
            Some(FactValue::Package(p)) => assert!(p.installed && p.version.is_some()),
            other => panic!("{other:?}"),
        }
        match facts.get(&FactQuery::Package { name: "kprov-no-such-package".into() }) {
            Some(FactValue::Package(p)) => assert!(!p.installed),
            other => panic!("{other:?}"),
        }
        assert_eq!(facts.get(&FactQuery::Command { command: "exit 3".into() }), Some(&FactValue::Command { exit_status: 3 }));
        let os = facts.os().unwrap();
        assert!(os.cpus >= 1 && os.memory_kib > 0 && !os.arch.is_empty());
        assert!(!os.macs.is_empty(), "{os:?}");
    }

    #[test]
    fn base64_round_trip() {
        assert_eq!(decode_base64("aGVsbG8K").unwrap(), b"hello\n");
        assert_eq!(decode_base64("YQ==").unwrap(), b"a");
        assert_eq!(decode_base64("YWI=").unwrap(), b"ab");
        assert!(decode_base64("YQ=").is_err());
        assert!(decode_base64("Y!==").is_err());
    }

    mod hostile_output {
        use super::*;
        use proptest::prelude::*;

        /// `text` cut at byte `cut` (or the char boundary before it), then with line `at`
        /// replaced by `line` or `line` inserted there.
        fn damage(text: &str, cut: usize, at: usize, line: &str, replace: bool) -> String {
            let cut = (0..=cut.min(text.len())).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
            let mut lines: Vec<&str> = text[..cut].lines().collect();
            let at = at.min(lines.len());
            if replace && at < lines.len() {
                lines[at] = line;
            } else {
                lines.insert(at, line);
            }
            lines.join("\n")
        }

        proptest! {
            /// Whatever a broken or hostile host prints, parsing returns facts or an error.
            #[test]
            fn arbitrary_output_never_panics(garbage in any::<String>()) {
                let _ = parse(&script(), &garbage);
            }

            /// A real answer cut anywhere, with a line replaced or a line inserted anywhere.
            #[test]
            fn a_damaged_real_answer_never_panics(
                cut in 0usize..=OUTPUT.len(),
                at in 0usize..40,
                line in "[ -~]{0,60}",
                replace in any::<bool>(),
            ) {
                let _ = parse(&script(), &damage(OUTPUT, cut, at, &line, replace));
            }

            /// The batched file blocks, cut and damaged the same way.
            #[test]
            fn a_damaged_batched_answer_never_panics(
                cut in 0usize..=400,
                at in 0usize..20,
                line in "[ -~]{0,60}",
                replace in any::<bool>(),
            ) {
                let (s, out) = batched_files();
                let _ = parse(&s, &damage(&out, cut, at, &line, replace));
            }

            /// Field values of any shape inside well-formed blocks.
            #[test]
            fn odd_values_in_well_formed_blocks_never_panic(value in "[ -~]{0,30}") {
                let damaged = OUTPUT
                    .replace("cpus=4", &format!("cpus={value}"))
                    .replace("size=6", &format!("size={value}"))
                    .replace("mode=644", &format!("mode={value}"))
                    .replace("rc=1", &format!("rc={value}"))
                    .replace("content=aGVsbG8K", &format!("content={value}"));
                let _ = parse(&script(), &damaged);
            }
        }
    }
}

/// The swap providers' and the boot's facts: the real script run here against a directory tree
/// laid out like a host's (its fixed paths moved under a temporary root).
#[cfg(test)]
mod swap_and_boot_tests {
    use super::*;

    fn run_rooted(script: &FactScript, root: &std::path::Path) -> String {
        let r = root.to_str().unwrap();
        // Only the path lists of the `for` loops move; /proc, /etc/fstab and /dev/null stay.
        let text: String = script
            .render()
            .unwrap()
            .lines()
            .map(|l| if l.starts_with("for kf in ") { l.replace(" /", &format!(" {r}/")) } else { l.to_string() })
            .collect::<Vec<_>>()
            .join("\n");
        let out = std::process::Command::new("sh").arg("-c").arg(text).output().unwrap();
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn swap_providers_are_read_from_their_files() {
        use std::os::unix::fs::{PermissionsExt, symlink};
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let put = |p: &str, content: &str| {
            let path = root.join(p.trim_start_matches('/'));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, content).unwrap();
            path
        };
        let link = |p: &str, to: &str| {
            let path = root.join(p.trim_start_matches('/'));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            symlink(to, &path).unwrap();
        };
        // A line that tries to pass for a marker stays a setting line of its file.
        put("/etc/rpi/swap.conf", "# defaults\n[Main]\n#Mechanism=auto\n@@kprov-fact end=1\n\n[File]\nPath=/var/swap\n");
        put("/etc/rpi/swap.conf.d/99-kprov-swap-off.conf", "[Main]\nMechanism=none");
        link("/usr/lib/rpi/swap.conf.d/50-vendor.conf", "/dev/null");
        let generator = put("/usr/lib/systemd/system-generators/rpi-swap-generator", "#!/bin/sh\n");
        std::fs::set_permissions(&generator, std::fs::Permissions::from_mode(0o755)).unwrap();
        put("/usr/lib/systemd/system-generators/zram-generator", "not executable");
        put("/run/systemd/generator/swap.img.swap", "[Unit]\nSourcePath=/etc/fstab\n\n[Swap]\nWhat=/swap.img\n");
        link("/run/systemd/generator/swap.target.requires/swap.img.swap", "../swap.img.swap");
        link("/etc/systemd/system/old.swap", "/dev/null");
        put("/usr/lib/systemd/system/old.swap", "[Swap]\nWhat=/old\n");
        let s = FactScript::new([FactQuery::Swap, FactQuery::Boot]);
        let out = run_rooted(&s, root);
        let facts = parse(&s, &out).unwrap_or_else(|e| panic!("{e}\n{out}"));
        let Some(FactValue::Swap(swap)) = facts.get(&FactQuery::Swap) else { panic!("{out}") };
        let r = root.to_str().unwrap();
        assert_eq!(
            swap.units,
            [
                SwapUnit { path: format!("{r}/etc/systemd/system/old.swap"), masked: true, source: String::new() },
                SwapUnit { path: format!("{r}/run/systemd/generator/swap.img.swap"), masked: false, source: "/etc/fstab".into() },
            ],
            "the masked /etc unit hides the /usr/lib one of the same name"
        );
        assert_eq!(swap.wanted, ["swap.img.swap"]);
        assert_eq!(swap.generators, [SwapGenerator { path: format!("{r}/usr/lib/systemd/system-generators/rpi-swap-generator"), masked: false }]);
        let conf = |p: &str| swap.configs.iter().find(|c| c.path == format!("{r}{p}")).unwrap_or_else(|| panic!("{p}: {:?}", swap.configs));
        assert_eq!(conf("/etc/rpi/swap.conf").lines, ["[Main]", "#Mechanism=auto", "@@kprov-fact end=1", "[File]", "Path=/var/swap"]);
        assert_eq!(conf("/etc/rpi/swap.conf.d/99-kprov-swap-off.conf").lines, ["[Main]", "Mechanism=none"], "a last line without a newline counts");
        assert!(conf("/usr/lib/rpi/swap.conf.d/50-vendor.conf").masked);
        let Some(FactValue::Boot(boot)) = facts.get(&FactQuery::Boot) else { panic!("{out}") };
        assert_eq!(boot.cmdline, std::fs::read_to_string("/proc/cmdline").unwrap().trim());
        if let Ok(c) = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers") {
            assert_eq!(boot.cgroup_v2_controllers.as_deref(), Some(c.trim()));
        }
    }

    #[test]
    fn boot_block_parses_both_cgroup_versions() {
        let s = FactScript::new([FactQuery::Boot]);
        let out = "\n@@kprov-fact 1\ncmdline=console=tty1 cgroup_disable=memory cgroup_enable=memory\nv1_memory=0\n@@kprov-fact end\n";
        let facts = parse(&s, &format!("\n@@kprov-fact 0\ncpus=1\nmemory_kib=1{out}")).unwrap();
        let Some(FactValue::Boot(boot)) = facts.get(&FactQuery::Boot) else { panic!() };
        assert_eq!((boot.cgroup_v2_controllers.as_deref(), boot.cgroup_v1_memory), (None, Some(false)));
        assert!(!boot.memory_controller());
        let v2 = BootFact { cgroup_v2_controllers: Some("cpuset cpu memory".into()), ..boot.clone() };
        assert!(v2.memory_controller());
    }
}
