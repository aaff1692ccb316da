//! Facts snapshots end to end on real nodes: an HA cluster applied (which records
//! inventory.facts.json), the plan from the snapshot compared with the live plan, every
//! node's sshd stopped and the plan made from the snapshot alone (also for a node the
//! pull request adds), then sshd started, one file drifted, and the plan saved from the
//! snapshot refused as stale. The snapshots are scanned for every secret the cluster holds.

mod support;

use support::apt_repo::AptRepo;
use support::cli::{Kprov, code, p, text};
use support::nodes::{Flavour, NodeSet};

/// The plan JSON without what differs by design between a live plan and one from facts.
fn comparable(plan_json: &[u8]) -> serde_json::Value {
    let mut v: serde_json::Value =
        serde_json::from_slice(plan_json).unwrap_or_else(|e| panic!("plan JSON: {e}: {}", String::from_utf8_lossy(plan_json)));
    v.as_object_mut().unwrap().remove("from_facts");
    v
}

/// A snapshot's JSON with every recorded file content decoded beside it (contents are byte
/// arrays in the JSON, which a text search would never match).
fn readable(json: &str) -> String {
    fn walk(v: &serde_json::Value, out: &mut String) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    if let (true, serde_json::Value::Array(bytes)) = (k == "content", v) {
                        let bytes: Vec<u8> = bytes.iter().filter_map(|b| b.as_u64()).map(|b| b as u8).collect();
                        out.push_str(&String::from_utf8_lossy(&bytes));
                        out.push('\n');
                    }
                    walk(v, out);
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = json.to_string();
    walk(&serde_json::from_str(json).unwrap(), &mut out);
    out
}

fn set_sshd(set: &NodeSet, running: bool) {
    for i in 0..set.nodes.len() {
        let verb = if running { "start" } else { "stop" };
        set.sh(i, &format!("systemctl {verb} ssh.service"));
        let active = set.exec(i, "systemctl is-active ssh.service").status.success();
        assert_eq!(active, running, "sshd on node {i} did not {verb}");
    }
}

