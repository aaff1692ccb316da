//! Day-2 operations end to end on real Debian/Ubuntu nodes with the local apt repository and
//! the kubeadm/kubelet/kubectl test doubles: `kprov facts`, `kprov ssh`, a host added to the
//! inventory joining on the next apply, `kprov remove-node` and `kprov reset`.

mod support;

use support::apt_repo::AptRepo;
use support::cli::{Kprov, code, finish, p, text, wait_for};
use support::nodes::{Flavour, NodeSet};

fn nodes(set: &NodeSet, cp: usize) -> String {
    set.sh(cp, "kubectl --kubeconfig /etc/kubernetes/admin.conf get nodes")
}

fn exists(set: &NodeSet, node: usize, path: &str) -> bool {
    set.exec(node, &format!("test -e {path}")).status.success()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// The JSON Lines events of `--output json`: every line one object with `event` and
/// `elapsed_ms`, the last one `report`.
fn events(o: &std::process::Output) -> Vec<serde_json::Value> {
    let out = stdout(o);
    let events: Vec<serde_json::Value> =
        out.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}\n{}", text(o)))).collect();
    assert!(events.iter().all(|e| e["event"].is_string() && e["elapsed_ms"].is_u64()), "{out}");
    assert_eq!(events.last().map(|e| e["event"].clone()), Some(serde_json::json!("report")), "{out}");
    events
}

/// The first event named `name`.
fn event<'a>(events: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    events.iter().find(|e| e["event"] == name).unwrap_or_else(|| panic!("no {name} event: {events:?}"))
}

#[test]
fn facts_show_each_hosts_real_system_and_ssh_runs_a_command() {
    let set = NodeSet::start(&[Flavour::Debian, Flavour::Ubuntu]);
    let k = Kprov::new();
    let inv = k.inventory(&set, "root", &[(0, "control-plane"), (1, "worker")], "  name: plain\n", "");
    let inv = p(&inv);
    let os_of = |i: usize| {
        (
            set.sh(i, ". /etc/os-release; echo \"$PRETTY_NAME\"").trim().to_string(),
            set.sh(i, "dpkg --print-architecture").trim().to_string(),
            set.sh(i, "uname -r").trim().to_string(),
        )
    };
    let (pretty1, arch1, kernel1) = os_of(0);
    let (pretty2, _, _) = os_of(1);
    assert_ne!(pretty1, pretty2, "the two flavours differ");

    // Human text: one block per host, with what the host itself says.
    let facts = k.run(&["facts", inv]);
    assert_eq!(code(&facts), 0, "{}", text(&facts));
    let out = stdout(&facts);
    for (needle, what) in [(&pretty1, "os"), (&pretty2, "os"), (&arch1, "arch"), (&kernel1, "kernel")] {
        assert!(out.contains(needle.as_str()), "{what} {needle:?} missing:\n{out}");
    }
    assert!(out.contains("h1 (") && out.contains("h2 ("), "{out}");
    assert!(out.contains("memory cgroup") && out.contains("swap") && out.contains("packages") && out.contains("kubeadm"), "{out}");
    let states: Vec<&str> = out.lines().filter(|l| l.starts_with("  kubeadm ")).collect();
    assert_eq!(states.len(), 2, "{out}");
    assert!(states.iter().all(|l| l.ends_with(" not joined") || l.ends_with(" not initialised")), "kubeadm state of fresh hosts: {out}");
    assert!(out.contains("tcp/22"), "sshd listens: {out}");

    // JSON, limited to one host.
    let json = k.run(&["facts", inv, "--limit", "h2", "--json"]);
    assert_eq!(code(&json), 0, "{}", text(&json));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["format_version"], 1);
    let hosts = v["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 1, "{v}");
    assert_eq!(hosts[0]["name"], "h2");
    assert_eq!(hosts[0]["status"], "ok");
    assert_eq!(hosts[0]["os"]["id"], "ubuntu");
    assert_eq!(hosts[0]["os"]["pretty_name"], pretty2.as_str());
    assert_eq!(hosts[0]["os"]["arch"], set.sh(1, "dpkg --print-architecture").trim());
    assert_eq!(hosts[0]["os"]["cpus"].as_u64().unwrap(), set.sh(1, "nproc").trim().parse::<u64>().unwrap());
    assert_eq!(hosts[0]["packages"]["kubeadm"]["installed"], false, "{v}");
    assert_eq!(hosts[0]["kubeadm"]["state"], "not-joined", "{v}");

    // An unknown --limit host is an error naming it.
    let bad = k.run(&["facts", inv, "--limit", "h9"]);
    assert_eq!(code(&bad), 1, "{}", text(&bad));
    assert!(text(&bad).contains("h9"), "{}", text(&bad));

    // ssh: the system client with the inventory's settings runs the command on the node.
    let ssh = k.run(&["ssh", inv, "h2", "--", "hostname"]);
    assert_eq!(code(&ssh), 0, "{}", text(&ssh));
    assert_eq!(stdout(&ssh).trim(), set.sh(1, "hostname").trim());
    // Words arrive as given (each quoted), and the exit status is the command's.
    let words = k.run(&["ssh", inv, "h1", "-v", "--", "printf", "%s|", "a b", "$(echo x);y"]);
    assert_eq!(code(&words), 0, "{}", text(&words));
    assert_eq!(stdout(&words), "a b|$(echo x);y|", "{}", text(&words));
    let shown = String::from_utf8_lossy(&words.stderr).to_string();
    assert!(shown.starts_with("ssh -l root -p 22 -i ") && shown.contains("StrictHostKeyChecking=yes"), "-v prints the command: {shown}");
    let status = k.run(&["ssh", inv, "h1", "--", "sh", "-c", "exit 7"]);
    assert_eq!(code(&status), 7, "{}", text(&status));
    let unknown = k.run(&["ssh", inv, "h3", "--", "hostname"]);
    assert_eq!(code(&unknown), 1, "{}", text(&unknown));
    assert!(text(&unknown).contains("h3 is not a host of"), "{}", text(&unknown));
    // A host key that does not match the inventory's known_hosts is refused (strict policy).
    let other = set.host_key(0);
    std::fs::write(&set.known_hosts_path, format!("{} {other}\n", set.node(1).ip)).unwrap();
    let refused = k.run(&["ssh", inv, "h2", "--", "hostname"]);
    assert_eq!(code(&refused), 255, "{}", text(&refused));
    assert!(stdout(&refused).is_empty(), "{}", text(&refused));
}

