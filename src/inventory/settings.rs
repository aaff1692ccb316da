//! The Kubernetes settings of an inventory: `cluster.kubeadm`, `cluster.kubelet`,
//! `cluster.kube_proxy` and `hosts[].kubelet`, checked as kubeadm, the kubelet and kube-proxy
//! would read them, into [`KubeSettings`].
//!
//! The kubelet and kube-proxy fields are passed through under the real types' own names, and
//! every field, at any depth, is checked against the field table derived from the upstream type
//! files (`crate::kube_fields`): an unknown one is an error at its own line and column, with the
//! real name when the operator wrote it another way (`max_pods` → `maxPods`). The same table
//! makes the JSON schema of these sections.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value as Json, json};
use serde_saphyr::Spanned;
use serde_saphyr::granit_parser::{Event, Parser};

use super::diagnostic::{Diagnostic, Place, did_you_mean};
use super::model::InventoryFile;
use super::validate::{is_dns_subdomain, place};
use crate::kube_settings::{COMPONENTS, Component, KubeSettings};

pub const KUBELET_KIND: (&str, &str) = ("kubelet.config.k8s.io/v1beta1", "KubeletConfiguration");
pub const KUBE_PROXY_KIND: (&str, &str) = ("kubeproxy.config.k8s.io/v1alpha1", "KubeProxyConfiguration");

/// KubeletConfiguration fields kprov writes itself, and why the inventory may not.
const KUBELET_OWNED: &[(&str, &str)] = &[
    ("apiVersion", "kprov writes the document's apiVersion and kind itself"),
    ("kind", "kprov writes the document's apiVersion and kind itself"),
    ("cgroupDriver", "kprov configures containerd with the systemd cgroup driver, and the kubelet must use the same one"),
    ("clusterDomain", "set cluster.kubeadm.dns_domain: kubeadm gives every kubelet the cluster's DNS domain"),
];

/// KubeProxyConfiguration fields kprov writes itself, and why the inventory may not.
const KUBE_PROXY_OWNED: &[(&str, &str)] = &[
    ("apiVersion", "kprov writes the document's apiVersion and kind itself"),
    ("kind", "kprov writes the document's apiVersion and kind itself"),
    ("mode", "set cluster.kube_proxy.mode (iptables, ipvs or nftables)"),
    ("clusterCIDR", "kubeadm sets it from cluster.pod_cidr"),
];

/// Arguments that another inventory key sets, per component.
fn owned_arg(c: Component, name: &str) -> Option<&'static str> {
    match (c, name) {
        (_, "feature-gates") => Some("set cluster.kubeadm.feature_gates: kprov passes them to every component that takes them"),
        (Component::ApiServer, "advertise-address") => Some("set advertise_address (cluster or host): kubeadm writes this argument from it"),
        (Component::ApiServer | Component::ControllerManager, "service-cluster-ip-range") => Some("set cluster.service_cidr"),
        (Component::ControllerManager, "cluster-cidr") => Some("set cluster.pod_cidr"),
        (Component::ControllerManager, "cluster-name") => Some("set cluster.name"),
        _ => None,
    }
}

/// The validated settings and each host's kubelet overrides (in host order), when valid.
pub(super) struct Checked {
    pub settings: KubeSettings,
    pub host_kubelet: Vec<Map<String, Json>>,
}

pub(super) fn validate(f: &InventoryFile, src: &str) -> (Vec<Diagnostic>, Option<Checked>) {
    let mut v = Checker { src, places: None, diags: vec![] };
    let settings = v.cluster(f);
    let mut host_kubelet = vec![];
    for (i, h) in f.hosts.value.iter().enumerate() {
        let path = vec!["hosts".to_string(), format!("[{i}]"), "kubelet".to_string()];
        let what = format!("hosts[{i}].kubelet (host `{}`)", h.value.name.value);
        host_kubelet.push(match &h.value.kubelet {
            Some(k) => v.passthrough(k, KUBELET_KIND, KUBELET_OWNED, &path, &what),
            None => Some(Map::new()),
        });
    }
    let ok = !v.diags.iter().any(Diagnostic::is_error);
    let checked = match (ok, settings, host_kubelet.into_iter().collect::<Option<Vec<_>>>()) {
        (true, Some(settings), Some(host_kubelet)) => Some(Checked { settings, host_kubelet }),
        _ => None,
    };
    (v.diags, checked)
}

