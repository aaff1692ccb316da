//! From YAML text to a validated [`Inventory`], collecting every problem on the way.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use serde::Serialize;
use serde_saphyr::{Location, Spanned};

use super::diagnostic::{Diagnostic, Place, did_you_mean};
use super::model::{BastionSpec, HostKeyPolicy, HostSpec, InventoryFile, MirrorsSpec, PreflightSpec, RaspberryPiSpec, Role, SshSpec, TaintSpec};
use super::{Loaded, MAX_DEPTH, MAX_SIZE};

pub const SUPPORTED_MINORS: std::ops::RangeInclusive<u32> = 31..=34;
pub const DEFAULT_MINOR: u32 = 34;
pub const CNIS: &[&str] = &["calico", "flannel", "cilium", "weave", "canal", "kube-router"];

/// A validated inventory. Only [`parse`](super::parse) makes one.
#[derive(Debug, Clone, Serialize)]
pub struct Inventory {
    /// Where it was read from (as given), for messages and saved plans.
    pub name: String,
    /// The text it was parsed from, for digests.
    #[serde(skip)]
    pub source: Arc<String>,
    pub cluster: Cluster,
    pub hosts: Vec<Host>,
    pub mirrors: MirrorsSpec,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    pub name: String,
    /// "1.34"
    pub kubernetes_version: String,
    /// "v1.34.2" when a patch release is pinned.
    pub kubernetes_patch_version: Option<String>,
    pub pod_cidr: IpNet,
    pub service_cidr: IpNet,
    pub cni: String,
    pub cni_manifest: Option<String>,
    pub cni_manifest_sha256: Option<String>,
    pub control_plane_endpoint: Option<String>,
    pub advertise_address: Option<String>,
    pub container_runtime: String,
    pub fetch_admin_conf: Option<PathBuf>,
    pub smoke_test: bool,
    pub preflight: PreflightSpec,
    /// kubeadm, kubelet and kube-proxy settings (`cluster.kubeadm`, `cluster.kubelet`,
    /// `cluster.kube_proxy`).
    pub kube: crate::kube_settings::KubeSettings,
}

#[derive(Debug, Clone, Serialize)]
pub struct Host {
    pub name: String,
    /// Where kprov connects (SSH).
    pub address: String,
    /// The node's IP inside the cluster, when known: `internal_address`, else `address` when
    /// that is an IP. None only for a worker reached by DNS name (its kubelet picks its IP).
    pub internal_address: Option<String>,
    pub roles: Vec<Role>,
    pub ssh: SshSettings,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    /// A control plane's API server address when it is not `address` (always an IP).
    pub advertise_address: Option<String>,
    pub raspberry_pi: RaspberryPiSpec,
    /// KubeletConfiguration fields for this node over the cluster's (`hosts[].kubelet`).
    pub kubelet: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Taint {
    pub key: String,
    pub value: Option<String>,
    pub effect: String,
}

impl Host {
    pub fn is_control_plane(&self) -> bool {
        self.roles.contains(&Role::ControlPlane)
    }

    pub fn is_worker(&self) -> bool {
        self.roles.contains(&Role::Worker)
    }
}

/// SSH settings of one host: the defaults merged with its overrides.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SshSettings {
    pub user: String,
    /// Whether `user` was written in the inventory (else ~/.ssh/config may supply it).
    pub user_explicit: bool,
    pub port: u16,
    pub port_explicit: bool,
    pub identity_files: Vec<PathBuf>,
    pub agent: bool,
    pub known_hosts: PathBuf,
    pub host_key_policy: HostKeyPolicy,
    pub become_: bool,
    pub become_password_env: Option<String>,
    pub bastion: Option<BastionSpec>,
    pub connect_timeout: Duration,
    pub use_ssh_config: bool,
}

impl Inventory {
    pub fn control_planes(&self) -> impl Iterator<Item = &Host> {
        self.hosts.iter().filter(|h| h.is_control_plane())
    }

    pub fn first_control_plane(&self) -> &Host {
        self.control_planes().next().expect("validation guarantees a control plane")
    }

    /// The API endpoint every node uses: the configured one, else the first control plane.
    pub fn endpoint(&self) -> String {
        self.cluster.control_plane_endpoint.clone().unwrap_or_else(|| format!("{}:6443", self.advertise_address()))
    }

    /// The first control plane's API address: the configured one, else its cluster address.
    pub fn advertise_address(&self) -> String {
        let first = self.first_control_plane();
        self.cluster
            .advertise_address
            .clone()
            .unwrap_or_else(|| first.advertise_address.clone().or_else(|| first.internal_address.clone()).unwrap_or_else(|| first.address.clone()))
    }
}

pub(crate) fn place(loc: &Location) -> Option<Place> {
    if loc.line() == 0 {
        return None;
    }
    let span = loc.span();
    let offset = span.byte_offset()? as usize;
    let len = span.byte_len().map(|l| l as usize).unwrap_or(span.len() as usize).max(1);
    Some(Place { offset, len })
}

/// Scanner errors carry line and column but no byte offset: find it in the source.
pub(crate) fn place_from_line_column(source: &str, loc: &Location) -> Option<Place> {
    let line = usize::try_from(loc.line()).ok()?.checked_sub(1)?;
    let column = usize::try_from(loc.column()).ok()?.saturating_sub(1);
    let mut offset = 0;
    for (i, l) in source.split_inclusive('\n').enumerate() {
        if i == line {
            let within: usize = l.chars().take(column).map(char::len_utf8).sum();
            let len = l[within..].chars().next().map_or(0, char::len_utf8).max(1);
            return Some(Place { offset: offset + within, len });
        }
        offset += l.len();
    }
    None
}

