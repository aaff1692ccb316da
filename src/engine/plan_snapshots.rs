//! Plans for the built-in roles from fact fixtures, with no SSH: what a reviewer sees in a pull
//! request for an empty cluster, and the no-op plan of a converged one.

use std::collections::BTreeMap;

use crate::facts::{FactQuery, FactScript, FactValue, FileFact, HostFacts, OsFact, PackageFact, ServiceFact, SwapFact};
use crate::graph::{HostInfo, Selection};
use crate::roles::RoleSet;

use super::Engine;
use super::context::{self, ClusterValues, HostValues, MirrorValues};

/// A freshly installed host: nothing of Kubernetes on it, swap on, the usual base packages.
pub(crate) fn blank_facts(script: &FactScript, os: &OsFact, raspberry_pi: bool) -> HostFacts {
    let mut f = HostFacts::default();
    for q in script.queries() {
        let v = match q {
            FactQuery::Os => FactValue::Os(os.clone()),
            FactQuery::File { path } if raspberry_pi && path == "/boot/firmware/cmdline.txt" => {
                let content = b"console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes rootwait\n".to_vec();
                FactValue::File(FileFact {
                    exists: true,
                    file_type: "regular file".into(),
                    mode: 0o755,
                    owner: "root".into(),
                    group: "root".into(),
                    size: content.len() as u64,
                    sha256: crate::digest::sha256_hex(&content),
                    content: Some(content),
                })
            }
            FactQuery::File { .. } => FactValue::File(FileFact::default()),
            FactQuery::Sysctl { key } => FactValue::Sysctl { value: Some(if key.contains("ip_forward") { "0" } else { "1" }.into()) },
            FactQuery::Module { .. } => FactValue::Module { loaded: false, builtin: false },
            FactQuery::Swap => FactValue::Swap(SwapFact {
                active: vec![if raspberry_pi { "/var/swap".into() } else { "/swap.img".into() }],
                fstab: if raspberry_pi { vec![] } else { vec!["/swap.img none swap sw 0 0".into()] },
                ..Default::default()
            }),
            FactQuery::Boot => FactValue::Boot(crate::facts::BootFact {
                cmdline: "console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes rootwait".into(),
                cgroup_v2_controllers: Some(if raspberry_pi { "cpuset cpu io pids" } else { "cpuset cpu io memory pids" }.into()),
                cgroup_v1_memory: None,
            }),
            FactQuery::Package { name } => {
                let base = ["ca-certificates", "curl", "gnupg"].contains(&name.as_str());
                FactValue::Package(PackageFact { installed: base, version: base.then(|| "1.0".into()), held: false })
            }
            FactQuery::Service { name } => {
                let exists = raspberry_pi && name.starts_with("dphys-swapfile");
                FactValue::Service(ServiceFact {
                    exists,
                    enabled: exists,
                    active: exists,
                    enablement: if exists { "enabled".into() } else { String::new() },
                })
            }
            FactQuery::Dpkg => FactValue::Dpkg(Default::default()),
            FactQuery::Command { .. } => FactValue::Command { exit_status: 1 },
        };
        f.insert(q.clone(), v);
    }
    f
}

pub(crate) fn os(arch: &str, id: &str, codename: &str, version: &str, hostname: &str, pi: bool) -> OsFact {
    OsFact {
        id: id.into(),
        version_id: version.into(),
        codename: codename.into(),
        pretty_name: format!("{id} {version}"),
        arch: arch.into(),
        machine: if arch == "arm64" { "aarch64".into() } else { "x86_64".into() },
        kernel: "6.12.47".into(),
        hostname: hostname.into(),
        cpus: 4,
        memory_kib: 4_000_000,
        raspberry_pi_os: pi,
        memory_cgroup: !pi,
        listening: vec!["tcp/22".into()],
        macs: vec![format!("dc:a6:32:00:00:{:02x}", hostname.bytes().map(u32::from).sum::<u32>() % 256)],
        ..Default::default()
    }
}

