//! The Kubernetes settings an inventory gives (kubeadm's ClusterConfiguration, the kubelet's and
//! kube-proxy's configuration), as plain validated data: made by `inventory` (which checks
//! every field against the real types, see `kube_fields`), read by `engine::context`, which
//! turns them into the values the kubeadm templates serialize.
//!
//! Everything kprov writes into a kubeadm document is built here as JSON values and written by a
//! serializer (the `yaml_block` template filter), never pasted into YAML as text.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value as Json, json};

/// The control-plane components whose command-line arguments the inventory may extend.
pub const COMPONENTS: &[Component] = &[Component::ApiServer, Component::ControllerManager, Component::Scheduler, Component::Etcd];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Component {
    ApiServer,
    ControllerManager,
    Scheduler,
    Etcd,
}

impl Component {
    /// The inventory key of its extra arguments.
    pub fn key(self) -> &'static str {
        match self {
            Component::ApiServer => "apiserver_extra_args",
            Component::ControllerManager => "controller_manager_extra_args",
            Component::Scheduler => "scheduler_extra_args",
            Component::Etcd => "etcd_extra_args",
        }
    }

    /// kubeadm's name for it (static pod, `kubeadm init phase control-plane NAME`).
    pub fn kubeadm_name(self) -> &'static str {
        match self {
            Component::ApiServer => "apiserver",
            Component::ControllerManager => "controller-manager",
            Component::Scheduler => "scheduler",
            Component::Etcd => "etcd",
        }
    }

    /// Whether it takes Kubernetes feature gates (`--feature-gates`); etcd does not.
    pub fn takes_feature_gates(self) -> bool {
        self != Component::Etcd
    }
}

/// The validated settings. Empty (the default) means kubeadm's own defaults throughout.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KubeSettings {
    /// Extra Subject Alternative Names of the API server's serving certificate.
    pub cert_sans: Vec<String>,
    /// Extra command-line arguments per component, name (without `--`) → value.
    pub extra_args: BTreeMap<Component, BTreeMap<String, String>>,
    /// Kubernetes feature gates, for every component that takes them (API server,
    /// controller-manager, scheduler, kubelet, kube-proxy).
    pub feature_gates: BTreeMap<String, bool>,
    pub image_repository: Option<String>,
    pub dns_domain: Option<String>,
    /// KubeletConfiguration fields for every node (checked against the real type).
    pub kubelet: Map<String, Json>,
    /// iptables, ipvs or nftables.
    pub kube_proxy_mode: Option<String>,
    /// KubeProxyConfiguration fields (checked against the real type).
    pub kube_proxy: Map<String, Json>,
}

/// kubeadm v1beta4's argument list: `[{name, value}]`, in name order.
fn arg_list(args: &BTreeMap<String, String>) -> Json {
    Json::Array(args.iter().map(|(n, v)| json!({ "name": n, "value": v })).collect())
}