fn at<T>(s: &Spanned<T>) -> Option<Place> {
    place(&s.referenced)
}

pub(crate) fn parse_and_validate(source: &str, name: &str) -> Loaded {
    let src = Arc::new(source.to_string());
    let finish =
        |diagnostics: Vec<Diagnostic>, inventory| Loaded { inventory, diagnostics: diagnostics.into_iter().map(|d| d.in_file(name, &src)).collect() };
    if source.len() > MAX_SIZE {
        return finish(
            vec![Diagnostic::error("kprov::inventory::too_large", format!("the inventory is {} bytes; the limit is {MAX_SIZE}", source.len()))],
            None,
        );
    }
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = MAX_DEPTH;
    budget.max_documents = 1;
    let options = serde_saphyr::options! { budget: Some(budget), with_snippet: false };
    // Every structural problem first (see structure.rs), then the checks of meaning on what is left.
    let found = super::structure::deserialize(source, |text| serde_saphyr::from_str_with_options::<InventoryFile>(text, options.clone()));
    let mut diags = found.diagnostics;
    let Some(file) = found.value else { return finish(diags, None) };
    let mut v = Validator { diags: vec![] };
    let inventory = v.inventory(&file, name, &src);
    diags.extend(v.diags.into_iter().filter(|d| !found.repaired.explains(d)));
    let has_errors = diags.iter().any(Diagnostic::is_error);
    finish(diags, if has_errors { None } else { inventory })
}

/// Turn a serde-saphyr error into a diagnostic with a useful hint.
pub(super) fn yaml_diagnostic(e: &serde_saphyr::Error, source: &str) -> Diagnostic {
    use serde_saphyr::Error as E;
    let mut inner = e;
    while let E::WithSnippet { error, .. } | E::AliasError { error, .. } = inner {
        inner = error;
    }
    let loc = inner.location().or_else(|| e.location());
    let at = loc.as_ref().and_then(|l| place(l).or_else(|| place_from_line_column(source, l)));
    match inner {
        E::SerdeUnknownField { field, expected, .. } => {
            let d = Diagnostic::error("kprov::inventory::unknown_key", format!("unknown key `{field}`")).label(at, "not a key here");
            match did_you_mean(field, expected.iter().copied()) {
                Some(s) => d.help(format!("did you mean `{s}`? Keys allowed here: {}", expected.join(", "))),
                None => d.help(format!("keys allowed here: {}", expected.join(", "))),
            }
        }
        E::SerdeUnknownVariant { variant, expected, .. } => {
            let d =
                Diagnostic::error("kprov::inventory::unknown_value", format!("unknown value `{variant}`")).label(at, "not one of the allowed values");
            match did_you_mean(variant, expected.iter().copied()) {
                Some(s) => d.help(format!("did you mean `{s}`? Allowed: {}", expected.join(", "))),
                None => d.help(format!("allowed: {}", expected.join(", "))),
            }
        }
        E::SerdeMissingField { field, .. } => Diagnostic::error("kprov::inventory::missing_key", format!("missing key `{field}`"))
            .label(at, format!("`{field}` is required in this mapping"))
            .help(match *field {
                "hosts" => "list the hosts: hosts: [{ name: k8s-01, address: 192.168.0.150, roles: [control-plane] }]",
                "name" | "address" | "roles" => "every host needs name, address and roles",
                _ => "see docs/inventory.md for the keys of this section",
            }),
        E::InvalidScalar { ty, .. } => {
            let found = at.and_then(|p| source.get(p.offset..p.offset + p.len)).unwrap_or("this value");
            let want = match *ty {
                t if t.starts_with('u') || t.starts_with('i') => "a whole number",
                "bool" | "boolean" => "true or false",
                "f32" | "f64" => "a number",
                other => other,
            };
            Diagnostic::error("kprov::inventory::wrong_type", format!("expected {want}, found `{found}`"))
                .label(at, format!("not {want}"))
                .help("see docs/inventory.md for the type of each key")
        }
        E::SerdeInvalidType { .. } | E::SerdeInvalidValue { .. } => {
            Diagnostic::error("kprov::inventory::wrong_type", strip_location(&inner.to_string()))
                .label(at, "wrong type")
                .help("see docs/inventory.md for the type of each key; quote values such as versions (\"1.34\")")
        }
        E::DuplicateMappingKey { key, .. } => Diagnostic::error(
            "kprov::inventory::duplicate_key",
            format!("key {} appears twice in the same mapping", key.as_deref().map(|k| format!("`{k}`")).unwrap_or_else(|| "".into())),
        )
        .label(at, "second occurrence")
        .help("YAML keeps only one of them; remove or merge the duplicate"),
        E::Budget { .. } => Diagnostic::error("kprov::inventory::limits", strip_location(&inner.to_string()))
            .label(at, "here")
            .help(format!("inventories may nest at most {MAX_DEPTH} levels and hold one document")),
        _ => Diagnostic::error("kprov::inventory::yaml", format!("YAML syntax error: {}", strip_location(&inner.to_string())))
            .label(at, "here")
            .help("check the indentation and quoting around this place"),
    }
}

