//! Template contexts: the values roles and templates see, per host. Built from the inventory
//! (see `from_inventory` in the CLI glue) through these plain types, so the engine does not
//! depend on the inventory's YAML shape.
//!
//! A role sees:
//! - `cluster`: name, kubernetes_version (minor, "1.34"), kubernetes_patch_version (or none),
//!   package_version (apt glob, "1.34.*"), pod_cidr, service_cidr, cni, control_plane_endpoint,
//!   advertise_address;
//! - `cni`: namespace and daemonset of the chosen CNI, default_cidr its manifest hard-codes,
//!   local_manifest (base64) when the inventory names a local file;
//! - `mirrors`: kubernetes_apt, kubernetes_apt_key, docker_apt, cni_manifest (resolved URLs);
//! - `host`: name, address (where kprov connects), internal_address (the node's IP in the
//!   cluster: kubelet's node IP, the advertise address; the empty string for a worker reached
//!   by DNS name without one, whose kubelet picks its own), roles, labels,
//!   raspberry_pi.watchdog, is_control_plane, is_first_control_plane, is_worker;
//! - `hosts`, `first_control_plane`: every host / the first control plane, same shape;
//! - `ssh`: user (for the kubeconfig copy);
//! - `facts` (after gathering): `facts.os` (see `OsFact`).

use std::collections::BTreeMap;

use minijinja::{Value, context};
use serde::Serialize;
use serde_json::{Value as Json, json};