/// The seed guide's homelab: one control plane and three workers, Raspberry Pi OS, Weave Net.
pub(crate) fn rpi_homelab() -> (Engine, Vec<HostFacts>) {
    let names = ["k8s-01", "k8s-02", "k8s-03", "k8s-04"];
    let hosts: Vec<HostValues> = names
        .iter()
        .enumerate()
        .map(|(i, n)| HostValues {
            name: n.to_string(),
            address: format!("192.168.0.{}", 150 + i),
            internal_address: format!("192.168.0.{}", 150 + i),
            roles: vec![if i == 0 { "control-plane" } else { "worker" }.to_string()],
            labels: BTreeMap::new(),
            taints: vec![],
            advertise_address: None,
            watchdog: false,
            ssh_user: "pi".into(),
            kubelet: Default::default(),
        })
        .collect();
    let cluster = ClusterValues {
        name: "homelab".into(),
        kubernetes_version: "1.34".into(),
        kubernetes_patch_version: None,
        pod_cidr: "10.10.0.0/16".into(),
        service_cidr: "10.96.0.0/12".into(),
        cni: "weave".into(),
        control_plane_endpoint: "192.168.0.150:6443".into(),
        advertise_address: "192.168.0.150".into(),
        preflight: crate::preflight::Policy::default(),
        kube: Default::default(),
    };
    let mirrors = MirrorValues {
        kubernetes_apt: context::DEFAULT_KUBERNETES_APT.into(),
        kubernetes_apt_key: None,
        docker_apt: context::DEFAULT_DOCKER_APT.into(),
        cni_manifest: None,
        ..MirrorValues::default()
    };
    let contexts = context::build(&cluster, &hosts, &mirrors, None);
    let infos = hosts
        .iter()
        .map(|h| HostInfo { name: h.name.clone(), control_plane: h.roles[0] == "control-plane", worker: h.roles[0] == "worker" })
        .collect();
    let roles = RoleSet::load(None).unwrap();
    let engine = Engine::new(infos, hosts.iter().map(|h| h.address.clone()).collect(), contexts, &roles, &Selection::default()).unwrap();
    let facts = names
        .iter()
        .enumerate()
        .map(|(i, n)| blank_facts(&engine.fact_scripts[i], &os("arm64", "debian", "bookworm", "12", n, true), true))
        .collect();
    (engine, facts)
}

fn plan_of(engine: &Engine, facts: Vec<HostFacts>) -> crate::plan::Planned {
    let n = facts.len();
    let gathered =
        super::Gathered { remotes: vec![None; n], statuses: vec![crate::plan::HostStatus::Ready; n], facts: facts.into_iter().map(Ok).collect() };
    engine.plan(&gathered)
}

#[test]
fn empty_rpi_homelab_plan_reads_well() {
    let (engine, facts) = rpi_homelab();
    let planned = plan_of(&engine, facts);
    let text = crate::plan::render_text(&planned.plan, false);
    insta::assert_snapshot!("rpi_homelab_empty_text", text);
    insta::assert_snapshot!("rpi_homelab_empty_markdown", crate::plan::render_markdown(&planned.plan));
}

#[test]
fn preflight_failures_name_every_problem_and_block_the_host() {
    let (engine, mut facts) = rpi_homelab();
    // A one-CPU board, and a worker cloned from another's SD card (same hostname and MAC).
    if let Some(crate::facts::FactValue::Os(os)) = facts[1].values.get_mut(&FactQuery::Os) {
        os.cpus = 1;
        os.listening.push("tcp/10250".into());
    }
    let clone = facts[2].os().unwrap().clone();
    if let Some(crate::facts::FactValue::Os(os)) = facts[3].values.get_mut(&FactQuery::Os) {
        os.hostname = clone.hostname.clone();
        os.macs = clone.macs.clone();
    }
    let planned = plan_of(&engine, facts);
    assert!(planned.plan.has_errors());
    let text = crate::plan::render_text(&planned.plan, false);
    let line = |host: &str| text.lines().find(|l| l.contains("preflight/checks") && text.split(host).count() > 1).map(str::to_string);
    assert!(line("k8s-02").is_some(), "{text}");
    assert!(text.contains("[cpus] 1 CPU(s), at least 2 needed"), "{text}");
    assert!(text.contains("[ports] ports needed by Kubernetes are in use: tcp/10250"), "{text}");
    assert!(text.contains("[hostname] hostname \"k8s-03\" is also the hostname of k8s-04"), "{text}");
    assert!(text.contains("[hostname] hostname \"k8s-03\" is also the hostname of k8s-03"), "{text}");
    assert!(text.contains("[mac] MAC address"), "{text}");
    assert!(!text.contains("k8s-01/preflight") && !text.lines().any(|l| l.contains("! preflight") && l.contains("k8s-01")));
}

/// The kubeadm configuration files the plan would write, by host: the InitConfiguration of the
/// first control plane and each joining node's JoinConfiguration.
fn kubeadm_files(planned: &crate::plan::Planned) -> String {
    let mut out = String::new();
    for st in &planned.plan.steps {
        if (st.resource == "kubeadm-config" || st.resource == "kubeadm-join-config")
            && let crate::plan::Outcome::Change(c) = &st.outcome
        {
            let content = c.content.as_ref().map(|x| x.new.clone()).unwrap_or_default();
            out.push_str(&format!("--- {} {}\n{content}", st.host, st.resource));
        }
    }
    out
}