/// serde-saphyr appends "at line L column C" to messages; the label already shows it.
fn strip_location(msg: &str) -> String {
    let first = msg.lines().next().unwrap_or(msg);
    match first.rfind(" at line ") {
        Some(i) => first[..i].to_string(),
        None => first.to_string(),
    }
}

struct Validator {
    diags: Vec<Diagnostic>,
}

impl Validator {
    fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn inventory(&mut self, f: &InventoryFile, name: &str, src: &Arc<String>) -> Option<Inventory> {
        let hosts = self.hosts(f);
        let cluster = self.cluster(f, &hosts);
        self.ssh_secrets(&f.ssh);
        self.diags.extend(super::trust::validate(f));
        // What the kubelet and kubeadm themselves refuse (labels, taints, API addresses) and
        // what would break a generated line (mirror URLs), in their own functions below.
        let kubelet_ok = self.node_registration(f, src);
        let mirrors_ok = self.mirror_urls(f);
        let (settings_diags, settings) = super::settings::validate(f, src);
        self.diags.extend(settings_diags);
        let (Some(settings), true, true) = (settings, kubelet_ok, mirrors_ok) else {
            return None;
        };
        let mut cluster = cluster?;
        cluster.kube = settings.settings;
        let mut hosts = hosts?;
        for (h, k) in hosts.iter_mut().zip(settings.host_kubelet) {
            h.kubelet = k;
        }
        Some(Inventory { name: name.to_string(), source: src.clone(), cluster, hosts, mirrors: f.mirrors.clone() })
    }

    fn hosts(&mut self, f: &InventoryFile) -> Option<Vec<Host>> {
        let list = &f.hosts;
        if list.value.is_empty() {
            self.push(
                Diagnostic::error("kprov::inventory::no_hosts", "the inventory lists no hosts")
                    .label(at(list), "empty")
                    .help("add at least one host with roles: [control-plane]"),
            );
            return None;
        }
        let mut ok = true;
        let mut names: BTreeMap<&str, &Spanned<String>> = BTreeMap::new();
        let mut addresses: BTreeMap<String, &Spanned<String>> = BTreeMap::new();
        for h in &list.value {
            let h = &h.value;
            ok &= self.host_name(&h.name);
            ok &= self.address(&h.address);
            if let Some(first) = names.insert(&h.name.value, &h.name) {
                ok = false;
                self.push(
                    Diagnostic::error("kprov::inventory::duplicate_host", format!("host name `{}` is used twice", h.name.value))
                        .label(at(&h.name), "second use")
                        .label(at(first), "first use")
                        .help("host names become Kubernetes node names and must be unique"),
                );
            }
            let key = h.address.value.to_ascii_lowercase();
            if let Some(first) = addresses.insert(key, &h.address) {
                ok = false;
                self.push(
                    Diagnostic::error("kprov::inventory::duplicate_address", format!("address `{}` is used by two hosts", h.address.value))
                        .label(at(&h.address), "second use")
                        .label(at(first), "first use")
                        .help("each host needs its own address; two entries for one machine would configure it twice"),
                );
            }
            if h.roles.value.is_empty() {
                ok = false;
                self.push(
                    Diagnostic::error("kprov::inventory::no_roles", format!("host `{}` has no roles", h.name.value))
                        .label(at(&h.roles), "empty")
                        .help("give it roles: [control-plane] or roles: [worker]"),
                );
            }
            if let Some(ssh) = &h.ssh {
                self.ssh_secrets(ssh);
                if let Some(t) = &ssh.connect_timeout {
                    ok &= self.duration(t).is_some();
                }
            }
        }
        ok &= self.internal_addresses(&list.value);
        let cps: Vec<&HostSpec> = list.value.iter().map(|h| &h.value).filter(|h| h.roles.value.contains(&Role::ControlPlane)).collect();
        if cps.is_empty() {
            ok = false;
            self.push(
                Diagnostic::error("kprov::inventory::no_control_plane", "no host has the control-plane role")
                    .label(at(list), "none of these hosts is a control plane")
                    .help("give the first host roles: [control-plane]; kubeadm init runs there"),
            );
        } else if cps.len().is_multiple_of(2) {
            self.push(
                Diagnostic::warning(
                    "kprov::inventory::even_control_planes",
                    format!("{} control planes: etcd needs a majority, so an even number tolerates no more failures than one less", cps.len()),
                )
                .label(at(&cps[cps.len() - 1].roles), "this control plane adds no fault tolerance")
                .help(format!("use {} or {} control planes", cps.len() - 1, cps.len() + 1)),
            );
        }
        let default_timeout = match &f.ssh.connect_timeout {
            Some(t) => self.duration(t)?,
            None => Duration::from_secs(10),
        };
        if !ok {
            return None;
        }
        Some(
            list.value
                .iter()
                .map(|h| {
                    let h = &h.value;
                    let ssh = effective_ssh(&f.ssh, h.ssh.as_ref(), default_timeout, |t| parse_duration(&t.value).ok());
                    let mut roles = h.roles.value.clone();
                    roles.sort();
                    roles.dedup();
                    Host {
                        name: h.name.value.clone(),
                        address: h.address.value.clone(),
                        internal_address: internal_address(h),
                        roles,
                        ssh,
                        labels: h.labels.iter().map(|(k, v)| (k.clone(), v.value.clone())).collect(),
                        taints: h
                            .taints
                            .iter()
                            .map(|t| Taint {
                                key: t.value.key.value.clone(),
                                value: t.value.value.as_ref().map(|v| v.value.clone()).filter(|v| !v.is_empty()),
                                effect: t.value.effect.value.clone(),
                            })
                            .collect(),
                        advertise_address: h.advertise_address.as_ref().map(|a| a.value.clone()),
                        raspberry_pi: h.raspberry_pi.clone(),
                        kubelet: serde_json::Map::new(),
                    }
                })
                .collect(),
        )
    }