#[test]
fn plans_from_recorded_facts_without_ssh_and_refuses_them_once_stale() {
    // The smallest cluster that holds every secret kprov handles: two control planes (the
    // second joins with the certificate key) and a worker (a bootstrap token).
    let set = NodeSet::start(&[Flavour::Debian, Flavour::Debian, Flavour::Debian]);
    let repo = AptRepo::serve(set.gateway);
    let k = Kprov::new();
    let cluster = format!(
        "  cni: calico\n  control_plane_endpoint: {}:6443\n  cni_manifest: {}\n  cni_manifest_sha256: {}\n",
        set.node(0).ip,
        repo.manifest("calico.yaml"),
        repo.manifest_sha256("calico.yaml")
    );
    let inv_path = k.inventory(&set, "root", &[(0, "control-plane"), (1, "control-plane"), (2, "worker")], &cluster, &repo.mirrors_yaml());
    let inv = p(&inv_path);
    let snapshot = k.path("inventory.facts.json");

    // A successful apply records the facts beside the inventory.
    let apply = k.run(&["apply", inv]);
    assert_eq!(code(&apply), 0, "{}", text(&apply));
    assert!(String::from_utf8_lossy(&apply.stderr).contains(&format!("Recorded the facts of 3 hosts in {}", snapshot.display())), "{}", text(&apply));
    let recorded: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&snapshot).unwrap()).unwrap();
    assert_eq!(recorded["format_version"], 1);
    let names: Vec<&str> = recorded["hosts"].as_array().unwrap().iter().map(|h| h["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["h1", "h2", "h3"]);
    for h in recorded["hosts"].as_array().unwrap() {
        assert_eq!(h["facts_fingerprint"].as_str().unwrap().len(), 64, "{h}");
        assert!(h["recorded_at"].as_str().unwrap().ends_with('Z'), "{h}");
    }

    // `kprov facts --save` records the same, and refuses to write over a file that is not a
    // snapshot (the inventory, say).
    let saved_facts = k.path("saved.facts.json");
    let facts = k.run(&["facts", inv, "--save", p(&saved_facts)]);
    assert_eq!(code(&facts), 0, "{}", text(&facts));
    let over = k.run(&["facts", inv, "--save", inv]);
    assert_eq!(code(&over), 1, "{}", text(&over));
    assert!(std::fs::read_to_string(&inv_path).unwrap().starts_with("cluster:"), "the inventory is intact");

    // The secrets this cluster holds: every bootstrap token, the certificate key, the key
    // material of admin.conf and of the cluster's private keys, and kprov's SSH key.
    let api: serde_json::Value = serde_json::from_str(&set.sh(0, "cat /var/lib/kube-double/api.json")).unwrap();
    let mut secrets: Vec<String> = api["tokens"].as_object().unwrap().keys().cloned().collect();
    assert!(!secrets.is_empty(), "the control plane holds tokens: {api}");
    secrets.extend(secrets.clone().iter().filter_map(|t| t.split_once('.').map(|(_, s)| s.to_string())));
    let cert_key = api["certificate_key"].as_str().unwrap_or_default().to_string();
    assert_eq!(cert_key.len(), 64, "the control-plane join used a certificate key: {api}");
    secrets.push(cert_key);
    let admin = set.sh(0, "cat /etc/kubernetes/admin.conf");
    let key_data = admin.lines().find_map(|l| l.trim().strip_prefix("client-key-data:")).map(|v| v.trim().to_string());
    let key_data = key_data.unwrap_or_else(|| panic!("admin.conf holds a client key: {admin}"));
    assert!(key_data.len() > 16);
    secrets.push(key_data);
    for i in 0..3 {
        for key in set.sh(i, "ls /etc/kubernetes/pki/*.key /etc/kubernetes/pki/*/*.key 2>/dev/null || true").lines() {
            let body: String = set.sh(i, &format!("cat {key}")).lines().filter(|l| !l.starts_with("-----")).collect();
            if body.len() > 16 {
                secrets.push(body[..32.min(body.len())].to_string());
            }
        }
    }
    let ssh_key: String = std::fs::read_to_string(&set.key_path).unwrap().lines().filter(|l| !l.starts_with("-----")).collect();
    secrets.push(ssh_key[..40].to_string());
    for file in [&snapshot, &saved_facts] {
        let json = readable(&std::fs::read_to_string(file).unwrap());
        assert!(json.contains("/etc/kubernetes/admin.conf"), "admin.conf is recorded (by digest)");
        assert!(json.contains("local edits are overwritten"), "the contents kept are searched too");
        for s in &secrets {
            assert!(!json.contains(s.as_str()), "a secret ({}...) reached {}", &s[..6], file.display());
        }
        assert!(!json.contains("client-key-data") && !json.contains("PRIVATE KEY"), "{json}");
    }

    // Planning from the snapshot gives exactly the plan live facts give.
    let live = k.run(&["plan", inv, "--json"]);
    assert_eq!(code(&live), 0, "{}", text(&live));
    let from = k.run(&["plan", inv, "--json", "--facts", p(&snapshot)]);
    assert_eq!(code(&from), 0, "{}", text(&from));
    assert_eq!(comparable(&from.stdout), comparable(&live.stdout), "{}", text(&from));
    let origin: serde_json::Value = serde_json::from_slice(&from.stdout).unwrap();
    assert_eq!(origin["from_facts"]["hosts"].as_array().unwrap().len(), 3, "{origin}");

    // No host reachable: a live plan fails, a plan from the snapshot works.
    set_sshd(&set, false);
    let down = k.run(&["plan", inv]);
    assert_eq!(code(&down), 1, "sshd is really down: {}", text(&down));
    let plan_json = k.path("plan.json");
    let offline = k.run(&["plan", inv, "--facts", p(&snapshot), "-o", p(&plan_json)]);
    assert_eq!(code(&offline), 0, "{}", text(&offline));
    let out = String::from_utf8_lossy(&offline.stdout).to_string();
    let at = recorded["recorded_at"].as_str().unwrap();
    assert!(out.starts_with(&format!("Planned from facts recorded at {at} by kprov {}", env!("CARGO_PKG_VERSION"))), "{out}");
    for h in ["h1", "h2", "h3"] {
        assert!(out.lines().any(|l| l.starts_with(&format!("  {h}: facts recorded at ")) && l.ends_with(" old)")), "{h}'s age: {out}");
    }
    assert!(out.contains("No changes. The hosts' recorded facts match the inventory."), "{out}");
    let md = k.run(&["plan", inv, "--facts", p(&snapshot), "--markdown"]);
    assert_eq!(code(&md), 0, "{}", text(&md));
    assert!(String::from_utf8_lossy(&md.stdout).contains("_Planned from facts recorded at"), "{}", text(&md));

    // A pull request that adds a worker: its whole plan, from an empty host.
    let added = std::fs::read_to_string(&inv_path)
        .unwrap()
        .replace("roles: [worker] }\n", "roles: [worker] }\n  - { name: h4, address: 192.0.2.44, roles: [worker] }\n");
    let added_path = k.path("added.yaml");
    std::fs::write(&added_path, added).unwrap();
    let grown = k.run(&["plan", p(&added_path), "--facts", p(&snapshot)]);
    assert_eq!(code(&grown), 2, "{}", text(&grown));
    let out = String::from_utf8_lossy(&grown.stdout).to_string();
    assert!(out.contains("  h4: not in the snapshot, planned as an empty host"), "{out}");
    assert!(out.contains("The inventory or the roles changed since the facts were recorded."), "{out}");
    for step in ["kernel/sysctl", "containerd/package", "kubernetes-packages/packages", "worker-join/kubeadm-join"] {
        assert!(out.contains(&format!(" {step}: ")), "{step}: {out}");
    }
    // Only the new host changes; the first control plane reads a join command for it and, as
    // the node-labels check now names h4 too (a guard the snapshot could not record), plans the
    // labels and taints step.
    let h1: Vec<&str> =
        out.split("\nh1 (").nth(1).unwrap_or_default().lines().skip(1).take_while(|l| !l.is_empty()).filter(|l| !l.starts_with("    ")).collect();
    assert_eq!(h1.len(), 2, "{out}");
    assert!(h1[0].contains("join-command/join-command: read join command"), "{out}");
    assert!(h1[1].contains("node-labels/node-labels:"), "{out}");
    assert!(out.contains("\nh4 (192.0.2.44)\n") && !out.contains("\nh2 (") && !out.contains("\nh3 ("), "{out}");

    // sshd back: the saved plan applies while nothing changed...
    set_sshd(&set, true);
    let unchanged_json = k.path("unchanged.json");
    let again = k.run(&["plan", inv, "--facts", p(&snapshot), "-o", p(&unchanged_json)]);
    assert_eq!(code(&again), 0, "{}", text(&again));
    let ok = k.run(&["apply", p(&unchanged_json)]);
    assert_eq!(code(&ok), 0, "a plan from facts that are still true applies: {}", text(&ok));

    // ...and, once one file drifted on h2, the plan made from the snapshot is refused, naming
    // h2 and only h2, and nothing runs.
    set.sh(1, "echo 'net.ipv4.ip_forward = 0' >> /etc/sysctl.d/k8s.conf");
    let before = set.sh(1, "sha256sum /etc/sysctl.d/k8s.conf");
    let stale = k.run(&["apply", p(&plan_json)]);
    assert_eq!(code(&stale), 1, "{}", text(&stale));
    // miette wraps the message; read it as one line.
    let said = text(&stale).replace(['│', '×'], " ").split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(said.contains("h2 changed since its facts were recorded at"), "{said}");
    assert!(!said.contains("h1 changed") && !said.contains("h3 changed"), "{said}");
    assert!(said.contains("Review a fresh plan made from the hosts themselves: kprov plan INVENTORY -o plan.json"), "suggests a fresh plan: {said}");
    assert_eq!(set.sh(1, "sha256sum /etc/sysctl.d/k8s.conf"), before, "nothing was applied");
    // A live plan shows the drift.
    let live = k.run(&["plan", inv]);
    assert_eq!(code(&live), 2, "{}", text(&live));
}

/// The become password never reaches a snapshot (facts read through sudo with a password).
#[test]
fn a_snapshot_read_through_sudo_holds_no_password() {
    let set = NodeSet::start(&[Flavour::Debian]);
    let k = Kprov::new();
    let inv = k.inventory(&set, "ops", &[(0, "control-plane")], "  cni: flannel\n", "");
    let text_inv = std::fs::read_to_string(&inv).unwrap().replace("  agent: false\n", "  agent: false\n  become_password_env: KPROV_TEST_SUDO\n");
    std::fs::write(&inv, text_inv).unwrap();
    let pw = support::nodes::SUDO_PASSWORD;
    let snapshot = k.path("facts.json");
    let o = k.run_env(&["facts", p(&inv), "--save", p(&snapshot)], &[("KPROV_TEST_SUDO", pw)]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let json = readable(&std::fs::read_to_string(&snapshot).unwrap());
    assert!(json.contains("\"name\": \"h1\""), "{json}");
    assert!(!json.contains(pw), "the sudo password reached the snapshot");
    // Planned from it: the same plan as live.
    let live = k.run_env(&["plan", p(&inv), "--json"], &[("KPROV_TEST_SUDO", pw)]);
    let from = k.run(&["plan", p(&inv), "--json", "--facts", p(&snapshot)]);
    assert_eq!(code(&from), code(&live), "{}\n{}", text(&from), text(&live));
    assert_eq!(comparable(&from.stdout), comparable(&live.stdout));
}
