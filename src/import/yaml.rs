//! Ansible's YAML inventory (Kubespray's `hosts.yaml`) → the [`Ansible`] model.

use super::FORMAT_HELP;
use super::model::{Ansible, Kind, Node, Origin, Var};
use super::patterns::add_hosts;
use crate::inventory::{self, Diagnostic, Place, did_you_mean, place, place_from_line_column};

/// Ansible's YAML inventory: groups (top-level keys, `all` among them) with `hosts`, `children`
/// and `vars`.
pub(super) fn parse_yaml(text: &str, errs: &mut Vec<Diagnostic>) -> Option<Ansible> {
    let root: Node = match serde_saphyr::from_str_with_options(text, yaml_options()) {
        Ok(n) => n,
        Err(e) => {
            let mut inner = &e;
            while let serde_saphyr::Error::WithSnippet { error, .. } | serde_saphyr::Error::AliasError { error, .. } = inner {
                inner = error;
            }
            let at = inner.location().or_else(|| e.location()).and_then(|l| place(&l).or_else(|| place_from_line_column(text, &l)));
            errs.push(if matches!(inner, serde_saphyr::Error::Budget { .. }) {
                Diagnostic::error("kprov::import::limits", "the YAML nests too deep or holds more than one document")
                    .label(at, "here")
                    .help(format!("a Kubespray inventory is one document nested a few levels deep (all: children: GROUP: hosts: HOST: VARIABLE); kprov reads at most {} levels", inventory::MAX_DEPTH))
            } else {
                Diagnostic::error("kprov::import::yaml", format!("YAML syntax error: {}", strip_location(&inner.to_string())))
                    .label(at, "here")
                    .help("check the indentation and quoting around this place")
            });
            return None;
        }
    };
    let help = FORMAT_HELP;
    let top = match &root.kind {
        Kind::Map(top) if !top.is_empty() => top,
        _ => {
            errs.push(
                Diagnostic::error("kprov::import::format", "not a Kubespray inventory: expected a mapping of groups")
                    .label(root.at, "not a mapping of groups")
                    .help(help),
            );
            return None;
        }
    };
    let key = |k: &str| top.iter().find(|(n, _)| n.text() == Some(k));
    let kprov = key("hosts").filter(|(_, v)| matches!(v.kind, Kind::Seq(_))).or_else(|| key("cluster"));
    if let Some((k, _)) = kprov {
        errs.push(
            Diagnostic::error("kprov::import::format", "this is a kprov inventory, not a Kubespray one")
                .label(k.at, "a kprov key")
                .help("check it with kprov validate; kprov import kubespray reads Kubespray's hosts.yaml or inventory.ini"),
        );
        return None;
    }
    if let Some((k, _)) = top.iter().find(|(_, v)| matches!(v.kind, Kind::Scalar(_) | Kind::Seq(_))) {
        errs.push(
            Diagnostic::error("kprov::import::format", "not a Kubespray inventory: expected a mapping of groups")
                .label(k.at, "not a group (it has a value, not hosts:, children: or vars:)")
                .help(help),
        );
        return None;
    }
    let mut a = Ansible { groups_at: top.first().and_then(|(k, _)| k.at), ..Ansible::default() };
    for (k, v) in top {
        match k.text() {
            Some(name) => yaml_group(&mut a, name, k.at, v, errs),
            None => errs.push(Diagnostic::error("kprov::import::yaml", "a group name must be text").label(k.at, "not a name").help(help)),
        }
    }
    Some(a)
}

/// One document, nested at most as deep as an inventory may be.
pub(super) fn yaml_options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = inventory::MAX_DEPTH;
    budget.max_documents = 1;
    serde_saphyr::options! { budget: Some(budget), with_snippet: false }
}