    /// `internal_address`: an IP when given (the kubelet, the API server and etcd bind to it);
    /// required for a control plane whose `address` is a DNS name; unique across hosts (a
    /// clash of two `address`es is reported once, as `duplicate_address`).
    fn internal_addresses(&mut self, hosts: &[Spanned<HostSpec>]) -> bool {
        let mut ok = true;
        let mut seen: BTreeMap<IpAddr, (&str, Option<Place>, bool)> = BTreeMap::new();
        for h in hosts.iter().map(|h| &h.value) {
            let ip = match &h.internal_address {
                Some(a) => match a.value.parse::<IpAddr>() {
                    Ok(ip) if !ip.is_unspecified() => Some((ip, at(a), true)),
                    _ => {
                        ok = false;
                        self.push(
                            Diagnostic::error("kprov::inventory::internal_address", format!("internal_address `{}` is not an IP address", a.value))
                                .label(at(a), "not an IP")
                                .help("internal_address is the node's IP on the cluster network (e.g. 10.0.0.11), which the kubelet, the API server and etcd bind to; a DNS name belongs in address, where kprov connects"),
                        );
                        None
                    }
                },
                None => match h.address.value.parse::<IpAddr>() {
                    Ok(ip) => Some((ip, at(&h.address), false)),
                    Err(_) if h.roles.value.contains(&Role::ControlPlane) && h.advertise_address.is_none() => {
                        ok = false;
                        self.push(
                            Diagnostic::error(
                                "kprov::inventory::internal_address_required",
                                format!("control plane `{}` is reached by the DNS name `{}` and has no internal_address", h.name.value, h.address.value),
                            )
                            .label(at(&h.address), "a DNS name, not an IP")
                            .help(format!(
                                "kubeadm advertises the API server and etcd on an IP (ValidateAPIEndpoint refuses names): add the node's IP on the cluster network, e.g. {{ name: {}, address: {}, internal_address: 10.0.0.11, roles: [control-plane] }} (or advertise_address: IP for the API server alone); kprov keeps connecting to the name, and cluster.control_plane_endpoint may stay a DNS name",
                                h.name.value, h.address.value
                            )),
                        );
                        None
                    }
                    Err(_) => None,
                },
            };
            let Some((ip, place, explicit)) = ip else { continue };
            if let Some((first, first_place, first_explicit)) = seen.insert(ip, (&h.name.value, place, explicit))
                && (explicit || first_explicit)
            {
                ok = false;
                self.push(
                    Diagnostic::error(
                        "kprov::inventory::duplicate_internal_address",
                        format!("`{}` and `{first}` have the same cluster address {ip}", h.name.value),
                    )
                    .label(place, "second use")
                    .label(first_place, "first use")
                    .help("each node needs its own IP on the cluster network (internal_address, else its address)"),
                );
            }
        }
        ok
    }

    fn host_name(&mut self, name: &Spanned<String>) -> bool {
        let n = &name.value;
        let valid = !n.is_empty()
            && n.len() <= 63
            && n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !n.starts_with('-')
            && !n.ends_with('-');
        if !valid {
            let lower = n.to_ascii_lowercase().replace(['_', '.', ' '], "-");
            self.push(
                Diagnostic::error("kprov::inventory::host_name", format!("`{n}` is not a valid node name"))
                    .label(at(name), "invalid name")
                    .help(format!(
                        "Kubernetes node names are lowercase letters, digits and '-', at most 63 characters, starting and ending with a letter or digit{}",
                        if lower != *n && !lower.is_empty() { format!(" (e.g. `{}`)", lower.trim_matches('-')) } else { String::new() }
                    )),
            );
        }
        valid
    }

