//! The Kubespray import: a Kubespray inventory (the YAML `hosts.yaml` or the INI
//! `inventory.ini`) converted into a kprov inventory. `kprov import kubespray` (in `cli`) calls it.
//!
//! Both forms are read into one model of the Ansible inventory (groups with hosts, children and
//! vars; hosts with vars; every name and value with its place in the file), which is then mapped:
//! `kube_control_plane` → `control-plane`, `kube_node` → `worker`, `ansible_host` → `address`,
//! `ip` → `internal_address` (the node's address inside the cluster) when it differs, `ansible_user`/`ansible_port`/`ansible_ssh_private_key_file`/`ansible_become` →
//! `ssh` (defaults when every host agrees, per-host overrides otherwise), the `bastion` group →
//! `ssh.bastion`, and the few cluster variables kprov has an equivalent for → `cluster`.
//! Everything else is listed in a "not imported" comment at the top of the output, never
//! dropped silently. The output is checked with kprov's own inventory parser before it is
//! written; errors are diagnostics with the file, line and a hint, and exit 1.
//!
//! Real inventories are read as Ansible reads them: Kubespray's old group names (`kube-master`,
//! `kube-node`, `k8s-cluster`, `calico-rr`) are the same groups as today's wherever they appear,
//! mixed or not (and the output's header says so); a leading byte-order mark is dropped; a group
//! that contains itself, directly or through its children, is an error naming the loop, worded
//! as Ansible words it; a host variable kprov imports that one host is given twice with different
//! values is a warning naming both places and the one Ansible keeps (the later).
//!
//! The stages are files: [`detect`] picks the form, `ini.rs` / `yaml.rs` read it into the model
//! (`model.rs`, host patterns in `patterns.rs`), `convert.rs` maps it and `output.rs` writes the YAML.

mod convert;
mod ini;
mod model;
mod output;
mod patterns;
mod yaml;

use std::path::Path;
use std::sync::Arc;

use crate::inventory::{self, Diagnostic, Place};

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

/// Read the file as UTF-8 text, within the inventory size limit.
pub fn read(path: &Path, name: &str) -> Result<String, Box<Diagnostic>> {
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
pub struct Imported {
    pub yaml: String,
    pub hosts: usize,
    pub control_planes: usize,
    /// Hosts with the worker role, control planes among them.
    pub workers: usize,
    /// Hosts with both roles.
    pub both: usize,
    pub not_imported: usize,
    /// Worth saying, not wrong (a host given two addresses, …), with their places.
    pub warnings: Vec<Diagnostic>,
}

impl Imported {
    /// "3 hosts: 3 control planes, 3 workers (all three both)": roles are counted, not
    /// exclusive roles.
    pub fn summary(&self) -> String {
        let n = |k: usize, what: &str| format!("{k} {what}{}", if k == 1 { "" } else { "s" });
        let both = match self.both {
            0 => String::new(),
            b if b == self.hosts && b == 1 => " (both roles)".into(),
            b if b == self.hosts && b == 2 => " (each both)".into(),
            b if b == self.hosts => format!(" (all {} both)", number(b)),
            b => format!(" ({} of them both)", number(b)),
        };
        format!("{}: {}, {}{both}", n(self.hosts, "host"), n(self.control_planes, "control plane"), n(self.workers, "worker"))
    }
}

/// Small numbers in words, as a sentence says them.
fn number(n: usize) -> String {
    const WORDS: [&str; 11] = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"];
    WORDS.get(n).map_or_else(|| n.to_string(), |w| w.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Yaml,
    Ini,
}

/// Kubespray inventory text → kprov inventory YAML; `name` is shown in diagnostics.
pub fn convert(text: &str, name: &str) -> Result<Imported, Vec<Diagnostic>> {
    // Editors on Windows write a byte-order mark; neither form has a use for it, and left in it
    // would be part of the first section header, host or key.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let src = Arc::new(text.to_string());
    let finish = |diags: Vec<Diagnostic>| diags.into_iter().map(|d| d.in_file(name, &src)).collect::<Vec<_>>();
    let mut errs = vec![];
    let ansible = match detect(name, text) {
        Ok(Format::Ini) => Some((ini::parse_ini(text, &mut errs), Format::Ini)),
        Ok(Format::Yaml) => yaml::parse_yaml(text, &mut errs).map(|a| (a, Format::Yaml)),
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
    let mut conv = convert::Conv::new(&ansible, format, name);
    match conv.run() {
        Some(mut imported) if conv.errs.is_empty() => {
            imported.warnings = finish(std::mem::take(&mut imported.warnings));
            Ok(imported)
        }
        _ => Err(finish(conv.errs)),
    }
}

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