/// `A=true,B=false`, as every component's `--feature-gates` reads it.
pub fn feature_gates_flag(gates: &BTreeMap<String, bool>) -> String {
    gates.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

impl KubeSettings {
    /// A component's arguments as kubeadm gets them: the inventory's, plus the feature gates.
    pub fn component_args(&self, c: Component) -> BTreeMap<String, String> {
        let mut args = self.extra_args.get(&c).cloned().unwrap_or_default();
        if c.takes_feature_gates() && !self.feature_gates.is_empty() {
            args.insert("feature-gates".into(), feature_gates_flag(&self.feature_gates));
        }
        args
    }

    /// The ClusterConfiguration fields these settings add (apiServer, controllerManager,
    /// scheduler, etcd.local), beside what the template writes itself (names, version,
    /// endpoint, networking, imageRepository). Empty when there is nothing to add.
    pub fn cluster_configuration(&self) -> Map<String, Json> {
        let mut out = Map::new();
        let mut api = Map::new();
        if !self.cert_sans.is_empty() {
            api.insert("certSANs".into(), json!(self.cert_sans));
        }
        let args = self.component_args(Component::ApiServer);
        if !args.is_empty() {
            api.insert("extraArgs".into(), arg_list(&args));
        }
        if !api.is_empty() {
            out.insert("apiServer".into(), Json::Object(api));
        }
        for (c, key) in [(Component::ControllerManager, "controllerManager"), (Component::Scheduler, "scheduler")] {
            let args = self.component_args(c);
            if !args.is_empty() {
                out.insert(key.into(), json!({ "extraArgs": arg_list(&args) }));
            }
        }
        let etcd = self.component_args(Component::Etcd);
        if !etcd.is_empty() {
            out.insert("etcd".into(), json!({ "local": { "extraArgs": arg_list(&etcd) } }));
        }
        out
    }

    /// The KubeletConfiguration fields beyond kprov's own (`cgroupDriver`): the inventory's,
    /// with the feature gates merged into `featureGates`.
    pub fn kubelet_configuration(&self) -> Map<String, Json> {
        with_feature_gates(&self.kubelet, &self.feature_gates)
    }

    /// The KubeProxyConfiguration fields, or an empty map when kubeadm's defaults stand.
    pub fn kube_proxy_configuration(&self) -> Map<String, Json> {
        let mut out = with_feature_gates(&self.kube_proxy, &self.feature_gates);
        if let Some(m) = &self.kube_proxy_mode {
            out.insert("mode".into(), json!(m));
        }
        out
    }
}

fn with_feature_gates(fields: &Map<String, Json>, gates: &BTreeMap<String, bool>) -> Map<String, Json> {
    let mut out = fields.clone();
    if !gates.is_empty() {
        let mut fg = match out.remove("featureGates") {
            Some(Json::Object(m)) => m,
            _ => Map::new(),
        };
        for (k, v) in gates {
            // A gate the passthrough names itself wins: it is the more specific setting.
            fg.entry(k.clone()).or_insert(json!(v));
        }
        out.insert("featureGates".into(), Json::Object(fg));
    }
    out
}

/// Block YAML of a JSON value, `indent` spaces deep: every scalar is written as a JSON scalar (a
/// JSON string is a valid YAML double-quoted scalar), and every key too unless it is a plain
/// identifier (`maxPods`, `memory.available`), so no value can change the document's structure. Mappings and lists are block collections; empty ones `{}` / `[]`.
/// No trailing newline. A mapping at the top writes its entries; anything else one line.
pub fn block_yaml(value: &Json, indent: usize) -> String {
    let mut out = String::new();
    match value {
        Json::Object(m) if !m.is_empty() => write_map(&mut out, m, indent),
        Json::Array(a) if !a.is_empty() => write_list(&mut out, a, indent),
        other => {
            out.push_str(&" ".repeat(indent));
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out.pop();
    out
}

fn scalar(v: &Json) -> String {
    match v {
        Json::Object(_) => "{}".into(),
        Json::Array(_) => "[]".into(),
        other => other.to_string(),
    }
}

/// A key as written: plain when it is a letter followed by letters, digits and `_.-/` and not a
/// word YAML 1.1 reads as a boolean or null; else a JSON string.
fn key(k: &str) -> String {
    const SPECIAL: &[&str] = &["y", "n", "yes", "no", "on", "off", "true", "false", "null"];
    let plain = k.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && k.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/'))
        && !SPECIAL.contains(&k.to_ascii_lowercase().as_str());
    if plain { k.to_string() } else { Json::String(k.to_string()).to_string() }
}

fn is_block(v: &Json) -> bool {
    match v {
        Json::Object(m) => !m.is_empty(),
        Json::Array(a) => !a.is_empty(),
        _ => false,
    }
}

fn write_map(out: &mut String, m: &Map<String, Json>, indent: usize) {
    for (k, v) in m {
        out.push_str(&" ".repeat(indent));
        out.push_str(&key(k));
        out.push(':');
        write_value(out, v, indent + 2);
    }
}

fn write_list(out: &mut String, a: &[Json], indent: usize) {
    for v in a {
        out.push_str(&" ".repeat(indent));
        out.push('-');
        match v {
            Json::Object(m) if !m.is_empty() => {
                // `- "k": v` then the other keys aligned under the first.
                let mut inner = String::new();
                write_map(&mut inner, m, indent + 2);
                out.push(' ');
                out.push_str(&inner[indent + 2..]);
            }
            _ => write_value(out, v, indent + 2),
        }
    }
}

fn write_value(out: &mut String, v: &Json, indent: usize) {
    if is_block(v) {
        out.push('\n');
        match v {
            Json::Object(m) => write_map(out, m, indent),
            Json::Array(a) => write_list(out, a, indent),
            _ => unreachable!("is_block holds only for collections"),
        }
    } else {
        out.push(' ');
        out.push_str(&scalar(v));
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_yaml_quotes_every_scalar_and_odd_keys_and_nests_collections() {
        let v = json!({
            "maxPods": 50,
            "evictionHard": { "memory.available": "100Mi" },
            "tls": [],
            "x": [{ "name": "a: b\n- c", "value": "1" }, "plain"],
            "empty": {},
            "yes": true,
            "a key": 1,
        });
        let text = block_yaml(&v, 0);
        assert_eq!(
            text,
            "\"a key\": 1\nempty: {}\nevictionHard:\n  memory.available: \"100Mi\"\nmaxPods: 50\ntls: []\nx:\n  - name: \"a: b\\n- c\"\n    value: \"1\"\n  - \"plain\"\n\"yes\": true"
        );
        assert_eq!(block_yaml(&v["evictionHard"], 2), "  memory.available: \"100Mi\"");
    }

    #[test]
    fn feature_gates_reach_every_component_that_takes_them() {
        let mut s = KubeSettings::default();
        s.feature_gates.insert("InPlacePodVerticalScaling".into(), true);
        s.extra_args.entry(Component::ApiServer).or_default().insert("audit-log-maxage".into(), "30".into());
        s.extra_args.entry(Component::Etcd).or_default().insert("quota-backend-bytes".into(), "8589934592".into());
        s.kubelet.insert("featureGates".into(), json!({ "InPlacePodVerticalScaling": false }));
        let cc = s.cluster_configuration();
        assert_eq!(
            cc["apiServer"]["extraArgs"],
            json!([{ "name": "audit-log-maxage", "value": "30" }, { "name": "feature-gates", "value": "InPlacePodVerticalScaling=true" }])
        );
        assert_eq!(cc["scheduler"]["extraArgs"][0]["value"], "InPlacePodVerticalScaling=true");
        assert_eq!(cc["etcd"]["local"]["extraArgs"], json!([{ "name": "quota-backend-bytes", "value": "8589934592" }]));
        // The passthrough's own gate is the more specific setting.
        assert_eq!(s.kubelet_configuration()["featureGates"], json!({ "InPlacePodVerticalScaling": false }));
        assert_eq!(s.kube_proxy_configuration()["featureGates"], json!({ "InPlacePodVerticalScaling": true }));
        assert!(KubeSettings::default().cluster_configuration().is_empty());
        assert!(KubeSettings::default().kube_proxy_configuration().is_empty());
    }
}