    fn address(&mut self, addr: &Spanned<String>) -> bool {
        let a = &addr.value;
        let valid = a.parse::<IpAddr>().is_ok()
            || (!a.is_empty()
                && a.len() <= 253
                && a.split('.')
                    .all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') && !l.starts_with('-')));
        if !valid {
            self.push(
                Diagnostic::error("kprov::inventory::address", format!("`{a}` is not an IP address or DNS name"))
                    .label(at(addr), "invalid address")
                    .help("write an IPv4/IPv6 address (192.168.0.150) or a host name (k8s-01.lan); SSH port and user go under ssh:"),
            );
        }
        valid
    }

    fn duration(&mut self, t: &Spanned<String>) -> Option<Duration> {
        match parse_duration(&t.value) {
            Ok(d) => Some(d),
            Err(e) => {
                self.push(
                    Diagnostic::error("kprov::inventory::duration", format!("`{}` is not a duration: {e}", t.value))
                        .label(at(t), "invalid duration")
                        .help("write a number with a unit: 500ms, 10s, 2m"),
                );
                None
            }
        }
    }

    fn ssh_secrets(&mut self, ssh: &SshSpec) {
        for (key, v) in [("password", &ssh.password), ("become_password", &ssh.become_password)] {
            if let Some(v) = v {
                self.push(
                    Diagnostic::error("kprov::inventory::plaintext_secret", format!("`{key}` would put a password in the inventory"))
                        .label(at(v), "remove this")
                        .help(if key == "password" {
                            "kprov logs in with keys (private_key, identity_files or ssh-agent); passwords are not supported"
                        } else {
                            "put the sudo password in an environment variable and name it: become_password_env: KPROV_BECOME_PASSWORD"
                        }),
                );
            }
        }
    }

    fn cidr(&mut self, s: &Spanned<String>, what: &str) -> Option<IpNet> {
        match s.value.parse::<IpNet>() {
            Ok(net) if net.trunc() == net => Some(net),
            Ok(net) => {
                self.push(
                    Diagnostic::error("kprov::inventory::cidr", format!("{what} `{}` has host bits set", s.value))
                        .label(at(s), "not a network address")
                        .help(format!("did you mean `{}`?", net.trunc())),
                );
                None
            }
            Err(_) => {
                self.push(
                    Diagnostic::error("kprov::inventory::cidr", format!("{what} `{}` is not a CIDR", s.value))
                        .label(at(s), "invalid CIDR")
                        .help("write an address and a prefix length, e.g. 10.244.0.0/16"),
                );
                None
            }
        }
    }

    fn cluster(&mut self, f: &InventoryFile, hosts: &Option<Vec<Host>>) -> Option<Cluster> {
        let c = &f.cluster;
        let mut ok = true;
        let (minor, patch) = match &c.kubernetes_version {
            None => (format!("1.{DEFAULT_MINOR}"), None),
            Some(v) => match self.version(v) {
                Some(x) => x,
                None => {
                    ok = false;
                    (String::new(), None)
                }
            },
        };
        let pod = match &c.pod_cidr {
            Some(s) => self.cidr(s, "pod_cidr"),
            None => Some("10.244.0.0/16".parse().expect("valid")),
        };
        let svc = match &c.service_cidr {
            Some(s) => self.cidr(s, "service_cidr"),
            None => Some("10.96.0.0/12".parse().expect("valid")),
        };
        if let (Some(p), Some(s)) = (pod, svc)
            && (p.contains(&s.network()) || s.contains(&p.network()))
        {
            ok = false;
            let mut d = Diagnostic::error("kprov::inventory::cidr_overlap", format!("pod_cidr {p} and service_cidr {s} overlap"))
                .help("pods and services need separate ranges, e.g. pod_cidr: 10.244.0.0/16 and service_cidr: 10.96.0.0/12");
            if let Some(x) = &c.pod_cidr {
                d = d.label(at(x), "pod network");
            }
            if let Some(x) = &c.service_cidr {
                d = d.label(at(x), "service network");
            }
            self.push(d);
        }
        ok &= pod.is_some() && svc.is_some();
        let cni = match &c.cni {
            None => "calico".to_string(),
            Some(s) if CNIS.contains(&s.value.as_str()) => {
                if s.value == "weave" {
                    self.push(
                        Diagnostic::warning("kprov::inventory::weave_archived", "Weave Net is archived upstream: no fixes since 2.8.1 (2021)")
                            .label(at(s), "archived CNI")
                            .help("it still works with the pinned manifest; for a new cluster prefer `flannel` (simplest) or `calico` (network policies)"),
                    );
                }
                s.value.clone()
            }
            Some(s) => {
                ok = false;
                let d = Diagnostic::error("kprov::inventory::cni", format!("unsupported CNI `{}`", s.value)).label(at(s), "unknown CNI");
                self.push(match did_you_mean(&s.value.to_ascii_lowercase(), CNIS.iter().copied()) {
                    Some(m) => d.help(format!("did you mean `{m}`? Supported: {}", CNIS.join(", "))),
                    None => d.help(format!("supported: {}", CNIS.join(", "))),
                });
                String::new()
            }
        };
        if let Some(rt) = &c.container_runtime
            && rt.value != "containerd"
        {
            ok = false;
            self.push(
                Diagnostic::error("kprov::inventory::runtime", format!("unsupported container runtime `{}`", rt.value))
                    .label(at(rt), "not supported")
                    .help("kprov installs containerd (Docker's containerd.io package); remove the key or write containerd"),
            );
        }
        if let Some(ep) = &c.control_plane_endpoint {
            let (host, port) = match ep.value.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') || h.ends_with(']') => (h, Some(p)),
                _ => (ep.value.as_str(), None),
            };
            if host.is_empty() || port.is_some_and(|p| p.parse::<u16>().map_or(true, |p| p == 0)) {
                ok = false;
                self.push(
                    Diagnostic::error("kprov::inventory::endpoint", format!("`{}` is not host[:port]", ep.value))
                        .label(at(ep), "invalid endpoint")
                        .help("write the load balancer's or VIP's address, e.g. k8s-api.lan:6443"),
                );
            }
        }
        if let Some(hosts) = hosts {
            let cps: Vec<&Host> = hosts.iter().filter(|h| h.is_control_plane()).collect();
            if cps.len() > 1 && c.control_plane_endpoint.is_none() {
                ok = false;
                self.push(
                    Diagnostic::error("kprov::inventory::ha_endpoint", format!("{} control planes but no control_plane_endpoint", cps.len()))
                        .label(at(&f.hosts), "several control planes")
                        .help("an HA cluster needs a stable API address in front of every control plane (a load balancer or a VIP): cluster.control_plane_endpoint: k8s-api.lan:6443"),
                );
            }
            if let Some(adv) = &c.advertise_address
                && !cps.iter().any(|h| {
                    h.address == adv.value
                        || h.internal_address.as_deref() == Some(adv.value.as_str())
                        || h.advertise_address.as_deref() == Some(adv.value.as_str())
                })
            {
                ok = false;
                let known: Vec<&str> =
                    cps.iter().map(|h| h.advertise_address.as_deref().or(h.internal_address.as_deref()).unwrap_or(&h.address)).collect();
                self.push(
                    Diagnostic::error(
                        "kprov::inventory::advertise_address",
                        format!("advertise_address `{}` is not the address of a control-plane host", adv.value),
                    )
                    .label(at(adv), "no control plane has this address")
                    .help(format!("the API server listens on the first control plane; control-plane addresses: {}", known.join(", "))),
                );
            }
        }
        if !ok {
            return None;
        }
        Some(Cluster {
            name: c.name.clone().unwrap_or_else(|| "kubernetes".into()),
            kubernetes_version: minor,
            kubernetes_patch_version: patch,
            pod_cidr: pod?,
            service_cidr: svc?,
            cni,
            cni_manifest: c.cni_manifest.as_ref().map(|m| m.value.clone()),
            cni_manifest_sha256: c.cni_manifest_sha256.as_ref().map(|d| d.value.clone()),
            control_plane_endpoint: c.control_plane_endpoint.as_ref().map(|e| {
                if e.value.rsplit_once(':').is_some_and(|(h, _)| !h.contains(':') || h.ends_with(']')) {
                    e.value.clone()
                } else {
                    format!("{}:6443", e.value)
                }
            }),
            advertise_address: c.advertise_address.as_ref().map(|a| a.value.clone()),
            container_runtime: "containerd".into(),
            fetch_admin_conf: c.fetch_admin_conf.as_ref().map(|p| expand_home(p)),
            smoke_test: c.smoke_test,
            preflight: c.preflight.clone(),
            kube: Default::default(),
        })
    }

    /// "1.34" or "1.34.2" (a leading v is accepted) → ("1.34", Some("v1.34.2")).
    fn version(&mut self, v: &Spanned<super::model::VersionText>) -> Option<(String, Option<String>)> {
        let text = v.value.text();
        let t = text.trim_start_matches('v');
        let parts: Vec<&str> = t.split('.').collect();
        let nums: Option<Vec<u32>> = parts.iter().map(|p| p.parse().ok()).collect();
        let float = matches!(v.value, super::model::VersionText::Number(_));
        match nums.as_deref() {
            Some([1, minor]) | Some([1, minor, _]) if SUPPORTED_MINORS.contains(minor) => {
                let minor_s = format!("1.{minor}");
                Some((minor_s, (parts.len() == 3).then(|| format!("v{t}"))))
            }
            Some([1, minor]) | Some([1, minor, _]) => {
                let mut d = Diagnostic::error("kprov::inventory::kubernetes_version", format!("Kubernetes {text} is not supported"))
                    .label(at(v), "unsupported version");
                d = if float && *minor < 10 {
                    d.help(format!("YAML read this as the number {text}; quote it: kubernetes_version: \"1.{minor}0\""))
                } else {
                    d.help(format!("supported: 1.{} to 1.{}", SUPPORTED_MINORS.start(), SUPPORTED_MINORS.end()))
                };
                self.push(d);
                None
            }
            _ => {
                self.push(
                    Diagnostic::error("kprov::inventory::kubernetes_version", format!("`{text}` is not a Kubernetes version"))
                        .label(at(v), "invalid version")
                        .help(format!("write a minor (\"1.{DEFAULT_MINOR}\") or a patch release (\"1.{DEFAULT_MINOR}.2\")")),
                );
                None
            }
        }
    }
}