struct Checker<'a> {
    src: &'a str,
    places: Option<HashMap<Vec<String>, Place>>,
    diags: Vec<Diagnostic>,
}

fn at<T>(s: &Spanned<T>) -> Option<Place> {
    place(&s.referenced)
}

fn path_of(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

impl Checker<'_> {
    /// The place of the key at `path`, read from the document once, when first needed.
    fn key(&mut self, path: &[String]) -> Option<Place> {
        let src = self.src;
        self.places.get_or_insert_with(|| key_places(src)).get(path).copied()
    }

    fn cluster(&mut self, f: &InventoryFile) -> Option<KubeSettings> {
        let k = &f.cluster.kubeadm;
        let mut s = KubeSettings::default();
        let mut ok = true;
        for san in &k.cert_sans {
            if let Some(problem) = cert_san_problem(&san.value) {
                ok = false;
                self.diags.push(
                    Diagnostic::error("kprov::inventory::cert_san", format!("certificate name `{}` is not valid: {problem}", san.value))
                        .label(at(san), "not an IP address or DNS name")
                        .help("kubeadm accepts an IP address, a DNS name (k8s-api.example.com) or a wildcard name (*.example.com)"),
                );
            } else if !s.cert_sans.contains(&san.value) {
                s.cert_sans.push(san.value.clone());
            }
        }
        for &c in COMPONENTS {
            let args = match c {
                Component::ApiServer => &k.apiserver_extra_args,
                Component::ControllerManager => &k.controller_manager_extra_args,
                Component::Scheduler => &k.scheduler_extra_args,
                Component::Etcd => &k.etcd_extra_args,
            };
            for (name, value) in args {
                let path = path_of(&["cluster", "kubeadm", c.key(), name.as_str()]);
                match self.arg(c, name, value, &path) {
                    Some(v) => {
                        s.extra_args.entry(c).or_default().insert(name.clone(), v);
                    }
                    None => ok = false,
                }
            }
        }
        for name in k.feature_gates.keys() {
            let valid = name.chars().next().is_some_and(|c| c.is_ascii_uppercase()) && name.chars().all(|c| c.is_ascii_alphanumeric());
            if !valid {
                ok = false;
                let place = self.key(&path_of(&["cluster", "kubeadm", "feature_gates", name.as_str()]));
                self.diags.push(
                    Diagnostic::error("kprov::inventory::feature_gate", format!("`{name}` is not a feature gate name"))
                        .label(place, "not a feature gate")
                        .help("feature gates are written as Kubernetes names them, in CamelCase: `InPlacePodVerticalScaling: true`"),
                );
            }
        }
        s.feature_gates = k.feature_gates.iter().map(|(n, v)| (n.clone(), v.value)).collect();
        if let Some(repo) = &k.image_repository {
            if let Some(problem) = image_repository_problem(&repo.value) {
                ok = false;
                self.diags.push(
                    Diagnostic::error("kprov::inventory::image_repository", format!("image_repository `{}` {problem}", repo.value.escape_debug()))
                        .label(at(repo), "not an image repository")
                        .help("write a registry host and path without a scheme, e.g. registry.example.com:5000/k8s (kubeadm pulls REPOSITORY/kube-apiserver:VERSION)"),
                );
            } else {
                s.image_repository = Some(repo.value.clone());
            }
        }
        if let Some(domain) = &k.dns_domain {
            if is_dns_subdomain(&domain.value) && !domain.value.is_empty() {
                s.dns_domain = Some(domain.value.clone());
            } else {
                ok = false;
                self.diags.push(
                    Diagnostic::error("kprov::inventory::dns_domain", format!("dns_domain `{}` is not a DNS domain", domain.value.escape_debug()))
                        .label(at(domain), "not a DNS domain")
                        .help("lowercase letters, digits, '-' and '.', e.g. cluster.local or k8s.example.internal"),
                );
            }
        }
        if let Some(kubelet) = &f.cluster.kubelet {
            match self.passthrough(kubelet, KUBELET_KIND, KUBELET_OWNED, &path_of(&["cluster", "kubelet"]), "cluster.kubelet") {
                Some(m) => s.kubelet = m,
                None => ok = false,
            }
        }
        s.kube_proxy_mode = f.cluster.kube_proxy.mode.map(|m| m.as_str().to_string());
        if let Some(settings) = &f.cluster.kube_proxy.settings {
            let path = path_of(&["cluster", "kube_proxy", "settings"]);
            match self.passthrough(settings, KUBE_PROXY_KIND, KUBE_PROXY_OWNED, &path, "cluster.kube_proxy.settings") {
                Some(m) => s.kube_proxy = m,
                None => ok = false,
            }
        }
        ok.then_some(s)
    }

    fn arg(&mut self, c: Component, name: &str, value: &Spanned<Json>, path: &[String]) -> Option<String> {
        let place = self.key(path).or(at(value));
        let key = c.key();
        if let Some(bare) = name.strip_prefix('-') {
            let bare = bare.trim_start_matches('-');
            self.diags.push(
                Diagnostic::error("kprov::inventory::extra_arg", format!("{key}: write the argument `{name}` without its dashes"))
                    .label(place, "leading dashes")
                    .help(format!("kubeadm adds the `--` itself: `{bare}: VALUE`")),
            );
            return None;
        }
        let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') && !name.ends_with('-');
        if !valid {
            self.diags.push(
                Diagnostic::error("kprov::inventory::extra_arg", format!("{key}: `{name}` is not a command-line argument name"))
                    .label(place, "not an argument name")
                    .help("argument names are lowercase letters, digits and '-', as in the component's --help: `audit-log-maxage: \"30\"`"),
            );
            return None;
        }
        if let Some(why) = owned_arg(c, name) {
            self.diags.push(
                Diagnostic::error("kprov::inventory::extra_arg_owned", format!("{key}: kprov sets `{name}` itself"))
                    .label(place, "set by another inventory key")
                    .help(why),
            );
            return None;
        }
        let text = match &value.value {
            Json::String(s) => s.clone(),
            Json::Number(n) => n.to_string(),
            Json::Bool(b) => b.to_string(),
            Json::Null | Json::Array(_) | Json::Object(_) => {
                self.diags.push(
                    Diagnostic::error("kprov::inventory::extra_arg", format!("{key}: `{name}` needs one value (a string, number or boolean)"))
                        .label(at(value).or(place), "not a single value")
                        .help(format!("write `{name}: VALUE`; for a list the component reads as one argument, join it as it expects (`a,b`)")),
                );
                return None;
            }
        };
        if text.chars().any(char::is_control) {
            self.diags.push(
                Diagnostic::error("kprov::inventory::extra_arg", format!("{key}: the value of `{name}` holds a control character"))
                    .label(at(value).or(place), "line break or control character")
                    .help("command-line values are one line of text"),
            );
            return None;
        }
        Some(text)
    }

    /// A passthrough section: a mapping of the real type's fields, every one of them (nested
    /// too) known to that type, none that kprov writes itself.
    fn passthrough(
        &mut self,
        value: &Spanned<Json>,
        (api_version, kind): (&str, &str),
        owned: &[(&str, &str)],
        path: &[String],
        what: &str,
    ) -> Option<Map<String, Json>> {
        let table = crate::kube_fields::table();
        let Some(root) = table.kind(api_version, kind) else {
            // The table is generated and checked by tests: a kind missing from it is a kprov bug.
            self.diags.push(Diagnostic::error("kprov::inventory::field_table", format!("the field table has no {kind} ({api_version})")));
            return None;
        };
        let map = match &value.value {
            Json::Object(m) => m,
            Json::Null => return Some(Map::new()),
            _ => {
                self.diags.push(
                    Diagnostic::error("kprov::inventory::wrong_type", format!("{what} must be a mapping of {kind} fields"))
                        .label(at(value), "not a mapping")
                        .help(format!("write the fields as {kind} names them, e.g. {}", example(kind))),
                );
                return None;
            }
        };
        let before = self.diags.len();
        for (name, why) in owned {
            if map.contains_key(*name) {
                let mut p = path.to_vec();
                p.push(name.to_string());
                let place = self.key(&p).or(at(value));
                self.diags.push(
                    Diagnostic::error("kprov::inventory::owned_field", format!("{what}: kprov sets `{name}` itself"))
                        .label(place, "not settable here")
                        .help(*why),
                );
            }
        }
        let mut problems = vec![];
        check_struct(table, root, &value.value, &mut vec![], &mut problems);
        for p in problems {
            let mut full = path.to_vec();
            full.extend(p.path.iter().cloned());
            let place = self.key(&full).or_else(|| at(value));
            let shown = dotted(&p.path);
            let d = match p.kind {
                ProblemKind::Unknown { owner, suggestion, nested } => {
                    let owner_name = owner.rsplit('.').next().unwrap_or(&owner).to_string();
                    let d = Diagnostic::error(
                        "kprov::inventory::unknown_field",
                        format!("{what}: `{shown}` is not a field of {}", if nested { owner_name.as_str() } else { kind }),
                    )
                    .label(place, "unknown field");
                    match suggestion {
                        Some(s) => d.help(format!("did you mean `{s}`? Fields are written as {kind} ({api_version}) names them")),
                        None => d.help(format!("see the fields of {owner_name} in `kprov schema` or the {kind} reference ({api_version})")),
                    }
                }
                ProblemKind::Shape(want) => Diagnostic::error("kprov::inventory::wrong_type", format!("{what}: `{shown}` must be {want}"))
                    .label(place, format!("not {want}"))
                    .help(format!("as in the {kind} type ({api_version}); see `kprov schema`")),
            };
            self.diags.push(d);
        }
        (self.diags.len() == before).then(|| map.clone())
    }
}

