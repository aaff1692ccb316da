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
    let cluster = format!(
        "  cni: flannel\n  pod_cidr: 10.20.0.0/16\n  cni_manifest: {}\n  cni_manifest_sha256: {}\n  smoke_test: true\n  fetch_admin_conf: ./kube/admin.conf\n",
        repo.manifest("kube-flannel.yml"),
        repo.manifest_sha256("kube-flannel.yml")
    );
    let inv = k.inventory(&set, "root", &[(0, "control-plane"), (1, "worker"), (2, "worker")], &cluster, &repo.mirrors_yaml());
    let inv = p(&inv);

    let plan = k.run(&["plan", inv]);
    assert_eq!(code(&plan), 2, "{}", text(&plan));
    let apply = k.run(&["apply", inv]);
    assert_eq!(code(&apply), 0, "{}", text(&apply));
    let nodes = nodes_ready(&set, 0);
    assert_eq!(nodes.matches(" Ready ").count(), 3, "{nodes}");
    // kprov checked the same thing itself, ran the smoke test and cleaned it up, and fetched
    // the admin kubeconfig with mode 0600.
    let log = String::from_utf8_lossy(&apply.stderr);
    assert!(log.contains("cluster: 3/3 nodes Ready"), "{}", text(&apply));
    assert!(log.contains("cluster: smoke test passed"), "{}", text(&apply));
    assert!(!set.sh(0, "kubectl --kubeconfig /etc/kubernetes/admin.conf get deployments -A").contains("kprov-smoke-test"));
    let fetched = k.path("kube/admin.conf");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&fetched).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::read_to_string(&fetched).unwrap(), set.sh(0, "cat /etc/kubernetes/admin.conf"));
    for name in ["h1", "h2", "h3"] {
        assert!(nodes.contains(name), "node names are the inventory's: {nodes}");
    }
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
    assert!(String::from_utf8_lossy(&again.stderr).contains("admin kubeconfig unchanged at"), "{}", text(&again));

    // A node that stops being Ready is reported, with exit 1, even when nothing needed changing.
    let networked = |on: bool| {
        set.sh(
            0,
            &format!(
                "python3 -c \"import json; p='/var/lib/kube-double/api.json'; s=json.load(open(p)); s['networked']={}; json.dump(s, open(p,'w'))\"",
                if on { "True" } else { "False" }
            ),
        );
    };
    networked(false);
    let sick = k.run(&["apply", "--json", inv]);
    assert_eq!(code(&sick), 1, "{}", text(&sick));
    let report: serde_json::Value = serde_json::from_slice(&sick.stdout).unwrap();
    let problem = report["cluster"]["problems"][0].as_str().unwrap_or_default();
    assert!(problem.contains("not Ready") && problem.contains("h1, h2, h3"), "{}", text(&sick));
    networked(true);

    // A worker that lost its membership (reset by hand) is joined again by the next apply.
    set.sh(2, "kubeadm reset -f");
    let plan = k.run(&["plan", inv]);
    assert_eq!(code(&plan), 2, "{}", text(&plan));
    assert!(String::from_utf8_lossy(&plan.stdout).contains("worker-join/kubeadm-join"), "{}", text(&plan));
    let apply = k.run(&["apply", inv]);
    assert_eq!(code(&apply), 0, "{}", text(&apply));
    assert_eq!(nodes_ready(&set, 0).matches(" Ready ").count(), 3);
}

