//! The Ansible inventory model both forms are read into: groups with hosts, children and vars;
//! hosts with vars; every name and value with its place in the file.

use std::collections::{HashMap, HashSet, VecDeque};

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use super::yaml::yaml_options;
use crate::inventory::{Diagnostic, Place, place};

/// A value as written: a scalar's text, a mapping or a list, with its place in the file.
#[derive(Debug, Clone)]
pub(super) struct Node {
    pub(super) kind: Kind,
    pub(super) at: Option<Place>,
}

#[derive(Debug, Clone)]
pub(super) enum Kind {
    Null,
    Scalar(String),
    Map(Vec<(Node, Node)>),
    Seq(Vec<Node>),
}

impl Node {
    pub(super) fn scalar(text: impl Into<String>, at: Option<Place>) -> Node {
        Node { kind: Kind::Scalar(text.into()), at }
    }

    /// A scalar's text; None for null, the empty string, mappings and lists.
    pub(super) fn text(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar(s) if !s.is_empty() => Some(s),
            _ => None,
        }
    }

    /// A mapping's value for `key`; an INI value written as a flow mapping (`{"port": 8383}`)
    /// is read as one.
    pub(super) fn get(&self, key: &str) -> Option<Node> {
        let parsed;
        let entries = match &self.kind {
            Kind::Map(e) => e,
            Kind::Scalar(s) if s.trim_start().starts_with('{') => {
                parsed = serde_saphyr::from_str_with_options::<Node>(s, yaml_options()).ok()?;
                match &parsed.kind {
                    Kind::Map(e) => e,
                    _ => return None,
                }
            }
            _ => return None,
        };
        entries.iter().find(|(k, _)| k.text() == Some(key)).map(|(_, v)| Node { kind: v.kind.clone(), at: self.at })
    }

    /// A canonical text, to tell whether two hosts were given the same value.
    pub(super) fn canonical(&self) -> String {
        match &self.kind {
            Kind::Null => "~".into(),
            Kind::Scalar(s) => s.clone(),
            Kind::Map(e) => format!("{{{}}}", e.iter().map(|(k, v)| format!("{}: {}", k.canonical(), v.canonical())).collect::<Vec<_>>().join(", ")),
            Kind::Seq(e) => format!("[{}]", e.iter().map(Node::canonical).collect::<Vec<_>>().join(", ")),
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Spanned::<Kind>::deserialize(d)?;
        Ok(Node { at: place(&s.referenced), kind: s.value })
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KindVisitor)
    }
}

