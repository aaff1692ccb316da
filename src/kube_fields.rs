//! The field sets of kubeadm's v1beta4, the kubelet's v1beta1 and kube-proxy's v1alpha1
//! configuration types, derived from their upstream Go sources (json tags) by
//! `scripts/kube-fields.py` into `src/kube_fields.json`, checked in and embedded here.
//!
//! The kubeadm test double refuses any field this table does not list (the real kubeadm only
//! warns); kprov can check configuration it passes through to kubeadm the same way.
//! `tests/kube_fields.rs` re-runs the script and compares, so the table cannot drift from the
//! upstream files.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value as Json;

/// The table as checked in.
pub const TABLE_JSON: &str = include_str!("kube_fields.json");

#[derive(Debug, Deserialize)]
pub struct FieldTable {
    /// apiVersion → kind → struct name.
    pub kinds: BTreeMap<String, BTreeMap<String, String>>,
    /// struct name → field → type: "scalar", "map", a struct name, "external:PKG.Type"
    /// (defined outside these files, not checked), each possibly prefixed with "[]".
    pub structs: BTreeMap<String, BTreeMap<String, String>>,
}

pub fn table() -> &'static FieldTable {
    static TABLE: OnceLock<FieldTable> = OnceLock::new();
    TABLE.get_or_init(|| serde_json::from_str(TABLE_JSON).expect("src/kube_fields.json is generated JSON"))
}

impl FieldTable {
    /// The struct a document of `api_version`/`kind` decodes into.
    pub fn kind(&self, api_version: &str, kind: &str) -> Option<&str> {
        self.kinds.get(api_version)?.get(kind).map(String::as_str)
    }

    /// Every field of `value` (a document of struct `name`) the real type does not have, as
    /// dotted paths (`nodeRegistration.bogus`), and values of the wrong shape.
    pub fn problems(&self, name: &str, value: &Json) -> Vec<String> {
        let mut out = vec![];
        self.check_struct(name, value, "", &mut out);
        out
    }

    fn check_struct(&self, name: &str, value: &Json, prefix: &str, out: &mut Vec<String>) {
        let Some(fields) = self.structs.get(name) else {
            return;
        };
        let Json::Object(map) = value else {
            out.push(format!("{}: expected a mapping", prefix.trim_end_matches('.')));
            return;
        };
        // A struct embedding a type from outside these files takes that type's fields too.
        let open = fields.keys().any(|k| k.starts_with("(inline)"));
        for (k, v) in map {
            match fields.get(k) {
                Some(t) => self.check_type(t, v, &format!("{prefix}{k}"), out),
                None if !open => out.push(format!("unknown field \"{prefix}{k}\"")),
                None => {}
            }
        }
    }

    fn check_type(&self, t: &str, v: &Json, path: &str, out: &mut Vec<String>) {
        if v.is_null() || t.starts_with("external:") {
            return;
        }
        if let Some(inner) = t.strip_prefix("[]") {
            match v {
                Json::Array(items) => {
                    for (i, x) in items.iter().enumerate() {
                        self.check_type(inner, x, &format!("{path}[{i}]"), out);
                    }
                }
                _ => out.push(format!("{path}: expected a list")),
            }
            return;
        }
        match t {
            "scalar" if v.is_object() || v.is_array() => out.push(format!("{path}: expected a scalar")),
            "scalar" => {}
            "map" if !v.is_object() => out.push(format!("{path}: expected a mapping")),
            "map" => {}
            s => self.check_struct(s, v, &format!("{path}."), out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_table_knows_the_kinds_kprov_writes_and_their_nested_fields() {
        let t = table();
        let init = t.kind("kubeadm.k8s.io/v1beta4", "InitConfiguration").unwrap();
        let doc = json!({
            "apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "InitConfiguration",
            "localAPIEndpoint": { "advertiseAddress": "10.0.0.1", "bindPort": 6443 },
            "nodeRegistration": { "name": "a", "kubeletExtraArgs": [{ "name": "node-labels", "value": "a=b" }],
                                  "taints": [{ "key": "k", "effect": "NoSchedule" }] }
        });
        assert_eq!(t.problems(init, &doc), Vec::<String>::new());
        let join = t.kind("kubeadm.k8s.io/v1beta4", "JoinConfiguration").unwrap();
        let bad = json!({ "discovery": { "bootstrapToken": { "token": "x", "caCertHash": ["sha256:1"] } },
                          "nodeRegistration": { "labels": { "a": "b" } }, "controlPlane": { "localAPIEndpoint": "x" } });
        let problems = t.problems(join, &bad);
        assert!(problems.contains(&"unknown field \"discovery.bootstrapToken.caCertHash\"".to_string()), "{problems:?}");
        assert!(problems.contains(&"unknown field \"nodeRegistration.labels\"".to_string()), "{problems:?}");
        assert!(problems.contains(&"controlPlane.localAPIEndpoint: expected a mapping".to_string()), "{problems:?}");
        // Inline embeddings: APIServer has ControlPlaneComponent's extraArgs; TypeMeta's kind.
        let cluster = t.kind("kubeadm.k8s.io/v1beta4", "ClusterConfiguration").unwrap();
        assert!(t.problems(cluster, &json!({ "kind": "ClusterConfiguration", "apiServer": { "extraArgs": [], "certSANs": [] } })).is_empty());
        assert!(t.kind("kubelet.config.k8s.io/v1beta1", "KubeletConfiguration").is_some());
        assert!(t.kind("kubeproxy.config.k8s.io/v1alpha1", "KubeProxyConfiguration").is_some());
    }
}
