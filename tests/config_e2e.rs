//! The whole cluster as configuration (issue 16), on real nodes with the strict kubeadm double:
//! the inventory's kubeadm, kubelet and kube-proxy settings reach kubeadm's documents and every
//! node's kubelet configuration (per-host overrides through kubeadm's own patches), and the
//! labels and taints kprov manages converge on running nodes, leaving others' alone.

mod support;

use support::apt_repo::AptRepo;
use support::cli::{Kprov, code, p, text};
use support::nodes::{Flavour, NodeSet};

fn node(set: &NodeSet, name: &str) -> serde_json::Value {
    let out = set.sh(0, &format!("kubectl --kubeconfig /etc/kubernetes/admin.conf get node {name} -o json"));
    serde_json::from_str::<serde_json::Value>(&out).unwrap_or_else(|e| panic!("{e}: {out}"))["items"][0].clone()
}

#[test]
fn settings_reach_every_kubelet_and_labels_and_taints_converge_on_running_nodes() {
    let set = NodeSet::start(&[Flavour::Debian, Flavour::Debian, Flavour::Debian]);
    let repo = AptRepo::serve(set.gateway);
    let k = Kprov::new();
    let cluster = format!(
        "  cni: flannel\n  cni_manifest: {}\n  cni_manifest_sha256: {}\n  kubeadm:\n    cert_sans: [k8s-api.example.com]\n    apiserver_extra_args: {{ audit-log-maxage: 30 }}\n    feature_gates: {{ InPlacePodVerticalScaling: true }}\n    dns_domain: k8s.example.internal\n  kubelet:\n    maxPods: 200\n    evictionHard: {{ memory.available: 200Mi }}\n  kube_proxy:\n    mode: ipvs\n    settings: {{ ipvs: {{ scheduler: rr }} }}\n",
        repo.manifest("kube-flannel.yml"),
        repo.manifest_sha256("kube-flannel.yml")
    );
    let inv = k.inventory(&set, "root", &[(0, "control-plane"), (1, "worker"), (2, "worker")], &cluster, &repo.mirrors_yaml());
    let base = std::fs::read_to_string(&inv).unwrap();
    let hosts = |h2: &str, h3: &str| {
        base.replacen("roles: [worker] }", &format!("roles: [worker], {h2} }}"), 1).replacen(
            "roles: [worker] }",
            &format!("roles: [worker], {h3} }}"),
            1,
        )
    };
    std::fs::write(
        &inv,
        hosts(
            "kubelet: { maxPods: 50 }, labels: { disk: ssd }, taints: [{ key: dedicated, value: batch, effect: NoSchedule }]",
            "labels: { disk: hdd }",
        ),
    )
    .unwrap();
    let inv_path = inv.clone();
    let inv = p(&inv_path);

    let apply = k.run(&["apply", inv]);
    assert_eq!(code(&apply), 0, "{}", text(&apply));
    // kubeadm (the strict double: every field of the real types) took the settings; every
    // kubelet runs with the cluster's, h2 with its own maxPods over them (kubeadm's patch).
    let kubelet = |i: usize| set.sh(i, "cat /var/lib/kubelet/config.yaml");
    assert!(kubelet(0).contains("\"maxPods\": 200") && kubelet(0).contains("\"memory.available\": \"200Mi\""), "{}", kubelet(0));
    assert!(kubelet(0).contains("\"InPlacePodVerticalScaling\": true"), "feature gates reach the kubelet: {}", kubelet(0));
    assert!(kubelet(1).contains("\"maxPods\": 50") && kubelet(1).contains("\"memory.available\": \"200Mi\""), "{}", kubelet(1));
    assert!(kubelet(2).contains("\"maxPods\": 200"), "{}", kubelet(2));
    let init = set.sh(0, "cat /etc/kubernetes/kprov/kubeadm-init.yaml");
    assert!(init.contains("- \"k8s-api.example.com\"") && init.contains("dnsDomain: \"k8s.example.internal\""), "{init}");
    assert!(init.contains("kind: KubeProxyConfiguration") && init.contains("mode: \"ipvs\""), "{init}");
    // Labels and taints registered, and what kprov manages recorded on each node.
    assert_eq!(node(&set, "h2")["metadata"]["annotations"]["kprov.io/managed"], "l=disk t=dedicated:NoSchedule");
    assert_eq!(node(&set, "h3")["metadata"]["annotations"]["kprov.io/managed"], "l=disk");
    assert!(node(&set, "h1")["metadata"]["annotations"].is_null(), "nothing managed on h1");
    let again = k.run(&["plan", inv]);
    assert_eq!(code(&again), 0, "a converged cluster plans nothing: {}", text(&again));

    // Someone else's label on h3; then the inventory changes h2's label, drops its taint and
    // gives h3 a taint.
    set.sh(0, "kubectl --kubeconfig /etc/kubernetes/admin.conf label node h3 team=blue");
    std::fs::write(
        &inv_path,
        hosts("kubelet: { maxPods: 50 }, labels: { disk: nvme }", "labels: { disk: hdd }, taints: [{ key: example.com/gpu, effect: NoExecute }]"),
    )
    .unwrap();
    let plan = k.run(&["plan", inv]);
    assert_eq!(code(&plan), 2, "{}", text(&plan));
    let out = String::from_utf8_lossy(&plan.stdout).to_string();
    assert!(out.contains("node-labels") && out.contains("h2 [disk=nvme; no taints]"), "{out}");
    let apply = k.run(&["apply", inv]);
    assert_eq!(code(&apply), 0, "{}", text(&apply));
    let h2 = node(&set, "h2");
    assert_eq!(h2["metadata"]["labels"]["disk"], "nvme", "{h2}");
    assert!(h2["spec"]["taints"].is_null(), "the dropped taint is removed: {h2}");
    assert_eq!(h2["metadata"]["annotations"]["kprov.io/managed"], "l=disk");
    let h3 = node(&set, "h3");
    assert_eq!(h3["metadata"]["labels"]["team"], "blue", "a label kprov does not manage stays: {h3}");
    assert_eq!(h3["spec"]["taints"], serde_json::json!([{ "key": "example.com/gpu", "effect": "NoExecute" }]), "{h3}");
    let third = k.run(&["plan", inv]);
    assert_eq!(code(&third), 0, "{}", text(&third));

    // A change the running cluster cannot take (its pod network) is refused with the reason,
    // and leaves the first control plane as it was.
    let files = "sha256sum /etc/kubernetes/kprov/kubeadm-init.yaml /var/lib/kubelet/config.yaml /var/lib/kube-double/cluster.json";
    let before = set.sh(0, files);
    let y = std::fs::read_to_string(&inv_path).unwrap().replacen("  cni: flannel\n", "  cni: flannel\n  pod_cidr: 10.30.0.0/16\n", 1);
    std::fs::write(&inv_path, y).unwrap();
    let plan = k.run(&["plan", inv]);
    assert_eq!(code(&plan), 1, "{}", text(&plan));
    let out = String::from_utf8_lossy(&plan.stdout).to_string();
    assert!(out.contains("cluster.pod_cidr: the cluster was made with \"10.244.0.0/16\", the inventory says \"10.30.0.0/16\""), "{out}");
    let apply = k.run(&["apply", inv]);
    assert_eq!(code(&apply), 1, "{}", text(&apply));
    assert_eq!(set.sh(0, files), before, "nothing changed on the first control plane");
}