#[test]
fn ha_three_control_planes_and_a_worker() {
    let set = NodeSet::start(&[Flavour::Debian, Flavour::Debian, Flavour::Debian, Flavour::Debian]);
    let repo = AptRepo::serve(set.gateway);
    let k = Kprov::new();
    let cluster = |version: &str| {
        format!(
            "  kubernetes_version: \"{version}\"\n  cni: calico\n  control_plane_endpoint: {}:6443\n  cni_manifest: {}\n  cni_manifest_sha256: {}\n",
            set.node(0).ip,
            repo.manifest("calico.yaml"),
            repo.manifest_sha256("calico.yaml")
        )
    };
    let roles = [(0, "control-plane"), (1, "control-plane"), (2, "control-plane"), (3, "worker")];
    let inv = k.inventory(&set, "root", &roles, &cluster("1.33"), &repo.mirrors_yaml());
    // Every output a user or a CI log could see: plans in three formats, a debug-level apply
    // (-vv: every log line), JSON reports, and a second apply.
    let mut outputs = vec![];
    for args in [vec!["plan", p(&inv), "--json"], vec!["plan", p(&inv), "--markdown"]] {
        let o = k.run(&args);
        assert_eq!(code(&o), 2, "{}", text(&o));
        outputs.push(text(&o));
    }
    // The control-plane join of h2 pauses inside kubeadm (kubelet-start) while the test reads
    // every process's command line on every node: no token and no certificate key in argv.
    set.sh(1, "mkdir -p /etc/kprov-double && echo join/kubelet-start > /etc/kprov-double/pause-phase");
    let (child, rx) = k.spawn(&["apply", p(&inv), "-vv"]);
    wait_paused(&set, 1, "join/kubelet-start");
    let api: serde_json::Value = serde_json::from_str(&set.sh(0, "cat /var/lib/kube-double/api.json")).unwrap();
    let mut in_flight: Vec<String> = api["tokens"].as_object().unwrap().keys().cloned().collect();
    in_flight.push(api["certificate_key"].as_str().unwrap_or_default().to_string());
    assert!(in_flight.iter().all(|s| s.len() >= 16), "{api}");
    let cmdlines = all_cmdlines(&set, 4);
    assert!(cmdlines[1].contains("kubeadm join --config"), "the scan sees the paused join: {}", cmdlines[1]);
    for (node, lines) in cmdlines.iter().enumerate() {
        for s in &in_flight {
            assert!(!lines.contains(s.as_str()), "node {node}: a join secret ({}...) is in a process's argv:\n{lines}", &s[..6]);
        }
    }
    set.sh(1, "touch /etc/kprov-double/continue");
    let (apply, _) = support::cli::finish(child, rx, vec![], std::time::Duration::from_secs(900));
    set.sh(1, "rm -f /etc/kprov-double/pause-phase /etc/kprov-double/paused /etc/kprov-double/continue");
    assert_eq!(code(&apply), 0, "{}", text(&apply));
    outputs.push(text(&apply));
    for args in [vec!["apply", p(&inv), "--json", "-vv"], vec!["plan", p(&inv), "-vv"]] {
        let o = k.run(&args);
        assert_eq!(code(&o), 0, "{}", text(&o));
        outputs.push(text(&o));
    }
    // The secrets this cluster holds: every bootstrap token and the certificate key.
    let api = set.sh(0, "cat /var/lib/kube-double/api.json");
    let api: serde_json::Value = serde_json::from_str(&api).unwrap();
    let mut secrets: Vec<String> = api["tokens"].as_object().unwrap().keys().cloned().collect();
    assert!(!secrets.is_empty(), "the control plane holds tokens: {api}");
    secrets.extend(secrets.clone().iter().filter_map(|t| t.split_once('.').map(|(_, s)| s.to_string())));
    let cert_key = api["certificate_key"].as_str().unwrap_or_default().to_string();
    assert_eq!(cert_key.len(), 64, "the HA join used a certificate key: {api}");
    secrets.push(cert_key);
    for out in &outputs {
        for s in &secrets {
            assert!(!out.contains(s.as_str()), "a secret ({}...) reached the output:\n{out}", &s[..6]);
        }
    }
    let nodes = nodes_ready(&set, 0);
    assert_eq!(nodes.matches(" Ready ").count(), 4, "{nodes}");
    assert_eq!(nodes.matches("control-plane").count(), 3, "{nodes}");
    // Joined control planes got the admin kubeconfig; the certificate key never showed.
    assert!(set.exec(1, "test -f /etc/kubernetes/admin.conf").status.success());
    // No run of 64 hex digits (a certificate key's shape) but the manifest's own digest, which
    // the plan lists under "Downloads" as what the host checks.
    let digest = repo.manifest_sha256("calico.yaml");
    let stdout = String::from_utf8_lossy(&apply.stdout).to_string();
    let hex64: Vec<&str> = regex::Regex::new(r"[0-9a-f]{64}").unwrap().find_iter(&stdout).map(|m| m.as_str()).collect();
    assert!(hex64.iter().all(|h| *h == digest), "64 hex digits other than the manifest digest {digest} reached the output: {hex64:?}");
    let again = k.run(&["plan", p(&inv)]);
    assert_eq!(code(&again), 0, "{}", text(&again));

    // Upgrade to 1.34: `kubeadm upgrade apply` on the first control plane only, then the other
    // control planes one at a time with `kubeadm upgrade node`, then the worker. No secret shows.
    k.inventory(&set, "root", &roles, &cluster("1.34"), &repo.mirrors_yaml());
    let upgrade = k.run(&["upgrade", p(&inv), "--yes", "-v"]);
    assert_eq!(code(&upgrade), 0, "{}", text(&upgrade));
    let said = text(&upgrade);
    for s in &secrets {
        assert!(!said.contains(s.as_str()), "a secret ({}...) reached the upgrade's output:\n{said}", &s[..6]);
    }
    let pos = |s: &str| said.find(s).unwrap_or_else(|| panic!("{s:?} missing: {said}"));
    assert_eq!(said.matches("kubeadm upgrade apply v1.34.2").count(), 1, "{said}");
    assert!(pos("h1: kubeadm upgrade apply v1.34.2") < pos("h1: uncordoned"), "{said}");
    assert!(pos("h1: uncordoned") < pos("h2: kubeadm v1.34.2 installed"), "{said}");
    assert!(pos("h2: uncordoned") < pos("h3: kubeadm v1.34.2 installed"), "control planes one at a time: {said}");
    assert!(pos("h3: uncordoned") < pos("h4: kubeadm v1.34.2 installed"), "workers after every control plane: {said}");
    assert!(said.contains("h2: kubeadm upgrade node done") && said.contains("h3: kubeadm upgrade node done"), "{said}");
    for node in 1..3 {
        assert!(set.sh(node, "head -1 /etc/kubernetes/manifests/etcd.yaml").contains("v1.34.2"), "node {node}: its control plane was upgraded");
    }
    let nodes = nodes_ready(&set, 0);
    assert_eq!(nodes.matches(" Ready ").count(), 4, "{nodes}");
    assert_eq!(nodes.matches("v1.34.2").count(), 4, "{nodes}");
    let again = k.run(&["plan", p(&inv)]);
    assert_eq!(code(&again), 0, "{}", text(&again));
}