pub(super) fn yaml_group(a: &mut Ansible, group: &str, at: Option<Place>, node: &Node, errs: &mut Vec<Diagnostic>) {
    a.group(group, at);
    let entries = match &node.kind {
        Kind::Null => return,
        Kind::Map(e) => e,
        _ => {
            errs.push(
                Diagnostic::error("kprov::import::yaml", format!("group `{group}` must be a mapping"))
                    .label(node.at.or(at), "expected hosts:, children: or vars:")
                    .help(format!("write {group}: {{ hosts: {{ node1: }}, children: {{ … }}, vars: {{ … }} }}")),
            );
            return;
        }
    };
    let mapping = |v: &Node, what: &str, errs: &mut Vec<Diagnostic>| -> Option<Vec<(Node, Node)>> {
        match &v.kind {
            Kind::Null => Some(vec![]),
            Kind::Map(e) => Some(e.clone()),
            _ => {
                errs.push(
                    Diagnostic::error("kprov::import::yaml", format!("`{what}` of group `{group}` must be a mapping"))
                        .label(v.at, "not a mapping")
                        .help(match what {
                            "hosts" => "hosts is a mapping of host names to their variables: hosts: { node1: { ansible_host: 10.0.0.1 }, node2: }",
                            "children" => "children is a mapping of group names: children: { kube_control_plane: , kube_node: }",
                            _ => "vars is a mapping of variable names to values: vars: { ansible_user: ubuntu }",
                        }),
                );
                None
            }
        }
    };
    for (k, v) in entries {
        match k.text() {
            Some("hosts") => {
                for (hk, hv) in mapping(v, "hosts", errs).unwrap_or_default() {
                    let Some(host) = hk.text() else {
                        errs.push(
                            Diagnostic::error("kprov::import::yaml", "a host name must be text")
                                .label(hk.at, "not a name")
                                .help("write the host's name as the key"),
                        );
                        continue;
                    };
                    let vars = match &hv.kind {
                        Kind::Null => vec![],
                        Kind::Map(vs) => yaml_vars(vs, Origin::Host(String::new()), group, errs),
                        _ => {
                            errs.push(
                                Diagnostic::error("kprov::import::yaml", format!("the variables of host `{host}` must be a mapping"))
                                    .label(hv.at, "not a mapping")
                                    .help(format!("{host}: {{ ansible_host: 10.0.0.1, ip: 10.0.0.1 }}, or nothing after the colon")),
                            );
                            continue;
                        }
                    };
                    add_hosts(a, group, host, hk.at, vars, errs);
                }
            }
            Some("children") => {
                for (ck, cv) in mapping(v, "children", errs).unwrap_or_default() {
                    let Some(child) = ck.text() else {
                        errs.push(
                            Diagnostic::error("kprov::import::yaml", "a group name must be text")
                                .label(ck.at, "not a name")
                                .help("write the group's name as the key"),
                        );
                        continue;
                    };
                    // As Ansible does: the child group is read first, then linked.
                    yaml_group(a, child, ck.at, &cv, errs);
                    a.add_child(group, child, ck.at, errs);
                }
            }
            Some("vars") => {
                if let Some(vs) = mapping(v, "vars", errs) {
                    let vars = yaml_vars(&vs, Origin::Group(group.to_string()), group, errs);
                    a.group(group, None).vars.extend(vars);
                }
            }
            other => {
                let other = other.unwrap_or("?");
                let d =
                    Diagnostic::error("kprov::import::yaml", format!("unknown key `{other}` in group `{group}`")).label(k.at, "not a key of a group");
                errs.push(match did_you_mean(other, ["hosts", "children", "vars"]) {
                    Some(m) => d.help(format!("did you mean `{m}`? An Ansible group has hosts, children and vars")),
                    None => d.help("an Ansible group has hosts, children and vars; a host's variables go under hosts: NAME:"),
                });
            }
        }
    }
}

pub(super) fn yaml_vars(entries: &[(Node, Node)], from: Origin, group: &str, errs: &mut Vec<Diagnostic>) -> Vec<Var> {
    let mut vars = vec![];
    for (k, v) in entries {
        match k.text() {
            Some(name) => vars.push(Var { name: name.to_string(), value: v.clone(), from: from.clone(), written_in: group.to_string() }),
            None => errs.push(
                Diagnostic::error("kprov::import::yaml", "a variable name must be text")
                    .label(k.at, "not a name")
                    .help("write the variable as name: value"),
            ),
        }
    }
    vars
}

/// serde-saphyr appends "at line L column C"; the label shows it already.
pub(super) fn strip_location(msg: &str) -> String {
    let first = msg.lines().next().unwrap_or(msg);
    first.rfind(" at line ").map_or(first, |i| &first[..i]).to_string()
}