pub(super) struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = Kind;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Kind, E> {
        Ok(Kind::Scalar(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Kind, E> {
        Ok(Kind::Scalar(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Kind, E> {
        Ok(Kind::Scalar(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Kind, E> {
        Ok(Kind::Scalar(v.to_string()))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Kind, E> {
        Ok(Kind::Scalar(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Kind, E> {
        Ok(Kind::Scalar(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
        Kind::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        let mut items = vec![];
        while let Some(n) = seq.next_element::<Node>()? {
            items.push(n);
        }
        Ok(Kind::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
        let mut entries = vec![];
        while let Some(entry) = map.next_entry::<Node, Node>()? {
            entries.push(entry);
        }
        Ok(Kind::Map(entries))
    }
}

/// Where a variable was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Origin {
    Host(String),
    Group(String),
}

impl Origin {
    pub(super) fn label(&self) -> String {
        match self {
            Origin::Host(h) => h.clone(),
            Origin::Group(g) => format!("group {g}"),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Var {
    pub(super) name: String,
    pub(super) value: Node,
    pub(super) from: Origin,
    /// The group whose section (INI) or key (YAML) holds it: for a host's variable, the group the
    /// host line is in.
    pub(super) written_in: String,
}

#[derive(Debug)]
pub(super) struct Group {
    pub(super) name: String,
    /// The first place it is named (a section header, a key).
    pub(super) at: Option<Place>,
    /// Hosts listed in the group itself, in order, each with the place it is named.
    pub(super) hosts: Vec<(String, Option<Place>)>,
    pub(super) children: Vec<(String, Option<Place>)>,
    pub(super) vars: Vec<Var>,
}

#[derive(Debug)]
pub(super) struct HostEntry {
    pub(super) name: String,
    /// Where it is first named.
    pub(super) at: Option<Place>,
    /// The group it is first named in.
    pub(super) first_group: String,
    /// Listed in `[all]` / `all: hosts:` (or ungrouped, before any section).
    pub(super) in_all: bool,
    /// Given variables somewhere: that defines a host too.
    pub(super) has_vars: bool,
    pub(super) vars: Vec<Var>,
}

#[derive(Debug, Default)]
pub(super) struct Ansible {
    pub(super) groups: Vec<Group>,
    pub(super) hosts: Vec<HostEntry>,
    /// Where the groups start: the place to point at when a group is missing.
    pub(super) groups_at: Option<Place>,
    /// Old Kubespray group names read as today's (old → new), in the order first seen.
    pub(super) renamed: Vec<(String, &'static str)>,
    /// A host variable kprov imports, given to one host twice with different values: (host,
    /// the earlier, the later). Ansible keeps the later.
    pub(super) conflicts: Vec<(String, Var, Var)>,
    /// The host limit was reported: one error, not one per host line after it.
    pub(super) too_many_reported: bool,
}

/// Kubespray's group names before its renames of 2021 (kubespray#7256, #7552) and today's.
/// `kube_master` is what Ansible's `force_valid_group_names` makes of `kube-master`.
const OLD_GROUP_NAMES: &[(&str, &str)] = &[
    ("kube-master", "kube_control_plane"),
    ("kube_master", "kube_control_plane"),
    ("kube-node", "kube_node"),
    ("k8s-cluster", "k8s_cluster"),
    ("calico-rr", "calico_rr"),
];

/// Host variables kprov imports besides the SSH ones (`super::SSH_VARS`): the node's cluster
/// addresses.
const ADDRESS_VARS: &[&str] = &["ip", "access_ip"];

/// A host variable whose value kprov imports: a second, different value for one host is worth
/// a warning (the others are listed as not imported anyway).
fn imported_host_var(name: &str) -> bool {
    super::SSH_VARS.contains(&name) || ADDRESS_VARS.contains(&name)
}

impl Ansible {
    /// Today's name of a group: an old Kubespray name is recorded and mapped, so that every
    /// spelling of a group is the same group wherever it appears.
    pub(super) fn canonical(&mut self, name: &str) -> String {
        match OLD_GROUP_NAMES.iter().find(|(old, _)| *old == name) {
            Some((old, new)) => {
                if !self.renamed.iter().any(|(o, _)| o == old) {
                    self.renamed.push((old.to_string(), new));
                }
                new.to_string()
            }
            None => name.to_string(),
        }
    }

    /// The group named `name` (any spelling), created when new.
    pub(super) fn group(&mut self, name: &str, at: Option<Place>) -> &mut Group {
        let name = self.canonical(name);
        let name = name.as_str();
        let i = match self.groups.iter().position(|g| g.name == name) {
            Some(i) => i,
            None => {
                self.groups.push(Group { name: name.to_string(), at, hosts: vec![], children: vec![], vars: vec![] });
                self.groups.len() - 1
            }
        };
        let g = &mut self.groups[i];
        if g.at.is_none() {
            g.at = at;
        }
        g
    }

    pub(super) fn find_group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }

    pub(super) fn host(&self, name: &str) -> Option<&HostEntry> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// `group` (any spelling) lists the group `child`, named at `at`. Ansible's rules: a group
    /// cannot contain itself, and an edge that closes a loop is an error naming the loop; the
    /// edge is then left out, so that the groups stay a tree for what follows.
    pub(super) fn add_child(&mut self, group: &str, child: &str, at: Option<Place>, errs: &mut Vec<Diagnostic>) {
        let parent = self.canonical(group);
        let child = self.canonical(child);
        self.group(&child, at);
        if parent == child {
            errs.push(
                Diagnostic::error("kprov::import::group_cycle", format!("can't add group `{child}` to itself: it is listed among its own children"))
                    .label(at, "the group itself")
                    .help(format!("remove `{child}` from the children of `{parent}`")),
            );
            return;
        }
        if self.group(&parent, None).children.iter().any(|(c, _)| *c == child) {
            return;
        }
        if let Some(path) = self.path(&child, &parent) {
            let mut lp = path.clone();
            lp.push(child.clone());
            let first_edge = self.find_group(&path[0]).and_then(|g| g.children.iter().find(|(c, _)| *c == path[1]).and_then(|(_, p)| *p));
            errs.push(
                Diagnostic::error(
                    "kprov::import::group_cycle",
                    format!("Adding group `{child}` as child to `{parent}` creates a recursive dependency loop: {}", lp.join(" → ")),
                )
                .label(at, format!("`{child}` as a child of `{parent}` closes the loop"))
                .label(first_edge, format!("`{}` already contains `{}`", path[0], path[1]))
                .help("a group cannot contain itself, directly or through its children: remove one of these children entries"),
            );
            return;
        }
        self.group(&parent, None).children.push((child, at));
    }

    /// The groups from `from` down to `to` through children, both included, if `to` is `from`
    /// or one of its descendants.
    fn path(&self, from: &str, to: &str) -> Option<Vec<String>> {
        let mut prev: HashMap<String, String> = HashMap::new();
        let mut queue = VecDeque::from([from.to_string()]);
        let mut seen = HashSet::from([from.to_string()]);
        while let Some(g) = queue.pop_front() {
            if g == to {
                let mut path = vec![g.clone()];
                let mut cur = g;
                while let Some(p) = prev.get(&cur) {
                    path.push(p.clone());
                    cur = p.clone();
                }
                path.reverse();
                return Some(path);
            }
            for (c, _) in self.find_group(&g).into_iter().flat_map(|grp| grp.children.iter()) {
                if seen.insert(c.clone()) {
                    prev.insert(c.clone(), g.clone());
                    queue.push_back(c.clone());
                }
            }
        }
        None
    }

    /// `host` is named in `group` (any spelling), with these variables.
    pub(super) fn mention(&mut self, group: &str, host: &str, at: Option<Place>, vars: Vec<Var>) {
        let group = self.canonical(group);
        let group = group.as_str();
        let g = self.group(group, None);
        if !g.hosts.iter().any(|(h, _)| h == host) {
            g.hosts.push((host.to_string(), at));
        }
        let in_all = group == "all" || group == "ungrouped";
        match self.hosts.iter().position(|h| h.name == host) {
            Some(i) => {
                for v in vars.iter().filter(|v| imported_host_var(&v.name)) {
                    if let Some(earlier) = self.hosts[i].vars.iter().rev().find(|e| e.name == v.name)
                        && earlier.value.canonical() != v.value.canonical()
                    {
                        self.conflicts.push((host.to_string(), earlier.clone(), v.clone()));
                    }
                }
                let h = &mut self.hosts[i];
                h.in_all |= in_all;
                h.has_vars |= !vars.is_empty();
                h.vars.extend(vars);
            }
            None => {
                self.hosts.push(HostEntry { name: host.to_string(), at, first_group: group.to_string(), in_all, has_vars: !vars.is_empty(), vars })
            }
        }
    }

    /// Every host of a group, its children's included, in order.
    pub(super) fn members(&self, group: &str) -> Vec<String> {
        if group == "all" {
            return self.hosts.iter().map(|h| h.name.clone()).collect();
        }
        let mut out = vec![];
        let mut seen_hosts = HashSet::new();
        let mut seen_groups = HashSet::new();
        let mut queue = VecDeque::from([group.to_string()]);
        while let Some(g) = queue.pop_front() {
            if !seen_groups.insert(g.clone()) {
                continue;
            }
            if let Some(grp) = self.find_group(&g) {
                for (h, _) in &grp.hosts {
                    if seen_hosts.insert(h.clone()) {
                        out.push(h.clone());
                    }
                }
                queue.extend(grp.children.iter().map(|(c, _)| c.clone()));
            }
        }
        out
    }

    /// Ansible's group depth (all: 0, its children: 1, …), which orders group variables.
    pub(super) fn depths(&self) -> HashMap<String, usize> {
        let mut depth: HashMap<String, usize> = self.groups.iter().map(|g| (g.name.clone(), usize::from(g.name != "all"))).collect();
        depth.insert("all".into(), 0);
        let mut indegree: HashMap<&str, usize> = HashMap::new();
        let mut edges: HashSet<(&str, &str)> = HashSet::new();
        for g in &self.groups {
            for (c, _) in &g.children {
                if edges.insert((g.name.as_str(), c.as_str())) {
                    *indegree.entry(c.as_str()).or_default() += 1;
                }
            }
        }
        let mut queue: VecDeque<&str> = self.groups.iter().map(|g| g.name.as_str()).filter(|g| !indegree.contains_key(g)).collect();
        // Groups in a cycle are never reached and keep depth 1.
        while let Some(g) = queue.pop_front() {
            let d = depth.get(g).copied().unwrap_or(1);
            for c in self.find_group(g).into_iter().flat_map(|grp| grp.children.iter()) {
                let entry = depth.entry(c.0.clone()).or_insert(1);
                *entry = (*entry).max(d + 1);
                if let Some(n) = indegree.get_mut(c.0.as_str()) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        indegree.remove(c.0.as_str());
                        queue.push_back(c.0.as_str());
                    }
                }
            }
        }
        depth
    }
}
