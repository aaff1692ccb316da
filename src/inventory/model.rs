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
    /// A URL or local file replacing the pinned CNI manifest.
    pub cni_manifest: Option<String>,
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
    /// Node labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Raspberry Pi settings.
    #[serde(default)]
    pub raspberry_pi: RaspberryPiSpec,
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
    pub kubernetes_apt: Option<String>,
    /// Its signing key. Default: the repository URL + Release.key.
    pub kubernetes_apt_key: Option<String>,
    /// Docker's apt repository base; /debian or /ubuntu is appended. Default: https://download.docker.com/linux
    pub docker_apt: Option<String>,
}
