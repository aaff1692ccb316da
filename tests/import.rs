//! `kprov import kubespray`: Kubespray's two inventory forms become kprov inventories that
//! `kprov validate` accepts (insta snapshots of the generated YAML, reviewed by eye), and bad
//! inputs fail with exit 1 and a diagnostic naming the file and line.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use kprov::inventory::model::Role;
use kprov::inventory::{self, Inventory};
use predicates::prelude::*;

const FIXTURES: &str = "tests/fixtures/kubespray";

fn kprov() -> Command {
    let mut c = Command::cargo_bin("kprov").unwrap();
    c.env("NO_COLOR", "1").current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn fixture(name: &str) -> String {
    format!("{FIXTURES}/{name}")
}

fn snapshots() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURES).join("snapshots"));
    s.set_prepend_module_to_snapshot(false);
    s
}

/// Import a fixture with -o into a temporary directory, check that `kprov validate` accepts the
/// result, and return its text and the validated inventory.
fn import(name: &str) -> (String, Inventory) {
    let dir = tempfile::tempdir().unwrap();
    let out: PathBuf = dir.path().join("kprov.yaml");
    kprov()
        .args(["import", "kubespray", &fixture(name), "-o"])
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains("imported from"));
    kprov().arg("validate").arg(&out).assert().success().stdout(predicate::str::starts_with("✓ "));
    let text = std::fs::read_to_string(&out).unwrap();
    let loaded = inventory::parse(&text, "kprov.yaml");
    assert!(loaded.errors().next().is_none(), "{:?}", loaded.diagnostics);
    (text, loaded.inventory.unwrap())
}

fn roles(inv: &Inventory) -> Vec<(&str, &str, Vec<Role>)> {
    inv.hosts.iter().map(|h| (h.name.as_str(), h.address.as_str(), h.roles.clone())).collect()
}

/// The comment at the top of the output, before the first key.
fn header(text: &str) -> String {
    text.lines().take_while(|l| l.starts_with('#')).collect::<Vec<_>>().join("\n")
}

#[test]
fn the_yaml_form_imports_to_a_valid_inventory() {
    let (text, inv) = import("hosts.yaml");
    snapshots().bind(|| insta::assert_snapshot!("hosts-yaml", text));

    // kube_control_plane → control-plane, kube_node → worker, both → both; address = ansible_host.
    use Role::{ControlPlane as Cp, Worker as W};
    assert_eq!(
        roles(&inv),
        [
            ("node1", "95.54.0.12", vec![Cp]),
            ("node2", "95.54.0.13", vec![Cp]),
            ("node3", "95.54.0.14", vec![Cp, W]),
            ("node4", "95.54.0.15", vec![W]),
            ("pi-5", "95.54.0.16", vec![W]),
        ]
    );
    // Common user, key and become are the defaults; pi-5's own user and port are overrides.
    assert!(text.contains("ssh:\n  user: ubuntu\n  private_key: ~/.ssh/kubespray_ed25519\n  become: true\n"), "{text}");
    assert!(text.contains("name: pi-5, address: 95.54.0.16, roles: [worker], ssh: { user: pi, port: 2222 } }"), "{text}");
    for h in &inv.hosts[..4] {
        assert_eq!((h.ssh.user.as_str(), h.ssh.port, h.ssh.become_), ("ubuntu", 22, true), "{}", h.name);
    }
    assert_eq!((inv.hosts[4].ssh.user.as_str(), inv.hosts[4].ssh.port), ("pi", 2222));
    assert!(inv.hosts[4].ssh.identity_files.iter().any(|p| p.ends_with(".ssh/kubespray_ed25519")), "the key is inherited");

    // Three control planes: the first one's address stands in for the load balancer, with a comment.
    // (Its address inside the cluster, where the other nodes reach it.)
    assert_eq!(inv.cluster.control_plane_endpoint.as_deref(), Some("10.3.0.1:6443"));
    assert!(text.contains("load balancer or VIP"), "{text}");
    assert_eq!(inv.cluster.cni, "flannel");

    // What has no equivalent is listed at the top, with where it was set.
    // ip is the node's address inside the cluster: internal_address; access_ip, the same, is
    // imported with it. pi-5 has none: its address serves both.
    let internal: Vec<Option<&str>> = inv.hosts.iter().map(|h| h.internal_address.as_deref()).collect();
    assert_eq!(internal, [Some("10.3.0.1"), Some("10.3.0.2"), Some("10.3.0.3"), Some("10.3.0.4"), Some("95.54.0.16")]);
    assert!(text.contains("{ name: node1, address: 95.54.0.12, internal_address: 10.3.0.1, roles: [control-plane] }"), "{text}");
    assert_eq!(inv.advertise_address(), "10.3.0.1");
    let top = header(&text);
    assert!(top.contains("# not imported:"), "{top}");
    for item in ["helm_enabled (group k8s_cluster)", "ansible_python_interpreter (group all)"] {
        assert!(top.replace("\n#     ", " ").contains(item), "{item} missing from:\n{top}");
    }
    for mapped in [
        "ansible_host",
        "ip",
        "access_ip",
        "ansible_user",
        "ansible_port",
        "ansible_ssh_private_key_file",
        "ansible_become",
        "kube_network_plugin",
        "etcd",
    ] {
        assert!(!top.contains(&format!("- {mapped} ")), "{mapped} was imported, yet listed:\n{top}");
    }
}