#[test]
fn labels_taints_and_advertise_addresses_reach_every_nodes_kubeadm_configuration() {
    // Issue 14: labels only reached the first control plane's InitConfiguration, and values
    // were pasted inside quotes (a quote in the cluster name broke the document).
    let host = |name: &str, roles: &str, labels: &[(&str, &str)], taints: Vec<context::TaintValues>, adv: Option<&str>| HostValues {
        name: name.into(),
        address: format!("{name}.lan"),
        internal_address: String::new(),
        roles: vec![roles.into()],
        labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        taints,
        advertise_address: adv.map(str::to_string),
        watchdog: false,
        ssh_user: "root".into(),
        kubelet: Default::default(),
    };
    let taint = |k: &str, v: Option<&str>, e: &str| context::TaintValues { key: k.into(), value: v.map(str::to_string), effect: e.into() };
    let hosts = vec![
        host("cp-1", "control-plane", &[("example.com/rack", "r1")], vec![], Some("10.0.1.11")),
        host("cp-2", "control-plane", &[], vec![taint("dedicated", Some("etcd"), "NoExecute")], Some("10.0.1.12")),
        host("w-1", "worker", &[("disk", "ssd"), ("node.kubernetes.io/pool", "blue")], vec![taint("example.com/gpu", None, "NoSchedule")], None),
    ];
    let cluster = ClusterValues {
        name: "lab \"one\": two".into(),
        kubernetes_version: "1.34".into(),
        kubernetes_patch_version: None,
        pod_cidr: "10.244.0.0/16".into(),
        service_cidr: "10.96.0.0/12".into(),
        cni: "flannel".into(),
        control_plane_endpoint: "k8s-api.lan:6443".into(),
        advertise_address: "10.0.1.11".into(),
        preflight: crate::preflight::Policy::default(),
        kube: Default::default(),
    };
    let mirrors = MirrorValues {
        kubernetes_apt: context::DEFAULT_KUBERNETES_APT.into(),
        kubernetes_apt_key: None,
        docker_apt: context::DEFAULT_DOCKER_APT.into(),
        cni_manifest: None,
        ..MirrorValues::default()
    };
    let contexts = context::build(&cluster, &hosts, &mirrors, None);
    let infos = hosts
        .iter()
        .map(|h| HostInfo { name: h.name.clone(), control_plane: h.roles[0] == "control-plane", worker: h.roles[0] == "worker" })
        .collect();
    let roles = RoleSet::load(None).unwrap();
    let engine = Engine::new(infos, hosts.iter().map(|h| h.address.clone()).collect(), contexts, &roles, &Selection::default()).unwrap();
    let facts = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| blank_facts(&engine.fact_scripts[i], &os("amd64", "debian", "bookworm", "12", &h.name, false), false))
        .collect();
    let planned = plan_of(&engine, facts);
    let files = kubeadm_files(&planned);
    insta::assert_snapshot!("ha_kubeadm_configuration_files", files);
    assert!(files.contains("--- w-1 kubeadm-join-config") && files.contains("value: \"disk=ssd,node.kubernetes.io/pool=blue\""), "{files}");
    assert!(files.contains("clusterName: \"lab \\\"one\\\": two\""), "{files}");
    // The join step's script holds no secret and passes the file, not flags, to kubeadm.
    let text = crate::plan::render_text(&planned.plan, false);
    assert!(text.contains("kubeadm join --config"), "{text}");
}

/// Control planes reached over SSH on one network (`address`) and talking to each other on
/// another (`internal_address`): kubeadm, the kubelet and the joins use the cluster network.
#[test]
fn the_cluster_network_is_the_internal_address_and_ssh_keeps_the_address() {
    let spec = [
        ("cp-1", "203.0.113.11", "10.10.0.11", "control-plane"),
        ("cp-2", "203.0.113.12", "10.10.0.12", "control-plane"),
        ("cp-3", "203.0.113.13", "10.10.0.13", "control-plane"),
        ("w-1", "w-1.example.net", "", "worker"),
    ];
    let hosts: Vec<HostValues> = spec
        .iter()
        .map(|(n, a, i, r)| HostValues {
            name: n.to_string(),
            address: a.to_string(),
            internal_address: i.to_string(),
            roles: vec![r.to_string()],
            labels: BTreeMap::new(),
            taints: vec![],
            advertise_address: None,
            watchdog: false,
            ssh_user: "ubuntu".into(),
            kubelet: Default::default(),
        })
        .collect();
    let cluster = ClusterValues {
        name: "kubernetes".into(),
        kubernetes_version: "1.34".into(),
        kubernetes_patch_version: None,
        pod_cidr: "10.244.0.0/16".into(),
        service_cidr: "10.96.0.0/12".into(),
        cni: "calico".into(),
        control_plane_endpoint: "10.10.0.11:6443".into(),
        advertise_address: "10.10.0.11".into(),
        preflight: crate::preflight::Policy::default(),
        kube: Default::default(),
    };
    let mirrors = MirrorValues {
        kubernetes_apt: context::DEFAULT_KUBERNETES_APT.into(),
        kubernetes_apt_key: None,
        docker_apt: context::DEFAULT_DOCKER_APT.into(),
        cni_manifest: None,
        ..MirrorValues::default()
    };
    let contexts = context::build(&cluster, &hosts, &mirrors, None);
    let infos = hosts
        .iter()
        .map(|h| HostInfo { name: h.name.clone(), control_plane: h.roles[0] == "control-plane", worker: h.roles[0] == "worker" })
        .collect();
    let roles = RoleSet::load(None).unwrap();
    let engine = Engine::new(infos, hosts.iter().map(|h| h.address.clone()).collect(), contexts, &roles, &Selection::default()).unwrap();
    // SSH goes to `address`.
    assert_eq!(engine.addresses, ["203.0.113.11", "203.0.113.12", "203.0.113.13", "w-1.example.net"]);
    let facts = spec
        .iter()
        .enumerate()
        .map(|(i, (n, ..))| blank_facts(&engine.fact_scripts[i], &os("amd64", "ubuntu", "noble", "24.04", n, false), false))
        .collect();
    let planned = plan_of(&engine, facts);
    let text = crate::plan::render_text(&planned.plan, false);
    // kubeadm init: the API server (and with it etcd) advertises the cluster address, and the
    // kubelet registers it as the node's IP.
    assert!(text.contains("+  advertiseAddress: \"10.10.0.11\""), "{text}");
    assert!(text.contains("+    - name: node-ip\n      +      value: \"10.10.0.11\""), "{text}");
    assert!(!text.contains("203.0.113.11\""), "the SSH address reaches no kubeadm setting:\n{text}");
    // Further control planes join advertising their own cluster address, and every joining
    // kubelet registers its cluster address as the node's IP (the JoinConfiguration files).
    let files = kubeadm_files(&planned);
    for (host, ip) in [("cp-2", "10.10.0.12"), ("cp-3", "10.10.0.13")] {
        let join = files.split("--- ").find(|f| f.starts_with(&format!("{host} kubeadm-join-config"))).unwrap_or_else(|| panic!("{host} in {files}"));
        assert!(join.contains(&format!("advertiseAddress: \"{ip}\"")), "{join}");
        assert!(join.contains(&format!("- name: node-ip\n      value: \"{ip}\"")), "{join}");
    }
    assert!(!files.contains("203.0.113."), "the SSH address reaches no kubeadm setting:\n{files}");
}

