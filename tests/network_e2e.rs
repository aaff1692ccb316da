//! `hosts[].internal_address` end to end: every node has an SSH network (`address`) and a
//! separate cluster network (`internal_address`), both created by the test. kprov connects on
//! the first; kubeadm, the kubelet, etcd and the joins use the second.

mod support;

use support::apt_repo::AptRepo;
use support::cli::{Kprov, code, p, text};
use support::nodes::{Flavour, NodeSet};

#[test]
fn the_cluster_runs_on_the_internal_network_and_ssh_on_the_address() {
    let set = NodeSet::start(&[Flavour::Debian, Flavour::Debian]);
    let net = set.second_network();
    let repo = AptRepo::serve(set.gateway);
    let k = Kprov::new();
    let cluster = format!(
        "  cni: flannel\n  pod_cidr: 10.20.0.0/16\n  cni_manifest: {}\n  cni_manifest_sha256: {}\n",
        repo.manifest("kube-flannel.yml"),
        repo.manifest_sha256("kube-flannel.yml")
    );
    let inv = k.inventory(&set, "root", &[(0, "control-plane"), (1, "worker")], &cluster, &repo.mirrors_yaml());
    let mut y = std::fs::read_to_string(&inv).unwrap();
    for (i, n) in set.nodes.iter().enumerate() {
        let with = format!("address: {}, internal_address: {}, ", n.ip, net.ips[i]);
        y = y.replace(&format!("address: {}, ", n.ip), &with);
        assert!(y.contains(&with), "{y}");
    }
    std::fs::write(&inv, &y).unwrap();

    let apply = k.run(&["apply", p(&inv)]);
    assert_eq!(code(&apply), 0, "{}", text(&apply));
    let (cp_ssh, cp_cluster) = (set.node(0).ip.to_string(), net.ips[0].to_string());
    // The kubeadm configuration the first control plane got: the API server advertises the
    // cluster address (kubeadm derives etcd's peer and client URLs from it), and the kubelet
    // registers it as the node's IP. The SSH address is in none of it.
    let cfg = set.sh(0, "cat /etc/kubernetes/kprov/kubeadm-init.yaml");
    assert!(cfg.contains(&format!("advertiseAddress: \"{cp_cluster}\"")), "{cfg}");
    assert!(cfg.contains(&format!("    - name: node-ip\n      value: \"{cp_cluster}\"")), "{cfg}");
    assert!(cfg.contains(&format!("controlPlaneEndpoint: \"{cp_cluster}:6443\"")), "{cfg}");
    assert!(!cfg.contains(&cp_ssh), "{cfg}");
    // What the kubeadm double made of it: the static pods of the API server and etcd.
    for m in ["kube-apiserver", "etcd"] {
        let manifest = set.sh(0, &format!("cat /etc/kubernetes/manifests/{m}.yaml"));
        assert!(manifest.contains(&format!("--advertise-address={cp_cluster}")), "{m}: {manifest}");
    }
    // The worker joined over the cluster network: its kubelet talks to the API server there.
    let kubelet_conf = set.sh(1, "cat /etc/kubernetes/kubelet.conf");
    assert!(kubelet_conf.contains(&format!("server: https://{cp_cluster}:6443")), "{kubelet_conf}");
    let nodes = set.sh(0, "kubectl --kubeconfig /etc/kubernetes/admin.conf get nodes");
    assert_eq!(nodes.matches(" Ready ").count(), 2, "{nodes}");
    // kprov's own connections went to the SSH addresses: sshd saw them come from the first
    // network's gateway (the machine), never from the cluster network.
    for i in 0..2 {
        let log = set.sh(i, "journalctl -u ssh --no-pager -o cat | grep 'Accepted publickey' || true");
        assert!(!log.is_empty(), "node {i}: no SSH login seen");
        assert!(log.lines().all(|l| l.contains(&format!("from {} ", set.gateway))), "node {i}: {log}");
    }
}
