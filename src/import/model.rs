//! The Ansible inventory model both forms are read into: groups with hosts, children and vars;
//! hosts with vars; every name and value with its place in the file.

use std::collections::{HashMap, HashSet, VecDeque};

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use super::yaml::yaml_options;
use crate::inventory::{Place, place};

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
}

impl Ansible {
    pub(super) fn group(&mut self, name: &str, at: Option<Place>) -> &mut Group {
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

    /// `host` is named in `group`, with these variables.
    pub(super) fn mention(&mut self, group: &str, host: &str, at: Option<Place>, vars: Vec<Var>) {
        let g = self.group(group, None);
        if !g.hosts.iter().any(|(h, _)| h == host) {
            g.hosts.push((host.to_string(), at));
        }
        let in_all = group == "all" || group == "ungrouped";
        match self.hosts.iter_mut().find(|h| h.name == host) {
            Some(h) => {
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
