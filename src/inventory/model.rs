//! The inventory as written in YAML. Fields that validation reports on keep their source
//! position (`Spanned`); the rest of kprov reads the validated [`super::Inventory`] instead.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

/// A kprov inventory: the cluster you want and the hosts it runs on.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "kprov inventory")]
pub struct InventoryFile {
    /// Cluster-wide settings.
    #[serde(default)]
    pub cluster: ClusterSpec,
    /// SSH settings for every host (each host may override any of them).
    #[serde(default)]
    pub ssh: SshSpec,
    /// The hosts of the cluster.
    #[schemars(with = "Vec<HostSpec>")]
    pub hosts: Spanned<Vec<Spanned<HostSpec>>>,
    /// Mirrors for offline sites; every URL defaults to the upstream one.
    #[serde(default)]
    pub mirrors: MirrorsSpec,
}

#[derive(Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    /// Cluster name (kubeadm's clusterName). Default: "kubernetes".
    pub name: Option<String>,
    /// Kubernetes minor ("1.34") or patch ("1.34.2") release. Supported: 1.31 to 1.34. Default: "1.34".
    #[schemars(with = "Option<String>")]
    pub kubernetes_version: Option<Spanned<VersionText>>,
    /// Pod network CIDR. Default: 10.244.0.0/16.
    #[schemars(with = "Option<String>")]
    pub pod_cidr: Option<Spanned<String>>,
    /// Service network CIDR. Default: 10.96.0.0/12.
    #[schemars(with = "Option<String>")]
    pub service_cidr: Option<Spanned<String>>,
    /// calico, flannel, cilium, weave, canal or kube-router. Default: calico.
    #[schemars(with = "Option<String>")]
    pub cni: Option<Spanned<String>>,
    /// A URL or local file replacing the pinned CNI manifest (for cilium: the Helm chart
    /// archive). A URL needs `cni_manifest_sha256`.
    #[schemars(with = "Option<String>")]
    pub cni_manifest: Option<Spanned<String>>,
    /// SHA-256 of `cni_manifest` (64 hex digits), checked on the host before it is applied.
    /// Required for a URL; for a local file kprov hashes the file and checks this if given.
    #[schemars(with = "Option<String>")]
    pub cni_manifest_sha256: Option<Spanned<String>>,
    /// host[:port] of the API server for every node; required with more than one control plane.
    #[schemars(with = "Option<String>")]
    pub control_plane_endpoint: Option<Spanned<String>>,
    /// The first control plane's API address. Default: its `internal_address`.
    #[schemars(with = "Option<String>")]
    pub advertise_address: Option<Spanned<String>>,
    /// Container runtime; only "containerd" is supported.
    #[schemars(with = "Option<String>")]
    pub container_runtime: Option<Spanned<String>>,
    /// Local path where the cluster's admin.conf is written (mode 0600) after apply.
    pub fetch_admin_conf: Option<String>,
    /// After apply, run the guide's smoke test (an nginx deployment with 3 replicas).
    #[serde(default)]
    pub smoke_test: bool,
    /// Preflight thresholds.
    #[serde(default)]
    pub preflight: PreflightSpec,
    /// kubeadm's ClusterConfiguration settings: API server certificate names, extra arguments
    /// of the control-plane components, feature gates, image repository, DNS domain.
    #[serde(default)]
    pub kubeadm: KubeadmSpec,
    /// Fields of the kubelet's KubeletConfiguration (kubelet.config.k8s.io/v1beta1) for every
    /// node, named as the real type names them: `maxPods: 200`, `systemReserved: { cpu: 500m }`,
    /// `evictionHard: { memory.available: 200Mi }`, `serializeImagePulls: false`. Every field,
    /// nested ones too, is checked against the real type.
    #[schemars(schema_with = "super::settings::kubelet_schema")]
    pub kubelet: Option<Spanned<serde_json::Value>>,
    /// kube-proxy's mode and settings.
    #[serde(default)]
    pub kube_proxy: KubeProxySpec,
}

/// kubeadm ClusterConfiguration settings (kubeadm.k8s.io/v1beta4).
#[derive(Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KubeadmSpec {
    /// Extra names (DNS names or IPs; `*.example.com` allowed) in the API server's serving
    /// certificate (apiServer.certSANs), e.g. a load balancer's name.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub cert_sans: Vec<Spanned<String>>,
    /// Extra kube-apiserver arguments, name (without `--`) → value: `audit-log-maxage: "30"`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, ArgValue>")]
    pub apiserver_extra_args: BTreeMap<String, Spanned<serde_json::Value>>,
    /// Extra kube-controller-manager arguments.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, ArgValue>")]
    pub controller_manager_extra_args: BTreeMap<String, Spanned<serde_json::Value>>,
    /// Extra kube-scheduler arguments.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, ArgValue>")]
    pub scheduler_extra_args: BTreeMap<String, Spanned<serde_json::Value>>,
    /// Extra arguments of the local etcd (etcd.local.extraArgs).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, ArgValue>")]
    pub etcd_extra_args: BTreeMap<String, Spanned<serde_json::Value>>,
    /// Kubernetes feature gates, `Name: true|false`, for the API server, controller-manager,
    /// scheduler, every kubelet and kube-proxy.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, bool>")]
    pub feature_gates: BTreeMap<String, Spanned<bool>>,
    /// Where kubeadm pulls the control-plane images from (imageRepository), for a private or
    /// air-gapped registry: `registry.example.com/k8s`. Default: registry.k8s.io.
    #[schemars(with = "Option<String>")]
    pub image_repository: Option<Spanned<String>>,
    /// The cluster's DNS domain (networking.dnsDomain; the kubelet's clusterDomain follows it).
    /// Default: cluster.local.
    #[schemars(with = "Option<String>")]
    pub dns_domain: Option<Spanned<String>>,
}