#[test]
fn a_wrong_join_token_fails_clearly_and_stays_secret() {
    let set = NodeSet::start(&[Flavour::Debian, Flavour::Debian]);
    let repo = AptRepo::serve(set.gateway);
    let k = Kprov::new();
    // A role overlay whose capture hands the worker a made-up token with the real CA hash.
    let roles = k.path("roles");
    std::fs::create_dir_all(&roles).unwrap();
    std::fs::write(
        roles.join("80-join-command.yaml"),
        "name: join-command\nhosts: first-control-plane\nafter: [control-plane-init]\nresources:\n  - name: join-command\n    capture:\n      name: join_command\n      run: kubeadm token create --print-join-command | sed 's/--token [^ ]*/--token zzzzzz.0123456789abcdef/'\n",
    )
    .unwrap();
    let cluster = format!(
        "  cni: weave\n  cni_manifest: {}\n  cni_manifest_sha256: {}\n",
        repo.manifest("weave-daemonset-k8s.yaml"),
        repo.manifest_sha256("weave-daemonset-k8s.yaml")
    );
    let inv = k.inventory(&set, "root", &[(0, "control-plane"), (1, "worker")], &cluster, &repo.mirrors_yaml());
    let apply = k.run(&["apply", p(&inv), "--roles", p(&roles)]);
    assert_eq!(code(&apply), 1, "{}", text(&apply));
    let all = text(&apply);
    assert!(all.contains("h2: worker-join/kubeadm-join FAILED"), "{all}");
    assert!(all.contains("is invalid for this cluster or it has expired"), "{all}");
    assert!(!all.contains("zzzzzz.0123456789abcdef"), "the token is redacted: {all}");
    // The control plane is done; only the worker failed.
    assert!(String::from_utf8_lossy(&apply.stdout).lines().any(|l| l.starts_with("h1 ") && l.contains(" 0  ")), "{all}");
    assert!(!set.exec(1, "test -f /etc/kubernetes/kubelet.conf").status.success());
}