#[test]
fn the_ini_form_imports_to_a_valid_inventory() {
    let (text, inv) = import("inventory.ini");
    snapshots().bind(|| insta::assert_snapshot!("inventory-ini", text));

    use Role::{ControlPlane as Cp, Worker as W};
    // node[2:4] is a range; node2's ip is commented out.
    assert_eq!(
        roles(&inv),
        [("node1", "95.54.0.12", vec![Cp]), ("node2", "95.54.0.13", vec![W]), ("node3", "95.54.0.14", vec![W]), ("node4", "95.54.0.15", vec![W])]
    );
    // [all:vars] is the default; node3's ansible_user=admin an override.
    assert!(text.contains("ssh:\n  user: ubuntu\n  private_key: ~/.ssh/kubespray\n  become: true\n"), "{text}");
    assert!(text.contains("{ name: node3, address: 95.54.0.14, roles: [worker], ssh: { user: admin } }"), "{text}");
    assert_eq!(inv.hosts[2].ssh.user, "admin");
    assert_eq!(inv.hosts[3].ssh.user, "ubuntu");
    // The bastion group is the jump host.
    let bastion = inv.hosts[0].ssh.bastion.clone().expect("a bastion");
    assert_eq!((bastion.address.as_str(), bastion.user.as_deref()), ("203.0.113.10", Some("jump")));
    // One control plane: no endpoint is needed.
    assert_eq!(inv.cluster.control_plane_endpoint, None);
    // The default endpoint is the control plane's address inside the cluster (its ip).
    assert_eq!(inv.endpoint(), "10.3.0.1:6443");
    // [k8s_cluster:vars] with kprov equivalents.
    assert_eq!(inv.cluster.kubernetes_patch_version.as_deref(), Some("v1.33.4"));
    assert_eq!(inv.cluster.pod_cidr.to_string(), "10.233.64.0/18");
    assert_eq!(inv.cluster.service_cidr.to_string(), "10.233.0.0/18");

    let top = header(&text).replace("\n#     ", " ");
    assert!(top.contains("# not imported:"), "{top}");
    for item in ["etcd_member_name (node1): etcd runs stacked", "kube_proxy_mode (group k8s_cluster)"] {
        assert!(top.contains(item), "{item} missing from:\n{top}");
    }
    // node1's ip is its address in the cluster; node4's is its ansible_host (nothing to add).
    assert!(text.contains("{ name: node1, address: 95.54.0.12, internal_address: 10.3.0.1, roles: [control-plane] }"), "{text}");
    assert_eq!(inv.hosts[0].internal_address.as_deref(), Some("10.3.0.1"));
    assert!(text.contains("{ name: node4, address: 95.54.0.15, roles: [worker] }"), "{text}");
    assert!(!top.contains("- ip "), "{top}");
    // node4's ip is its ansible_host: nothing is lost. node2's ip is a comment.
    assert!(!top.contains("node2") && !top.contains("node4"), "{top}");
}

#[test]
fn without_o_the_inventory_goes_to_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("kprov.yaml");
    kprov().args(["import", "kubespray", &fixture("inventory.ini"), "-o"]).arg(&out).assert().success();
    let written = std::fs::read_to_string(&out).unwrap();
    kprov().args(["import", "kubespray", &fixture("inventory.ini")]).assert().success().stdout(written);
    kprov().args(["--quiet", "import", "kubespray", &fixture("inventory.ini")]).assert().success().stderr(predicate::str::is_empty());
}