/// A command-line argument's value: a string, number or boolean (written as text).
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum ArgValue {
    Text(String),
    Number(f64),
    Bool(bool),
}

/// kube-proxy settings (kubeproxy.config.k8s.io/v1alpha1).
#[derive(Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KubeProxySpec {
    /// iptables, ipvs or nftables. Default: kube-proxy's own (iptables on Linux).
    pub mode: Option<ProxyMode>,
    /// Further KubeProxyConfiguration fields, named as the real type names them:
    /// `ipvs: { scheduler: rr }`, `conntrack: { maxPerCore: 0 }`. Checked against the real type.
    #[schemars(schema_with = "super::settings::kube_proxy_schema")]
    pub settings: Option<Spanned<serde_json::Value>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProxyMode {
    Iptables,
    Ipvs,
    Nftables,
}

impl ProxyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyMode::Iptables => "iptables",
            ProxyMode::Ipvs => "ipvs",
            ProxyMode::Nftables => "nftables",
        }
    }
}

/// A version written as a string or a number (YAML reads 1.34 as a float).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum VersionText {
    Text(String),
    Number(f64),
}

impl VersionText {
    pub fn text(&self) -> String {
        match self {
            VersionText::Text(s) => s.clone(),
            VersionText::Number(n) => {
                // 1.30 would read as 1.3: a float cannot say which the author meant.
                format!("{n}")
            }
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PreflightSpec {
    /// Default: 2.
    #[serde(default = "default_cpus")]
    pub min_cpus: u32,
    /// Default: 1700 (a 2 GiB board reports about 1.8 GiB).
    #[serde(default = "default_memory")]
    pub min_memory_mib: u64,
    /// Checks to skip: cpus, memory, os, arch, cgroup, ports, hostname, mac.
    #[serde(default)]
    pub ignore: Vec<String>,
}

fn default_cpus() -> u32 {
    2
}

fn default_memory() -> u64 {
    1700
}

impl Default for PreflightSpec {
    fn default() -> Self {
        PreflightSpec { min_cpus: default_cpus(), min_memory_mib: default_memory(), ignore: vec![] }
    }
}

/// SSH settings. At the top level they are the defaults for every host; under a host they
/// override the defaults for that host only.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SshSpec {
    /// Login user. Default: root.
    pub user: Option<String>,
    /// Default: 22.
    pub port: Option<u16>,
    /// A private key file (~ is expanded).
    pub private_key: Option<String>,
    /// Several private key files, tried in order after `private_key`.
    pub identity_files: Option<Vec<String>>,
    /// Use the keys of a running ssh-agent (SSH_AUTH_SOCK). Default: true.
    pub agent: Option<bool>,
    /// known_hosts file. Default: ~/.ssh/known_hosts.
    pub known_hosts: Option<String>,
    /// strict (default): unknown or changed host keys are refused. accept-new: unknown keys
    /// are recorded on first contact; a changed key is still refused.
    pub host_key_policy: Option<HostKeyPolicy>,
    /// Run commands through sudo when the user is not root. Default: true.
    #[serde(rename = "become")]
    pub become_: Option<bool>,
    /// Name of the environment variable holding the sudo password (never the password itself).
    pub become_password_env: Option<String>,
    /// A jump host every connection goes through.
    pub bastion: Option<BastionSpec>,
    /// Connection timeout: 500ms, 10s, 2m. Default: 10s.
    #[schemars(with = "Option<String>")]
    pub connect_timeout: Option<Spanned<String>>,
    /// Read ~/.ssh/config for HostName, User, Port, IdentityFile and ProxyJump. Default: true.
    pub use_ssh_config: Option<bool>,
    /// Not allowed: passwords do not belong in an inventory.
    #[serde(default, skip_serializing)]
    #[schemars(skip)]
    pub password: Option<Spanned<serde_json::Value>>,
    /// Not allowed: use become_password_env.
    #[serde(default, skip_serializing)]
    #[schemars(skip)]
    pub become_password: Option<Spanned<serde_json::Value>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum HostKeyPolicy {
    Strict,
    AcceptNew,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BastionSpec {
    pub address: String,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub private_key: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    /// Node name: lowercase letters, digits and '-' (RFC 1123), unique.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// IP address or DNS name kprov connects to over SSH; also the node's address in the
    /// cluster unless `internal_address` is set.
    #[schemars(with = "String")]
    pub address: Spanned<String>,
    /// The node's IP on the cluster network: kubelet's node IP, the API server's advertise
    /// address and etcd's (control planes), the default control-plane endpoint. Default:
    /// `address` when that is an IP; required for a control plane whose `address` is a DNS name.
    /// (k0sctl: `privateAddress`; Kubespray: `ip`.)
    #[schemars(with = "Option<String>")]
    pub internal_address: Option<Spanned<String>>,
    /// control-plane, worker, or both.
    #[schemars(with = "Vec<Role>")]
    pub roles: Spanned<Vec<Role>>,
    /// Per-host SSH overrides.
    pub ssh: Option<SshSpec>,
    /// Node labels, set by the kubelet when the node registers (kubeadm's nodeRegistration,
    /// on every node). Keys and values follow the kubelet's rules: `[prefix/]name`, the name
    /// at most 63 characters of letters, digits, '-', '_', '.', the prefix a DNS subdomain;
    /// values at most 63 such characters. The kubelet refuses keys in the kubernetes.io and
    /// k8s.io namespaces except its own (kubernetes.io/hostname, kubernetes.io/os,
    /// kubernetes.io/arch, topology.kubernetes.io/zone and region, node.kubernetes.io/*,
    /// kubelet.kubernetes.io/*...): node-role.kubernetes.io/* cannot be set this way.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub labels: BTreeMap<String, Spanned<String>>,
    /// Node taints, registered with the node (kubeadm's nodeRegistration.taints). A control
    /// plane with taints keeps kubeadm's node-role.kubernetes.io/control-plane:NoSchedule.
    #[serde(default)]
    #[schemars(with = "Vec<TaintSpec>")]
    pub taints: Vec<Spanned<TaintSpec>>,
    /// A control plane's API server address (an IP address), when `address` is a DNS name
    /// or not the address the API server should listen on. Default: `address`.
    #[schemars(with = "Option<String>")]
    pub advertise_address: Option<Spanned<String>>,
    /// Raspberry Pi settings.
    #[serde(default)]
    pub raspberry_pi: RaspberryPiSpec,
    /// KubeletConfiguration fields for this node only, over `cluster.kubelet` (a kubeadm
    /// merge patch of the node's kubelet configuration): `maxPods: 50`.
    #[schemars(schema_with = "super::settings::kubelet_schema")]
    pub kubelet: Option<Spanned<serde_json::Value>>,
}

/// A node taint: `{ key: dedicated, value: gpu, effect: NoSchedule }`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaintSpec {
    /// `[prefix/]name`, as a label key.
    #[schemars(with = "String")]
    pub key: Spanned<String>,
    /// Optional; as a label value.
    #[schemars(with = "Option<String>")]
    pub value: Option<Spanned<String>>,
    /// NoSchedule, PreferNoSchedule or NoExecute.
    #[schemars(with = "String")]
    pub effect: Spanned<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    ControlPlane,
    Worker,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RaspberryPiSpec {
    /// Enable the hardware watchdog (systemd RuntimeWatchdogSec). Default: false.
    #[serde(default)]
    pub watchdog: bool,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MirrorsSpec {
    /// Kubernetes apt repository; `{minor}` becomes e.g. v1.34.
    /// Default: https://pkgs.k8s.io/core:/stable:/{minor}/deb/
    /// Mirror URLs hold no whitespace or control characters (they go into apt source lines).
    #[schemars(with = "Option<String>")]
    pub kubernetes_apt: Option<Spanned<String>>,
    /// Its signing key. Default: the repository URL + Release.key.
    #[schemars(with = "Option<String>")]
    pub kubernetes_apt_key: Option<Spanned<String>>,
    /// Docker's apt repository base; /debian or /ubuntu is appended. Default: https://download.docker.com/linux
    #[schemars(with = "Option<String>")]
    pub docker_apt: Option<Spanned<String>>,
    /// Fingerprint of the key that signs the Kubernetes mirror (`gpg --show-keys` prints it).
    /// Required when kubernetes_apt or kubernetes_apt_key is set. Default: the pinned key of
    /// pkgs.k8s.io.
    #[schemars(with = "Option<String>")]
    pub kubernetes_apt_key_fingerprint: Option<Spanned<String>>,
    /// Fingerprint of the key that signs the Docker mirror. Required when docker_apt is set.
    /// Default: Docker's published key, 9DC8 5822 9FC7 DD38 854A E2D8 8D81 803C 0EBF CD88.
    #[schemars(with = "Option<String>")]
    pub docker_apt_key_fingerprint: Option<Spanned<String>>,
    /// Install mirror keys without a fingerprint (every plan flags it). Default: false.
    #[schemars(with = "Option<bool>")]
    pub insecure_skip_key_fingerprint: Option<Spanned<bool>>,
    /// Base URL of Helm release archives (for cilium), laid out as get.helm.sh; the pinned
    /// digests apply. Default: https://get.helm.sh
    pub helm: Option<String>,
}
