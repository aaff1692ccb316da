//! Ansible's INI inventory (Kubespray's `inventory.ini`) → the [`Ansible`] model.

use super::model::{Ansible, Node, Origin, Var};
use super::patterns::add_hosts;
use crate::inventory::{Diagnostic, Place, did_you_mean};

/// Ansible's INI inventory: `[group]` host lines (`name key=value …`), `[group:children]` group
/// names, `[group:vars]` `key=value` lines; `#` and `;` start comments.
pub(super) fn parse_ini(text: &str, errs: &mut Vec<Diagnostic>) -> Ansible {
    enum Section {
        Hosts(String),
        Children(String),
        Vars(String),
        Skip,
    }
    let mut a = Ansible::default();
    let mut section = Section::Hosts("ungrouped".into());
    let mut offset = 0;
    for raw in text.split_inclusive('\n') {
        let start = offset;
        offset += raw.len();
        let line = raw.trim_end_matches(['\n', '\r']);
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        let here = |from: usize, len: usize| Some(Place { offset: start + from, len: len.max(1) });
        if trimmed.starts_with('[') {
            let Some(end) = trimmed.find(']') else {
                errs.push(
                    Diagnostic::error("kprov::import::ini", "unterminated section header")
                        .label(here(indent, trimmed.len()), "no closing ]")
                        .help("a section header is [group], [group:children] or [group:vars]"),
                );
                section = Section::Skip;
                continue;
            };
            let after = trimmed[end + 1..].trim();
            if !after.is_empty() && !after.starts_with('#') && !after.starts_with(';') {
                errs.push(
                    Diagnostic::error("kprov::import::ini", "text after a section header")
                        .label(here(indent + end + 1, trimmed.len() - end - 1), "unexpected")
                        .help("put hosts and variables on the lines below the header"),
                );
            }
            let inner = &trimmed[1..end];
            let (group, kind) = inner.split_once(':').unwrap_or((inner, ""));
            let group = group.trim();
            let at = here(indent, end + 1);
            if group.is_empty() || group.contains(char::is_whitespace) {
                errs.push(
                    Diagnostic::error("kprov::import::ini", format!("`{inner}` is not a group name"))
                        .label(at, "invalid group")
                        .help("group names are one word, e.g. [kube_node]"),
                );
                section = Section::Skip;
                continue;
            }
            if a.groups_at.is_none() {
                a.groups_at = at;
            }
            a.group(group, at);
            section = match kind.trim() {
                "" => Section::Hosts(group.to_string()),
                "children" => Section::Children(group.to_string()),
                "vars" => Section::Vars(group.to_string()),
                other => {
                    let d = Diagnostic::error("kprov::import::ini", format!("unknown section kind `{other}`")).label(at, "not children or vars");
                    errs.push(match did_you_mean(other, ["children", "vars"]) {
                        Some(m) => d.help(format!("did you mean [{group}:{m}]?")),
                        None => d.help(format!("a section is [{group}] (hosts), [{group}:children] (groups) or [{group}:vars] (variables)")),
                    });
                    Section::Skip
                }
            };
            continue;
        }
        match &section {
            Section::Skip => {}
            Section::Hosts(group) => {
                let tokens = match tokenize(line, start) {
                    Ok(t) => t,
                    Err(d) => {
                        errs.push(*d);
                        continue;
                    }
                };
                let Some((host, rest)) = tokens.split_first() else { continue };
                let mut vars = vec![];
                for t in rest {
                    match t.text.split_once('=') {
                        Some((k, v)) if !k.is_empty() => {
                            let key_len = t.raw.find('=').unwrap_or(0) + 1;
                            let at = Some(Place { offset: t.at.offset + key_len, len: t.at.len.saturating_sub(key_len).max(1) });
                            vars.push(Var {
                                name: k.to_string(),
                                value: Node::scalar(v, at),
                                from: Origin::Host(String::new()),
                                written_in: group.clone(),
                            });
                        }
                        _ => errs.push(
                            Diagnostic::error("kprov::import::ini", format!("`{}` is not a variable", t.raw))
                                .label(Some(t.at), "expected name=value")
                                .help(format!(
                                    "a host line is the host name and its variables: {} ansible_host=10.0.0.1 ansible_user=ubuntu",
                                    host.text
                                )),
                        ),
                    }
                }
                add_hosts(&mut a, group, &host.text, Some(host.at), vars, errs);
            }
            Section::Children(group) => {
                let child = trimmed.split(['#', ';']).next().unwrap_or("").trim();
                if child.is_empty() || child.contains(char::is_whitespace) {
                    errs.push(
                        Diagnostic::error("kprov::import::ini", format!("`{child}` is not a group name"))
                            .label(here(indent, trimmed.len()), "expected one group name")
                            .help(format!("[{group}:children] lists groups, one per line")),
                    );
                    continue;
                }
                a.add_child(group, child, here(indent, child.len()), errs);
            }
            Section::Vars(group) => {
                let Some((k, v)) = trimmed.split_once('=') else {
                    errs.push(
                        Diagnostic::error("kprov::import::ini", "expected name=value")
                            .label(here(indent, trimmed.len()), "not a variable")
                            .help(format!("[{group}:vars] holds one variable per line: ansible_user=ubuntu")),
                    );
                    continue;
                };
                let value_start = indent + k.len() + 1 + (v.len() - v.trim_start().len());
                let value = v.trim();
                let at = here(value_start, value.len());
                let g = a.group(group, None);
                g.vars.push(Var {
                    name: k.trim().to_string(),
                    value: Node::scalar(unquote(value), at),
                    from: Origin::Group(group.clone()),
                    written_in: group.clone(),
                });
            }
        }
    }
    a
}

