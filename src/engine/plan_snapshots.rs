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