/// Issue 16: the inventory's kubeadm, kubelet and kube-proxy settings reach kubeadm's
/// documents through the serializer, per-host kubelet settings become the node's own kubeadm
/// patch, and every document is one the strict kubeadm double (the real types' fields) reads.
#[test]
fn kube_settings_reach_the_kubeadm_documents_and_the_strict_double_reads_them() {
    use crate::kube_settings::{Component, KubeSettings};
    use serde_json::json;
    let mut kube = KubeSettings {
        cert_sans: vec!["k8s-api.example.com".into(), "10.0.0.100".into()],
        image_repository: Some("registry.example.com:5000/k8s".into()),
        dns_domain: Some("k8s.example.internal".into()),
        kube_proxy_mode: Some("ipvs".into()),
        ..KubeSettings::default()
    };
    kube.extra_args.entry(Component::ApiServer).or_default().insert("audit-log-maxage".into(), "30".into());
    kube.extra_args.entry(Component::ControllerManager).or_default().insert("node-monitor-grace-period".into(), "50s".into());
    kube.extra_args.entry(Component::Scheduler).or_default().insert("v".into(), "2".into());
    kube.extra_args.entry(Component::Etcd).or_default().insert("quota-backend-bytes".into(), "8589934592".into());
    kube.feature_gates.insert("InPlacePodVerticalScaling".into(), true);
    kube.kubelet = json!({ "maxPods": 200, "serializeImagePulls": false, "evictionHard": { "memory.available": "200Mi" },
                           "systemReserved": { "cpu": "500m", "memory": "\"1Gi\": x" } })
    .as_object()
    .cloned()
    .unwrap();
    kube.kube_proxy = json!({ "ipvs": { "scheduler": "rr" } }).as_object().cloned().unwrap();
    let host = |name: &str, role: &str, ip: &str, kubelet: serde_json::Value| HostValues {
        name: name.into(),
        address: ip.into(),
        internal_address: ip.into(),
        roles: vec![role.into()],
        labels: BTreeMap::new(),
        taints: vec![],
        advertise_address: None,
        watchdog: false,
        ssh_user: "root".into(),
        kubelet: kubelet.as_object().cloned().unwrap_or_default(),
    };
    let hosts = vec![
        host("cp-1", "control-plane", "10.0.0.11", json!({ "maxPods": 50 })),
        host("w-1", "worker", "10.0.0.21", json!({ "kubeReserved": { "cpu": "250m" }, "maxPods": null })),
        host("w-2", "worker", "10.0.0.22", json!({})),
    ];
    let cluster = ClusterValues {
        name: "kubernetes".into(),
        kubernetes_version: "1.34".into(),
        kubernetes_patch_version: None,
        pod_cidr: "10.244.0.0/16".into(),
        service_cidr: "10.96.0.0/12".into(),
        cni: "flannel".into(),
        control_plane_endpoint: "10.0.0.11:6443".into(),
        advertise_address: "10.0.0.11".into(),
        preflight: crate::preflight::Policy::default(),
        kube,
    };
    let mirrors = MirrorValues {
        kubernetes_apt: context::DEFAULT_KUBERNETES_APT.into(),
        docker_apt: context::DEFAULT_DOCKER_APT.into(),
        ..MirrorValues::default()
    };
    let contexts = context::build(&cluster, &hosts, &mirrors, None);
    let infos = hosts
        .iter()
        .map(|h| HostInfo { name: h.name.clone(), control_plane: h.roles[0] == "control-plane", worker: h.roles[0] == "worker" })
        .collect();
    let roles = RoleSet::load(None).unwrap();
    let engine = Engine::new(infos, hosts.iter().map(|h| h.address.clone()).collect(), contexts, &roles, &Selection::default()).unwrap();
    let facts = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| blank_facts(&engine.fact_scripts[i], &os("amd64", "debian", "bookworm", "12", &h.name, false), false))
        .collect();
    let planned = plan_of(&engine, facts);
    let mut files = kubeadm_files(&planned);
    for st in &planned.plan.steps {
        if st.resource == "kubelet-patch"
            && let crate::plan::Outcome::Change(c) = &st.outcome
        {
            let content = c.content.as_ref().map(|x| x.new.clone()).unwrap_or_default();
            files.push_str(&format!("--- {} {}\n{content}", st.host, st.resource));
        }
    }
    insta::assert_snapshot!("kube_settings_kubeadm_files", files);
    // w-2 has no overrides: no patch file, no `patches` in its JoinConfiguration.
    assert!(!files.contains("--- w-2 kubelet-patch"), "{files}");
    let section = |name: &str| files.split("--- ").find(|f| f.starts_with(name)).unwrap_or_else(|| panic!("{name} in {files}")).to_string();
    assert!(!section("w-2 kubeadm-join-config").contains("patches:"));
    assert!(section("w-1 kubeadm-join-config").contains("patches:\n  directory: \"/etc/kubernetes/kprov/patches\""));
    // Every document is read by the strict double: its YAML subset and the real types' fields.
    let dir = tempfile::tempdir().unwrap();
    for (name, kinds) in [
        ("cp-1 kubeadm-config", "InitConfiguration,ClusterConfiguration,KubeletConfiguration,KubeProxyConfiguration"),
        ("w-1 kubeadm-join-config", "JoinConfiguration"),
        ("w-2 kubeadm-join-config", "JoinConfiguration"),
    ] {
        let text = section(name);
        let body = text.split_once('\n').unwrap().1;
        let path = dir.path().join(name.replace(' ', "-"));
        std::fs::write(&path, body).unwrap();
        let read = double_reads(&path, kinds);
        assert!(read.status.success(), "{name}: {}\n{body}", String::from_utf8_lossy(&read.stderr));
        let docs = String::from_utf8_lossy(&read.stdout).to_string();
        if name.starts_with("cp-1") {
            let docs: serde_json::Value = serde_json::from_str(&docs).unwrap();
            assert_eq!(docs["KubeletConfiguration"]["maxPods"], 200);
            assert_eq!(docs["KubeletConfiguration"]["systemReserved"]["memory"], "\"1Gi\": x");
            assert_eq!(docs["KubeletConfiguration"]["featureGates"]["InPlacePodVerticalScaling"], true);
            assert_eq!(docs["ClusterConfiguration"]["apiServer"]["certSANs"], json!(["k8s-api.example.com", "10.0.0.100"]));
            assert_eq!(docs["ClusterConfiguration"]["etcd"]["local"]["extraArgs"][0]["name"], "quota-backend-bytes");
            assert_eq!(docs["ClusterConfiguration"]["networking"]["dnsDomain"], "k8s.example.internal");
            assert_eq!(docs["KubeProxyConfiguration"]["mode"], "ipvs");
            assert_eq!(docs["InitConfiguration"]["patches"]["directory"], "/etc/kubernetes/kprov/patches");
        }
    }
    // And the double can fail: a field the real type does not have is refused.
    let bad = dir.path().join("bad");
    std::fs::write(&bad, "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmax_pods: 3\n").unwrap();
    let read = double_reads(&bad, "KubeletConfiguration");
    assert!(!read.status.success() && String::from_utf8_lossy(&read.stderr).contains("unknown field \"max_pods\""), "{read:?}");
}

