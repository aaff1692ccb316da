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
    assert_eq!(inv.cluster.control_plane_endpoint.as_deref(), Some("95.54.0.12:6443"));
    assert!(text.contains("load balancer or VIP"), "{text}");
    assert_eq!(inv.cluster.cni, "flannel");

    // What has no equivalent is listed at the top, with where it was set.
    let top = header(&text);
    assert!(top.contains("# not imported:"), "{top}");
    for item in [
        "ip (node1, node2, node3, node4): kprov uses one address per host",
        "access_ip (node1, node2, node3, node4)",
        "helm_enabled (group k8s_cluster)",
        "ansible_python_interpreter (group all)",
    ] {
        assert!(top.replace("\n#     ", " ").contains(item), "{item} missing from:\n{top}");
    }
    for mapped in ["ansible_host", "ansible_user", "ansible_port", "ansible_ssh_private_key_file", "ansible_become", "kube_network_plugin", "etcd"] {
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
    assert_eq!(inv.endpoint(), "95.54.0.12:6443");
    // [k8s_cluster:vars] with kprov equivalents.
    assert_eq!(inv.cluster.kubernetes_patch_version.as_deref(), Some("v1.33.4"));
    assert_eq!(inv.cluster.pod_cidr.to_string(), "10.233.64.0/18");
    assert_eq!(inv.cluster.service_cidr.to_string(), "10.233.0.0/18");

    let top = header(&text).replace("\n#     ", " ");
    assert!(top.contains("# not imported:"), "{top}");
    for item in ["ip (node1): kprov uses one address per host", "etcd_member_name (node1): etcd runs stacked", "kube_proxy_mode (group k8s_cluster)"]
    {
        assert!(top.contains(item), "{item} missing from:\n{top}");
    }
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
    assert!(err.contains("rename the groups"), "{err}");
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