#[test]
fn raspberry_pi_homelab_with_the_cgroup_reboot() {
    // The seed guide's homelab: a Raspberry Pi OS control plane (real arm64 userland under
    // emulation) and three workers, Weave Net, pod network 10.10.0.0/16.
    let set = NodeSet::start(&[Flavour::RaspberryPi, Flavour::Debian, Flavour::Debian, Flavour::Debian]);
    let repo = AptRepo::serve(set.gateway);
    // A Pi as flashed: dphys-swapfile enabled.
    assert_eq!(set.sh(0, "systemctl is-enabled dphys-swapfile").trim(), "enabled");
    let k = Kprov::new();
    let cluster = format!(
        "  kubernetes_version: \"1.34\"\n  pod_cidr: 10.10.0.0/16\n  cni: weave\n  cni_manifest: {}\n  cni_manifest_sha256: {}\n",
        repo.manifest("weave-daemonset-k8s.yaml"),
        repo.manifest_sha256("weave-daemonset-k8s.yaml")
    );
    let inv = k.inventory(&set, "root", &[(0, "control-plane"), (1, "worker"), (2, "worker"), (3, "worker")], &cluster, &repo.mirrors_yaml());
    let plan = k.run(&["plan", p(&inv)]);
    assert_eq!(code(&plan), 2, "{}", text(&plan));
    let out = String::from_utf8_lossy(&plan.stdout).to_string();
    assert!(out.contains("+console=serial0,115200") && out.contains("cgroup_memory=1 cgroup_enable=memory"), "{out}");
    assert!(out.contains("raspberry-pi/reboot"), "{out}");
    let before = set.sh(0, "cut -d' ' -f22 /proc/1/stat");
    let apply = k.run(&["apply", p(&inv)]);
    assert_eq!(code(&apply), 0, "{}", text(&apply));
    assert_ne!(set.sh(0, "cut -d' ' -f22 /proc/1/stat"), before, "the Pi was rebooted");
    assert!(set.sh(0, "cat /boot/firmware/cmdline.txt").trim_end().ends_with("rootwait cgroup_memory=1 cgroup_enable=memory"));
    assert_eq!(set.sh(0, "systemctl is-enabled dphys-swapfile || true").trim(), "masked");
    assert_eq!(set.sh(0, "dpkg --print-architecture").trim(), "arm64");
    let nodes = nodes_ready(&set, 0);
    assert_eq!(nodes.matches(" Ready ").count(), 4, "{nodes}");
    let again = k.run(&["plan", p(&inv)]);
    assert_eq!(code(&again), 0, "{}", text(&again));
}

/// Every process's command line on every node, NUL bytes as spaces.
fn all_cmdlines(set: &NodeSet, nodes: usize) -> Vec<String> {
    (0..nodes).map(|i| set.sh(i, "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < \"$f\" 2>/dev/null; echo; done")).collect()
}