#[test]
fn a_host_added_to_the_inventory_joins_then_remove_node_and_reset_take_the_cluster_apart() {
    let set = NodeSet::start(&[Flavour::Debian, Flavour::Debian, Flavour::Debian]);
    let repo = AptRepo::serve(set.gateway);
    let k = Kprov::new();
    let cluster = format!(
        "  name: homelab\n  cni: flannel\n  cni_manifest: {}\n  cni_manifest_sha256: {}\n",
        repo.manifest("kube-flannel.yml"),
        repo.manifest_sha256("kube-flannel.yml")
    );
    let inv = k.inventory(&set, "root", &[(0, "control-plane"), (1, "worker")], &cluster, &repo.mirrors_yaml());
    let inv = p(&inv).to_string();
    let inv = inv.as_str();
    let apply = k.run(&["apply", inv]);
    assert_eq!(code(&apply), 0, "{}", text(&apply));
    assert_eq!(nodes(&set, 0).matches(" Ready ").count(), 2);

    // A third host in the inventory: only it changes, plus the fresh join command its join
    // needs from the first control plane.
    k.inventory(&set, "root", &[(0, "control-plane"), (1, "worker"), (2, "worker")], &cluster, &repo.mirrors_yaml());
    let plan = k.run(&["plan", inv, "--json"]);
    assert_eq!(code(&plan), 2, "{}", text(&plan));
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let changed: Vec<String> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["outcome"]["outcome"] == "change")
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert!(changed.contains(&"h3/worker-join/kubeadm-join".to_string()), "{changed:?}");
    let elsewhere: Vec<&String> = changed.iter().filter(|id| !id.starts_with("h3/")).collect();
    assert!(elsewhere.iter().all(|id| id.starts_with("h1/join-command/")), "only the join command changes outside h3: {elsewhere:?}");
    let apply = k.run(&["apply", inv, "--json"]);
    assert_eq!(code(&apply), 0, "{}", text(&apply));
    let report: serde_json::Value = serde_json::from_slice(&apply.stdout).unwrap();
    for h in report["hosts"].as_array().unwrap() {
        if h["name"] == "h2" {
            assert_eq!(h["changed"], 0, "the existing worker is untouched: {report}");
        }
    }
    let after = nodes(&set, 0);
    assert_eq!(after.matches(" Ready ").count(), 3, "{after}");
    assert!(after.contains("h3"), "{after}");
    let again = k.run(&["plan", inv]);
    assert_eq!(code(&again), 0, "{}", text(&again));

    // remove-node: never the first control plane; without --yes and no terminal, refused.
    let first = k.run(&["remove-node", inv, "h1", "--yes"]);
    assert_eq!(code(&first), 1, "{}", text(&first));
    assert!(text(&first).contains("refusing to remove the first control plane"), "{}", text(&first));
    let unconfirmed = k.run(&["remove-node", inv, "h3"]);
    assert_eq!(code(&unconfirmed), 1, "{}", text(&unconfirmed));
    assert!(text(&unconfirmed).contains("without --yes"), "{}", text(&unconfirmed));
    assert!(nodes(&set, 0).contains("h3"));
    // --dry-run: what it would do, as JSON events; exit 2, nothing changed.
    let dry = k.run(&["remove-node", inv, "h3", "--dry-run", "--output", "json"]);
    assert_eq!(code(&dry), 2, "{}", text(&dry));
    let ev = events(&dry);
    let actions = event(&ev, "plan")["actions"].to_string();
    assert!(actions.contains("kubectl drain h3, then kubectl delete node h3 (on h1)") && actions.contains("kubeadm reset -f"), "{actions}");
    let report = event(&ev, "report");
    assert!(report["dry_run"] == true && report["pending"] == true && report["success"] == true, "{report}");
    assert!(nodes(&set, 0).contains("h3") && exists(&set, 2, "/etc/kubernetes/kubelet.conf"), "a dry run changes nothing");
    let refused_dry = k.run(&["remove-node", inv, "h1", "--dry-run"]);
    assert_eq!(code(&refused_dry), 1, "a dry run of a refused removal says so: {}", text(&refused_dry));
    let removed = k.run(&["remove-node", inv, "h3", "--yes"]);
    assert_eq!(code(&removed), 0, "{}", text(&removed));
    let out = text(&removed);
    assert!(out.contains("h3: node/h3 drained") && out.contains("h3: node \"h3\" deleted") && out.contains("h3: kubeadm reset -f done"), "{out}");
    assert!(out.contains("delete h3 from"), "tells to edit the inventory: {out}");
    assert!(!nodes(&set, 0).contains("h3"), "{}", nodes(&set, 0));
    assert!(!exists(&set, 2, "/etc/kubernetes/kubelet.conf"), "h3 was reset");
    assert_eq!(set.sh(2, "systemctl is-active kubelet || true").trim(), "inactive");

    // reset: refused without --yes when stdin is not a terminal, and nothing changes.
    // (A CNI writes its configuration here; the doubles' CNI manifests run no pods, so the test
    // lays it down as a real CNI would.)
    set.sh(1, "mkdir -p /etc/cni/net.d && echo '{}' > /etc/cni/net.d/10-flannel.conflist");
    let refused = k.run(&["reset", inv, "--limit", "h2"]);
    assert_eq!(code(&refused), 1, "{}", text(&refused));
    assert!(text(&refused).contains("refusing to reset hosts without --yes"), "{}", text(&refused));
    assert!(exists(&set, 1, "/etc/kubernetes/kubelet.conf") && exists(&set, 1, "/etc/cni/net.d/10-flannel.conflist"), "nothing changed");
    assert!(nodes(&set, 0).contains("h2"));

    // The dry run of the whole cluster: the order, exit 2, nothing changed.
    let dry = k.run(&["reset", inv, "--dry-run"]);
    assert_eq!(code(&dry), 2, "{}", text(&dry));
    assert!(stdout(&dry).contains("Reset pending, in this order: h2, h3, h1"), "{}", text(&dry));
    assert!(exists(&set, 1, "/etc/kubernetes/kubelet.conf"), "a dry run changes nothing");

    // The whole cluster (h3 is still in the inventory: resetting it again is harmless):
    // workers first, the control plane last.
    let reset = k.run(&["reset", inv, "--yes"]);
    assert_eq!(code(&reset), 0, "{}", text(&reset));
    let out = stdout(&reset);
    let pos = |s: &str| out.find(s).unwrap_or_else(|| panic!("{s:?} missing:\n{out}"));
    assert!(pos("h2: kubeadm reset -f done") < pos("h1: kubeadm reset -f done"), "{out}");
    assert!(out.contains("h2: removed the CNI configuration in /etc/cni/net.d"), "{out}");
    assert!(out.contains("h1: removed /root/.kube/config"), "{out}");
    assert!(!exists(&set, 1, "/etc/kubernetes/kubelet.conf"));
    assert!(!exists(&set, 1, "/etc/cni/net.d/10-flannel.conflist"));
    assert!(!exists(&set, 0, "/etc/kubernetes/admin.conf") && !exists(&set, 0, "/root/.kube/config"));
    // Packages stay; the next plan would set the cluster up again.
    assert_eq!(set.sh(1, "apt-mark showhold | sort | tr '\\n' ' '"), "kubeadm kubectl kubelet ");
    let plan = k.run(&["plan", inv]);
    assert_eq!(code(&plan), 2, "{}", text(&plan));
    assert!(stdout(&plan).contains("control-plane-init/kubeadm-init"), "{}", text(&plan));
}