// ---------------------------------------------------------------- node registration and URLs
//
// The rules the kubelet applies to --node-labels and --register-with-taints (k8s.io/kubelet's
// IsKubeletLabel, apimachinery's IsQualifiedName and IsValidLabelValue), and kubeadm's
// ValidateAPIEndpoint (an advertise address must be an IP), checked here so the operator
// hears about them at plan time with the place in the inventory, not from a failed join.

/// Label keys the kubelet may set on its own node although they are in kubernetes.io.
const KUBELET_LABELS: &[&str] = &[
    "kubernetes.io/hostname",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type",
    "kubernetes.io/os",
    "kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch",
];
/// Label namespaces (and their subdomains) the kubelet may set.
const KUBELET_LABEL_NAMESPACES: &[&str] = &["kubelet.kubernetes.io", "node.kubernetes.io"];
pub const TAINT_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];

fn in_namespace(ns: &str, domain: &str) -> bool {
    ns == domain || ns.ends_with(&format!(".{domain}"))
}

/// Whether the kubelet refuses to set this label on its own node.
pub fn kubelet_refuses_label(key: &str) -> bool {
    let Some((ns, _)) = key.split_once('/') else {
        return false;
    };
    let kubernetes = in_namespace(ns, "kubernetes.io") || in_namespace(ns, "k8s.io");
    kubernetes && !KUBELET_LABELS.contains(&key) && !KUBELET_LABEL_NAMESPACES.iter().any(|d| in_namespace(ns, d))
}

fn is_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

pub(super) fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|l| {
            let b = l.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        })
}