/// The kubeadm double's own `read_config` on a file: its documents by kind, as JSON.
fn double_reads(path: &std::path::Path, kinds: &str) -> std::process::Output {
    let doubles = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/doubles");
    std::process::Command::new("python3")
        .args([
            "-c",
            "import json, sys; sys.path.insert(0, sys.argv[1]); import kube_double as k; print(json.dumps(k.read_config(sys.argv[2], sys.argv[3].split(','))))",
            doubles,
        ])
        .arg(path)
        .arg(kinds)
        .output()
        .expect("python3 runs")
}

/// An engine for `hosts` (name, role, labels, taints) with default settings.
type NodeSpec<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, Vec<(&'a str, Option<&'a str>, &'a str)>);

fn labelled_cluster(hosts: Vec<NodeSpec<'_>>) -> Engine {
    let hosts: Vec<HostValues> = hosts
        .iter()
        .enumerate()
        .map(|(i, (name, role, labels, taints))| HostValues {
            name: name.to_string(),
            address: format!("10.0.0.{}", 11 + i),
            internal_address: format!("10.0.0.{}", 11 + i),
            roles: vec![role.to_string()],
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            taints: taints
                .iter()
                .map(|(k, v, e)| context::TaintValues { key: k.to_string(), value: v.map(str::to_string), effect: e.to_string() })
                .collect(),
            advertise_address: None,
            watchdog: false,
            ssh_user: "root".into(),
            kubelet: Default::default(),
        })
        .collect();
    let cluster = ClusterValues {
        name: "kubernetes".into(),
        kubernetes_version: "1.34".into(),
        kubernetes_patch_version: None,
        pod_cidr: "10.244.0.0/16".into(),
        service_cidr: "10.96.0.0/12".into(),
        cni: "flannel".into(),
        control_plane_endpoint: "10.0.0.11:6443".into(),
        advertise_address: "10.0.0.11".into(),
        preflight: crate::preflight::Policy::default(),
        kube: Default::default(),
    };
    let mirrors = MirrorValues {
        kubernetes_apt: context::DEFAULT_KUBERNETES_APT.into(),
        docker_apt: context::DEFAULT_DOCKER_APT.into(),
        ..MirrorValues::default()
    };
    let contexts = context::build(&cluster, &hosts, &mirrors, None);
    let infos = hosts
        .iter()
        .map(|h| HostInfo { name: h.name.clone(), control_plane: h.roles[0] == "control-plane", worker: h.roles[0] == "worker" })
        .collect();
    Engine::new(infos, hosts.iter().map(|h| h.address.clone()).collect(), contexts, &RoleSet::load(None).unwrap(), &Selection::default()).unwrap()
}

/// The node-labels guard the first control plane's fact script runs ("mode=check ...").
fn node_labels_check(engine: &Engine) -> String {
    engine.fact_scripts[0]
        .queries()
        .iter()
        .find_map(|q| match q {
            FactQuery::Command { command } if command.contains("kprov.io/managed") => Some(command.clone()),
            _ => None,
        })
        .expect("the first control plane checks the nodes' labels")
}

/// The kubectl double against its own API on loopback: `kubectl` on PATH runs
/// tests/doubles/kube_double.py with admin.conf pointing at that API.
struct KubectlDouble {
    dir: tempfile::TempDir,
    server: std::process::Child,
}

impl KubectlDouble {
    fn start(nodes: serde_json::Value) -> KubectlDouble {
        use std::io::BufRead;
        let doubles = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/doubles");
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("api.json");
        let mut api = serde_json::json!({ "tokens": {}, "objects": [], "networked": true, "ca_hash": "", "certificate_key": "", "endpoint": "", "revision": 1 });
        api["nodes"] = nodes;
        std::fs::write(&state, api.to_string()).unwrap();
        let mut server = std::process::Command::new("python3")
            .args([
                "-c",
                "import sys; sys.path.insert(0, sys.argv[1]); import kube_double as k; k.API_STATE = sys.argv[2]\nsrv = k.ThreadingServer(('127.0.0.1', 0), k.Api); print(srv.server_address[1], flush=True); srv.serve_forever()",
                doubles,
            ])
            .arg(&state)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut port = String::new();
        std::io::BufReader::new(server.stdout.take().unwrap()).read_line(&mut port).unwrap();
        std::fs::write(
            dir.path().join("admin.conf"),
            format!("apiVersion: v1\nclusters:\n- cluster:\n    server: http://127.0.0.1:{}\n", port.trim()),
        )
        .unwrap();
        let wrapper = format!(
            "#!/bin/sh\n# admin.conf is the test's.\nfor a; do shift; [ \"$a\" = /etc/kubernetes/admin.conf ] && a={conf}; set -- \"$@\" \"$a\"; done\nexec python3 -c 'import sys; sys.path.insert(0, sys.argv.pop(1)); import kube_double; kube_double.kubectl(sys.argv[1:])' {doubles} \"$@\"\n",
            conf = dir.path().join("admin.conf").display(),
        );
        let kubectl = dir.path().join("kubectl");
        std::fs::write(&kubectl, wrapper).unwrap();
        std::fs::set_permissions(&kubectl, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        KubectlDouble { dir, server }
    }

    fn sh(&self, script: &str) -> std::process::Output {
        let path = format!("{}:{}", self.dir.path().display(), std::env::var("PATH").unwrap_or_default());
        std::process::Command::new("sh").arg("-c").arg(script).env("PATH", path).output().unwrap()
    }

    fn kubectl(&self, args: &str) -> String {
        let out = self.sh(&format!("kubectl --kubeconfig /etc/kubernetes/admin.conf {args}"));
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }

    fn node(&self, name: &str) -> serde_json::Value {
        let out = self.kubectl(&format!("get node {name} -o json"));
        serde_json::from_str::<serde_json::Value>(&out).unwrap_or_else(|e| panic!("{e}: {out}"))["items"][0].clone()
    }
}

impl Drop for KubectlDouble {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// Issue 16: labels and taints are authoritative on running nodes. The first control plane's
/// check and converge script, run against the kubectl double: it adds, changes and removes
/// the labels and taints kprov manages (recorded in `kprov.io/managed`), leaves others alone,
/// and its check passes once converged and fails after an inventory change.
#[test]
fn labels_and_taints_converge_on_running_nodes_and_others_are_left_alone() {
    let node = |labels: serde_json::Value, taints: serde_json::Value| serde_json::json!({ "roles": "", "version": "v1.34.2", "joined": 0, "address": "", "labels": labels, "taints": taints });
    let double = KubectlDouble::start(serde_json::json!({
        "cp-1": node(serde_json::json!({ "kubernetes.io/hostname": "cp-1", "node-role.kubernetes.io/control-plane": "" }),
                     serde_json::json!([{ "key": "node-role.kubernetes.io/control-plane", "value": "", "effect": "NoSchedule" }])),
        // Registered by its kubelet with the inventory's labels and taints, plus one of someone else's.
        "w-1": node(serde_json::json!({ "kubernetes.io/hostname": "w-1", "disk": "ssd", "team": "blue" }),
                    serde_json::json!([{ "key": "dedicated", "value": "batch", "effect": "NoSchedule" }])),
        "w-2": node(serde_json::json!({ "kubernetes.io/hostname": "w-2" }), serde_json::json!([])),
    }));
    let first = labelled_cluster(vec![
        ("cp-1", "control-plane", vec![], vec![]),
        ("w-1", "worker", vec![("disk", "ssd")], vec![("dedicated", Some("batch"), "NoSchedule")]),
        ("w-2", "worker", vec![], vec![]),
    ]);
    let check = node_labels_check(&first);
    let apply = check.replacen("mode=check\n", "mode=apply\n", 1);
    // Not yet recorded: the check says so, apply records what kprov manages.
    assert!(!double.sh(&check).status.success());
    let out = double.sh(&apply);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(double.node("w-1")["metadata"]["annotations"]["kprov.io/managed"], "l=disk t=dedicated:NoSchedule");
    assert!(double.node("w-2")["metadata"]["annotations"].is_null(), "nothing managed, nothing recorded");
    assert!(double.sh(&check).status.success(), "converged");

    // The inventory changes: w-1's label changes value, its taint goes, w-2 gets a label and
    // a NoExecute taint.
    let second = labelled_cluster(vec![
        ("cp-1", "control-plane", vec![], vec![]),
        ("w-1", "worker", vec![("disk", "nvme")], vec![]),
        ("w-2", "worker", vec![("example.com/rack", "r2")], vec![("example.com/gpu", None, "NoExecute")]),
    ]);
    let check = node_labels_check(&second);
    assert!(!double.sh(&check).status.success());
    let out = double.sh(&check.replacen("mode=check\n", "mode=apply\n", 1));
    assert!(out.status.success(), "{out:?}");
    let w1 = double.node("w-1");
    assert_eq!(w1["metadata"]["labels"]["disk"], "nvme");
    assert_eq!(w1["metadata"]["labels"]["team"], "blue", "a label kprov does not manage stays");
    assert!(w1["spec"]["taints"].is_null(), "the managed taint is removed: {w1}");
    assert_eq!(w1["metadata"]["annotations"]["kprov.io/managed"], "l=disk");
    let w2 = double.node("w-2");
    assert_eq!(w2["metadata"]["labels"]["example.com/rack"], "r2");
    assert_eq!(w2["spec"]["taints"], serde_json::json!([{ "key": "example.com/gpu", "effect": "NoExecute" }]));
    let cp = double.node("cp-1");
    assert_eq!(cp["spec"]["taints"][0]["key"], "node-role.kubernetes.io/control-plane", "kubeadm's taint is not kprov's");
    assert!(double.sh(&check).status.success(), "converged");

    // Someone changes a managed label by hand: the check sees it.
    double.kubectl("label node w-1 disk=hdd --overwrite");
    assert!(!double.sh(&check).status.success());
}

/// The kubectl double's label, taint and annotate rules are kubectl's own (pkg/cmd/label,
/// pkg/cmd/taint, pkg/cmd/annotate): no silent overwrite, removing a missing taint fails,
/// removing a missing label does not.
#[test]
fn the_kubectl_double_labels_taints_and_annotates_as_kubectl_does() {
    let double = KubectlDouble::start(serde_json::json!({
        "n": { "roles": "", "version": "v1.34.2", "joined": 0, "address": "", "labels": { "a": "1" }, "taints": [] }
    }));
    let k = |args: &str| double.kubectl(args);
    assert!(k("label node n a=2").contains("error: 'a' already has a value (1), and --overwrite is false"));
    assert!(k("label node n a=1").contains("--overwrite is false"), "even the same value");
    assert_eq!(k("label node n a=2 --overwrite").trim(), "node/n labeled");
    assert_eq!(k("label node n a=2 --overwrite").trim(), "node/n not labeled");
    assert_eq!(k("label node n gone-").trim(), "label \"gone\" not found.\nnode/n not labeled");
    assert!(k("label node n a=3 a-").contains("can not both modify and remove a label in the same command"));
    assert!(k("label node n 'bad key=1'").contains("is invalid"));
    assert_eq!(k("taint node n k=v:NoSchedule").trim(), "node/n tainted");
    assert!(k("taint node n k=w:NoSchedule").contains("node n already has k taint(s) with same effect(s) and --overwrite is false"));
    assert_eq!(k("taint node n k=w:NoSchedule --overwrite").trim(), "node/n modified");
    assert_eq!(k("taint node n k:NoExecute").trim(), "node/n tainted");
    assert!(k("taint node n other:NoSchedule-").contains("taint \"other:NoSchedule\" not found"));
    assert!(k("taint node n k=v:Sometimes").contains("invalid taint effect: Sometimes, unsupported taint effect"));
    assert!(k("taint node n k").contains("invalid taint spec: k"));
    assert_eq!(k("taint node n k-").trim(), "node/n untainted");
    assert!(double.node("n")["spec"]["taints"].is_null());
    assert_eq!(k("annotate node n x=1").trim(), "node/n annotated");
    assert!(k("annotate node n x=2").contains("--overwrite is false but found the following declared annotation(s): 'x' already has a value (1)"));
    assert_eq!(k("get node n -o 'jsonpath={.metadata.labels}{\"\\n\"}{.spec.taints}{.metadata.annotations.x}'"), "{\"a\":\"2\"}\n1");
    assert!(k("get node n -o 'jsonpath={range .items[*]}'").contains("outside the subset"));
}

/// Issue 16: a setting kubeadm baked into the running cluster (here the pod network, as the
/// first control plane's kubeadm file and kprov's init record show) is refused in the plan
/// with the reason, for that host, and nothing after the refusal runs there.
#[test]
fn a_changed_pod_network_on_a_running_cluster_is_refused_in_the_plan() {
    let engine = labelled_cluster(vec![("cp-1", "control-plane", vec![], vec![]), ("w-1", "worker", vec![], vec![])]);
    let mut facts: Vec<HostFacts> = ["cp-1", "w-1"]
        .iter()
        .enumerate()
        .map(|(i, n)| blank_facts(&engine.fact_scripts[i], &os("amd64", "debian", "bookworm", "12", n, false), false))
        .collect();
    let file = |content: &str| {
        crate::facts::FactValue::File(FileFact {
            exists: true,
            file_type: "regular file".into(),
            mode: 0o600,
            owner: "root".into(),
            group: "root".into(),
            size: content.len() as u64,
            sha256: crate::digest::sha256_hex(content.as_bytes()),
            content: Some(content.as_bytes().to_vec()),
        })
    };
    let made = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nclusterName: \"kubernetes\"\nnetworking:\n  podSubnet: \"10.30.0.0/16\"\n  serviceSubnet: \"10.96.0.0/12\"\n";
    facts[0].insert(FactQuery::File { path: "/etc/kubernetes/kprov/init.done".into() }, file("abc  /etc/kubernetes/pki/ca.crt\n"));
    facts[0].insert(FactQuery::File { path: "/etc/kubernetes/kprov/kubeadm-init.yaml".into() }, file(made));
    facts[0].insert(FactQuery::File { path: "/etc/kubernetes/kprov/cni-calico.yaml".into() }, file("kind: DaemonSet\n"));
    let planned = plan_of(&engine, facts);
    assert!(planned.plan.has_errors());
    let text = crate::plan::render_text(&planned.plan, false);
    assert!(text.contains("cluster.pod_cidr: the cluster was made with \"10.30.0.0/16\", the inventory says \"10.244.0.0/16\""), "{text}");
    assert!(text.contains("cluster.cni: the cluster runs calico"), "{text}");
    assert!(!text.contains("cluster.service_cidr:") && !text.contains("cluster.name:"), "unchanged settings pass: {text}");
    // The refusal is the role's first step, so apply fails it up front and blocks every later
    // step of the role on cp-1 (each follows the one before it) and all that depends on them.
    let at = |name: &str| planned.plan.steps.iter().position(|s| s.host == "cp-1" && s.resource == name).unwrap();
    assert!(matches!(planned.plan.steps[at("settings-fixed-at-init")].outcome, crate::plan::Outcome::Error { .. }));
    assert!(at("settings-fixed-at-init") < at("kubeadm-config") && at("kubeadm-config") < at("kubeadm-init"));
}
