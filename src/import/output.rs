//! Writing the kprov inventory: the header of notes, cluster, ssh and hosts; YAML scalars
//! that read back as the strings they were.

use super::Format;
use super::convert::{Conv, OutHost, SSH_KEYS};
use crate::inventory;

impl Conv<'_> {
    pub(super) fn emit(&self, cluster: &[String], ssh: &[Option<String>; 4], bastion: Option<&str>, hosts: &[OutHost]) -> String {
        let mut out = String::new();
        let form = match self.format {
            Format::Ini => "INI",
            Format::Yaml => "YAML",
        };
        let file = self.file.replace(['\n', '\r'], " ");
        out.push_str(&format!("# kprov inventory imported from the Kubespray {form} inventory {file}\n"));
        out.push_str("# by `kprov import kubespray`. Check it with `kprov validate`; see docs/inventory.md.\n");
        if !self.a.renamed.is_empty() {
            let renamed: Vec<String> = self.a.renamed.iter().map(|(old, new)| format!("{old} as {new}")).collect();
            let note = format!("Kubespray's old group names, read as today's: {} (Kubespray renamed them in 2021).", renamed.join(", "));
            for line in wrap(&note, 96) {
                out.push_str(&format!("# {line}\n"));
            }
        }
        let notes = self.notes.render();
        if notes.is_empty() {
            out.push_str("# not imported: nothing; every Kubespray setting found has a kprov equivalent.\n");
        } else {
            out.push_str("# not imported:\n");
            for n in notes {
                for (i, line) in wrap(&n.replace(['\n', '\r'], " "), 94).iter().enumerate() {
                    out.push_str(if i == 0 { "#   - " } else { "#     " });
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        if !cluster.is_empty() {
            out.push_str("cluster:\n");
            for l in cluster {
                out.push_str(&format!("  {l}\n"));
            }
        }
        if ssh.iter().any(Option::is_some) || bastion.is_some() {
            out.push_str("ssh:\n");
            for (k, v) in SSH_KEYS.iter().zip(ssh) {
                if let Some(v) = v {
                    out.push_str(&format!("  {k}: {v}\n"));
                }
            }
            if let Some(b) = bastion {
                out.push_str(&format!("  bastion: {b}\n"));
            }
        }
        out.push_str("hosts:\n");
        for h in hosts {
            let roles = match (h.control_plane, h.worker) {
                (true, true) => "[control-plane, worker]",
                (true, false) => "[control-plane]",
                _ => "[worker]",
            };
            let mut fields = vec![format!("name: {}", h.name), format!("address: {}", yaml_str(&h.address))];
            if let Some(ip) = &h.internal_address {
                fields.push(format!("internal_address: {}", yaml_str(ip)));
            }
            fields.push(format!("roles: {roles}"));
            let overrides: Vec<String> = SSH_KEYS.iter().zip(&h.ssh).filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}: {v}"))).collect();
            if !overrides.is_empty() {
                fields.push(format!("ssh: {{ {} }}", overrides.join(", ")));
            }
            out.push_str(&format!("  - {{ {} }}\n", fields.join(", ")));
        }
        out
    }
}

/// kprov's own verdict on a cluster setting (`key: value`) or a host address: None when its
/// inventory parser accepts them, else its message and hint.
pub(super) fn kprov_verdict(cluster_line: Option<&str>, address: &str) -> Option<(String, String)> {
    // The trial host has an internal_address: only the address (or the cluster line) is on trial.
    let mut text = String::from("cluster:\n  name: trial\n");
    if let Some(l) = cluster_line {
        text.push_str(&format!("  {l}\n"));
    }
    text.push_str(&format!("hosts:\n  - {{ name: trial, address: {}, internal_address: 10.0.0.1, roles: [control-plane] }}\n", yaml_str(address)));
    let loaded = inventory::parse(&text, "trial");
    let d = loaded.errors().next()?;
    Some((d.message.clone(), d.help.clone().unwrap_or_default()))
}

/// A YAML scalar: plain when that reads back as the same string, else double-quoted.
pub(super) fn yaml_str(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "_./~@+-".contains(c))
        && !s.starts_with(['-', '@', '.', '+'])
        && s != "~"
        && !matches!(s.to_ascii_lowercase().as_str(), "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null")
        && s.parse::<f64>().is_err()
        && (s.contains('.') || !s.starts_with(|c: char| c.is_ascii_digit()));
    if plain {
        return s.to_string();
    }
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\t' => q.push_str("\\t"),
            c if c.is_control() => q.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

/// Words into lines of at most `width` characters (a longer word gets its own line).
pub(super) fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![];
    let mut cur = String::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() || lines.is_empty() {
        lines.push(cur);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_read_back_as_strings() {
        for (s, want) in [
            ("ubuntu", "ubuntu"),
            ("10.3.0.1", "10.3.0.1"),
            ("~/.ssh/id_ed25519", "~/.ssh/id_ed25519"),
            ("1.34", "\"1.34\""),
            ("yes", "\"yes\""),
            ("22", "\"22\""),
            ("a b", "\"a b\""),
            ("fd00::1", "\"fd00::1\""),
            ("x\"y", "\"x\\\"y\""),
        ] {
            assert_eq!(yaml_str(s), want, "{s}");
        }
    }

    #[test]
    fn wrapping() {
        assert_eq!(wrap("a b c", 3), ["a b", "c"]);
        assert_eq!(wrap("", 10), [""]);
    }
}