/// Wait until the kubeadm double on `node` reports that it paused (see tests/doubles/README.md).
fn wait_paused(set: &NodeSet, node: usize, phase: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while std::time::Instant::now() < deadline {
        if set.sh(node, "cat /etc/kprov-double/paused 2>/dev/null || true").trim() == phase {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    panic!("node {node}: kubeadm never paused at {phase} within 300 s");
}

#[test]
fn an_interrupted_init_is_refused_until_reset_and_joins_keep_secrets_out_of_argv() {
    // Issue 14, items 2-4, the way they happen on real hosts: kubeadm init fails at
    // wait-control-plane after writing admin.conf; joins run while the test reads every
    // process's command line on every node; labels and taints reach the joining nodes.
    let set = NodeSet::start(&[Flavour::Debian, Flavour::Debian, Flavour::Debian]);
    let repo = AptRepo::serve(set.gateway);
    let k = Kprov::new();
    let cluster = format!(
        "  name: \"lab \\\"one\\\"\"\n  cni: flannel\n  cni_manifest: {}\n  cni_manifest_sha256: {}\n",
        repo.manifest("kube-flannel.yml"),
        repo.manifest_sha256("kube-flannel.yml")
    );
    let inv = k.inventory(&set, "root", &[(0, "control-plane"), (1, "worker"), (2, "worker")], &cluster, &repo.mirrors_yaml());
    // Labels on every node (the workers' never reached them before), taints on one worker.
    let y = std::fs::read_to_string(&inv).unwrap();
    let y = y
        .replace("roles: [control-plane] }", "roles: [control-plane], labels: { example.com/rack: r1 } }")
        .replacen("roles: [worker] }", "roles: [worker], labels: { disk: ssd, node.kubernetes.io/pool: blue } }", 1)
        .replacen(
            "roles: [worker] }",
            "roles: [worker], labels: { disk: hdd }, taints: [{ key: dedicated, value: batch, effect: NoSchedule }, { key: example.com/gpu, effect: NoExecute }] }",
            1,
        );
    std::fs::write(&inv, y).unwrap();
    let inv = p(&inv);

    // 1. kubeadm init fails at wait-control-plane, after the kubeconfig phase wrote admin.conf.
    set.sh(0, "mkdir -p /etc/kprov-double && echo init/wait-control-plane > /etc/kprov-double/fail-phase");
    let apply = k.run(&["apply", inv]);
    assert_eq!(code(&apply), 1, "{}", text(&apply));
    assert!(text(&apply).contains("error execution phase wait-control-plane"), "the host's own words: {}", text(&apply));
    assert!(set.exec(0, "test -f /etc/kubernetes/admin.conf").status.success(), "the double wrote admin.conf before failing");
    let ca = set.sh(0, "sha256sum /etc/kubernetes/pki/ca.crt");
    set.sh(0, "rm /etc/kprov-double/fail-phase");

    // 2. Plan and apply say so for h1 and what to do; they neither skip nor repeat kubeadm init.
    let plan = k.run(&["plan", inv]);
    assert_eq!(code(&plan), 1, "{}", text(&plan));
    let out = String::from_utf8_lossy(&plan.stdout).to_string();
    assert!(out.contains("kubeadm init started on h1 and did not finish"), "{out}");
    assert!(out.contains("kprov reset INVENTORY --limit h1"), "{out}");
    assert!(out.contains("/etc/kubernetes/admin.conf"), "names what it found: {out}");
    let apply = k.run(&["apply", inv]);
    assert_eq!(code(&apply), 1, "{}", text(&apply));
    assert!(text(&apply).contains("kubeadm init started on h1 and did not finish"), "{}", text(&apply));
    assert_eq!(set.sh(0, "sha256sum /etc/kubernetes/pki/ca.crt"), ca, "kubeadm init did not run again");
    assert!(!set.exec(0, "test -e /etc/kubernetes/kprov/init.done").status.success());

    // 3. Reset, then joins paused in their kubelet-start phase while the test reads argv.
    let reset = k.run(&["reset", inv, "--limit", "h1", "--yes"]);
    assert_eq!(code(&reset), 0, "{}", text(&reset));
    for w in [1, 2] {
        set.sh(w, "mkdir -p /etc/kprov-double && echo join/kubelet-start > /etc/kprov-double/pause-phase");
    }
    let (child, rx) = k.spawn(&["apply", inv]);
    wait_paused(&set, 1, "join/kubelet-start");
    wait_paused(&set, 2, "join/kubelet-start");
    let api: serde_json::Value = serde_json::from_str(&set.sh(0, "cat /var/lib/kube-double/api.json")).unwrap();
    let mut secrets: Vec<String> = api["tokens"].as_object().unwrap().keys().cloned().collect();
    assert!(!secrets.is_empty(), "{api}");
    secrets.extend(secrets.clone().iter().filter_map(|t| t.split_once('.').map(|(_, s)| s.to_string())));
    secrets.push(api["ca_hash"].as_str().unwrap().to_string());
    let cmdlines = all_cmdlines(&set, 3);
    assert!(cmdlines[1].contains("kubeadm join --config"), "the scan sees the paused join: {}", cmdlines[1]);
    for (node, lines) in cmdlines.iter().enumerate() {
        for s in &secrets {
            assert!(!lines.contains(s.as_str()), "node {node}: a join secret ({}...) is in a process's argv:\n{lines}", &s[..6]);
        }
    }
    // The temporary JoinConfiguration is 0600 while it exists.
    assert_eq!(set.sh(1, "stat -c %a /etc/kubernetes/kprov/.join.*").trim(), "600");
    for w in [1, 2] {
        set.sh(w, "touch /etc/kprov-double/continue");
    }
    let (apply, _) = support::cli::finish(child, rx, vec![], std::time::Duration::from_secs(600));
    assert_eq!(code(&apply), 0, "{}", text(&apply));
    for w in [1, 2] {
        set.sh(w, "rm -f /etc/kprov-double/pause-phase /etc/kprov-double/paused /etc/kprov-double/continue");
        assert_eq!(set.sh(w, "ls -a /etc/kubernetes/kprov/ | grep -c '^\\.join' || true").trim(), "0", "node {w}: the temporary config is gone");
        assert!(!set.sh(w, "cat /etc/kubernetes/kprov/kubeadm-join.yaml").contains(&secrets[0]), "the kept JoinConfiguration holds no token");
        assert!(set.exec(w, "sha256sum -c --status /etc/kubernetes/kprov/join.done").status.success(), "node {w}: join recorded");
    }
    assert!(set.exec(0, "sha256sum -c --status /etc/kubernetes/kprov/init.done").status.success(), "init recorded after it finished");
    assert_ne!(set.sh(0, "sha256sum /etc/kubernetes/pki/ca.crt"), ca, "a new init after the reset");

    // 4. Labels and taints reached every node (the double's API records the kubelet's registration).
    let nodes: serde_json::Value = serde_json::from_str(&set.sh(0, "kubectl --kubeconfig /etc/kubernetes/admin.conf get nodes -o json")).unwrap();
    let node = |name: &str| {
        nodes["items"].as_array().unwrap().iter().find(|n| n["metadata"]["name"] == name).cloned().unwrap_or_else(|| panic!("{name}: {nodes}"))
    };
    assert_eq!(node("h1")["metadata"]["labels"]["example.com/rack"], "r1", "{nodes}");
    assert_eq!(node("h1")["metadata"]["labels"]["node-role.kubernetes.io/control-plane"], "", "{nodes}");
    assert_eq!(node("h2")["metadata"]["labels"]["disk"], "ssd", "{nodes}");
    assert_eq!(node("h2")["metadata"]["labels"]["node.kubernetes.io/pool"], "blue", "{nodes}");
    assert_eq!(node("h3")["metadata"]["labels"]["disk"], "hdd", "{nodes}");
    let taints = node("h3")["spec"]["taints"].to_string();
    assert!(taints.contains("\"dedicated\"") && taints.contains("\"batch\"") && taints.contains("\"NoSchedule\""), "{taints}");
    assert!(taints.contains("\"example.com/gpu\"") && taints.contains("\"NoExecute\""), "{taints}");
    assert!(node("h2")["spec"]["taints"].is_null(), "{nodes}");
    // The cluster name with quotes in it reached kubeadm intact (escaped by the serializer).
    assert!(set.sh(0, "cat /etc/kubernetes/kprov/kubeadm-init.yaml").contains(r#"clusterName: "lab \"one\"""#));

    // 5. Nothing left to do.
    let again = k.run(&["plan", inv]);
    assert_eq!(code(&again), 0, "{}", text(&again));
}