/// apimachinery's IsQualifiedName: `[prefix/]name`. The problem, if any.
pub fn qualified_name_problem(key: &str) -> Option<String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix
        && (p.is_empty() || !is_dns_subdomain(p))
    {
        return Some(format!("the prefix `{p}` is not a DNS subdomain (lowercase letters, digits, '-' and '.', at most 253 characters)"));
    }
    if name.is_empty() {
        return Some("the name after the prefix is empty".into());
    }
    if name.len() > 63 {
        return Some(format!("the name is {} characters long; at most 63 are allowed", name.len()));
    }
    if !is_name_part(name) {
        return Some("a name is letters, digits, '-', '_' and '.', starting and ending with a letter or digit".into());
    }
    None
}

/// apimachinery's IsValidLabelValue. The problem, if any.
pub fn label_value_problem(v: &str) -> Option<String> {
    if v.is_empty() {
        return None;
    }
    if v.len() > 63 {
        return Some(format!("the value is {} characters long; at most 63 are allowed", v.len()));
    }
    if !is_name_part(v) {
        return Some("a value is empty or letters, digits, '-', '_' and '.', starting and ending with a letter or digit".into());
    }
    None
}

/// The place of a mapping key whose value sits at `value`: the key is written before it, on
/// the same line or the one above.
fn key_place(src: &str, value: Option<Place>, key: &str) -> Option<Place> {
    let v = value?;
    let before = src.get(..v.offset)?;
    let from = before.rfind(key).or_else(|| before.rfind(&format!("{key:?}")))?;
    Some(Place { offset: from, len: key.len().max(1) })
}

impl Validator {
    fn node_registration(&mut self, f: &InventoryFile, src: &str) -> bool {
        let mut ok = true;
        for h in &f.hosts.value {
            let h = &h.value;
            for (k, v) in &h.labels {
                ok &= self.node_label(src, h, k, v);
            }
            for t in &h.taints {
                ok &= self.node_taint(&t.value);
            }
            ok &= self.control_plane_address(h);
        }
        if let Some(adv) = &f.cluster.advertise_address
            && adv.value.parse::<IpAddr>().is_err()
        {
            ok = false;
            self.push(
                Diagnostic::error("kprov::inventory::advertise_address", format!("advertise_address `{}` is not an IP address", adv.value))
                    .label(at(adv), "a DNS name")
                    .help("kubeadm's API server advertises an IP address (its ValidateAPIEndpoint refuses names); write the control plane's IP here. A DNS name belongs in control_plane_endpoint"),
            );
        }
        ok
    }

    fn node_label(&mut self, src: &str, h: &HostSpec, key: &str, value: &Spanned<String>) -> bool {
        let kplace = key_place(src, at(value), key);
        let host = &h.name.value;
        if let Some(problem) = qualified_name_problem(key) {
            self.push(
                Diagnostic::error("kprov::inventory::label_key", format!("label key `{key}` of host `{host}` is not valid: {problem}"))
                    .label(kplace, "invalid label key")
                    .help("label keys are `[prefix/]name`: e.g. `example.com/rack: r1` or `disktype: ssd`"),
            );
            return false;
        }
        if kubelet_refuses_label(key) {
            let role = key.starts_with("node-role.kubernetes.io/");
            self.push(
                Diagnostic::error("kprov::inventory::label_refused", format!("the kubelet refuses to set label `{key}` on host `{host}`"))
                    .label(kplace, "a kubernetes.io / k8s.io key the kubelet may not set")
                    .help(if role {
                        "node-role.kubernetes.io/* is set by kubeadm (control planes) or by an administrator, never by the kubelet on its own node: use your own prefix (`example.com/role: worker`), or run `kubectl label node NAME node-role.kubernetes.io/worker=` after apply".to_string()
                    } else {
                        format!(
                            "in kubernetes.io and k8s.io the kubelet sets only {} and keys under {}; use your own prefix (e.g. example.com/...)",
                            KUBELET_LABELS.join(", "),
                            KUBELET_LABEL_NAMESPACES.join(", ")
                        )
                    }),
            );
            return false;
        }
        if let Some(problem) = label_value_problem(&value.value) {
            self.push(
                Diagnostic::error("kprov::inventory::label_value", format!("the value of label `{key}` on host `{host}` is not valid: {problem}"))
                    .label(at(value), "invalid label value")
                    .help("label values are at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit (or empty)"),
            );
            return false;
        }
        true
    }

    fn node_taint(&mut self, t: &TaintSpec) -> bool {
        let mut ok = true;
        if let Some(problem) = qualified_name_problem(&t.key.value) {
            ok = false;
            self.push(
                Diagnostic::error("kprov::inventory::taint_key", format!("taint key `{}` is not valid: {problem}", t.key.value))
                    .label(at(&t.key), "invalid taint key")
                    .help("taint keys are `[prefix/]name`, like label keys: e.g. `dedicated` or `example.com/gpu`"),
            );
        }
        if let Some(v) = &t.value
            && let Some(problem) = label_value_problem(&v.value)
        {
            ok = false;
            self.push(
                Diagnostic::error("kprov::inventory::taint_value", format!("taint value `{}` is not valid: {problem}", v.value))
                    .label(at(v), "invalid taint value")
                    .help("taint values follow the label value rules: at most 63 letters, digits, '-', '_' and '.'"),
            );
        }
        if !TAINT_EFFECTS.contains(&t.effect.value.as_str()) {
            ok = false;
            let d = Diagnostic::error("kprov::inventory::taint_effect", format!("`{}` is not a taint effect", t.effect.value))
                .label(at(&t.effect), "unknown effect");
            self.push(match did_you_mean(&t.effect.value, TAINT_EFFECTS.iter().copied()) {
                Some(m) => d.help(format!("did you mean `{m}`? Effects: {}", TAINT_EFFECTS.join(", "))),
                None => d.help(format!("effects: {}", TAINT_EFFECTS.join(", "))),
            });
        }
        ok
    }