#[derive(Debug, Clone, Serialize)]
pub struct ClusterValues {
    pub name: String,
    /// "1.34"
    pub kubernetes_version: String,
    /// "v1.34.2" when the inventory pins a patch release.
    pub kubernetes_patch_version: Option<String>,
    pub pod_cidr: String,
    pub service_cidr: String,
    pub cni: String,
    /// host:port; the first control plane's address and 6443 when not set.
    pub control_plane_endpoint: String,
    pub advertise_address: String,
    pub preflight: crate::preflight::Policy,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostValues {
    pub name: String,
    pub address: String,
    /// The node's IP inside the cluster; empty when unknown (a worker reached by DNS name).
    pub internal_address: String,
    pub roles: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub watchdog: bool,
    pub ssh_user: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct MirrorValues {
    /// May hold `{minor}`, replaced by "v1.34".
    pub kubernetes_apt: String,
    pub kubernetes_apt_key: Option<String>,
    /// Base URL; `/debian` or `/ubuntu` is appended by the role.
    pub docker_apt: String,
    /// Overrides the pinned manifest URL of the CNI.
    pub cni_manifest: Option<String>,
}

/// The CNI manifests kprov applies, pinned, and what it needs to know about each.
pub struct CniInfo {
    pub name: &'static str,
    pub url: &'static str,
    pub namespace: &'static str,
    pub daemonset: &'static str,
    /// The pod network the manifest hard-codes, replaced by the cluster's.
    pub default_cidr: Option<&'static str>,
    /// Archived or otherwise discouraged upstream.
    pub warning: Option<&'static str>,
}

pub const CNIS: &[CniInfo] = &[
    CniInfo {
        name: "calico",
        url: "https://raw.githubusercontent.com/projectcalico/calico/v3.30.3/manifests/calico.yaml",
        namespace: "kube-system",
        daemonset: "calico-node",
        default_cidr: None,
        warning: None,
    },
    CniInfo {
        name: "flannel",
        url: "https://github.com/flannel-io/flannel/releases/download/v0.27.4/kube-flannel.yml",
        namespace: "kube-flannel",
        daemonset: "kube-flannel-ds",
        default_cidr: Some("10.244.0.0/16"),
        warning: None,
    },
    CniInfo {
        name: "cilium",
        url: "https://raw.githubusercontent.com/cilium/cilium/v1.18.2/install/kubernetes/quick-install.yaml",
        namespace: "kube-system",
        daemonset: "cilium",
        default_cidr: Some("10.0.0.0/8"),
        warning: None,
    },
    CniInfo {
        name: "weave",
        url: "https://github.com/weaveworks/weave/releases/download/v2.8.1/weave-daemonset-k8s.yaml",
        namespace: "kube-system",
        daemonset: "weave-net",
        default_cidr: None,
        warning: Some("Weave Net is archived upstream (no releases since 2.8.1, 2021); prefer calico or flannel for new clusters"),
    },
    CniInfo {
        name: "canal",
        url: "https://raw.githubusercontent.com/projectcalico/calico/v3.30.3/manifests/canal.yaml",
        namespace: "kube-system",
        daemonset: "canal",
        default_cidr: Some("10.244.0.0/16"),
        warning: None,
    },
    CniInfo {
        name: "kube-router",
        url: "https://raw.githubusercontent.com/cloudnativelabs/kube-router/v2.6.1/daemonset/kubeadm-kuberouter.yaml",
        namespace: "kube-system",
        daemonset: "kube-router",
        default_cidr: None,
        warning: None,
    },
];

pub fn cni(name: &str) -> Option<&'static CniInfo> {
    CNIS.iter().find(|c| c.name == name)
}

pub const DEFAULT_KUBERNETES_APT: &str = "https://pkgs.k8s.io/core:/stable:/{minor}/deb/";
pub const DEFAULT_DOCKER_APT: &str = "https://download.docker.com/linux";

fn host_json(h: &HostValues, first_cp: Option<&str>) -> Json {
    let cp = h.roles.iter().any(|r| r == "control-plane");
    json!({
        "name": h.name,
        "address": h.address,
        "internal_address": h.internal_address,
        "roles": h.roles,
        "labels": h.labels,
        "raspberry_pi": { "watchdog": h.watchdog },
        "is_control_plane": cp,
        "is_first_control_plane": first_cp == Some(h.name.as_str()),
        "is_worker": h.roles.iter().any(|r| r == "worker"),
    })
}

/// The apt version glob of the Kubernetes packages: `1.34.*` for a minor, `1.34.2-*` for a
/// patch release (`v1.34.2`); the `-*` takes the repository's package revision.
pub fn package_version(minor: &str, patch: Option<&str>) -> String {
    match patch {
        Some(p) => format!("{}-*", p.trim_start_matches('v')),
        None => format!("{minor}.*"),
    }
}

/// One context per host, in host order. `local_cni_manifest` is the content of a local
/// manifest file named by the inventory, if any.
pub fn build(cluster: &ClusterValues, hosts: &[HostValues], mirrors: &MirrorValues, local_cni_manifest: Option<&[u8]>) -> Vec<Value> {
    let first_cp = hosts.iter().find(|h| h.roles.iter().any(|r| r == "control-plane"));
    let first_name = first_cp.map(|h| h.name.as_str());
    let minor = format!("v{}", cluster.kubernetes_version);
    let kubernetes_apt = mirrors.kubernetes_apt.replace("{minor}", &minor);
    let kubernetes_apt_key = mirrors
        .kubernetes_apt_key
        .clone()
        .unwrap_or_else(|| {
            format!("{}Release.key", if kubernetes_apt.ends_with('/') { kubernetes_apt.clone() } else { format!("{kubernetes_apt}/") })
        })
        .replace("{minor}", &minor);
    let info = cni(&cluster.cni);
    let cni_manifest = mirrors.cni_manifest.clone().or_else(|| info.map(|c| c.url.to_string())).unwrap_or_default();
    let package_version = package_version(&cluster.kubernetes_version, cluster.kubernetes_patch_version.as_deref());
    let local_manifest = local_cni_manifest.map(|bytes| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(bytes)
    });
    let mut cluster_json = serde_json::to_value(cluster).expect("plain data");
    cluster_json["package_version"] = json!(package_version);
    // What every host sees alike is converted once and shared (minijinja values are
    // reference-counted): a context costs the same at 3 hosts and at 1000.
    let shared_cluster = crate::roles::to_value(&cluster_json);
    let shared_cni = crate::roles::to_value(json!({
        "name": cluster.cni,
        "namespace": info.map(|c| c.namespace),
        "daemonset": info.map(|c| c.daemonset),
        "default_cidr": info.and_then(|c| c.default_cidr),
        "local_manifest": local_manifest,
    }));
    let shared_mirrors = crate::roles::to_value(json!({
        "kubernetes_apt": kubernetes_apt,
        "kubernetes_apt_key": kubernetes_apt_key,
        "docker_apt": mirrors.docker_apt.trim_end_matches('/'),
        "cni_manifest": cni_manifest,
    }));
    let each: Vec<Value> = hosts.iter().map(|h| crate::roles::to_value(host_json(h, first_name))).collect();
    let all = Value::from(each.clone());
    let first = first_cp.map(|f| crate::roles::to_value(host_json(f, first_name))).unwrap_or(Value::from(()));
    hosts
        .iter()
        .zip(each)
        .map(|(h, host)| {
            context! {
                cluster => shared_cluster.clone(),
                cni => shared_cni.clone(),
                mirrors => shared_mirrors.clone(),
                host => host,
                hosts => all.clone(),
                first_control_plane => first.clone(),
                ssh => context! { user => h.ssh_user.clone() },
            }
        })
        .collect()
}
