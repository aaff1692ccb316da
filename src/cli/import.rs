//! `kprov import kubespray FILE [-o OUT]`: a Kubespray inventory (the YAML `hosts.yaml` or the
//! INI `inventory.ini`) converted into a kprov inventory.
//!
//! Both forms are read into one model of the Ansible inventory (groups with hosts, children and
//! vars; hosts with vars; every name and value with its place in the file), which is then mapped:
//! `kube_control_plane` → `control-plane`, `kube_node` → `worker`, `ansible_host`/`ip` →
//! `address`, `ansible_user`/`ansible_port`/`ansible_ssh_private_key_file`/`ansible_become` →
//! `ssh` (defaults when every host agrees, per-host overrides otherwise), the `bastion` group →
//! `ssh.bastion`, and the few cluster variables kprov has an equivalent for → `cluster`.
//! Everything else is listed in a "not imported" comment at the top of the output, never
//! dropped silently. The output is checked with kprov's own inventory parser before it is
//! written; errors are diagnostics with the file, line and a hint, and exit 1.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use super::Globals;
use crate::inventory::{self, Diagnostic, Place, did_you_mean, place, place_from_line_column};

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(subcommand)]
    pub source: Source,
}

#[derive(Debug, Subcommand)]
pub enum Source {
    /// A Kubespray inventory: the YAML hosts.yaml or the INI inventory.ini.
    Kubespray(KubesprayArgs),
}

#[derive(Debug, Args)]
pub struct KubesprayArgs {
    /// The Kubespray inventory (hosts.yaml or inventory.ini).
    pub file: PathBuf,
    /// Write the kprov inventory here instead of to standard output.
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
}

/// More hosts or groups than this is not an inventory of one cluster.
const MAX_HOSTS: usize = 5000;
const MAX_GROUPS: usize = 2000;

/// Connection variables that always have a kprov equivalent.
const SSH_VARS: &[&str] = &[
    "ansible_host",
    "ansible_ssh_host",
    "ansible_user",
    "ansible_ssh_user",
    "ansible_port",
    "ansible_ssh_port",
    "ansible_ssh_private_key_file",
    "ansible_private_key_file",
    "ansible_become",
];

/// Cluster-wide Kubespray variables kprov may have an equivalent for (decided in [`Conv::cluster`]).
const CLUSTER_VARS: &[&str] = &[
    "kube_version",
    "kube_pods_subnet",
    "kube_service_addresses",
    "kube_network_plugin",
    "container_manager",
    "cluster_name",
    "apiserver_loadbalancer_domain_name",
    "loadbalancer_apiserver",
];

const FORMAT_HELP: &str = "kprov import kubespray reads Kubespray's hosts.yaml (a mapping of groups: all: { hosts: { node1: { ansible_host: … } }, children: { kube_control_plane: …, kube_node: … } }) or inventory.ini ([all], [kube_control_plane] and [kube_node] sections)";

/// Groups whose meaning the import carries over (or that carry nothing).
const KNOWN_GROUPS: &[&str] = &["all", "ungrouped", "k8s_cluster", "kube_control_plane", "kube_node", "etcd", "bastion"];

pub fn run(args: &ImportArgs, g: &Globals) -> ExitCode {
    match &args.source {
        Source::Kubespray(a) => kubespray(a, g),
    }
}

