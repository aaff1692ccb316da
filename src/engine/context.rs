//! Template contexts: the values roles and templates see, per host. Built from the inventory
//! (see `from_inventory` in the CLI glue) through these plain types, so the engine does not
//! depend on the inventory's YAML shape.
//!
//! A role sees:
//! - `cluster`: name, kubernetes_version (minor, "1.34"), kubernetes_patch_version (or none),
//!   package_version (apt glob, "1.34.*"), pod_cidr, service_cidr, cni, control_plane_endpoint,
//!   advertise_address; kube (cluster_configuration, kubelet_configuration and
//!   kube_proxy_configuration: the extra fields of kubeadm's documents, as values for the
//!   `yaml_block` filter; image_repository, dns_domain, patches_dir);
//! - `cni`: namespace and daemonset of the chosen CNI, default_cidr its manifest hard-codes,
//!   sha256 the downloaded manifest must have, builtin (kprov's pinned manifest), version,
//!   image (kube-router's pinned image), helm (Cilium: version, arch.{amd64,arm64}.{url,sha256}),
//!   local_manifest (base64) when the inventory names a local file; others (path and message
//!   of every other CNI's manifest file, for the refusal to switch CNI);
//! - `mirrors`: kubernetes_apt, kubernetes_apt_key, docker_apt, cni_manifest (resolved URLs),
//!   kubernetes_apt_key_fingerprints, docker_apt_key_fingerprints (empty, with *_unverified
//!   true, only for a mirror whose check the operator skipped);
//! - `host`: name, address (where kprov connects), internal_address (the node's IP in the
//!   cluster: kubelet's node IP; the empty string for a worker reached by DNS name without one,
//!   whose kubelet picks its own), roles, labels, node_labels (the labels as the kubelet's
//!   `--node-labels` value, `k=v,k2=v2`), taints (key, value, effect; for a control plane with
//!   taints, kubeadm's default control-plane taint comes first), advertise_address (a control
//!   plane's API address: its `advertise_address`, else its internal_address, else its
//!   `address`), raspberry_pi.watchdog, is_control_plane, is_first_control_plane, is_worker;
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
    /// kubeadm, kubelet and kube-proxy settings; default: kubeadm's own.
    pub kube: crate::kube_settings::KubeSettings,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostValues {
    pub name: String,
    pub address: String,
    /// The node's IP inside the cluster; empty when unknown (a worker reached by DNS name).
    pub internal_address: String,
    pub roles: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<TaintValues>,
    /// The API server address of a control plane, when it differs from `address`.
    pub advertise_address: Option<String>,
    pub watchdog: bool,
    pub ssh_user: String,
    /// KubeletConfiguration fields for this node over the cluster's (a kubeadm merge patch).
    pub kubelet: serde_json::Map<String, Json>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaintValues {
    pub key: String,
    pub value: Option<String>,
    pub effect: String,
}

/// kubeadm's own taint for control planes, which it adds only when the configuration names no
/// taints: a control plane with inventory taints keeps it through kprov.
pub const CONTROL_PLANE_TAINT: &str = "node-role.kubernetes.io/control-plane";

#[derive(Debug, Clone, Default, Serialize)]
pub struct MirrorValues {
    /// May hold `{minor}`, replaced by "v1.34".
    pub kubernetes_apt: String,
    pub kubernetes_apt_key: Option<String>,
    /// Base URL; `/debian` or `/ubuntu` is appended by the role.
    pub docker_apt: String,
    /// Overrides the pinned manifest URL of the CNI.
    pub cni_manifest: Option<String>,
    /// What kprov trusts instead of its pins (see `pins`): the Kubernetes and Docker key
    /// fingerprints of a mirror, the digest of `cni_manifest` (for a local file, its own).
    pub kubernetes_apt_key_fingerprint: Option<String>,
    pub docker_apt_key_fingerprint: Option<String>,
    /// Keys are installed without a fingerprint check; every plan says so.
    pub insecure_skip_key_fingerprint: bool,
    pub cni_manifest_sha256: Option<String>,
    /// Base URL of the Helm release archives (Cilium); the pinned digests apply.
    pub helm: Option<String>,
}

pub use super::pins::{CNIS, CniInfo, cni};

pub const DEFAULT_KUBERNETES_APT: &str = "https://pkgs.k8s.io/core:/stable:/{minor}/deb/";
pub const DEFAULT_DOCKER_APT: &str = "https://download.docker.com/linux";

fn host_json(h: &HostValues, first_cp: Option<&str>) -> Json {
    let cp = h.roles.iter().any(|r| r == "control-plane");
    let node_labels: Vec<String> = h.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut taints = h.taints.clone();
    if cp && !taints.is_empty() && !taints.iter().any(|t| t.key == CONTROL_PLANE_TAINT) {
        taints.insert(0, TaintValues { key: CONTROL_PLANE_TAINT.into(), value: None, effect: "NoSchedule".into() });
    }
    json!({
        "name": h.name,
        "address": h.address,
        "internal_address": h.internal_address,
        "advertise_address": h.advertise_address.as_deref().unwrap_or(if h.internal_address.is_empty() { &h.address } else { &h.internal_address }),
        "roles": h.roles,
        "labels": h.labels,
        "node_labels": node_labels.join(","),
        "taints": taints,
        "raspberry_pi": { "watchdog": h.watchdog },
        "is_control_plane": cp,
        "is_first_control_plane": first_cp == Some(h.name.as_str()),
        "is_worker": h.roles.iter().any(|r| r == "worker"),
        "kubelet_patch": kubelet_patch(&h.kubelet),
        "managed_labels": node_labels.join(" "),
        "managed_taints": h.taints.iter().map(taint_spec).collect::<Vec<_>>().join(" "),
        "managed": managed_keys(h),
    })
}

/// A taint as kubectl writes it: `key=value:Effect` or `key:Effect`.
fn taint_spec(t: &TaintValues) -> String {
    match &t.value {
        Some(v) if !v.is_empty() => format!("{}={v}:{}", t.key, t.effect),
        _ => format!("{}:{}", t.key, t.effect),
    }
}

/// What kprov manages on the node, as its `kprov.io/managed` annotation lists it: `l=KEY` for
/// each inventory label, `t=KEY:EFFECT` for each inventory taint (never kubeadm's own
/// control-plane taint unless the inventory names it).
fn managed_keys(h: &HostValues) -> String {
    let labels = h.labels.keys().map(|k| format!("l={k}"));
    let taints = h.taints.iter().map(|t| format!("t={}:{}", t.key, t.effect));
    labels.chain(taints).collect::<Vec<_>>().join(" ")
}

/// Where kubeadm finds a node's own patches (`patches.directory`), and the kubelet's.
pub const PATCHES_DIR: &str = "/etc/kubernetes/kprov/patches";

/// The node's kubelet overrides as kubeadm's `kubeletconfiguration+merge.json` patch (JSON,
/// written by a serializer), or "" when it has none.
fn kubelet_patch(fields: &serde_json::Map<String, Json>) -> String {
    if fields.is_empty() {
        return String::new();
    }
    let mut text = serde_json::to_string_pretty(fields).expect("JSON values serialize");
    text.push('\n');
    text
}

/// What the kubeadm templates read under `cluster.kube`: the documents' extra fields, built
/// here as values and serialized by the `yaml_block` filter.
fn kube_json(k: &crate::kube_settings::KubeSettings) -> Json {
    json!({
        "cluster_configuration": k.cluster_configuration(),
        "kubelet_configuration": k.kubelet_configuration(),
        "kube_proxy_configuration": k.kube_proxy_configuration(),
        "image_repository": k.image_repository,
        "dns_domain": k.dns_domain,
        "patches_dir": PATCHES_DIR,
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

/// The fingerprints a repository key must have: the inventory's, else none when the operator
/// skips the check for a mirror of their own, else kprov's pins (the built-in URL is always
/// checked against its pin).
fn key_fingerprints(configured: Option<&str>, skipped: bool, pinned: &[&str]) -> Vec<String> {
    match configured {
        Some(f) => vec![super::pins::normalize_fingerprint(f).unwrap_or_else(|| f.to_string())],
        None if skipped => vec![],
        None => pinned.iter().map(|f| f.to_string()).collect(),
    }
}

/// The CNI's trust values: the SHA-256 the downloaded manifest must have (the inventory's for
/// its own manifest, the digest of a local file, else the pin), whether it is the built-in
/// manifest (its patches must apply exactly), and for Cilium the Helm archive per architecture.
fn supply_values(cni: &mut Json, info: Option<&CniInfo>, mirrors: &MirrorValues, local: Option<&[u8]>, pod_cidr: &str) {
    let own = mirrors.cni_manifest.is_some();
    let sha256 = match (local, &mirrors.cni_manifest_sha256) {
        (Some(bytes), _) => crate::digest::sha256_hex(bytes),
        (None, Some(d)) => super::pins::normalize_sha256(d).unwrap_or_else(|| d.clone()),
        (None, None) if !own => info.map(|c| c.sha256.to_string()).unwrap_or_default(),
        // Validation requires a digest for a manifest URL; an empty one never matches.
        (None, None) => String::new(),
    };
    for absent in ["helm", "helm_values", "image", "image_repository"] {
        cni[absent] = Json::Null;
    }
    cni["sha256"] = json!(sha256);
    cni["builtin"] = json!(!own);
    cni["version"] = json!(info.map(|c| c.version));
    if info.is_some_and(|c| c.name == "kube-router") {
        cni["image_repository"] = json!(super::pins::KUBE_ROUTER_IMAGE);
        cni["image"] = json!(format!("{}:{}", super::pins::KUBE_ROUTER_IMAGE, info.map(|c| c.version).unwrap_or_default()));
    }
    if info.is_some_and(|c| c.name == "cilium") {
        let base = mirrors.helm.as_deref().unwrap_or(super::pins::DEFAULT_HELM).trim_end_matches('/').to_string();
        let v = super::pins::HELM.version;
        let by_arch: serde_json::Map<String, Json> = super::pins::HELM
            .sha256
            .iter()
            .map(|(arch, d)| {
                (arch.to_string(), json!({ "url": format!("{base}/helm-{v}-linux-{arch}.tar.gz"), "sha256": d, "dir": format!("linux-{arch}") }))
            })
            .collect();
        cni["helm"] = json!({ "version": v, "arch": by_arch });
        // The chart's values, written by a serializer (JSON is YAML): the pod network as
        // Cilium's cluster-pool list.
        let values = json!({ "ipam": { "mode": "cluster-pool", "operator": { "clusterPoolIPv4PodCIDRList": [pod_cidr] } } });
        cni["helm_values"] = json!(values.to_string());
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
    let kubernetes_own = mirrors.kubernetes_apt != DEFAULT_KUBERNETES_APT || mirrors.kubernetes_apt_key.is_some();
    let kubernetes_fps = key_fingerprints(
        mirrors.kubernetes_apt_key_fingerprint.as_deref(),
        kubernetes_own && mirrors.insecure_skip_key_fingerprint,
        super::pins::KUBERNETES_APT_KEY_FINGERPRINTS,
    );
    let docker_own = mirrors.docker_apt.trim_end_matches('/') != DEFAULT_DOCKER_APT;
    let docker_fps = key_fingerprints(
        mirrors.docker_apt_key_fingerprint.as_deref(),
        docker_own && mirrors.insecure_skip_key_fingerprint,
        super::pins::DOCKER_APT_KEY_FINGERPRINTS,
    );
    let info = cni(&cluster.cni);
    let cni_manifest = mirrors.cni_manifest.clone().or_else(|| info.map(|c| c.url.to_string())).unwrap_or_default();
    let package_version = package_version(&cluster.kubernetes_version, cluster.kubernetes_patch_version.as_deref());
    let local_manifest = local_cni_manifest.map(|bytes| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(bytes)
    });
    let mut cluster_json = serde_json::to_value(cluster).expect("plain data");
    cluster_json["package_version"] = json!(package_version);
    cluster_json["kube"] = kube_json(&cluster.kube);
    // What every host sees alike is converted once and shared (minijinja values are
    // reference-counted): a context costs the same at 3 hosts and at 1000.
    let shared_cluster = crate::roles::to_value(&cluster_json);
    let mut cni_json = json!({
        "name": cluster.cni,
        "namespace": info.map(|c| c.namespace),
        "daemonset": info.map(|c| c.daemonset),
        "default_cidr": info.and_then(|c| c.default_cidr),
        "local_manifest": local_manifest,
    });
    supply_values(&mut cni_json, info, mirrors, local_cni_manifest, &cluster.pod_cidr);
    // The manifest files another CNI would have left on the first control plane: a cluster
    // made with that CNI refuses to switch (see `resources::Refuse`). Cilium keeps no file.
    cni_json["others"] = json!(
        CNIS.iter()
            .filter(|c| c.name != cluster.cni && c.name != "cilium")
            .map(|c| json!({
                "path": format!("/etc/kubernetes/kprov/cni-{}.yaml", c.name),
                "message": format!(
                    "cluster.cni: the cluster runs {0} (/etc/kubernetes/kprov/cni-{0}.yaml), the inventory says {1}: kprov does not replace a running cluster's CNI; write cni: {0} back, or rebuild the cluster (kprov reset, then apply)",
                    c.name, cluster.cni
                ),
            }))
            .collect::<Vec<_>>()
    );
    let shared_cni = crate::roles::to_value(cni_json);
    let shared_mirrors = crate::roles::to_value(json!({
        "kubernetes_apt": kubernetes_apt,
        "kubernetes_apt_key": kubernetes_apt_key,
        "docker_apt": mirrors.docker_apt.trim_end_matches('/'),
        "cni_manifest": cni_manifest,
        "kubernetes_apt_key_fingerprints": kubernetes_fps,
        "kubernetes_apt_key_unverified": kubernetes_fps.is_empty(),
        "docker_apt_key_fingerprints": docker_fps,
        "docker_apt_key_unverified": docker_fps.is_empty(),
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
