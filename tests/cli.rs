//! The kprov binary: commands, exit codes and output formats, without any host.

use assert_cmd::Command;
use predicates::prelude::*;

fn kprov() -> Command {
    let mut c = Command::cargo_bin("kprov").unwrap();
    c.env("NO_COLOR", "1").current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

#[test]
fn validate_accepts_every_example() {
    for f in ["rpi-homelab", "ubuntu-ha", "mixed-arch"] {
        kprov()
            .args(["validate", &format!("inventory-examples/{f}.yaml")])
            .assert()
            .success()
            .stdout(predicate::str::starts_with("✓ inventory-examples/"));
    }
}

#[test]
fn validate_rejects_a_bad_inventory_with_exit_1_and_every_problem() {
    kprov()
        .args(["validate", "tests/bad-inventories/many-problems.yaml"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("host name `k8s-01` is used twice"))
        .stderr(predicate::str::contains("unsupported CNI `weav`"))
        .stderr(predicate::str::contains("many-problems.yaml:8:13"))
        .stderr(predicate::str::contains("nothing was done"));
}

#[test]
fn warnings_do_not_fail_validation() {
    kprov().args(["validate", "tests/bad-inventories/even-control-planes.yaml"]).assert().success().stderr(predicate::str::contains("even number"));
}

#[test]
fn validate_json_format() {
    let out = kprov().args(["validate", "--format", "json", "tests/bad-inventories/unknown-key.yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    let d = &v["diagnostics"][0];
    assert_eq!((d["line"].as_u64(), d["column"].as_u64()), (Some(2), Some(5)));
    assert!(d["help"].as_str().unwrap().contains("did you mean `name`"));
}

#[test]
fn a_missing_file_is_a_clear_error() {
    kprov().args(["validate", "no/such/inventory.yaml"]).assert().code(1).stderr(predicate::str::contains("cannot read no/such/inventory.yaml"));
}

#[test]
fn schema_describes_the_inventory() {
    let out = kprov().arg("schema").output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let props = v["properties"].as_object().unwrap();
    for k in ["cluster", "ssh", "hosts", "mirrors"] {
        assert!(props.contains_key(k), "{k}");
    }
    let text = serde_json::to_string(&v).unwrap();
    assert!(text.contains("control-plane") && text.contains("accept-new"));
    assert!(!text.contains("become_password\""), "rejected keys are not advertised");
}

#[test]
fn completions_for_shells() {
    for shell in ["bash", "zsh", "fish"] {
        kprov().args(["completions", shell]).assert().success().stdout(predicate::str::contains("kprov"));
    }
}

#[test]
fn usage_errors_exit_1_not_2() {
    // 2 means "plan has changes"; clap's usage errors must not look like it.
    kprov().arg("frobnicate").assert().code(1);
    kprov().args(["plan"]).assert().code(1);
}

#[test]
fn plan_against_an_unreachable_host_fails_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inv.yaml");
    std::fs::write(
        &inv,
        "ssh: { user: root, connect_timeout: 2s, agent: false, private_key: /nonexistent/key }\nhosts:\n  - { name: gone, address: 127.0.0.1, roles: [control-plane] }\n",
    )
    .unwrap();
    // Port 22 on loopback: nothing listens in the test environment, or it refuses our key;
    // either way the plan is incomplete and says which host.
    let out = kprov().env("HOME", dir.path()).args(["plan", inv.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("gone (127.0.0.1)"), "{stdout}");
    assert!(stdout.contains("incomplete"), "{stdout}");
}

#[test]
fn limit_must_name_a_host() {
    kprov()
        .args(["plan", "inventory-examples/rpi-homelab.yaml", "--limit", "k8s-05"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--limit names k8s-05").and(predicate::str::contains("did you mean k8s-04")));
}