fn example(kind: &str) -> &'static str {
    if kind == KUBELET_KIND.1 { "`maxPods: 200`" } else { "`ipvs: { scheduler: rr }`" }
}

fn dotted(path: &[String]) -> String {
    let mut out = String::new();
    for p in path {
        if !p.starts_with('[') && !out.is_empty() {
            out.push('.');
        }
        out.push_str(p);
    }
    out
}

struct Problem {
    path: Vec<String>,
    kind: ProblemKind,
}

enum ProblemKind {
    /// Not a field of `owner` (a struct name of the table).
    Unknown { owner: String, suggestion: Option<String>, nested: bool },
    /// The value has the wrong shape: "a mapping", "a list", "a single value".
    Shape(&'static str),
}

/// The field the operator most likely meant: the same name in another spelling (`max_pods`,
/// `MaxPods`, `max-pods` → `maxPods`), else the closest name.
pub fn suggest_field<'a>(name: &str, fields: impl IntoIterator<Item = &'a str> + Clone) -> Option<&'a str> {
    fn squash(s: &str) -> String {
        s.chars().filter(|c| *c != '_' && *c != '-').collect::<String>().to_ascii_lowercase()
    }
    let want = squash(name);
    fields.clone().into_iter().find(|f| squash(f) == want).or_else(|| did_you_mean(name, fields))
}