    /// kubeadm's ValidateAPIEndpoint: a control plane's advertise address is an IP.
    fn control_plane_address(&mut self, h: &HostSpec) -> bool {
        let cp = h.roles.value.contains(&Role::ControlPlane);
        if let Some(adv) = &h.advertise_address {
            if !cp {
                self.push(
                    Diagnostic::error(
                        "kprov::inventory::advertise_address",
                        format!("host `{}` is not a control plane but has an advertise_address", h.name.value),
                    )
                    .label(at(adv), "only control planes run an API server")
                    .help("remove advertise_address, or give the host roles: [control-plane]"),
                );
                return false;
            }
            if adv.value.parse::<IpAddr>().is_err() {
                self.push(
                    Diagnostic::error(
                        "kprov::inventory::advertise_address",
                        format!("advertise_address `{}` of host `{}` is not an IP address", adv.value, h.name.value),
                    )
                    .label(at(adv), "not an IP address")
                    .help("kubeadm advertises the API server on an IP address (ValidateAPIEndpoint refuses names): write the host's IP"),
                );
                return false;
            }
            return true;
        }
        // A control plane reached by a DNS name without either address is reported once, by
        // `internal_addresses` (kprov::inventory::internal_address_required).
        true
    }

    /// Mirror URLs are pasted into apt source lines and commands: no whitespace or control
    /// characters.
    fn mirror_urls(&mut self, f: &InventoryFile) -> bool {
        let m: &MirrorsSpec = &f.mirrors;
        let mut ok = true;
        let urls = [
            ("kubernetes_apt", m.kubernetes_apt.as_ref()),
            ("kubernetes_apt_key", m.kubernetes_apt_key.as_ref()),
            ("docker_apt", m.docker_apt.as_ref()),
            ("cni_manifest", f.cluster.cni_manifest.as_ref().filter(|u| u.value.contains("://"))),
        ];
        for (key, url) in urls {
            let Some(url) = url else { continue };
            let Some(bad) = url.value.chars().find(|c| c.is_whitespace() || c.is_control()) else {
                continue;
            };
            ok = false;
            self.push(
                Diagnostic::error("kprov::inventory::mirror_url", format!("{key} `{}` holds {}", url.value.escape_debug(), describe_char(bad)))
                    .label(at(url), "not a plain URL")
                    .help("a URL has no spaces, tabs, newlines or control characters (write a space as %20); the URL goes into an apt source line"),
            );
        }
        ok
    }
}

fn describe_char(c: char) -> String {
    match c {
        ' ' => "a space".into(),
        '\t' => "a tab".into(),
        '\n' | '\r' => "a line break".into(),
        c => format!("the character {:?}", c),
    }
}

fn effective_ssh(
    defaults: &SshSpec,
    host: Option<&SshSpec>,
    default_timeout: Duration,
    dur: impl Fn(&Spanned<String>) -> Option<Duration>,
) -> SshSettings {
    let empty = SshSpec::default();
    let h = host.unwrap_or(&empty);
    macro_rules! pick {
        ($f:ident) => {
            h.$f.clone().or_else(|| defaults.$f.clone())
        };
    }
    let user = pick!(user);
    let port = pick!(port);
    let mut identity_files: Vec<PathBuf> = vec![];
    for src in [h, defaults] {
        if src.private_key.is_some() || src.identity_files.is_some() {
            identity_files.extend(src.private_key.iter().map(|p| expand_home(p)));
            identity_files.extend(src.identity_files.iter().flatten().map(|p| expand_home(p)));
            break;
        }
    }
    SshSettings {
        user_explicit: user.is_some(),
        user: user.unwrap_or_else(|| "root".into()),
        port_explicit: port.is_some(),
        port: port.unwrap_or(22),
        identity_files,
        agent: pick!(agent).unwrap_or(true),
        known_hosts: expand_home(&pick!(known_hosts).unwrap_or_else(|| "~/.ssh/known_hosts".into())),
        host_key_policy: pick!(host_key_policy).unwrap_or(HostKeyPolicy::Strict),
        become_: pick!(become_).unwrap_or(true),
        become_password_env: pick!(become_password_env),
        bastion: pick!(bastion),
        connect_timeout: h.connect_timeout.as_ref().and_then(&dur).unwrap_or(default_timeout),
        use_ssh_config: pick!(use_ssh_config).unwrap_or(true),
    }
}

/// `~/x` → `$HOME/x`.
/// A host's address inside the cluster: `internal_address`, else `address` when it is an IP.
fn internal_address(h: &HostSpec) -> Option<String> {
    match &h.internal_address {
        Some(a) => Some(a.value.clone()),
        None => h.address.value.parse::<IpAddr>().is_ok().then(|| h.address.value.clone()),
    }
}

pub fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(p),
    }
}

/// `500ms`, `10s`, `2m`, `1h`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| "no number".to_string())?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        other => return Err(format!("unknown unit `{other}`")),
    };
    if !(0.001..=86_400.0).contains(&secs) {
        return Err("must be between 1ms and 24h".into());
    }
    Ok(Duration::from_secs_f64(secs))
}