#[test]
fn a_host_in_both_groups_gets_both_roles_and_a_lone_ansible_port_stays_per_host() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("inventory.ini");
    std::fs::write(&src, "[kube_control_plane]\ncp1 ansible_host=10.0.0.1 ansible_port=2200\n\n[kube_node]\ncp1\nw1 ansible_host=10.0.0.2\n")
        .unwrap();
    let out = kprov().args(["import", "kubespray"]).arg(&src).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("{ name: cp1, address: 10.0.0.1, roles: [control-plane, worker], ssh: { port: 2200 } }"), "{text}");
    assert!(text.contains("{ name: w1, address: 10.0.0.2, roles: [worker] }"), "{text}");
    assert!(!text.contains("\nssh:"), "no common value, no defaults:\n{text}");
    assert!(text.contains("# not imported: nothing"), "{text}");
    assert!(!text.contains("control_plane_endpoint"), "{text}");
}

/// The rendered diagnostics of a bad fixture: exit 1, nothing on stdout.
fn rejected(name: &str) -> String {
    let out = kprov().args(["import", "kubespray", &fixture(name)]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{name}");
    assert!(out.stdout.is_empty(), "{name}: nothing is written on error");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn a_host_in_kube_node_not_defined_in_all_is_an_error() {
    let err = rejected("bad-undefined-host.ini");
    snapshots().bind(|| insta::assert_snapshot!("bad-undefined-host", err));
    assert!(err.contains("host `node4` is in kube_node but not defined in [all]"), "{err}");
    assert!(err.contains("tests/fixtures/kubespray/bad-undefined-host.ini:14:1"), "{err}");
    assert!(err.contains("did you mean `nod4`?"), "{err}");
    assert!(err.contains("nothing was written"), "{err}");
}

#[test]
fn no_kube_control_plane_group_is_an_error() {
    let err = rejected("bad-no-control-plane.yaml");
    snapshots().bind(|| insta::assert_snapshot!("bad-no-control-plane", err));
    assert!(err.contains("no kube_control_plane group"), "{err}");
    assert!(err.contains("tests/fixtures/kubespray/bad-no-control-plane.yaml:7:5"), "{err}");
    assert!(err.contains("did you mean `kube_controlplane`?"), "{err}");
    assert!(err.contains("rename the group"), "{err}");
}

#[test]
fn a_bad_port_is_an_error_at_its_line() {
    let err = rejected("bad-port.yaml");
    snapshots().bind(|| insta::assert_snapshot!("bad-port", err));
    assert!(err.contains("`70000` is not a port"), "{err}");
    assert!(err.contains("tests/fixtures/kubespray/bad-port.yaml:7:21"), "{err}");
    assert!(err.contains("from 1 to 65535"), "{err}");
}

#[test]
fn an_unknown_format_is_an_error() {
    let err = rejected("bad-unknown-format.txt");
    snapshots().bind(|| insta::assert_snapshot!("bad-unknown-format", err));
    assert!(err.contains("not a Kubespray inventory"), "{err}");
    assert!(err.contains("tests/fixtures/kubespray/bad-unknown-format.txt:1:1"), "{err}");
    assert!(err.contains("help:"), "{err}");
}

#[test]
fn other_bad_inputs_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str, &str)] = &[
        ("empty.ini", "", "is empty"),
        ("name.ini", "[kube_control_plane]\n___ ansible_host=10.0.0.1\n", "`___` cannot be made a node name"),
        ("token.ini", "[kube_control_plane]\nnode1 10.0.0.1\n", "`10.0.0.1` is not a variable"),
        ("quote.ini", "[all]\nnode1 ansible_host='10.0.0.1\n", "unterminated quote"),
        ("section.ini", "[kube_node:child]\nnode1\n", "did you mean [kube_node:children]?"),
        ("vars.ini", "[all:vars]\nansible_user\n", "expected name=value"),
        ("yaml.yaml", "all:\n  hosts: [node1]\n", "`hosts` of group `all` must be a mapping"),
        ("syntax.yaml", "all:\n  hosts:\n    node1: {\n", "YAML syntax error"),
        ("key.yaml", "all:\n  host:\n    node1:\n", "did you mean `hosts`?"),
        ("kprov.yaml", "hosts:\n  - { name: a, address: 10.0.0.1, roles: [control-plane] }\n", "this is a kprov inventory"),
        ("become.ini", "[kube_control_plane]\nnode1 ansible_become=maybe\n", "`maybe` is not true or false"),
        ("address.ini", "[kube_control_plane]\nnode1 ansible_host=10.0.0.1/24\n", "is not an IP address or DNS name"),
        (
            "dup.ini",
            "[kube_control_plane]\nnode1 ansible_host=10.0.0.1\n[kube_node]\nnode2 ansible_host=10.0.0.1\n",
            "address `10.0.0.1` is used by two hosts",
        ),
        ("empty-cp.ini", "[kube_control_plane]\n[kube_node]\nnode1\n", "kube_control_plane lists no hosts"),
        ("range.ini", "[kube_control_plane]\nnode[1:9999999]\n", "more than"),
        ("deep.yaml", &format!("all: {}{}", "{a: ".repeat(200), "}".repeat(200)), "nests too deep"),
    ];
    for (name, text, want) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let out = kprov().args(["import", "kubespray"]).arg(&path).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert!(err.contains(want), "{name}: expected {want:?} in:\n{err}");
        assert!(err.contains(name), "{name}: the file is named in:\n{err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
    let latin1 = dir.path().join("latin1.ini");
    std::fs::write(&latin1, b"[kube_control_plane]\nn\xe9ud1\n").unwrap();
    kprov().args(["import", "kubespray"]).arg(&latin1).assert().code(1).stderr(predicate::str::contains("is not UTF-8"));
    kprov()
        .args(["import", "kubespray", "no/such/inventory.ini"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("cannot read no/such/inventory.ini"));
}

#[test]
fn the_kubespray_inventory_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("hosts.yaml");
    let original = std::fs::read_to_string(fixture("hosts.yaml")).unwrap();
    std::fs::write(&src, &original).unwrap();
    kprov().args(["import", "kubespray"]).arg(&src).arg("-o").arg(&src).assert().code(1).stderr(predicate::str::contains("refusing to overwrite"));
    assert_eq!(std::fs::read_to_string(&src).unwrap(), original);
}

