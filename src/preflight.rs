//! Preflight: what must hold on a host before kprov turns it into a Kubernetes node, checked
//! from facts (pure), with one clear message per problem. The checks follow kubeadm's own
//! preflight and the seed guide: CPUs and memory, a supported OS and architecture, the memory
//! cgroup, the ports the node's roles and the CNI need, and (across hosts) unique hostnames
//! and MAC addresses.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::facts::OsFact;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub min_cpus: u32,
    pub min_memory_mib: u64,
    /// Check codes to skip (`cpus`, `memory`, `os`, `arch`, `cgroup`, `ports`, `hostname`, `mac`).
    #[serde(default)]
    pub ignore: Vec<String>,
}

impl Default for Policy {
    fn default() -> Self {
        // 2 GiB boards report about 1.8 GiB usable after the firmware's share.
        Policy { min_cpus: 2, min_memory_mib: 1700, ignore: vec![] }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub code: String,
    pub message: String,
}

/// What the host is to become.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeRole {
    pub control_plane: bool,
    pub worker: bool,
    /// Already part of a cluster (kubelet.conf exists): its ports are rightly in use.
    pub joined: bool,
}

/// The releases kprov supports, as (os-release `ID`, `VERSION_ID`, `VERSION_CODENAME`): those
/// for which Docker publishes containerd.io (download.docker.com/linux/{debian,ubuntu}/dists/
/// CODENAME, amd64 and arm64) and which kprov was verified against. Kubernetes' pkgs.k8s.io
/// repository is one flat repository for every Debian-like release. Raspberry Pi OS 64-bit
/// reports `ID=debian`; `raspbian` is its 32-bit userland, whose armhf the arch check rejects.
pub const SUPPORTED: &[(&str, &str, &str)] = &[
    ("debian", "12", "bookworm"),
    ("debian", "13", "trixie"),
    ("raspbian", "12", "bookworm"),
    ("raspbian", "13", "trixie"),
    ("ubuntu", "22.04", "jammy"),
    ("ubuntu", "24.04", "noble"),
];

/// Ports that must be free, as (protocol, first, last), for a node of `role` running `cni`.
pub fn required_ports(role: NodeRole, cni: &str) -> Vec<(&'static str, u16, u16)> {
    let mut p = vec![("tcp", 10250, 10255)];
    if role.control_plane {
        p.extend([("tcp", 6443, 6443), ("tcp", 2379, 2380)]);
    }
    if role.worker {
        p.push(("tcp", 30000, 32767));
    }
    match cni {
        "weave" => p.extend([("tcp", 6783, 6783), ("udp", 6783, 6784)]),
        "calico" => p.push(("tcp", 179, 179)),
        "flannel" | "canal" => p.push(("udp", 8472, 8472)),
        "cilium" => p.extend([("tcp", 4240, 4240), ("udp", 8472, 8472)]),
        "kube-router" => p.extend([("tcp", 179, 179), ("tcp", 20244, 20244)]),
        _ => {}
    }
    p
}

pub fn check_host(os: &OsFact, role: NodeRole, cni: &str, policy: &Policy) -> Vec<Problem> {
    let mut out = vec![];
    let mut add = |code: &str, message: String| {
        if !policy.ignore.iter().any(|i| i == code) {
            out.push(Problem { code: code.to_string(), message });
        }
    };
    if os.cpus < policy.min_cpus {
        add("cpus", format!("{} CPU(s), at least {} needed (preflight.min_cpus)", os.cpus, policy.min_cpus));
    }
    let mib = os.memory_kib / 1024;
    if mib < policy.min_memory_mib {
        add("memory", format!("{mib} MiB of memory, at least {} MiB needed (preflight.min_memory_mib)", policy.min_memory_mib));
    }
    let like_debian = os.id_like.split_whitespace().any(|l| l == "debian");
    let known_id = SUPPORTED.iter().any(|(id, _, _)| *id == os.id);
    let release = SUPPORTED
        .iter()
        .find(|(id, version, codename)| *id == os.id && (*version == os.version_id || (os.version_id.is_empty() && *codename == os.codename)));
    match release {
        // The codename picks Docker's repository (dists/CODENAME): it must be the one Docker
        // publishes for this release.
        Some((_, _, codename)) if os.codename.is_empty() || os.codename == *codename => {}
        Some((_, version, codename)) => add(
            "os",
            format!(
                "{} {version} reports the codename {:?}, not {codename:?}: Docker's apt repository is chosen by codename, and it publishes no {:?} ({})",
                os.id,
                os.codename,
                os.codename,
                supported_list()
            ),
        ),
        None if known_id => add(
            "os",
            format!(
                "{} {} ({}) is not a supported release: kprov picks Docker's containerd.io repository by codename and Kubernetes' packages for the releases it was verified on ({})",
                os.id,
                if os.version_id.is_empty() { "without VERSION_ID" } else { &os.version_id },
                if os.codename.is_empty() { "no codename" } else { &os.codename },
                supported_list()
            ),
        ),
        None if like_debian => add("os", format!("{} ({}) is Debian-like but not tested ({})", os.id, os.pretty_name, supported_list())),
        None => add("os", format!("{} is not supported ({})", if os.pretty_name.is_empty() { &os.id } else { &os.pretty_name }, supported_list())),
    }
    if !matches!(os.arch.as_str(), "amd64" | "arm64") {
        add("arch", format!("architecture {:?} ({}) is not supported: Kubernetes packages exist for amd64 and arm64", os.arch, os.machine));
    }
    if !os.memory_cgroup {
        let hint = if os.raspberry_pi_os { "; kprov adds cgroup_memory=1 cgroup_enable=memory to the kernel command line and reboots" } else { "" };
        add("cgroup", format!("the memory cgroup is not enabled (kubelet needs it){hint}"));
    }
    if !role.joined {
        let busy: Vec<String> = required_ports(role, cni)
            .into_iter()
            .flat_map(|(proto, lo, hi)| {
                os.listening.iter().filter_map(move |l| {
                    let (p, port) = l.split_once('/')?;
                    let port: u16 = port.parse().ok()?;
                    (p == proto && (lo..=hi).contains(&port)).then(|| l.clone())
                })
            })
            .collect();
        if !busy.is_empty() {
            add("ports", format!("ports needed by Kubernetes are in use: {}", busy.join(", ")));
        }
    }
    out
}

