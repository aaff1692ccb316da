//! `kprov plan --facts FILE` through the binary, without any host: the inventory names
//! loopback addresses nothing listens on for kprov, so a plan that tried to connect would
//! report the hosts unreachable (exit 1) instead of planning them.

use assert_cmd::Command;

fn kprov(dir: &std::path::Path) -> Command {
    let mut c = Command::cargo_bin("kprov").unwrap();
    c.env("NO_COLOR", "1").env("HOME", dir).env_remove("SSH_AUTH_SOCK").current_dir(dir);
    c
}

const INVENTORY: &str = "cluster:\n  cni: flannel\nssh:\n  user: root\n  port: 1\n  agent: false\n  connect_timeout: 2s\nhosts:\n  - { name: cp, address: 127.0.0.61, roles: [control-plane] }\n  - { name: w1, address: 127.0.0.62, roles: [worker] }\n";

fn setup(snapshot: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inventory.yaml"), INVENTORY).unwrap();
    std::fs::write(dir.path().join("inventory.facts.json"), snapshot).unwrap();
    dir
}

fn empty_snapshot() -> String {
    format!(
        "{{\"format_version\": 1, \"kprov_version\": \"{}\", \"recorded_at\": \"2026-12-01T20:00:00Z\", \"inventory\": \"inventory.yaml\", \"inventory_sha256\": \"\", \"hosts\": []}}",
        env!("CARGO_PKG_VERSION")
    )
}

#[test]
fn hosts_the_snapshot_does_not_know_are_planned_from_empty_without_connecting() {
    let dir = setup(&empty_snapshot());
    let started = std::time::Instant::now();
    let out = kprov(dir.path()).args(["plan", "inventory.yaml", "--facts", "inventory.facts.json"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(started.elapsed() < std::time::Duration::from_secs(2), "no connection was tried");
    assert!(
        stdout.starts_with(&format!(
            "Planned from facts recorded at 2026-12-01T20:00:00Z by kprov {} (inventory.facts.json); no host was contacted.\n",
            env!("CARGO_PKG_VERSION")
        )),
        "{stdout}"
    );
    for host in ["cp", "w1"] {
        assert!(stdout.contains(&format!("  {host}: not in the snapshot, planned as an empty host (nothing installed, OS unknown)\n")), "{stdout}");
    }
    assert!(stdout.contains("The inventory or the roles changed since the facts were recorded."), "{stdout}");
    // The whole plan of a new cluster: packages, kubeadm init, the worker's join.
    for step in ["kubernetes-packages/packages", "control-plane-init/kubeadm-init", "worker-join/kubeadm-join", "kernel/sysctl"] {
        assert!(stdout.contains(&format!(" {step}: ")), "{step}: {stdout}");
    }
    assert!(!stdout.contains("unreachable") && !stdout.contains("preflight failed"), "{stdout}");

    // The same as JSON and as a saved plan: the origin is recorded, no fingerprint for hosts
    // the snapshot did not know.
    let out = kprov(dir.path()).args(["plan", "inventory.yaml", "--facts", "inventory.facts.json", "--json", "-o", "plan.json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let plan: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.path().join("plan.json")).unwrap()).unwrap();
    assert_eq!(plan, serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap());
    assert_eq!(plan["from_facts"]["recorded_at"], "2026-12-01T20:00:00Z");
    assert_eq!(plan["from_facts"]["hosts"][0]["recorded_at"], serde_json::Value::Null);
    assert!(plan["hosts"].as_array().unwrap().iter().all(|h| h["facts_fingerprint"].is_null()), "{plan}");

    let out = kprov(dir.path()).args(["plan", "inventory.yaml", "--facts", "inventory.facts.json", "--markdown"]).output().unwrap();
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(md.contains("_Planned from facts recorded at 2026-12-01T20:00:00Z by kprov"), "{md}");
    assert!(
        md.contains("| Status | Facts |") && md.contains("not in the snapshot, planned as an empty host (nothing installed, OS unknown) |"),
        "{md}"
    );
}

#[test]
fn a_snapshot_kprov_cannot_read_is_a_clear_error() {
    let dir = setup(&empty_snapshot().replace("\"format_version\": 1", "\"format_version\": 99"));
    let out = kprov(dir.path()).args(["plan", "inventory.yaml", "--facts", "inventory.facts.json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is a facts snapshot in format 99; this kprov reads format 1"), "{err}");
    assert!(err.contains("kprov facts --save"), "{err}");

    let out = kprov(dir.path()).args(["plan", "inventory.yaml", "--facts", "missing.json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the facts snapshot missing.json"), "{}", String::from_utf8_lossy(&out.stderr));

    // An inventory given as the snapshot.
    let out = kprov(dir.path()).args(["plan", "inventory.yaml", "--facts", "inventory.yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("inventory.yaml is not a kprov facts snapshot"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