/// Import an inventory written by the test; returns (exit code, stdout, stderr).
fn import_text(name: &str, text: &str) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    let out = kprov().args(["import", "kubespray"]).arg(&path).output().unwrap();
    (out.status.code(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

/// Rendered diagnostics with miette's line wrapping undone, for matching whole messages.
fn flat(err: &str) -> String {
    err.split_whitespace().filter(|w| *w != "│").collect::<Vec<_>>().join(" ")
}

/// The imported inventory, validated by kprov's parser.
fn parsed(text: &str) -> Inventory {
    let loaded = inventory::parse(text, "kprov.yaml");
    assert!(loaded.errors().next().is_none(), "{:?}\n{text}", loaded.diagnostics);
    loaded.inventory.unwrap()
}

#[test]
fn the_old_group_names_are_read_as_todays() {
    use Role::{ControlPlane as Cp, Worker as W};
    let (text, inv) = import("old-names.yaml");
    assert_eq!(roles(&inv), [("master1", "10.0.0.11", vec![Cp]), ("worker1", "10.0.0.21", vec![W])]);
    let top = header(&text).replace("\n# ", " ");
    assert!(top.contains("Kubespray's old group names, read as today's: kube-master as kube_control_plane, kube-node as kube_node, calico-rr as calico_rr, k8s-cluster as k8s_cluster"), "{top}");
    // The route reflector group has no kprov equivalent: listed, with its host, not dropped.
    assert!(top.contains("group calico_rr (rr1): kprov has no equivalent"), "{top}");
    // k8s-cluster's vars are the cluster group's.
    assert_eq!(inv.cluster.cni, "calico");

    let (text, inv) = import("old-names.ini");
    assert_eq!(
        roles(&inv),
        [("node1", "95.54.0.12", vec![Cp]), ("node2", "95.54.0.13", vec![W]), ("node3", "95.54.0.14", vec![W]), ("node4", "95.54.0.15", vec![W])]
    );
    assert_eq!(inv.cluster.pod_cidr.to_string(), "10.233.64.0/18");
    let top = header(&text).replace("\n# ", " ");
    assert!(top.contains("kube-master as kube_control_plane, kube-node as kube_node, calico-rr as calico_rr, k8s-cluster as k8s_cluster"), "{top}");
    assert!(!top.contains("neither"), "every host has a role:\n{top}");
}

#[test]
fn old_and_new_names_of_a_group_are_one_group() {
    use Role::{ControlPlane as Cp, Worker as W};
    // Before: 3 control planes, 0 workers; node4-6 "in neither group", node2 and node3 without
    // their worker role.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("kprov.yaml");
    kprov()
        .args(["import", "kubespray", &fixture("mixed-names.ini"), "-o"])
        .arg(&out)
        .assert()
        .success()
        .stderr(predicate::str::contains("6 hosts: 3 control planes, 5 workers (two of them both) imported from"));
    let text = std::fs::read_to_string(&out).unwrap();
    let inv = parsed(&text);
    assert_eq!(
        roles(&inv),
        [
            ("node1", "95.54.0.12", vec![Cp]),
            ("node2", "95.54.0.13", vec![Cp, W]),
            ("node3", "95.54.0.14", vec![Cp, W]),
            ("node4", "95.54.0.15", vec![W]),
            ("node5", "95.54.0.16", vec![W]),
            ("node6", "95.54.0.17", vec![W]),
        ]
    );
    assert!(!text.contains("neither"), "{text}");

    let (text, inv) = import("mixed-names.yaml");
    assert_eq!(roles(&inv), [("node1", "10.0.0.11", vec![Cp, W]), ("node2", "10.0.0.12", vec![W]), ("node3", "10.0.0.13", vec![W])]);
    // kube_node (node3) is the kube-node that k8s-cluster lists: every host has its vars.
    assert_eq!(inv.cluster.cni, "flannel");
    assert!(!text.contains("kube_network_plugin"), "{text}");
    assert!(!text.contains("neither"), "{text}");
}

#[test]
fn a_leading_byte_order_mark_is_ignored_in_both_forms() {
    // [all:vars] on the first line: before, a host line, and the SSH settings were lost.
    let (code, out, err) = import_text(
        "bom.ini",
        "\u{feff}[all:vars]\nansible_user=ubuntu\nansible_ssh_private_key_file=~/.ssh/k\nansible_become=true\n\n[kube_control_plane]\nnode1 ansible_host=10.0.0.1\n",
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("ssh:\n  user: ubuntu\n  private_key: ~/.ssh/k\n  become: true\n"), "{out}");
    assert!(out.contains("# not imported: nothing"), "{out}");
    assert_eq!(parsed(&out).hosts.len(), 1);
    // A section header first: before, "lists no hosts".
    let (code, out, err) = import_text("bom2.ini", "\u{feff}[kube_control_plane]\nnode1 ansible_host=10.0.0.1\n");
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("{ name: node1, address: 10.0.0.1, roles: [control-plane] }"), "{out}");
    // A comment first: before, a host named with the mark.
    let (code, out, err) = import_text("bom3.ini", "\u{feff}# cluster A\nnode1 ansible_host=10.0.0.1\n[kube_control_plane]\nnode1\n");
    assert_eq!(code, Some(0), "{err}");
    assert!(!out.contains('\u{feff}') && out.contains("{ name: node1, address: 10.0.0.1"), "{out}");
    // YAML.
    let (code, out, err) = import_text(
        "bom.yaml",
        "\u{feff}all:\n  vars:\n    ansible_user: ubuntu\n  children:\n    kube_control_plane:\n      hosts:\n        node1: { ansible_host: 10.0.0.1 }\n",
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("ssh:\n  user: ubuntu\n"), "{out}");
    // A diagnostic's line and column count from after the mark.
    let (code, _, err) = import_text("bom4.ini", "\u{feff}[kube_control_plane]\nnode1 ansible_become=maybe\n");
    assert_eq!(code, Some(1));
    assert!(err.contains("bom4.ini:2:22"), "{err}");
}

#[test]
fn group_cycles_are_errors_naming_the_loop() {
    let cp = "[kube_control_plane]\nnode1 ansible_host=10.0.0.1\n";
    let (code, out, err) = import_text("cycle.ini", &format!("{cp}[a:children]\nb\n[b:children]\na\n"));
    assert_eq!(code, Some(1), "{err}");
    assert!(out.is_empty());
    assert!(flat(&err).contains("Adding group `a` as child to `b` creates a recursive dependency loop: a → b → a"), "{err}");
    assert!(err.contains("cycle.ini:6:1"), "{err}");
    assert!(err.contains("`a` already contains `b`"), "both edges are shown:\n{err}");

    let (code, _, err) = import_text("self.ini", &format!("{cp}[a:children]\na\n"));
    assert_eq!(code, Some(1), "{err}");
    assert!(flat(&err).contains("can't add group `a` to itself"), "{err}");
    assert!(err.contains("self.ini:4:1"), "{err}");

    // A longer loop, through an old name: kube-node is kube_node.
    let (code, _, err) = import_text("long.ini", &format!("{cp}[kube_node:children]\nx\n[x:children]\nkube-node\n"));
    assert_eq!(code, Some(1), "{err}");
    assert!(flat(&err).contains("Adding group `kube_node` as child to `x` creates a recursive dependency loop: kube_node → x → kube_node"), "{err}");

    // YAML: kube_control_plane ↔ kube_node (before: node2, a worker, became a control plane).
    let yaml = "all:\n  hosts:\n    node1: { ansible_host: 10.0.0.1 }\n    node2: { ansible_host: 10.0.0.2 }\n  children:\n    kube_control_plane:\n      hosts: { node1: }\n      children: { kube_node: }\n    kube_node:\n      hosts: { node2: }\n      children:\n        kube_control_plane:\n";
    let (code, out, err) = import_text("loop.yaml", yaml);
    assert_eq!(code, Some(1), "{err}");
    assert!(out.is_empty());
    assert!(flat(&err).contains("Adding group `kube_control_plane` as child to `kube_node` creates a recursive dependency loop: kube_control_plane → kube_node → kube_control_plane"), "{err}");
    assert!(err.contains("loop.yaml:12:9"), "{err}");
}

#[test]
fn a_host_given_two_addresses_gets_a_warning_naming_both_and_the_winner() {
    let text = "[kube_control_plane]\nnode1 ansible_host=10.0.0.1\n\n[kube_node]\nnode1 ansible_host=10.0.0.2\nnode2 ansible_host=10.0.0.3\n";
    let (code, out, err) = import_text("two.ini", text);
    assert_eq!(code, Some(0), "{err}");
    // Ansible reads top to bottom; the later host variable wins.
    assert!(out.contains("{ name: node1, address: 10.0.0.2, roles: [control-plane, worker] }"), "{out}");
    assert!(flat(&err).contains("host `node1` has two values of ansible_host: `10.0.0.1` in [kube_control_plane] and `10.0.0.2` in [kube_node]; Ansible uses the later one, `10.0.0.2`"), "{err}");
    assert!(err.contains("two.ini:2:20"), "the first place:\n{err}");
    assert!(err.contains("(overridden)") && err.contains("(used)"), "{err}");
    // --quiet hides warnings only.
    let (_dir, path) = dir_file("two.ini", text);
    kprov().args(["--quiet", "import", "kubespray"]).arg(&path).assert().success().stderr(predicate::str::is_empty());

    let yaml = "all:\n  children:\n    kube_control_plane:\n      hosts:\n        node1: { ansible_host: 10.0.0.1 }\n    kube_node:\n      hosts:\n        node1: { ansible_host: 10.0.0.9 }\n";
    let (code, out, err) = import_text("two.yaml", yaml);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("address: 10.0.0.9"), "{out}");
    assert!(flat(&err).contains("`10.0.0.1` in kube_control_plane: hosts: and `10.0.0.9` in kube_node: hosts:"), "{err}");
    assert!(err.contains("two.yaml:5:32") && err.contains(" 8 │         node1: { ansible_host: 10.0.0.9 }"), "both places:\n{err}");
    // The same value twice is no conflict.
    let (code, _, err) = import_text("same.ini", "[kube_control_plane]\nnode1 ansible_host=10.0.0.1\n[kube_node]\nnode1 ansible_host=10.0.0.1\n");
    assert_eq!(code, Some(0));
    assert!(!err.contains("warning") && !err.contains("two values"), "{err}");
}