fn supported_list() -> String {
    "supported: Debian 12 bookworm and 13 trixie, Raspberry Pi OS bookworm and trixie, Ubuntu 22.04 jammy and 24.04 noble".to_string()
}

/// Problems that only show across hosts: duplicate hostnames (Kubernetes node names) and MAC
/// addresses (cloned SD cards and VM images). `hosts` are (host index, host name, facts);
/// returns (host index, problem): one problem per duplicated value for each host that has it,
/// naming the other hosts that share it. Linear in the number of hosts, however many share a
/// value (1000 hosts cloned from one image give 1000 messages, not a million).
pub fn check_cluster(hosts: &[(usize, &str, &OsFact)], policy: &Policy) -> Vec<(usize, Problem)> {
    let skip = |c: &str| policy.ignore.iter().any(|i| i == c);
    // (code, value) → positions in `hosts`; groups kept in first-seen order, so the messages
    // come out in a deterministic order.
    let mut groups: Vec<(&'static str, &str, Vec<usize>)> = Vec::new();
    let mut index: HashMap<(&'static str, &str), usize> = HashMap::new();
    for (pos, (_, _, os)) in hosts.iter().enumerate() {
        let mut values: Vec<(&'static str, &str)> = Vec::new();
        if !skip("hostname") && !os.hostname.is_empty() {
            values.push(("hostname", &os.hostname));
        }
        if !skip("mac") {
            values.extend(os.macs.iter().map(|m| ("mac", m.as_str())));
        }
        for key in values {
            let g = *index.entry(key).or_insert_with(|| {
                groups.push((key.0, key.1, Vec::new()));
                groups.len() - 1
            });
            if groups[g].2.last() != Some(&pos) {
                groups[g].2.push(pos);
            }
        }
    }
    let mut out = vec![];
    for (code, value, members) in groups.into_iter().filter(|(_, _, m)| m.len() > 1) {
        for &pos in &members {
            let others: Vec<&str> = members.iter().filter(|&&o| o != pos).map(|&o| hosts[o].1).collect();
            let named = name_some(&others);
            let message = match code {
                "hostname" => format!("hostname {value:?} is also the hostname of {named} (node names must be unique)"),
                _ => format!("MAC address {value} is also on {named} (a cloned image?)"),
            };
            out.push((hosts[pos].0, Problem { code: code.into(), message }));
        }
    }
    out
}

/// "h2", "h2 and h3", "h2, h3, h4 and 997 other hosts": a message stays short however many
/// hosts share a value.
fn name_some(names: &[&str]) -> String {
    const SHOWN: usize = 3;
    match names {
        [] => "another host".to_string(),
        [one] => one.to_string(),
        _ if names.len() <= SHOWN => format!("{} and {}", names[..names.len() - 1].join(", "), names[names.len() - 1]),
        _ => format!("{} and {} other hosts", names[..SHOWN].join(", "), names.len() - SHOWN),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pi() -> OsFact {
        OsFact {
            id: "debian".into(),
            version_id: "12".into(),
            codename: "bookworm".into(),
            arch: "arm64".into(),
            machine: "aarch64".into(),
            hostname: "k8s-01".into(),
            cpus: 4,
            memory_kib: 3_900_000,
            raspberry_pi_os: true,
            memory_cgroup: true,
            listening: vec!["tcp/22".into()],
            macs: vec!["dc:a6:32:00:00:01".into()],
            ..Default::default()
        }
    }

    const CP: NodeRole = NodeRole { control_plane: true, worker: false, joined: false };

    #[test]
    fn a_good_host_passes() {
        assert_eq!(check_host(&pi(), CP, "weave", &Policy::default()), vec![]);
    }

    #[test]
    fn every_supported_release_passes_and_others_are_named() {
        let with = |id: &str, version: &str, codename: &str| {
            let mut os = pi();
            os.id = id.into();
            os.version_id = version.into();
            os.codename = codename.into();
            check_host(&os, CP, "weave", &Policy::default())
        };
        for (id, version, codename) in SUPPORTED {
            assert_eq!(with(id, version, codename), vec![], "{id} {version} {codename}");
        }
        // Debian 11: Kubernetes' packages would install, but it is not a release kprov supports.
        let p = with("debian", "11", "bullseye");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].message.contains("debian 11 (bullseye) is not a supported release"), "{}", p[0].message);
        // Ubuntu 25.04 and Debian testing (no VERSION_ID): no release Docker publishes for kprov.
        assert!(with("ubuntu", "25.04", "plucky")[0].message.contains("ubuntu 25.04 (plucky) is not a supported release"));
        assert!(with("debian", "", "forky")[0].message.contains("debian without VERSION_ID (forky)"));
        // Testing with the trixie codename before its VERSION_ID: the codename decides.
        assert_eq!(with("debian", "", "trixie"), vec![]);
        // A codename that does not match the version picks a Docker repository that does not exist.
        let m = &with("ubuntu", "24.04", "oracular")[0].message;
        assert!(m.contains("reports the codename \"oracular\", not \"noble\""), "{m}");
    }

    #[test]
    fn each_problem_is_reported_with_its_code() {
        let mut os = pi();
        os.cpus = 1;
        os.memory_kib = 900 * 1024;
        os.arch = "armhf".into();
        os.memory_cgroup = false;
        os.listening.push("tcp/6443".into());
        os.listening.push("udp/6784".into());
        let codes: Vec<String> = check_host(&os, CP, "weave", &Policy::default()).into_iter().map(|p| p.code).collect();
        assert_eq!(codes, ["cpus", "memory", "arch", "cgroup", "ports"]);
        let p = check_host(&os, CP, "weave", &Policy::default());
        assert!(p[4].message.contains("tcp/6443") && p[4].message.contains("udp/6784"), "{p:?}");
        assert!(p[3].message.contains("cgroup_memory=1"), "{p:?}");
    }

    #[test]
    fn ports_are_not_checked_on_a_joined_node_and_ignore_works() {
        let mut os = pi();
        os.listening.push("tcp/10250".into());
        assert!(check_host(&os, NodeRole { joined: true, ..CP }, "calico", &Policy::default()).is_empty());
        let policy = Policy { ignore: vec!["ports".into()], ..Default::default() };
        assert!(check_host(&os, CP, "calico", &policy).is_empty());
    }

    #[test]
    fn unsupported_os_is_named() {
        let mut os = pi();
        os.id = "fedora".into();
        os.pretty_name = "Fedora Linux 41".into();
        let p = check_host(&os, CP, "calico", &Policy::default());
        assert_eq!(p[0].code, "os");
        assert!(p[0].message.contains("Fedora Linux 41"));
    }

    #[test]
    fn duplicate_hostnames_and_macs_across_hosts() {
        let a = pi();
        let mut b = pi();
        b.macs = vec!["dc:a6:32:00:00:02".into()];
        let mut c = pi();
        c.hostname = "k8s-03".into();
        let found = check_cluster(&[(0, "a", &a), (1, "b", &b), (2, "c", &c)], &Policy::default());
        let by: Vec<(usize, &str)> = found.iter().map(|(i, p)| (*i, p.code.as_str())).collect();
        assert_eq!(by, [(0, "hostname"), (1, "hostname"), (0, "mac"), (2, "mac")]);
        assert!(found[0].1.message.contains("hostname of b "), "{found:?}");
        assert!(found[3].1.message.contains("also on a "), "{found:?}");
    }

    #[test]
    fn many_hosts_sharing_a_value_give_one_short_message_each() {
        let os = pi();
        let names: Vec<String> = (0..1000).map(|i| format!("h{i}")).collect();
        let hosts: Vec<(usize, &str, &OsFact)> = names.iter().enumerate().map(|(i, n)| (i, n.as_str(), &os)).collect();
        let found = check_cluster(&hosts, &Policy::default());
        assert_eq!(found.len(), 2000, "one hostname and one MAC message per host");
        assert!(found[0].1.message.contains("h1, h2, h3 and 996 other hosts"), "{}", found[0].1.message);
        assert!(found.iter().all(|(_, p)| p.message.len() < 200));
        let policy = Policy { ignore: vec!["hostname".into(), "mac".into()], ..Default::default() };
        assert!(check_cluster(&hosts, &policy).is_empty());
    }
}