/// `"a b"` or `'a b'` → `a b`.
pub(super) fn unquote(s: &str) -> String {
    let b = s.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] { s[1..s.len() - 1].to_string() } else { s.to_string() }
}

#[derive(Debug)]
pub(super) struct Token {
    /// Without its quotes.
    pub(super) text: String,
    /// As written.
    pub(super) raw: String,
    pub(super) at: Place,
}

/// Split a host line the way Ansible does (shlex with comments): whitespace separates tokens,
/// quotes group, an unquoted `#` starts a comment.
pub(super) fn tokenize(line: &str, base: usize) -> Result<Vec<Token>, Box<Diagnostic>> {
    let mut tokens = vec![];
    let mut cur: Option<(usize, String)> = None;
    let mut quote: Option<(char, usize)> = None;
    let finish = |cur: &mut Option<(usize, String)>, end: usize, tokens: &mut Vec<Token>| {
        if let Some((s, text)) = cur.take() {
            tokens.push(Token { text, raw: line[s..end].to_string(), at: Place { offset: base + s, len: (end - s).max(1) } });
        }
    };
    let mut end = line.len();
    for (i, c) in line.char_indices() {
        if let Some((q, _)) = quote {
            if c == q {
                quote = None;
            } else if let Some((_, t)) = cur.as_mut() {
                t.push(c);
            }
            continue;
        }
        match c {
            '\'' | '"' => {
                cur.get_or_insert_with(|| (i, String::new()));
                quote = Some((c, i));
            }
            '#' => {
                end = i;
                break;
            }
            c if c.is_whitespace() => finish(&mut cur, i, &mut tokens),
            c => cur.get_or_insert_with(|| (i, String::new())).1.push(c),
        }
    }
    if let Some((q, at)) = quote {
        return Err(Box::new(
            Diagnostic::error("kprov::import::ini", format!("unterminated quote ({q})"))
                .label(Some(Place { offset: base + at, len: 1 }), "opened here")
                .help(format!("close the quote with {q}")),
        ));
    }
    finish(&mut cur, end, &mut tokens);
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_lines_split_like_ansible() {
        let t = tokenize("node1 ansible_host=1.2.3.4 args='-o a=b'  # ip=10.0.0.1", 100).unwrap();
        let texts: Vec<&str> = t.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(texts, ["node1", "ansible_host=1.2.3.4", "args=-o a=b"]);
        assert_eq!(t[1].at, Place { offset: 106, len: 20 });
        assert!(tokenize("node1 x='open", 0).is_err());
    }
}