/// A file in a temporary directory (kept alive by the returned guard).
fn dir_file(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn too_many_hosts_is_one_error_once() {
    let mut text = String::from("[kube_control_plane]\n");
    for i in 0..10_000 {
        text.push_str(&format!("node{i} ansible_host=10.{}.{}.{}\n", i / 65536, (i / 256) % 256, i % 256));
    }
    let (code, out, err) = import_text("big.ini", &text);
    assert_eq!(code, Some(1));
    assert!(out.is_empty());
    assert_eq!(err.matches("more than 5000 hosts").count(), 1, "{}", &err[..err.len().min(3000)]);
    assert!(err.lines().count() < 30, "{} lines on stderr", err.lines().count());
    assert!(err.contains("big.ini:5002:1"), "the first host over the limit:\n{err}");
}

#[test]
fn the_summary_counts_roles() {
    let (code, _, err) = import_text(
        "three.ini",
        "[kube_control_plane]\nn1 ansible_host=10.0.0.1\nn2 ansible_host=10.0.0.2\nn3 ansible_host=10.0.0.3\n[kube_node:children]\nkube_control_plane\n",
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains(": 3 hosts: 3 control planes, 3 workers (all three both) imported from"), "{err}");
    let (_, _, err) = import_text("one.ini", "[kube_control_plane]\nn1 ansible_host=10.0.0.1\n[kube_node]\nn1\nn2 ansible_host=10.0.0.2\n");
    assert!(err.contains(": 2 hosts: 1 control plane, 2 workers (one of them both) imported from"), "{err}");
    let (_, _, err) = import_text("plain.ini", "[kube_control_plane]\nn1 ansible_host=10.0.0.1\n[kube_node]\nn2 ansible_host=10.0.0.2\n");
    assert!(err.contains(": 2 hosts: 1 control plane, 1 worker imported from"), "{err}");
}

#[test]
fn ip_becomes_internal_address_and_access_ip_is_imported_only_when_the_same() {
    // Public SSH addresses, a private cluster network (finding 7: ip was dropped, exit 0).
    let text = "[all]\ncp1 ansible_host=203.0.113.11 ip=10.0.0.11\nw1 ansible_host=203.0.113.21 ip=10.0.0.21 access_ip=10.0.0.21\nw2 ansible_host=w2.example.net ip=10.0.0.22 access_ip=198.51.100.22\nw3 ansible_host=w3.example.net\n[kube_control_plane]\ncp1\n[kube_node]\nw1\nw2\nw3\n";
    let (code, out, err) = import_text("net.ini", text);
    assert_eq!(code, Some(0), "{err}");
    let inv = parsed(&out);
    let got: Vec<(&str, &str, Option<&str>)> =
        inv.hosts.iter().map(|h| (h.name.as_str(), h.address.as_str(), h.internal_address.as_deref())).collect();
    assert_eq!(
        got,
        [
            ("cp1", "203.0.113.11", Some("10.0.0.11")),
            ("w1", "203.0.113.21", Some("10.0.0.21")),
            ("w2", "w2.example.net", Some("10.0.0.22")),
            ("w3", "w3.example.net", None),
        ]
    );
    assert_eq!(inv.endpoint(), "10.0.0.11:6443");
    // An access_ip that is not the node's own ip (NAT) has no kprov equivalent: listed.
    let top = header(&out).replace("\n#     ", " ");
    assert!(top.contains("access_ip (w2): Kubespray's address for other hosts to reach this node by"), "{top}");
    assert!(!top.contains("access_ip (w1") && !top.contains("- ip "), "{top}");

    let bad: &[(&str, &str, &str, &str)] = &[
        (
            "dns.ini",
            "[kube_control_plane]\ncp1 ansible_host=cp1.example.net\n",
            "control plane `cp1` is reached by the name `cp1.example.net` and has no ip",
            "dns.ini:2:18",
        ),
        ("badip.ini", "[kube_control_plane]\ncp1 ansible_host=10.0.0.1 ip=10.0.0.300\n", "ip `10.0.0.300` is not an IP address", "badip.ini:2:30"),
        (
            "dupip.ini",
            "[kube_control_plane]\ncp1 ansible_host=203.0.113.1 ip=10.0.0.1\n[kube_node]\nw1 ansible_host=203.0.113.2 ip=10.0.0.1\n",
            "cluster address `10.0.0.1` is used by two hosts",
            "dupip.ini:4:32",
        ),
    ];
    for (name, text, want, at) in bad {
        let (code, out, err) = import_text(name, text);
        assert_eq!(code, Some(1), "{name}: {err}");
        assert!(out.is_empty(), "{name}");
        assert!(flat(&err).contains(want), "{name}: {want:?} in\n{err}");
        assert!(err.contains(at), "{name}: {at} in\n{err}");
        assert!(!err.contains("This is a bug"), "{name}: the importer's own error, not the output check:\n{err}");
    }
}