/// `kubectl get nodes -o json` on the first control plane: (name, kubelet version, Ready,
/// cordoned) for every node.
fn node_versions(set: &NodeSet) -> Vec<(String, String, bool, bool)> {
    let json = set.sh(0, "kubectl --kubeconfig /etc/kubernetes/admin.conf get nodes -o json");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["metadata"]["name"].as_str().unwrap().to_string(),
                n["status"]["nodeInfo"]["kubeletVersion"].as_str().unwrap().to_string(),
                n["status"]["conditions"].as_array().unwrap().iter().any(|c| c["type"] == "Ready" && c["status"] == "True"),
                n["spec"]["unschedulable"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

fn package_versions(set: &NodeSet, node: usize) -> String {
    set.sh(node, "dpkg-query -W -f '${Package}=${Version} ' kubeadm kubelet kubectl; apt-mark showhold | tr '\\n' ' '")
}

#[test]
fn backup_saves_etcd_and_upgrade_moves_the_cluster_one_minor_in_kubeadms_order() {
    let set = NodeSet::start(&[Flavour::Debian, Flavour::Ubuntu, Flavour::Debian]);
    let repo = AptRepo::serve(set.gateway);
    let k = Kprov::new();
    let cluster = |version: &str| {
        format!(
            "  name: homelab\n  kubernetes_version: \"{version}\"\n  cni: flannel\n  cni_manifest: {}\n  cni_manifest_sha256: {}\n",
            repo.manifest("kube-flannel.yml"),
            repo.manifest_sha256("kube-flannel.yml")
        )
    };
    let roles = [(0, "control-plane"), (1, "worker"), (2, "worker")];
    let inv = k.inventory(&set, "root", &roles, &cluster("1.33"), &repo.mirrors_yaml());
    let inv = p(&inv).to_string();
    let inv = inv.as_str();
    let apply = k.run(&["apply", inv]);
    assert_eq!(code(&apply), 0, "{}", text(&apply));
    let before = node_versions(&set);
    assert_eq!(before.len(), 3, "{before:?}");
    assert!(before.iter().all(|(_, v, ready, _)| v == "v1.33.6" && *ready), "{before:?}");

    // backup: the snapshot arrives whole, private, and is gone from the node.
    let out = k.path("snaps/homelab.db");
    let backup = k.run(&["backup", inv, "--output", p(&out)]);
    assert_eq!(code(&backup), 0, "{}", text(&backup));
    let bytes = std::fs::read(&out).unwrap();
    let snap = String::from_utf8_lossy(&bytes);
    assert!(snap.starts_with("kprov-double etcd snapshot\n"), "{snap}");
    assert!(snap.contains("\"h2\"") && snap.contains("\"h3\"") && snap.contains("kube-flannel-ds"), "the cluster's objects are in it: {snap}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o777, 0o600);
    let said = stdout(&backup);
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&bytes))
    };
    assert!(said.contains(&format!("sha256 {sha}")) && said.contains(&format!("{} bytes", bytes.len())), "{said}");
    assert!(!said.contains("BEGIN") && !snap.is_empty(), "the snapshot is not printed");
    assert_eq!(set.sh(0, "ls /var/lib/etcd | grep -c kprov-snapshot || true").trim(), "0", "nothing left on the node");
    let again = k.run(&["backup", inv, "--output", p(&out)]);
    assert_eq!(code(&again), 1, "{}", text(&again));
    assert!(text(&again).contains("never overwrites"), "{}", text(&again));
    assert_eq!(std::fs::read(&out).unwrap(), bytes, "the old snapshot is untouched");
    let named = k.run(&["backup", inv, "-q"]);
    assert_eq!(code(&named), 0, "{}", text(&named));
    let default: Vec<String> = std::fs::read_dir(k.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("homelab-etcd-") && n.ends_with("Z.db"))
        .collect();
    assert_eq!(default.len(), 1, "default name CLUSTER-etcd-TIMESTAMP.db: {default:?}");
    // --dry-run takes nothing; --output-format json reports the same backup as events.
    let dry = k.run(&["backup", inv, "--output", p(&k.path("snaps/dry.db")), "--dry-run"]);
    assert_eq!(code(&dry), 2, "{}", text(&dry));
    assert!(!k.path("snaps/dry.db").exists());
    let json = k.run(&["backup", inv, "--output", p(&k.path("snaps/json.db")), "--output-format", "json"]);
    assert_eq!(code(&json), 0, "{}", text(&json));
    let ev = events(&json);
    assert_eq!(event(&ev, "plan")["operation"], "backup");
    assert_eq!(event(&ev, "progress")["host"], "h1");
    let said = event(&ev, "result")["message"].as_str().unwrap().to_string();
    assert!(said.starts_with("Saved the etcd snapshot of cluster homelab from h1 to "), "{said}");
    assert_eq!(event(&ev, "report")["success"], true);
    assert!(std::fs::read(k.path("snaps/json.db")).unwrap().starts_with(b"kprov-double etcd snapshot\n"));

    // The inventory moves to 1.34: apply refuses to move packages under a running cluster...
    k.inventory(&set, "root", &roles, &cluster("1.34"), &repo.mirrors_yaml());
    let plan = k.run(&["plan", inv]);
    assert_eq!(code(&plan), 1, "{}", text(&plan));
    assert!(text(&plan).contains("kprov upgrade"), "the plan says what to do instead: {}", text(&plan));
    // ... and upgrade shows its order, and changes nothing without a confirmation.
    let dry = k.run(&["upgrade", inv, "--dry-run"]);
    assert_eq!(code(&dry), 2, "{}", text(&dry));
    let shown = stdout(&dry);
    assert!(line_of(&shown, "h1").contains("step 1: kubeadm upgrade apply"), "{shown}");
    assert!(line_of(&shown, "h2").contains("step 2: kubeadm upgrade node") && line_of(&shown, "h3").contains("step 3:"), "{shown}");
    let dry_json = k.run(&["upgrade", inv, "--dry-run", "--output", "json"]);
    assert_eq!(code(&dry_json), 2, "{}", text(&dry_json));
    let ev = events(&dry_json);
    let plan = event(&ev, "plan");
    assert_eq!(plan["operation"], "upgrade");
    assert_eq!(plan["actions"][0], serde_json::json!({"host": "h1", "action": "step 1: kubeadm upgrade apply, drain, kubelet, uncordon"}));
    assert_eq!(plan["actions"].as_array().unwrap().len(), 3, "{plan}");
    assert_eq!(event(&ev, "report")["pending"], true);
    let refused = k.run(&["upgrade", inv]);
    assert_eq!(code(&refused), 1, "{}", text(&refused));
    assert!(text(&refused).contains("without --yes"), "{}", text(&refused));
    assert!(package_versions(&set, 0).contains("kubeadm=1.33.6"), "nothing changed");

    // A kubelet that cannot restart on h2 stops the upgrade there: h1 is done, h2 is left
    // cordoned and named, h3 is not started.
    set.sh(1, "systemctl mask kubelet");
    let stopped = k.run(&["upgrade", inv, "--yes"]);
    assert_eq!(code(&stopped), 1, "{}", text(&stopped));
    let said = text(&stopped);
    assert!(said.contains("h2: installing kubelet and kubectl failed") && said.contains("masked"), "{said}");
    assert!(said.contains("Upgraded before it stopped: h1") && said.contains("h2 is drained and still cordoned"), "{said}");
    assert!(!said.contains("h3: kubeadm"), "h3 was not started: {said}");
    let mid = node_versions(&set);
    assert!(mid.contains(&("h1".into(), "v1.34.2".into(), true, false)), "{mid:?}");
    assert!(mid.iter().any(|(n, _, _, cordoned)| n == "h2" && *cordoned), "{mid:?}");
    assert!(mid.contains(&("h3".into(), "v1.33.6".into(), true, false)), "{mid:?}");
    assert!(set.sh(0, "kubectl --kubeconfig /etc/kubernetes/admin.conf version").contains("Server Version: v1.34.2"));

    // Fixed, run again, and Ctrl-C once h2 is drained: the step in flight finishes, nothing
    // further starts, and h3 is not touched.
    set.sh(1, "systemctl unmask kubelet");
    let (child, rx) = k.spawn(&["upgrade", inv, "--yes"]);
    let mut seen = vec![];
    wait_for(&rx, "h2: drained", &mut seen);
    assert!(std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let (interrupted, _) = finish(child, rx, seen, std::time::Duration::from_secs(120));
    assert_eq!(code(&interrupted), 1, "{}", text(&interrupted));
    let said = text(&interrupted);
    assert!(said.contains("interrupted (Ctrl-C)") && said.contains("The upgrade stopped"), "{said}");
    assert!(!said.contains("h3: kubeadm"), "h3 was not started: {said}");
    assert!(node_versions(&set).contains(&("h3".into(), "v1.33.6".into(), true, false)));
    assert_eq!(set.sh(1, "dpkg --audit 2>&1").trim(), "", "no half-installed package on h2");

    // Run again: it resumes with h2 and h3, in order, and every node ends at 1.34.
    let resumed = k.run(&["upgrade", inv, "--yes"]);
    assert_eq!(code(&resumed), 0, "{}", text(&resumed));
    let said = text(&resumed);
    assert!(line_of(&said, "h1").contains("up to date"), "{said}");
    let pos = |s: &str| said.find(s).unwrap_or_else(|| panic!("{s:?} missing: {said}"));
    assert!(pos("h2: uncordoned, Ready at v1.34.2") < pos("h3: kubeadm v1.34.2 installed"), "one worker at a time: {said}");
    assert!(said.contains("upgraded to v1.34.2"), "{said}");
    let after = node_versions(&set);
    for h in ["h1", "h2", "h3"] {
        assert!(after.contains(&(h.into(), "v1.34.2".into(), true, false)), "{h}: {after:?}");
    }
    for node in 0..3 {
        let pkgs = package_versions(&set, node);
        assert!(pkgs.starts_with("kubeadm=1.34.2-1.1 kubectl=1.34.2-1.1 kubelet=1.34.2-1.1 kubeadm kubectl kubelet"), "node {node}: {pkgs}");
        assert!(set.sh(node, "cat /etc/apt/sources.list.d/kubernetes.list").contains("/v1.34/"), "node {node}: repository");
    }
    // The inventory and the cluster agree: nothing to plan, nothing to upgrade.
    let plan = k.run(&["plan", inv]);
    assert_eq!(code(&plan), 0, "{}", text(&plan));
    let noop = k.run(&["upgrade", inv, "--yes"]);
    assert_eq!(code(&noop), 0, "{}", text(&noop));
    assert!(stdout(&noop).contains("Nothing to upgrade"), "{}", text(&noop));
    let noop_dry = k.run(&["upgrade", inv, "--dry-run"]);
    assert_eq!(code(&noop_dry), 0, "nothing to do: exit 0: {}", text(&noop_dry));
    // Back to 1.33 is a downgrade: refused before anything changes.
    k.inventory(&set, "root", &roles, &cluster("1.33"), &repo.mirrors_yaml());
    let down = k.run(&["upgrade", inv, "--yes"]);
    assert_eq!(code(&down), 1, "{}", text(&down));
    assert!(text(&down).contains("does not downgrade"), "{}", text(&down));

    // At a terminal: a wrong name typed at the confirmation aborts, the right one goes ahead.
    let typo = k.run_tty(&["reset", inv, "--limit", "h3"], "homelb\n");
    assert_eq!(code(&typo), 1, "{}", text(&typo));
    assert!(stdout(&typo).contains("Type the cluster's name (homelab) to confirm") && stdout(&typo).contains("aborted"), "{}", text(&typo));
    assert!(exists(&set, 2, "/etc/kubernetes/kubelet.conf"));
    let typed = k.run_tty(&["reset", inv, "--limit", "h3"], "homelab\n");
    assert_eq!(code(&typed), 0, "{}", text(&typed));
    assert!(!exists(&set, 2, "/etc/kubernetes/kubelet.conf"), "h3 was reset");
    // And `kprov ssh` without a command is an interactive shell on the host.
    let shell = k.run_tty(&["ssh", inv, "h2"], "echo marker-$((6*7)) $(hostname)\nexit 3\n");
    assert_eq!(code(&shell), 3, "{}", text(&shell));
    assert!(stdout(&shell).contains(&format!("marker-42 {}", set.sh(1, "hostname").trim())), "{}", text(&shell));
}

fn line_of(text: &str, host: &str) -> String {
    text.lines().find(|l| l.trim_start().starts_with(&format!("{host} "))).unwrap_or_default().to_string()
}