fn kubespray(a: &KubesprayArgs, g: &Globals) -> ExitCode {
    let color = g.color(std::io::stderr().is_terminal());
    let fail = |diags: &[Diagnostic], what: &str| {
        for d in diags {
            eprint!("{}", super::setup::render(d, color));
        }
        let n = diags.iter().filter(|d| d.is_error()).count();
        eprintln!("{n} error{} {what}; nothing was written.", if n == 1 { "" } else { "s" });
        ExitCode::from(1)
    };
    let name = a.file.display().to_string();
    let text = match read(&a.file, &name) {
        Ok(t) => t,
        Err(d) => return fail(&[*d], "in the Kubespray inventory"),
    };
    if let Some(out) = &a.output
        && let (Ok(x), Ok(y)) = (a.file.canonicalize(), out.canonicalize())
        && x == y
    {
        let d = Diagnostic::error("kprov::import::same_file", format!("refusing to overwrite the Kubespray inventory {name} with its import"))
            .help("write the kprov inventory to a new file, e.g. -o kprov.yaml")
            .in_file(&name, &Arc::new(String::new()));
        return fail(&[d], "in the arguments");
    }
    let imported = match convert(&text, &name) {
        Ok(i) => i,
        Err(diags) => return fail(&diags, "in the Kubespray inventory"),
    };
    // The output must be an inventory kprov accepts: check it with kprov's own parser.
    let out_name = a.output.as_ref().map_or_else(|| "<stdout>".to_string(), |p| p.display().to_string());
    let loaded = inventory::parse(&imported.yaml, &out_name);
    if loaded.inventory.is_none() {
        let code = fail(&loaded.diagnostics, "in the imported inventory");
        eprintln!("This is a bug in kprov import: please report it with the Kubespray inventory {name}.");
        return code;
    }
    if !g.quiet {
        for d in loaded.warnings() {
            eprint!("{}", super::setup::render(d, color));
        }
    }
    match &a.output {
        Some(out) => {
            if let Err(e) = std::fs::write(out, &imported.yaml) {
                let d = Diagnostic::error("kprov::import::write", format!("cannot write {out_name}: {e}"))
                    .help("check that the directory exists and is writable")
                    .in_file(&out_name, &Arc::new(String::new()));
                return fail(&[d], "writing the output");
            }
        }
        None => print!("{}", imported.yaml),
    }
    if !g.quiet {
        eprintln!(
            "✓ {out_name}: {} host{} ({} control plane{}, {} worker{}) imported from {name}; {}",
            imported.hosts,
            plural(imported.hosts),
            imported.control_planes,
            plural(imported.control_planes),
            imported.workers,
            plural(imported.workers),
            match imported.not_imported {
                0 => "every setting was imported".to_string(),
                n => format!("{n} setting{} not imported (listed at the top)", plural(n)),
            }
        );
    }
    ExitCode::SUCCESS
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Read the file as UTF-8 text, within the inventory size limit.
fn read(path: &Path, name: &str) -> Result<String, Box<Diagnostic>> {
    let empty = Arc::new(String::new());
    if let Ok(m) = std::fs::metadata(path)
        && m.len() > inventory::MAX_SIZE as u64
    {
        return Err(Box::new(
            Diagnostic::error(
                "kprov::import::too_large",
                format!("{name} is {} bytes; inventories are limited to {} bytes", m.len(), inventory::MAX_SIZE),
            )
            .help("an inventory this large is almost certainly not an inventory; check the path")
            .in_file(name, &empty),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| {
        Box::new(
            Diagnostic::error("kprov::import::io", format!("cannot read {name}: {e}"))
                .help("check the path and its permissions")
                .in_file(name, &empty),
        )
    })?;
    String::from_utf8(bytes).map_err(|e| {
        Box::new(
            Diagnostic::error(
                "kprov::import::encoding",
                format!("{name} is not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to()),
            )
            .help("a Kubespray inventory is a text file: hosts.yaml or inventory.ini")
            .in_file(name, &empty),
        )
    })
}

/// The result of a conversion.
#[derive(Debug)]
struct Imported {
    yaml: String,
    hosts: usize,
    control_planes: usize,
    workers: usize,
    not_imported: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Yaml,
    Ini,
}

/// Kubespray inventory text → kprov inventory YAML; `name` is shown in diagnostics.
fn convert(text: &str, name: &str) -> Result<Imported, Vec<Diagnostic>> {
    let src = Arc::new(text.to_string());
    let finish = |diags: Vec<Diagnostic>| diags.into_iter().map(|d| d.in_file(name, &src)).collect::<Vec<_>>();
    let mut errs = vec![];
    let ansible = match detect(name, text) {
        Ok(Format::Ini) => Some((parse_ini(text, &mut errs), Format::Ini)),
        Ok(Format::Yaml) => parse_yaml(text, &mut errs).map(|a| (a, Format::Yaml)),
        Err(d) => {
            errs.push(*d);
            None
        }
    };
    let Some((ansible, format)) = ansible.filter(|_| errs.is_empty()) else {
        return Err(finish(errs));
    };
    if ansible.hosts.len() > MAX_HOSTS || ansible.groups.len() > MAX_GROUPS {
        let d = Diagnostic::error(
            "kprov::import::too_many",
            format!(
                "{} hosts in {} groups; kprov imports at most {MAX_HOSTS} hosts and {MAX_GROUPS} groups",
                ansible.hosts.len(),
                ansible.groups.len()
            ),
        )
        .label(ansible.groups_at, "the groups start here")
        .help("check the host ranges (node[1:9999]) and the groups");
        return Err(finish(vec![d]));
    }
    let mut conv = Conv::new(&ansible, format, name);
    match conv.run() {
        Some(imported) if conv.errs.is_empty() => Ok(imported),
        _ => Err(finish(conv.errs)),
    }
}

// ---------------------------------------------------------------------------------------------
// The Ansible inventory model, whatever the form it was written in.

/// A value as written: a scalar's text, a mapping or a list, with its place in the file.
#[derive(Debug, Clone)]
struct Node {
    kind: Kind,
    at: Option<Place>,
}

#[derive(Debug, Clone)]
enum Kind {
    Null,
    Scalar(String),
    Map(Vec<(Node, Node)>),
    Seq(Vec<Node>),
}

impl Node {
    fn scalar(text: impl Into<String>, at: Option<Place>) -> Node {
        Node { kind: Kind::Scalar(text.into()), at }
    }

    /// A scalar's text; None for null, the empty string, mappings and lists.
    fn text(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar(s) if !s.is_empty() => Some(s),
            _ => None,
        }
    }

    /// A mapping's value for `key`; an INI value written as a flow mapping (`{"port": 8383}`)
    /// is read as one.
    fn get(&self, key: &str) -> Option<Node> {
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
    fn canonical(&self) -> String {
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

struct KindVisitor;

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
enum Origin {
    Host(String),
    Group(String),
}

impl Origin {
    fn label(&self) -> String {
        match self {
            Origin::Host(h) => h.clone(),
            Origin::Group(g) => format!("group {g}"),
        }
    }
}

#[derive(Debug, Clone)]
struct Var {
    name: String,
    value: Node,
    from: Origin,
}

#[derive(Debug)]
struct Group {
    name: String,
    /// The first place it is named (a section header, a key).
    at: Option<Place>,
    /// Hosts listed in the group itself, in order, each with the place it is named.
    hosts: Vec<(String, Option<Place>)>,
    children: Vec<(String, Option<Place>)>,
    vars: Vec<Var>,
}

#[derive(Debug)]
struct HostEntry {
    name: String,
    /// Where it is first named.
    at: Option<Place>,
    /// The group it is first named in.
    first_group: String,
    /// Listed in `[all]` / `all: hosts:` (or ungrouped, before any section).
    in_all: bool,
    /// Given variables somewhere: that defines a host too.
    has_vars: bool,
    vars: Vec<Var>,
}

#[derive(Debug, Default)]
struct Ansible {
    groups: Vec<Group>,
    hosts: Vec<HostEntry>,
    /// Where the groups start: the place to point at when a group is missing.
    groups_at: Option<Place>,
}

impl Ansible {
    fn group(&mut self, name: &str, at: Option<Place>) -> &mut Group {
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

    fn find_group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }

    fn host(&self, name: &str) -> Option<&HostEntry> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// `host` is named in `group`, with these variables.
    fn mention(&mut self, group: &str, host: &str, at: Option<Place>, vars: Vec<Var>) {
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
    fn members(&self, group: &str) -> Vec<String> {
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
    fn depths(&self) -> HashMap<String, usize> {
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

// ---------------------------------------------------------------------------------------------
// Reading the two forms.

/// Which form the file is in: by its first line, else its extension, else a guess.
fn detect(name: &str, text: &str) -> Result<Format, Box<Diagnostic>> {
    let mut offset = 0;
    let mut first = None;
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        if !t.is_empty() && !t.starts_with('#') && !t.starts_with(';') && t != "---" {
            let indent = line.len() - line.trim_start().len();
            first = Some((t, Place { offset: offset + indent, len: t.len().max(1) }));
            break;
        }
        offset += line.len();
    }
    let help = FORMAT_HELP;
    let Some((line, at)) = first else {
        return Err(Box::new(Diagnostic::error("kprov::import::format", format!("{name} is empty")).help(help)));
    };
    let ext = Path::new(name).extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let section = line
        .strip_prefix('[')
        .and_then(|l| l.split(']').next())
        .is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b)));
    if section {
        return Ok(Format::Ini);
    }
    match ext.as_deref() {
        Some("yaml" | "yml" | "json") => return Ok(Format::Yaml),
        Some("ini" | "cfg") => return Ok(Format::Ini),
        _ => {}
    }
    if line.ends_with(':') || line.contains(": ") || line.starts_with('{') {
        return Ok(Format::Yaml);
    }
    let mut tokens = line.split_whitespace();
    let host_line = tokens.next().is_some_and(|h| !h.contains('=')) && tokens.all(|t| t.contains('=') || t.starts_with('#'));
    if host_line {
        return Ok(Format::Ini);
    }
    Err(Box::new(
        Diagnostic::error("kprov::import::format", format!("{name} is not a Kubespray inventory"))
            .label(Some(at), "neither an INI section nor a YAML group")
            .help(help),
    ))
}

/// Ansible's INI inventory: `[group]` host lines (`name key=value …`), `[group:children]` group
/// names, `[group:vars]` `key=value` lines; `#` and `;` start comments.
fn parse_ini(text: &str, errs: &mut Vec<Diagnostic>) -> Ansible {
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
                            vars.push(Var { name: k.to_string(), value: Node::scalar(v, at), from: Origin::Host(String::new()) });
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
                let at = here(indent, child.len());
                let g = a.group(group, None);
                if !g.children.iter().any(|(c, _)| c == child) {
                    g.children.push((child.to_string(), at));
                }
                a.group(child, at);
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
                g.vars.push(Var { name: k.trim().to_string(), value: Node::scalar(unquote(value), at), from: Origin::Group(group.clone()) });
            }
        }
    }
    a
}

/// Add the hosts of a host pattern (`node[1:3]`, `host:2222`) to `group`.
fn add_hosts(a: &mut Ansible, group: &str, pattern: &str, at: Option<Place>, vars: Vec<Var>, errs: &mut Vec<Diagnostic>) {
    match expand_pattern(pattern) {
        Ok((names, port)) => {
            if a.hosts.len() + names.len() > MAX_HOSTS {
                errs.push(
                    Diagnostic::error("kprov::import::too_many", format!("more than {MAX_HOSTS} hosts"))
                        .label(at, "too many hosts")
                        .help("check the host ranges (node[1:9999])"),
                );
                return;
            }
            for n in names {
                let mut vs: Vec<Var> = vars.iter().cloned().map(|v| Var { from: Origin::Host(n.clone()), ..v }).collect();
                if let Some(p) = port {
                    vs.push(Var { name: "ansible_port".into(), value: Node::scalar(p.to_string(), at), from: Origin::Host(n.clone()) });
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

/// `"a b"` or `'a b'` → `a b`.
fn unquote(s: &str) -> String {
    let b = s.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] { s[1..s.len() - 1].to_string() } else { s.to_string() }
}

#[derive(Debug)]
struct Token {
    /// Without its quotes.
    text: String,
    /// As written.
    raw: String,
    at: Place,
}

/// Split a host line the way Ansible does (shlex with comments): whitespace separates tokens,
/// quotes group, an unquoted `#` starts a comment.
fn tokenize(line: &str, base: usize) -> Result<Vec<Token>, Box<Diagnostic>> {
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

/// Ansible host patterns: `host:port` and ranges `node[1:3]`, `node[01:10:2]`, `rack-[a:c]`.
fn expand_pattern(p: &str) -> Result<(Vec<String>, Option<u16>), String> {
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
fn range(spec: &str) -> Result<Option<Vec<String>>, String> {
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

/// Ansible's YAML inventory: groups (top-level keys, `all` among them) with `hosts`, `children`
/// and `vars`.
fn parse_yaml(text: &str, errs: &mut Vec<Diagnostic>) -> Option<Ansible> {
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
fn yaml_options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = inventory::MAX_DEPTH;
    budget.max_documents = 1;
    serde_saphyr::options! { budget: Some(budget), with_snippet: false }
}

fn yaml_group(a: &mut Ansible, group: &str, at: Option<Place>, node: &Node, errs: &mut Vec<Diagnostic>) {
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
                        Kind::Map(vs) => yaml_vars(vs, Origin::Host(String::new()), errs),
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
                    let g = a.group(group, None);
                    if !g.children.iter().any(|(c, _)| c == child) {
                        g.children.push((child.to_string(), ck.at));
                    }
                    yaml_group(a, child, ck.at, &cv, errs);
                }
            }
            Some("vars") => {
                if let Some(vs) = mapping(v, "vars", errs) {
                    let vars = yaml_vars(&vs, Origin::Group(group.to_string()), errs);
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

fn yaml_vars(entries: &[(Node, Node)], from: Origin, errs: &mut Vec<Diagnostic>) -> Vec<Var> {
    let mut vars = vec![];
    for (k, v) in entries {
        match k.text() {
            Some(name) => vars.push(Var { name: name.to_string(), value: v.clone(), from: from.clone() }),
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
fn strip_location(msg: &str) -> String {
    let first = msg.lines().next().unwrap_or(msg);
    first.rfind(" at line ").map_or(first, |i| &first[..i]).to_string()
}

// ---------------------------------------------------------------------------------------------
// The mapping to kprov.

/// Everything the output lists as not imported.
#[derive(Debug, Default)]
struct Notes {
    lines: Vec<String>,
    /// variable → (where it is set, why it has no equivalent)
    vars: BTreeMap<String, (Vec<String>, Option<String>)>,
}

impl Notes {
    fn var(&mut self, name: &str, origin: String, reason: Option<String>) {
        let (origins, why) = self.vars.entry(name.to_string()).or_default();
        if !origins.contains(&origin) {
            origins.push(origin);
        }
        if why.is_none() {
            *why = reason;
        }
    }

    fn count(&self) -> usize {
        self.lines.len() + self.vars.len()
    }

    fn render(&self) -> Vec<String> {
        let vars = self.vars.iter().map(|(name, (origins, why))| {
            let mut s = format!("{name} ({})", origins.join(", "));
            if let Some(w) = why {
                s.push_str(": ");
                s.push_str(w);
            }
            s
        });
        self.lines.iter().cloned().chain(vars).collect()
    }
}

/// Why a variable has no kprov equivalent, when there is more to say than its name.
fn reason(var: &str) -> Option<&'static str> {
    Some(match var {
        "ip" | "access_ip" => "kprov uses one address per host (its ansible_host), for SSH and for the node",
        "etcd_member_name" => "etcd runs stacked on the control planes, its members named after the nodes",
        "ansible_password" | "ansible_ssh_pass" | "ansible_ssh_password" => "passwords are never copied; kprov logs in with keys or an ssh-agent",
        "ansible_become_password" | "ansible_become_pass" | "ansible_sudo_pass" => {
            "passwords are never copied; put the sudo password in an environment variable and name it in ssh.become_password_env"
        }
        "ansible_ssh_common_args" | "ansible_ssh_extra_args" => "use ssh.bastion or ~/.ssh/config (which kprov reads)",
        "ansible_python_interpreter" => "kprov needs no Python on the hosts",
        "ansible_become_user" | "ansible_become_method" => "kprov becomes root with sudo",
        "ansible_connection" => "kprov always connects over SSH",
        "kube_apiserver_port" => "the API server listens on 6443",
        _ => return None,
    })
}

/// One host of the output.
#[derive(Debug)]
struct OutHost {
    name: String,
    address: String,
    control_plane: bool,
    worker: bool,
    /// user, port, private_key, become: as YAML scalars.
    ssh: [Option<String>; 4],
}

const SSH_KEYS: [&str; 4] = ["user", "port", "private_key", "become"];

struct Conv<'a> {
    a: &'a Ansible,
    format: Format,
    file: &'a str,
    depths: HashMap<String, usize>,
    member_sets: HashMap<String, HashSet<String>>,
    notes: Notes,
    errs: Vec<Diagnostic>,
}

impl<'a> Conv<'a> {
    fn new(a: &'a Ansible, format: Format, file: &'a str) -> Self {
        let member_sets = a.groups.iter().map(|g| (g.name.clone(), a.members(&g.name).into_iter().collect())).collect();
        Conv { a, format, file, depths: a.depths(), member_sets, notes: Notes::default(), errs: vec![] }
    }

    fn is_member(&self, group: &str, host: &str) -> bool {
        group == "all" || self.member_sets.get(group).is_some_and(|s| s.contains(host))
    }

    /// A host's variables after Ansible's precedence: all, then groups by depth and name, then
    /// the host's own.
    fn effective(&self, host: &str) -> BTreeMap<String, Var> {
        let mut groups: Vec<&Group> = self.a.groups.iter().filter(|g| self.is_member(&g.name, host)).collect();
        groups.sort_by_key(|g| (self.depths.get(&g.name).copied().unwrap_or(1), g.name.clone()));
        let mut vars = BTreeMap::new();
        for v in groups.iter().flat_map(|g| g.vars.iter()).chain(self.a.host(host).into_iter().flat_map(|h| h.vars.iter())) {
            vars.insert(v.name.clone(), v.clone());
        }
        vars
    }

    fn all_name(&self) -> &'static str {
        match self.format {
            Format::Ini => "[all]",
            Format::Yaml => "all: hosts:",
        }
    }

    fn run(&mut self) -> Option<Imported> {
        let cps = self.control_planes()?;
        let workers = if self.a.find_group("kube_node").is_some() { self.a.members("kube_node") } else { vec![] };
        let mut order: Vec<String> = cps.clone();
        order.extend(workers.iter().filter(|w| !cps.contains(w)).cloned());
        self.undefined_hosts(&order);
        if !self.errs.is_empty() {
            return None;
        }
        let effective: Vec<BTreeMap<String, Var>> = order.iter().map(|h| self.effective(h)).collect();
        let mut hosts = vec![];
        let mut names: HashMap<String, &str> = HashMap::new();
        let mut addresses: HashMap<String, Option<Place>> = HashMap::new();
        for (h, vars) in order.iter().zip(&effective) {
            let Some(out) = self.host(h, vars, cps.contains(h), workers.contains(h)) else { continue };
            let at = self.a.host(h).and_then(|e| e.at);
            if let Some(first) = names.insert(out.name.clone(), h) {
                self.errs.push(
                    Diagnostic::error("kprov::import::host_name", format!("hosts `{first}` and `{h}` would both be the node `{}`", out.name))
                        .label(at, "second host")
                        .help("kprov node names are lowercase letters, digits and '-'; rename one of the hosts"),
                );
            }
            let addr_at = ["ansible_host", "ansible_ssh_host", "ip"]
                .iter()
                .find_map(|k| vars.get(*k).filter(|v| v.value.text().is_some()))
                .and_then(|v| v.value.at)
                .or(at);
            if let Some(first) = addresses.insert(out.address.to_ascii_lowercase(), addr_at) {
                self.errs.push(
                    Diagnostic::error("kprov::import::duplicate_address", format!("address `{}` is used by two hosts", out.address))
                        .label(addr_at, "second use")
                        .label(first, "first use")
                        .help("each host needs its own address (ansible_host); two entries for one machine would configure it twice"),
                );
            }
            hosts.push(out);
        }
        if !self.errs.is_empty() {
            return None;
        }
        self.var_notes(&order, &effective, &hosts);
        let bastion = self.bastion();
        let cluster = self.cluster(&order, &effective, &hosts);
        self.structural_notes(&order, &cps);
        if !self.errs.is_empty() {
            return None;
        }
        let ssh = ssh_defaults(&mut hosts);
        let yaml = self.emit(&cluster, &ssh, bastion.as_deref(), &hosts);
        Some(Imported {
            yaml,
            hosts: hosts.len(),
            control_planes: hosts.iter().filter(|h| h.control_plane).count(),
            workers: hosts.iter().filter(|h| h.worker && !h.control_plane).count(),
            not_imported: self.notes.count(),
        })
    }

    /// The hosts of kube_control_plane; an error when there are none.
    fn control_planes(&mut self) -> Option<Vec<String>> {
        let first_line = || Some(Place { offset: 0, len: 1 });
        let Some(group) = self.a.find_group("kube_control_plane") else {
            let legacy = ["kube-master", "kube_master"].iter().find_map(|n| self.a.find_group(n));
            let mut d = Diagnostic::error("kprov::import::no_control_plane", "no kube_control_plane group").label(
                legacy.and_then(|g| g.at).or(self.a.groups_at).or_else(first_line),
                if legacy.is_some() { "the old name of kube_control_plane" } else { "the groups start here" },
            );
            let names: Vec<&str> = self.a.groups.iter().map(|g| g.name.as_str()).collect();
            let how = match self.format {
                Format::Ini => "add a [kube_control_plane] section listing them",
                Format::Yaml => "add all: children: kube_control_plane: hosts: listing them",
            };
            d = match (legacy, did_you_mean("kube_control_plane", names.iter().copied())) {
                (Some(g), _) => d.help(format!(
                    "`{}` is the old name of kube_control_plane (as kube-node and k8s-cluster are of kube_node and k8s_cluster): rename the groups",
                    g.name
                )),
                (None, Some(m)) => d.help(format!("did you mean `{m}`? Kubespray runs the API server on the hosts of kube_control_plane; {how}")),
                (None, None) => d.help(format!("Kubespray runs the API server on the hosts of kube_control_plane; {how}")),
            };
            self.errs.push(d);
            return None;
        };
        let cps = self.a.members("kube_control_plane");
        if cps.is_empty() {
            self.errs.push(
                Diagnostic::error("kprov::import::no_control_plane", "kube_control_plane lists no hosts")
                    .label(group.at.or_else(first_line), "empty group")
                    .help("list the hosts that run the API server under kube_control_plane; the first one runs kubeadm init"),
            );
            return None;
        }
        Some(cps)
    }

    /// Hosts named in kube_control_plane or kube_node but defined nowhere, when the inventory
    /// defines its hosts in all.
    fn undefined_hosts(&mut self, order: &[String]) {
        if !self.a.hosts.iter().any(|h| h.in_all) {
            return;
        }
        let defined: Vec<&str> = self.a.hosts.iter().filter(|h| h.in_all || h.has_vars).map(|h| h.name.as_str()).collect();
        for h in order {
            let Some(e) = self.a.host(h) else { continue };
            if e.in_all || e.has_vars {
                continue;
            }
            let example = match self.format {
                Format::Ini => format!("add it to [all] with its address: {h} ansible_host=10.0.0.10"),
                Format::Yaml => format!("add it under all: hosts: with its address: {h}: {{ ansible_host: 10.0.0.10 }}"),
            };
            self.errs.push(
                Diagnostic::error(
                    "kprov::import::undefined_host",
                    format!("host `{h}` is in {} but not defined in {}", e.first_group, self.all_name()),
                )
                .label(e.at, "not defined")
                .help(match did_you_mean(h, defined.iter().copied()) {
                    Some(m) => format!("did you mean `{m}`? Otherwise {example}"),
                    None => example,
                }),
            );
        }
    }

    /// A scalar variable, or an error when it is a mapping or a list.
    fn scalar<'v>(&mut self, vars: &'v BTreeMap<String, Var>, keys: &[&str]) -> Option<(&'v str, &'v Var)> {
        for k in keys {
            let Some(v) = vars.get(*k) else { continue };
            match &v.value.kind {
                Kind::Scalar(s) if !s.is_empty() => return Some((s, v)),
                Kind::Null | Kind::Scalar(_) => {}
                Kind::Map(_) | Kind::Seq(_) => self.errs.push(
                    Diagnostic::error("kprov::import::value", format!("`{k}` must be a single value"))
                        .label(v.value.at, "a mapping or a list")
                        .help(format!("write {k}: VALUE")),
                ),
            }
        }
        None
    }

    fn host(&mut self, h: &str, vars: &BTreeMap<String, Var>, control_plane: bool, worker: bool) -> Option<OutHost> {
        let entry_at = self.a.host(h).and_then(|e| e.at);
        let name = node_name(h);
        if name.is_empty() {
            self.errs.push(
                Diagnostic::error("kprov::import::host_name", format!("`{h}` cannot be made a node name"))
                    .label(entry_at, "no letters or digits")
                    .help("Kubernetes node names are lowercase letters, digits and '-'; rename the host"),
            );
            return None;
        }
        if name != h {
            self.notes.lines.push(format!("host name {h}: the node is named {name} (node names are lowercase letters, digits and '-')"));
        }
        let (address, addr_at) = match self.scalar(vars, &["ansible_host", "ansible_ssh_host", "ip"]) {
            Some((s, v)) => (s.to_string(), v.value.at),
            None => (h.to_string(), entry_at),
        };
        if let Some((message, help)) = kprov_verdict(None, &address) {
            self.errs.push(Diagnostic::error("kprov::import::address", message).label(addr_at, format!("the address of {h}")).help(help));
        }
        let user = self.scalar(vars, &["ansible_user", "ansible_ssh_user"]).map(|(s, _)| yaml_str(s));
        let port = match self.scalar(vars, &["ansible_port", "ansible_ssh_port"]) {
            Some((s, v)) => match s.trim().parse::<u16>() {
                Ok(p) if p > 0 => Some(p.to_string()),
                _ => {
                    self.errs.push(
                        Diagnostic::error("kprov::import::port", format!("`{s}` is not a port"))
                            .label(v.value.at, format!("the SSH port of {h}"))
                            .help("an SSH port is a number from 1 to 65535"),
                    );
                    None
                }
            },
            None => None,
        };
        let key = self.scalar(vars, &["ansible_ssh_private_key_file", "ansible_private_key_file"]).map(|(s, _)| yaml_str(s));
        let become_ = match self.scalar(vars, &["ansible_become"]) {
            Some((s, v)) => match parse_bool(s) {
                Some(b) => Some(b.to_string()),
                None => {
                    self.errs.push(
                        Diagnostic::error("kprov::import::become", format!("`{s}` is not true or false"))
                            .label(v.value.at, format!("ansible_become of {h}"))
                            .help("write ansible_become=true or ansible_become=false"),
                    );
                    None
                }
            },
            None => None,
        };
        Some(OutHost { name, address, control_plane, worker, ssh: [user, port, key, become_] })
    }

    /// The variables of the imported hosts (and of groups none of them is in) that kprov has no
    /// equivalent for.
    fn var_notes(&mut self, order: &[String], effective: &[BTreeMap<String, Var>], hosts: &[OutHost]) {
        for ((h, vars), out) in order.iter().zip(effective).zip(hosts) {
            for (name, var) in vars {
                let consumed = SSH_VARS.contains(&name.as_str())
                    || CLUSTER_VARS.contains(&name.as_str())
                    || (name == "ansible_connection" && var.value.text().is_some_and(|c| matches!(c, "ssh" | "smart" | "paramiko")))
                    || ((name == "ip" || name == "access_ip") && var.value.text() == Some(out.address.as_str()));
                if !consumed {
                    let origin = match &var.from {
                        Origin::Host(_) => h.clone(),
                        g => g.label(),
                    };
                    self.notes.var(name, origin, reason(name).map(str::to_string));
                }
            }
        }
        for g in &self.a.groups {
            if g.vars.is_empty() || order.iter().any(|h| self.is_member(&g.name, h)) {
                continue;
            }
            for v in &g.vars {
                if g.name == "bastion" && SSH_VARS.contains(&v.name.as_str()) {
                    continue;
                }
                self.notes.var(&v.name, v.from.label(), reason(&v.name).map(str::to_string));
            }
        }
    }

    /// The first host of the bastion group → ssh.bastion (a YAML flow mapping).
    fn bastion(&mut self) -> Option<String> {
        let members = self.a.find_group("bastion").map(|_| self.a.members("bastion")).unwrap_or_default();
        let (first, rest) = members.split_first()?;
        if !rest.is_empty() {
            self.notes.lines.push(format!("bastion hosts after the first ({}): kprov goes through one jump host", rest.join(", ")));
        }
        let vars = self.effective(first);
        let mut fields = vec![];
        let address = self.scalar(&vars, &["ansible_host", "ansible_ssh_host"]).map_or_else(|| first.clone(), |(s, _)| s.to_string());
        fields.push(format!("address: {}", yaml_str(&address)));
        if let Some((u, _)) = self.scalar(&vars, &["ansible_user", "ansible_ssh_user"]) {
            fields.push(format!("user: {}", yaml_str(u)));
        }
        if let Some((p, v)) = self.scalar(&vars, &["ansible_port", "ansible_ssh_port"]) {
            match p.trim().parse::<u16>() {
                Ok(n) if n > 0 => fields.push(format!("port: {n}")),
                _ => self.errs.push(
                    Diagnostic::error("kprov::import::port", format!("`{p}` is not a port"))
                        .label(v.value.at, format!("the SSH port of the bastion {first}"))
                        .help("an SSH port is a number from 1 to 65535"),
                ),
            }
        }
        if let Some((k, _)) = self.scalar(&vars, &["ansible_ssh_private_key_file", "ansible_private_key_file"]) {
            fields.push(format!("private_key: {}", yaml_str(k)));
        }
        for (name, var) in &vars {
            if !SSH_VARS.contains(&name.as_str()) && !CLUSTER_VARS.contains(&name.as_str()) && matches!(var.from, Origin::Host(_)) {
                self.notes.var(name, format!("bastion {first}"), reason(name).map(str::to_string));
            }
        }
        Some(format!("{{ {} }}", fields.join(", ")))
    }

    /// Cluster settings from the Kubespray variables every imported host agrees on.
    fn cluster(&mut self, order: &[String], effective: &[BTreeMap<String, Var>], hosts: &[OutHost]) -> Vec<String> {
        let mut lines = vec![];
        let mut agreed: BTreeMap<&str, Node> = BTreeMap::new();
        for var in CLUSTER_VARS {
            let values: Vec<Option<&Var>> = effective.iter().map(|vars| vars.get(*var).filter(|v| !matches!(v.value.kind, Kind::Null))).collect();
            let set: Vec<&Var> = values.iter().flatten().copied().collect();
            let Some(first) = set.first() else { continue };
            let origins = || {
                let mut o: Vec<String> = vec![];
                for (h, v) in order.iter().zip(&values) {
                    if let Some(v) = v {
                        let label = match &v.from {
                            Origin::Host(_) => h.clone(),
                            g => g.label(),
                        };
                        if !o.contains(&label) {
                            o.push(label);
                        }
                    }
                }
                o
            };
            if set.len() < values.len() || set.iter().any(|v| v.value.canonical() != first.value.canonical()) {
                for o in origins() {
                    self.notes.var(var, o, Some("not the same on every host; kprov's cluster settings apply to the whole cluster".into()));
                }
                continue;
            }
            agreed.insert(var, first.value.clone());
        }
        let note = |notes: &mut Notes, var: &str, why: String| {
            let origin = effective.iter().find_map(|vars| vars.get(var)).map(|v| match &v.from {
                Origin::Host(h) => h.clone(),
                g => g.label(),
            });
            notes.var(var, origin.unwrap_or_default(), Some(why));
        };
        if let Some(n) = agreed.get("cluster_name") {
            match n.text() {
                Some(name) => {
                    lines.push(format!("name: {}", yaml_str(name)));
                    let dns_domain = effective.iter().any(|vars| vars.contains_key("dns_domain"));
                    if name != "cluster.local" && !dns_domain {
                        note(
                            &mut self.notes,
                            "cluster_name",
                            "imported as cluster.name, but Kubespray also made it the cluster's DNS domain; kprov's is cluster.local".into(),
                        );
                    }
                }
                None => note(&mut self.notes, "cluster_name", "not a single value".into()),
            }
        }
        let settings = [
            ("kube_version", "kubernetes_version"),
            ("kube_pods_subnet", "pod_cidr"),
            ("kube_service_addresses", "service_cidr"),
            ("kube_network_plugin", "cni"),
        ];
        for (var, key) in settings {
            let Some(n) = agreed.get(var) else { continue };
            let Some(text) = n.text() else {
                note(&mut self.notes, var, "not a single value".into());
                continue;
            };
            let value = if key == "kubernetes_version" {
                let v = text.trim().trim_start_matches('v');
                format!("\"{}\"", v.replace(['"', '\\'], ""))
            } else {
                yaml_str(text.trim())
            };
            let line = format!("{key}: {value}");
            match kprov_verdict(Some(&line), "10.0.0.1") {
                None => lines.push(line),
                Some((message, help)) => note(&mut self.notes, var, format!("kprov says: {message} ({help})")),
            }
        }
        if let Some(n) = agreed.get("container_manager")
            && n.text() != Some("containerd")
        {
            note(&mut self.notes, "container_manager", "kprov installs containerd only".into());
        }
        // The API endpoint: Kubespray's external load balancer, else the first control plane.
        let lb_host = agreed.get("apiserver_loadbalancer_domain_name").and_then(|n| n.text().map(str::to_string));
        let lb = agreed.get("loadbalancer_apiserver");
        let lb_address = lb.and_then(|n| n.get("address")).and_then(|n| n.text().map(str::to_string));
        let lb_port = lb.and_then(|n| n.get("port")).and_then(|n| n.text().map(str::to_string));
        let cps: Vec<&OutHost> = hosts.iter().filter(|h| h.control_plane).collect();
        let mut endpoint = None;
        if let Some(host) = lb_host.or(lb_address) {
            let ep = with_port(&host, lb_port.as_deref().unwrap_or("6443"));
            let line = format!("control_plane_endpoint: {}", yaml_str(&ep));
            match kprov_verdict(Some(&line), "10.0.0.1") {
                None => {
                    lines.push("# Kubespray's external load balancer (apiserver_loadbalancer_domain_name / loadbalancer_apiserver)".into());
                    lines.push(line);
                    endpoint = Some(ep);
                }
                Some((message, help)) => {
                    let var = if agreed.contains_key("apiserver_loadbalancer_domain_name") {
                        "apiserver_loadbalancer_domain_name"
                    } else {
                        "loadbalancer_apiserver"
                    };
                    note(&mut self.notes, var, format!("kprov says: {message} ({help})"));
                }
            }
        } else if lb.is_some() {
            note(&mut self.notes, "loadbalancer_apiserver", "no address in it".into());
        }
        if endpoint.is_none()
            && cps.len() > 1
            && let Some(first) = cps.first()
        {
            lines.push(format!("# {} control planes need one stable API address in front of them: replace this (the first", cps.len()));
            lines.push("# control plane's address) with your load balancer or VIP, e.g. k8s-api.example.lan:6443.".into());
            lines.push(format!("control_plane_endpoint: {}", yaml_str(&with_port(&first.address, "6443"))));
        }
        lines
    }

    fn structural_notes(&mut self, order: &[String], cps: &[String]) {
        let bastions = self.a.find_group("bastion").map(|_| self.a.members("bastion")).unwrap_or_default();
        let left: Vec<String> = self
            .a
            .hosts
            .iter()
            .filter(|h| !order.contains(&h.name) && !bastions.contains(&h.name))
            .map(|h| {
                let groups: Vec<&str> = self
                    .a
                    .groups
                    .iter()
                    .filter(|g| !matches!(g.name.as_str(), "all" | "ungrouped") && self.is_member(&g.name, &h.name))
                    .map(|g| g.name.as_str())
                    .collect();
                if groups.is_empty() { h.name.clone() } else { format!("{} (in {})", h.name, groups.join(", ")) }
            })
            .collect();
        if !left.is_empty() {
            self.notes.lines.push(format!("hosts in neither kube_control_plane nor kube_node: {}", left.join(", ")));
        }
        if self.a.find_group("etcd").is_some() {
            let etcd = self.a.members("etcd");
            let mut a: Vec<&String> = etcd.iter().collect();
            let mut b: Vec<&String> = cps.iter().collect();
            a.sort();
            b.sort();
            if !etcd.is_empty() && a != b {
                self.notes.lines.push(format!(
                    "etcd group ({}): kprov runs etcd stacked on every control plane, so its members will be {}",
                    etcd.join(", "),
                    cps.join(", ")
                ));
            }
        }
        for g in &self.a.groups {
            if KNOWN_GROUPS.contains(&g.name.as_str()) {
                continue;
            }
            let members = self.a.members(&g.name);
            if !members.is_empty() {
                self.notes.lines.push(format!("group {} ({}): kprov has no equivalent", g.name, members.join(", ")));
            }
        }
    }

    fn emit(&self, cluster: &[String], ssh: &[Option<String>; 4], bastion: Option<&str>, hosts: &[OutHost]) -> String {
        let mut out = String::new();
        let form = match self.format {
            Format::Ini => "INI",
            Format::Yaml => "YAML",
        };
        let file = self.file.replace(['\n', '\r'], " ");
        out.push_str(&format!("# kprov inventory imported from the Kubespray {form} inventory {file}\n"));
        out.push_str("# by `kprov import kubespray`. Check it with `kprov validate`; see docs/inventory.md.\n");
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
            let mut fields = vec![format!("name: {}", h.name), format!("address: {}", yaml_str(&h.address)), format!("roles: {roles}")];
            let overrides: Vec<String> = SSH_KEYS.iter().zip(&h.ssh).filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}: {v}"))).collect();
            if !overrides.is_empty() {
                fields.push(format!("ssh: {{ {} }}", overrides.join(", ")));
            }
            out.push_str(&format!("  - {{ {} }}\n", fields.join(", ")));
        }
        out
    }
}

/// The ssh defaults: a value every host has, the same, becomes the default; when every host has
/// one but they differ, the most common becomes the default and the others stay per-host
/// overrides. When some host has none, the value cannot be a default (that host would inherit
/// it) and stays on the hosts that set it.
fn ssh_defaults(hosts: &mut [OutHost]) -> [Option<String>; 4] {
    let mut defaults: [Option<String>; 4] = Default::default();
    for (i, default) in defaults.iter_mut().enumerate() {
        if hosts.is_empty() || hosts.iter().any(|h| h.ssh[i].is_none()) {
            continue;
        }
        let mut counts: Vec<(String, usize)> = vec![];
        for h in hosts.iter() {
            let Some(v) = &h.ssh[i] else { continue };
            match counts.iter_mut().find(|(x, _)| x == v) {
                Some((_, n)) => *n += 1,
                None => counts.push((v.clone(), 1)),
            }
        }
        // max_by_key returns the last maximum; reversed, ties go to the first host's value.
        let Some((common, _)) = counts.into_iter().rev().max_by_key(|(_, n)| *n) else { continue };
        for h in hosts.iter_mut() {
            if h.ssh[i].as_ref() == Some(&common) {
                h.ssh[i] = None;
            }
        }
        *default = Some(common);
    }
    defaults
}

/// `host` + `port` as an endpoint; IPv6 addresses in brackets.
fn with_port(host: &str, port: &str) -> String {
    if host.contains(':') && !host.starts_with('[') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// An Ansible inventory name → a Kubernetes node name (RFC 1123 label).
fn node_name(h: &str) -> String {
    let mapped: String = h.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    let trimmed = mapped.trim_matches('-');
    let short: String = trimmed.chars().take(63).collect();
    short.trim_end_matches('-').to_string()
}

/// Ansible's booleans.
fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" | "y" | "t" => Some(true),
        "false" | "no" | "off" | "0" | "n" | "f" => Some(false),
        _ => None,
    }
}

/// kprov's own verdict on a cluster setting (`key: value`) or a host address: None when its
/// inventory parser accepts them, else its message and hint.
fn kprov_verdict(cluster_line: Option<&str>, address: &str) -> Option<(String, String)> {
    let mut text = String::from("cluster:\n  name: trial\n");
    if let Some(l) = cluster_line {
        text.push_str(&format!("  {l}\n"));
    }
    text.push_str(&format!("hosts:\n  - {{ name: trial, address: {}, roles: [control-plane] }}\n", yaml_str(address)));
    let loaded = inventory::parse(&text, "trial");
    let d = loaded.errors().next()?;
    Some((d.message.clone(), d.help.clone().unwrap_or_default()))
}

/// A YAML scalar: plain when that reads back as the same string, else double-quoted.
fn yaml_str(s: &str) -> String {
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
fn wrap(text: &str, width: usize) -> Vec<String> {
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

    #[test]
    fn host_lines_split_like_ansible() {
        let t = tokenize("node1 ansible_host=1.2.3.4 args='-o a=b'  # ip=10.0.0.1", 100).unwrap();
        let texts: Vec<&str> = t.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(texts, ["node1", "ansible_host=1.2.3.4", "args=-o a=b"]);
        assert_eq!(t[1].at, Place { offset: 106, len: 20 });
        assert!(tokenize("node1 x='open", 0).is_err());
    }

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
    fn node_names() {
        assert_eq!(node_name("node1"), "node1");
        assert_eq!(node_name("Node_1.example.com"), "node-1-example-com");
        assert_eq!(node_name("10.0.0.1"), "10-0-0-1");
        assert_eq!(node_name("__"), "");
    }

    #[test]
    fn defaults_take_the_common_value() {
        let host = |user: Option<&str>| OutHost {
            name: "n".into(),
            address: "a".into(),
            control_plane: false,
            worker: true,
            ssh: [user.map(String::from), None, None, None],
        };
        let mut hosts = vec![host(Some("ubuntu")), host(Some("pi")), host(Some("ubuntu"))];
        let d = ssh_defaults(&mut hosts);
        assert_eq!(d[0].as_deref(), Some("ubuntu"));
        assert_eq!(hosts.iter().map(|h| h.ssh[0].as_deref()).collect::<Vec<_>>(), [None, Some("pi"), None]);
        let mut hosts = vec![host(Some("ubuntu")), host(None)];
        assert_eq!(ssh_defaults(&mut hosts)[0], None);
        assert_eq!(hosts[0].ssh[0].as_deref(), Some("ubuntu"));
    }

    #[test]
    fn wrapping() {
        assert_eq!(wrap("a b c", 3), ["a b", "c"]);
        assert_eq!(wrap("", 10), [""]);
    }
}