fn check_struct(table: &crate::kube_fields::FieldTable, name: &str, value: &Json, path: &mut Vec<String>, out: &mut Vec<Problem>) {
    let Some(fields) = table.structs.get(name) else { return };
    let Json::Object(map) = value else {
        out.push(Problem { path: path.clone(), kind: ProblemKind::Shape("a mapping") });
        return;
    };
    let open = fields.keys().any(|k| k.starts_with("(inline)"));
    for (k, v) in map {
        path.push(k.clone());
        match fields.get(k) {
            Some(t) => check_type(table, t, v, path, out),
            None if !open => {
                let names = fields.keys().filter(|f| !f.starts_with("(inline)")).map(String::as_str);
                out.push(Problem {
                    path: path.clone(),
                    kind: ProblemKind::Unknown {
                        owner: name.to_string(),
                        suggestion: suggest_field(k, names).map(str::to_string),
                        nested: path.len() > 1,
                    },
                });
            }
            None => {}
        }
        path.pop();
    }
}

fn check_type(table: &crate::kube_fields::FieldTable, t: &str, v: &Json, path: &mut Vec<String>, out: &mut Vec<Problem>) {
    if v.is_null() || t.starts_with("external:") {
        return;
    }
    if let Some(inner) = t.strip_prefix("[]") {
        match v {
            Json::Array(items) => {
                for (i, x) in items.iter().enumerate() {
                    path.push(format!("[{i}]"));
                    check_type(table, inner, x, path, out);
                    path.pop();
                }
            }
            _ => out.push(Problem { path: path.clone(), kind: ProblemKind::Shape("a list") }),
        }
        return;
    }
    match t {
        "scalar" if v.is_object() || v.is_array() => out.push(Problem { path: path.clone(), kind: ProblemKind::Shape("a single value") }),
        "scalar" => {}
        "map" if !v.is_object() => out.push(Problem { path: path.clone(), kind: ProblemKind::Shape("a mapping") }),
        "map" => {}
        s => check_struct(table, s, v, path, out),
    }
}

