//! Ansible host patterns (`node[1:3]`, `host:2222`), shared by both forms.

use super::MAX_HOSTS;
use super::model::{Ansible, Node, Origin, Var};
use crate::inventory::{Diagnostic, Place};

/// Add the hosts of a host pattern (`node[1:3]`, `host:2222`) to `group`.
pub(super) fn add_hosts(a: &mut Ansible, group: &str, pattern: &str, at: Option<Place>, vars: Vec<Var>, errs: &mut Vec<Diagnostic>) {
    match expand_pattern(pattern) {
        Ok((names, port)) => {
            if a.too_many_reported {
                return;
            }
            if a.hosts.len() + names.len() > MAX_HOSTS && a.hosts.len() + names.iter().filter(|n| a.host(n).is_none()).count() > MAX_HOSTS {
                // Reported once: every host line after this one would say the same.
                a.too_many_reported = true;
                errs.push(
                    Diagnostic::error(
                        "kprov::import::too_many",
                        format!("more than {MAX_HOSTS} hosts; kprov imports at most {MAX_HOSTS} (the hosts from here on were not read)"),
                    )
                    .label(at, format!("host {} and later", MAX_HOSTS + 1))
                    .help("an inventory of one cluster has fewer hosts: check the host ranges (node[1:9999]) and split the inventory"),
                );
                return;
            }
            for n in names {
                let mut vs: Vec<Var> = vars.iter().cloned().map(|v| Var { from: Origin::Host(n.clone()), ..v }).collect();
                if let Some(p) = port {
                    vs.push(Var {
                        name: "ansible_port".into(),
                        value: Node::scalar(p.to_string(), at),
                        from: Origin::Host(n.clone()),
                        written_in: group.to_string(),
                    });
                }
                a.mention(group, &n, at, vs);
            }
        }
        Err(msg) => errs.push(
            Diagnostic::error("kprov::import::host_pattern", format!("`{pattern}`: {msg}"))
                .label(at, "invalid host")
                .help("a host is a name, optionally with a port (node1:2222) or a range (node[1:3])"),
        ),
    }
}

/// Ansible host patterns: `host:port` and ranges `node[1:3]`, `node[01:10:2]`, `rack-[a:c]`.
pub(super) fn expand_pattern(p: &str) -> Result<(Vec<String>, Option<u16>), String> {
    // A port is the part after the only colon outside brackets.
    let mut depth = 0i32;
    let colons: Vec<usize> = p
        .char_indices()
        .filter_map(|(i, c)| {
            match c {
                '[' => depth += 1,
                ']' => depth -= 1,
                ':' if depth == 0 => return Some(i),
                _ => {}
            }
            None
        })
        .collect();
    let (name, port) = match colons.as_slice() {
        [i] if p[i + 1..].bytes().all(|b| b.is_ascii_digit()) && *i + 1 < p.len() => {
            let port = p[i + 1..].parse::<u16>().ok().filter(|&n| n > 0).ok_or_else(|| format!("port {} is not between 1 and 65535", &p[i + 1..]))?;
            (&p[..*i], Some(port))
        }
        _ => (p, None),
    };
    let mut names = vec![String::new()];
    let mut rest = name;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find(']').map(|c| open + c) else { break };
        let prefix = &rest[..open];
        let items = match range(&rest[open + 1..close])? {
            Some(items) => items,
            None => vec![rest[open..=close].to_string()],
        };
        if names.len().saturating_mul(items.len()) > MAX_HOSTS {
            return Err(format!("expands to more than {MAX_HOSTS} hosts"));
        }
        names = names.iter().flat_map(|n| items.iter().map(move |i| format!("{n}{prefix}{i}"))).collect();
        rest = &rest[close + 1..];
    }
    Ok((names.into_iter().map(|n| format!("{n}{rest}")).collect(), port))
}

/// `1:3`, `01:10:2`, `a:c` → the items; None when it is not a range (kept as written).
pub(super) fn range(spec: &str) -> Result<Option<Vec<String>>, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (from, to, step) = match parts.as_slice() {
        [a, b] => (*a, *b, "1"),
        [a, b, s] => (*a, *b, *s),
        _ => return Ok(None),
    };
    let step: usize = match step.parse() {
        Ok(s) if s > 0 => s,
        _ => return Err(format!("the step of [{spec}] must be a positive number")),
    };
    if let (Ok(a), Ok(b)) = (from.parse::<u64>(), to.parse::<u64>()) {
        if a > b {
            return Err(format!("the range [{spec}] runs backwards"));
        }
        if (b - a) / step as u64 >= MAX_HOSTS as u64 {
            return Err(format!("[{spec}] expands to more than {MAX_HOSTS} hosts"));
        }
        let width = if from.len() > 1 && from.starts_with('0') { from.len() } else { 0 };
        return Ok(Some((a..=b).step_by(step).map(|n| format!("{n:0width$}")).collect()));
    }
    let letter = |s: &str| match s.as_bytes() {
        [c] if c.is_ascii_alphabetic() => Some(*c),
        _ => None,
    };
    match (letter(from), letter(to)) {
        (Some(a), Some(b)) if a <= b => Ok(Some((a..=b).step_by(step).map(|c| char::from(c).to_string()).collect())),
        (Some(_), Some(_)) => Err(format!("the range [{spec}] runs backwards")),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns() {
        assert_eq!(expand_pattern("node1").unwrap(), (vec!["node1".to_string()], None));
        assert_eq!(expand_pattern("node1:2222").unwrap(), (vec!["node1".to_string()], Some(2222)));
        assert_eq!(expand_pattern("node[1:3]").unwrap().0, ["node1", "node2", "node3"]);
        assert_eq!(expand_pattern("w[01:05:2].lan:22").unwrap(), (vec!["w01.lan".into(), "w03.lan".into(), "w05.lan".into()], Some(22)));
        assert_eq!(expand_pattern("rack-[a:c]").unwrap().0, ["rack-a", "rack-b", "rack-c"]);
        assert_eq!(expand_pattern("fe80::1").unwrap(), (vec!["fe80::1".to_string()], None));
        assert!(expand_pattern("n[3:1]").is_err());
        assert!(expand_pattern("n:0").is_err());
        assert!(expand_pattern("n[1:99999999]").is_err());
    }
}
