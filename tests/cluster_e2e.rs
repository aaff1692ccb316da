//! Kubernetes end to end with the built-in roles, from empty hosts to every node Ready, on
//! real Debian/Ubuntu/arm64 nodes with the local apt repository (test doubles for kubeadm,
//! kubelet and kubectl; Debian's real containerd).

mod support;

use support::apt_repo::AptRepo;
use support::cli::{Kprov, code, p, text};
use support::nodes::{Flavour, NodeSet};

fn nodes_ready(set: &NodeSet, cp: usize) -> String {
    set.sh(cp, "kubectl --kubeconfig /etc/kubernetes/admin.conf get nodes")
}

#[test]
fn ubuntu_control_plane_and_debian_workers_from_empty_to_ready() {
    let set = NodeSet::start(&[Flavour::Ubuntu, Flavour::Debian, Flavour::Debian]);
    let repo = AptRepo::serve(set.gateway);
    let k = Kprov::new();
    let cluster = format!("  cni: flannel\n  pod_cidr: 10.20.0.0/16\n  cni_manifest: {}\n", repo.manifest("kube-flannel.yml"));
    let inv = k.inventory(&set, "root", &[(0, "control-plane"), (1, "worker"), (2, "worker")], &cluster, &repo.mirrors_yaml());
    let inv = p(&inv);

    let plan = k.run(&["plan", inv]);
    assert_eq!(code(&plan), 2, "{}", text(&plan));
    let apply = k.run(&["apply", inv]);
    assert_eq!(code(&apply), 0, "{}", text(&apply));
    let nodes = nodes_ready(&set, 0);
    assert_eq!(nodes.matches(" Ready ").count(), 3, "{nodes}");
    // What the guide does by hand, checked on the hosts.
    for i in 0..3 {
        assert!(set.sh(i, "cat /etc/containerd/config.toml").contains("SystemdCgroup = true"));
        assert_eq!(set.sh(i, "systemctl is-active containerd kubelet"), "active\nactive\n");
        assert_eq!(set.sh(i, "apt-mark showhold | sort | tr '\\n' ' '"), "kubeadm kubectl kubelet ");
        assert!(set.sh(i, "kubeadm version -o short").starts_with("v1.34."));
    }
    assert!(set.sh(0, "cat /etc/apt/sources.list.d/docker.list").contains("/linux/ubuntu noble stable"));
    assert!(set.sh(1, "cat /etc/apt/sources.list.d/docker.list").contains("/linux/debian bookworm stable"));
    assert!(set.sh(0, "cat /etc/kubernetes/kprov/cni-flannel.yaml").contains("10.20.0.0/16"), "pod CIDR matched in the CNI manifest");
    assert!(set.exec(0, "cmp /etc/kubernetes/admin.conf /root/.kube/config").status.success());
    // Join secrets never reach kprov's output.
    let token_re = regex::Regex::new(r"[a-z0-9]{6}\.[a-z0-9]{16}").unwrap();
    assert!(!token_re.is_match(&text(&apply)), "{}", text(&apply));

    // Nothing to do on a second run.
    let again = k.run(&["apply", inv]);
    assert_eq!(code(&again), 0, "{}", text(&again));
    assert!(String::from_utf8_lossy(&again.stdout).contains("No changes."), "{}", text(&again));

    // A worker that lost its membership (reset by hand) is joined again by the next apply.
    set.sh(2, "kubeadm reset -f");
    let plan = k.run(&["plan", inv]);
    assert_eq!(code(&plan), 2, "{}", text(&plan));
    assert!(String::from_utf8_lossy(&plan.stdout).contains("worker-join/kubeadm-join"), "{}", text(&plan));
    let apply = k.run(&["apply", inv]);
    assert_eq!(code(&apply), 0, "{}", text(&apply));
    assert_eq!(nodes_ready(&set, 0).matches(" Ready ").count(), 3);
}