/// kubeadm's ValidateCertSANs: an IP address, a DNS-1123 subdomain, or `*.` and one.
fn cert_san_problem(s: &str) -> Option<&'static str> {
    if s.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    let name = s.strip_prefix("*.").unwrap_or(s);
    if name.is_empty() || !is_dns_subdomain(name) {
        return Some("an IP address or a DNS name of lowercase letters, digits, '-' and '.' is needed");
    }
    None
}

fn image_repository_problem(s: &str) -> Option<&'static str> {
    if s.is_empty() {
        return Some("is empty");
    }
    if s.contains("://") {
        return Some("has a URL scheme");
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("holds a space or control character");
    }
    if s.ends_with('/') || s.contains("//") || s.contains(['@', '?', '#']) {
        return Some("is not a repository path");
    }
    let path = s.split_once('/').map_or("", |(_, p)| p);
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        return Some("has uppercase letters in its path (image repositories are lowercase)");
    }
    None
}

/// Byte places of every mapping key of the document, by path: `["cluster", "kubelet",
/// "maxPods"]`, list items as `"[0]"`. Nested keys of passthrough sections have no span of
/// their own in the model, so diagnostics find them here.
pub(crate) fn key_places(source: &str) -> HashMap<Vec<String>, Place> {
    struct Frame {
        map: bool,
        expect_key: bool,
        key: String,
        index: usize,
    }
    fn prefix(frames: &[Frame]) -> Vec<String> {
        frames.iter().map(|f| if f.map { f.key.clone() } else { format!("[{}]", f.index) }).collect()
    }
    fn advance(frames: &mut [Frame]) {
        if let Some(top) = frames.last_mut() {
            if top.map {
                top.expect_key = true;
            } else {
                top.index += 1;
            }
        }
    }
    let mut out = HashMap::new();
    let mut frames: Vec<Frame> = vec![];
    let mut parser = Parser::new_from_str(source);
    while let Some(Ok((event, span))) = parser.next_event() {
        match event {
            Event::Scalar(value, ..) => {
                let is_key = frames.last().is_some_and(|f| f.map && f.expect_key);
                if is_key {
                    let mut path = prefix(&frames[..frames.len() - 1]);
                    path.push(value.to_string());
                    if let (Some(start), Some(end)) = (span.start.byte_offset(), span.end.byte_offset()) {
                        out.entry(path).or_insert(Place { offset: start, len: end.saturating_sub(start).max(1) });
                    }
                    let top = frames.last_mut().expect("checked above");
                    top.key = value.to_string();
                    top.expect_key = false;
                } else {
                    advance(&mut frames);
                }
            }
            Event::Alias(_) => {
                if let Some(top) = frames.last_mut().filter(|f| f.map && f.expect_key) {
                    top.key = "*".into();
                    top.expect_key = false;
                } else {
                    advance(&mut frames);
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let map = matches!(event, Event::MappingStart(..));
                if let Some(top) = frames.last_mut().filter(|f| f.map && f.expect_key) {
                    // A collection as a key: nothing below it is a path anyone writes.
                    top.key = "?".into();
                    top.expect_key = false;
                }
                frames.push(Frame { map, expect_key: true, key: String::new(), index: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                frames.pop();
                advance(&mut frames);
            }
            Event::StreamEnd => break,
            _ => {}
        }
    }
    out
}

/// The JSON schema of a passthrough section: the real type's fields, nested ones too.
fn fields_schema((api_version, kind): (&str, &str), owned: &[(&str, &str)]) -> schemars::Schema {
    let table = crate::kube_fields::table();
    let mut schema = match table.kind(api_version, kind) {
        Some(root) => struct_schema(table, root, 0),
        None => json!({ "type": "object" }),
    };
    if let Some(props) = schema.get_mut("properties").and_then(Json::as_object_mut) {
        for (name, _) in owned {
            props.remove(*name);
        }
    }
    schema["type"] = json!(["object", "null"]);
    schema["description"] = json!(format!("{kind} fields ({api_version}), named as the real type names them"));
    schemars::Schema::try_from(schema).unwrap_or_default()
}

fn struct_schema(table: &crate::kube_fields::FieldTable, name: &str, depth: usize) -> Json {
    let Some(fields) = table.structs.get(name) else { return json!({}) };
    let open = fields.keys().any(|k| k.starts_with("(inline)"));
    let props: BTreeMap<&str, Json> =
        fields.iter().filter(|(k, _)| !k.starts_with("(inline)")).map(|(k, t)| (k.as_str(), type_schema(table, t, depth + 1))).collect();
    json!({ "type": "object", "properties": props, "additionalProperties": open })
}

fn type_schema(table: &crate::kube_fields::FieldTable, t: &str, depth: usize) -> Json {
    if depth > 8 || t.starts_with("external:") {
        return json!({});
    }
    if let Some(inner) = t.strip_prefix("[]") {
        return json!({ "type": "array", "items": type_schema(table, inner, depth + 1) });
    }
    match t {
        "scalar" => json!({ "type": ["string", "number", "boolean", "null"] }),
        "map" => json!({ "type": "object" }),
        s => struct_schema(table, s, depth),
    }
}

pub fn kubelet_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    fields_schema(KUBELET_KIND, KUBELET_OWNED)
}

pub fn kube_proxy_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    fields_schema(KUBE_PROXY_KIND, KUBE_PROXY_OWNED)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTS: &str =
        "hosts:\n  - { name: cp, address: 10.0.0.11, roles: [control-plane] }\n  - name: w\n    address: 10.0.0.21\n    roles: [worker]\n";

    fn load(cluster: &str, hosts: &str) -> crate::inventory::Loaded {
        crate::inventory::parse(&format!("cluster:\n{cluster}{hosts}"), "inv.yaml")
    }

    /// (code, line, column, help) of every error.
    fn errors(l: &crate::inventory::Loaded) -> Vec<(&'static str, usize, usize, String)> {
        l.errors()
            .map(|d| {
                let (line, col) = d.line_column().unwrap_or((0, 0));
                (d.code, line, col, format!("{} | {}", d.message, d.help.clone().unwrap_or_default()))
            })
            .collect()
    }

    #[test]
    fn every_setting_is_read_into_the_validated_inventory() {
        let l = load(
            "  kubeadm:\n    cert_sans: [k8s-api.example.com, 10.0.0.100, \"*.lab.example.com\"]\n    apiserver_extra_args: { audit-log-maxage: 30, profiling: false }\n    etcd_extra_args: { quota-backend-bytes: \"8589934592\" }\n    feature_gates: { InPlacePodVerticalScaling: true }\n    image_repository: registry.example.com:5000/k8s\n    dns_domain: k8s.example.internal\n  kubelet:\n    maxPods: 200\n    evictionHard: { memory.available: 200Mi }\n    authentication: { webhook: { enabled: true } }\n    tlsCipherSuites: [TLS_AES_128_GCM_SHA256]\n  kube_proxy:\n    mode: nftables\n    settings: { nftables: { syncPeriod: 30s } }\n",
            &format!("{HOSTS}    kubelet: {{ maxPods: 50, kubeReserved: {{ cpu: 250m }} }}\n"),
        );
        assert_eq!(errors(&l), vec![]);
        let inv = l.inventory.unwrap();
        let k = &inv.cluster.kube;
        assert_eq!(k.cert_sans, ["k8s-api.example.com", "10.0.0.100", "*.lab.example.com"]);
        assert_eq!(k.extra_args[&Component::ApiServer]["audit-log-maxage"], "30");
        assert_eq!(k.extra_args[&Component::ApiServer]["profiling"], "false");
        assert!(k.feature_gates["InPlacePodVerticalScaling"]);
        assert_eq!(k.image_repository.as_deref(), Some("registry.example.com:5000/k8s"));
        assert_eq!(k.dns_domain.as_deref(), Some("k8s.example.internal"));
        assert_eq!(k.kubelet["maxPods"], json!(200));
        assert_eq!(k.kube_proxy_mode.as_deref(), Some("nftables"));
        assert_eq!(k.kube_proxy["nftables"]["syncPeriod"], json!("30s"));
        assert!(inv.hosts[0].kubelet.is_empty());
        assert_eq!(inv.hosts[1].kubelet["kubeReserved"], json!({ "cpu": "250m" }));
    }

    #[test]
    fn unknown_fields_are_reported_where_they_are_written_with_the_real_name() {
        let l = load(
            "  kubelet:\n    max_pods: 200\n    authentication:\n      webhok: { enabled: true }\n    evictionHard: 5\n  kube_proxy:\n    settings: { ipvs: { schedular: rr } }\n",
            &format!("{HOSTS}    kubelet:\n      SystemReserved: {{ cpu: 1 }}\n"),
        );
        let e = errors(&l);
        let find =
            |code: &str, line: usize| e.iter().find(|x| x.0 == code && x.1 == line).unwrap_or_else(|| panic!("{code} at line {line} in {e:#?}"));
        let max_pods = find("kprov::inventory::unknown_field", 3);
        assert_eq!(max_pods.2, 5);
        assert!(
            max_pods.3.contains("`max_pods` is not a field of KubeletConfiguration") && max_pods.3.contains("did you mean `maxPods`?"),
            "{max_pods:?}"
        );
        let nested = find("kprov::inventory::unknown_field", 5);
        assert_eq!(nested.2, 7);
        assert!(
            nested.3.contains("`authentication.webhok` is not a field of KubeletAuthentication") && nested.3.contains("did you mean `webhook`?"),
            "{nested:?}"
        );
        assert!(find("kprov::inventory::wrong_type", 6).3.contains("`evictionHard` must be a mapping"));
        assert!(find("kprov::inventory::unknown_field", 8).3.contains("did you mean `scheduler`?"));
        let host = find("kprov::inventory::unknown_field", 15);
        assert!(host.3.contains("hosts[1].kubelet (host `w`)") && host.3.contains("did you mean `systemReserved`?"), "{host:?}");
        assert_eq!(e.len(), 5, "{e:#?}");
        assert!(l.inventory.is_none());
    }

    #[test]
    fn settings_kprov_owns_and_malformed_values_are_refused_with_the_key_to_use() {
        let l = load(
            "  kubeadm:\n    cert_sans: [\"bad name\"]\n    apiserver_extra_args: { --audit-log-maxage: 30, feature-gates: A=true, service-cluster-ip-range: 10.0.0.0/16, v: [1, 2] }\n    feature_gates: { in-place: true }\n    image_repository: https://registry.example.com/k8s\n    dns_domain: Cluster_Local\n  kubelet: { cgroupDriver: cgroupfs }\n  kube_proxy:\n    mode: ipvss\n    settings: { mode: ipvs }\n",
            HOSTS,
        );
        let e = errors(&l);
        let has = |code: &str, words: &str| assert!(e.iter().any(|x| x.0 == code && x.3.contains(words)), "{code} {words:?} in {e:#?}");
        has("kprov::inventory::cert_san", "`bad name`");
        has("kprov::inventory::extra_arg", "without its dashes");
        has("kprov::inventory::extra_arg_owned", "cluster.kubeadm.feature_gates");
        has("kprov::inventory::extra_arg_owned", "cluster.service_cidr");
        has("kprov::inventory::extra_arg", "needs one value");
        has("kprov::inventory::feature_gate", "`in-place`");
        has("kprov::inventory::image_repository", "has a URL scheme");
        has("kprov::inventory::dns_domain", "Cluster_Local");
        has("kprov::inventory::owned_field", "`cgroupDriver`");
        has("kprov::inventory::owned_field", "cluster.kube_proxy.mode");
        has("kprov::inventory::unknown_value", "did you mean `ipvs`?");
        assert!(e.iter().all(|x| x.1 > 0), "every error has a place: {e:#?}");
    }

    #[test]
    fn key_places_find_nested_keys_by_path() {
        let src = "cluster:\n  kubelet:\n    evictionHard:\n      memory.available: 1Gi\nhosts:\n  - name: a\n    kubelet: { max_pods: 3 }\n";
        let places = key_places(src);
        let at = |p: &[&str]| places.get(&path_of(p)).map(|pl| &src[pl.offset..pl.offset + pl.len]);
        assert_eq!(at(&["cluster", "kubelet", "evictionHard", "memory.available"]), Some("memory.available"));
        assert_eq!(at(&["hosts", "[0]", "kubelet", "max_pods"]), Some("max_pods"));
        assert_eq!(at(&["hosts", "[0]", "name"]), Some("name"));
    }

    #[test]
    fn another_spelling_of_a_field_suggests_its_real_name() {
        let fields = ["maxPods", "podsPerCore", "systemReserved"];
        assert_eq!(suggest_field("max_pods", fields), Some("maxPods"));
        assert_eq!(suggest_field("MaxPods", fields), Some("maxPods"));
        assert_eq!(suggest_field("systemReservd", fields), Some("systemReserved"));
        assert_eq!(suggest_field("bogus", fields), None);
    }

    #[test]
    fn the_schema_lists_the_real_fields_and_leaves_out_kprovs_own() {
        let s = fields_schema(KUBELET_KIND, KUBELET_OWNED);
        let props = s.get("properties").and_then(Json::as_object).unwrap();
        assert!(props.contains_key("maxPods") && props.contains_key("evictionHard"));
        assert!(!props.contains_key("cgroupDriver"));
        assert_eq!(s.get("additionalProperties"), Some(&json!(false)));
        assert!(props["authentication"]["properties"].as_object().unwrap().contains_key("webhook"));
    }
}
