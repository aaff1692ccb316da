//! The few `~/.ssh/config` settings users expect kprov to honour for a host: HostName, User,
//! Port, IdentityFile and ProxyJump, with OpenSSH's rules: `Host` patterns (`*`, `?`, `!`),
//! the first value found wins, `Match` blocks are skipped, `Include` is followed.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostConfig {
    pub host_name: Option<String>,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity_files: Vec<PathBuf>,
    pub proxy_jump: Option<String>,
}

/// The settings for `alias` in the config file at `path` (missing file: no settings).
pub fn for_host(path: &Path, alias: &str) -> HostConfig {
    let mut out = HostConfig::default();
    let mut seen_files = vec![];
    read(path, alias, &mut out, &mut true, &mut seen_files);
    out
}

fn read(path: &Path, alias: &str, out: &mut HostConfig, active: &mut bool, seen: &mut Vec<PathBuf>) {
    if seen.contains(&path.to_path_buf()) || seen.len() > 16 {
        return;
    }
    seen.push(path.to_path_buf());
    let Ok(text) = std::fs::read_to_string(path) else { return };
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = split(line);
        let key = key.to_ascii_lowercase();
        match key.as_str() {
            "host" => *active = host_matches(&value, alias),
            "match" => *active = false,
            "include" if *active => {
                for word in value.split_whitespace() {
                    let p = expand(word, alias, None);
                    let p = if p.is_absolute() { p } else { path.parent().unwrap_or(Path::new(".")).join(p) };
                    for f in expand_glob(&p) {
                        read(&f, alias, out, active, seen);
                    }
                }
            }
            _ if !*active => {}
            "hostname" if out.host_name.is_none() => out.host_name = Some(value.replace("%h", alias)),
            "user" if out.user.is_none() => out.user = Some(value),
            "port" if out.port.is_none() => out.port = value.parse().ok(),
            "identityfile" => {
                let p = expand(&value, alias, out.user.as_deref());
                if !out.identity_files.contains(&p) {
                    out.identity_files.push(p);
                }
            }
            "proxyjump" if out.proxy_jump.is_none() && value != "none" => out.proxy_jump = Some(value),
            _ => {}
        }
    }
}

/// `Key value`, `Key=value` or `Key "quoted value"`.
fn split(line: &str) -> (&str, String) {
    let idx = line.find(|c: char| c.is_whitespace() || c == '=').unwrap_or(line.len());
    let key = &line[..idx];
    let rest = line[idx..].trim_start_matches(|c: char| c.is_whitespace() || c == '=').trim();
    let value = rest.strip_prefix('"').and_then(|r| r.strip_suffix('"')).unwrap_or(rest);
    (key, value.to_string())
}

fn host_matches(patterns: &str, alias: &str) -> bool {
    let mut hit = false;
    for p in patterns.split_whitespace() {
        if let Some(neg) = p.strip_prefix('!') {
            if glob(neg, alias) {
                return false;
            }
        } else if glob(p, alias) {
            hit = true;
        }
    }
    hit
}

fn glob(p: &str, s: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], s) || (!s.is_empty() && go(p, &s[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => go(&p[1..], &s[1..]),
            _ => false,
        }
    }
    go(p.as_bytes(), s.as_bytes())
}

fn expand(value: &str, alias: &str, user: Option<&str>) -> PathBuf {
    let home = std::env::var("HOME").unwrap_or_default();
    let mut v = value.replace("%h", alias).replace("%d", &home);
    if let Some(u) = user {
        v = v.replace("%r", u);
    }
    if let Some(rest) = v.strip_prefix("~/") {
        return PathBuf::from(home).join(rest);
    }
    PathBuf::from(v)
}

/// A trailing `*` in the file name of an Include.
fn expand_glob(p: &Path) -> Vec<PathBuf> {
    let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if !name.contains('*') && !name.contains('?') {
        return vec![p.to_path_buf()];
    }
    let dir = p.parent().unwrap_or(Path::new("."));
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|f| f.file_name().is_some_and(|n| glob(&name, &n.to_string_lossy())))
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_value_wins_patterns_and_negation() {
        let d = tempfile::tempdir().unwrap();
        let inc = d.path().join("extra.conf");
        std::fs::write(&inc, "Host pi-*\n  ProxyJump bastion.lan\n").unwrap();
        let cfg = d.path().join("config");
        std::fs::write(
            &cfg,
            format!(
                "Include {}\nHost pi-01\n  HostName 192.168.0.150\n  Port=2222\nHost pi-* !pi-99\n  User pi\n  IdentityFile ~/.ssh/pi_%h\n  Port 22\nMatch exec true\n  User nobody\nHost *\n  User fallback\n",
                inc.display()
            ),
        )
        .unwrap();
        let c = for_host(&cfg, "pi-01");
        assert_eq!(c.host_name.as_deref(), Some("192.168.0.150"));
        assert_eq!(c.port, Some(2222));
        assert_eq!(c.user.as_deref(), Some("pi"));
        assert_eq!(c.proxy_jump.as_deref(), Some("bastion.lan"));
        assert!(c.identity_files[0].ends_with(".ssh/pi_pi-01"), "{:?}", c.identity_files);
        let other = for_host(&cfg, "pi-99");
        assert_eq!(other.user.as_deref(), Some("fallback"));
        assert_eq!(other.host_name, None);
        assert_eq!(for_host(Path::new("/nonexistent/config"), "x"), HostConfig::default());
    }
}
