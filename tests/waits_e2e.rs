//! Long waits are visible: a host that does not come back after its reboot. The reboot says
//! what it awaits and its limit, says "still waiting" every 30 s, and its timeout names the
//! host, the wait's length, the last connection error and what to check; the apply's summary
//! carries the reason under the host's row.
//!
//! The node is a real test node; a roles overlay (`--roles`) gives it a change that needs a
//! reboot with a 35 s limit (`timeout_secs` of the reboot resource). The container's restart
//! policy is set to `no` first, so the reboot kprov asks for stops it for good: the node
//! really goes down at kprov's reboot, and never comes back.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::cli::{Kprov, code, p, text};
use support::nodes::{Flavour, NodeSet};

const ROLE: &str = r#"name: wait-test
description: "a change that needs a reboot, with a short wait (waits_e2e)"
hosts: all
tags: [waits]
resources:
  - name: marker
    line:
      path: /etc/kprov-wait-test
      line: reboot-me
      create: true
  - name: reboot
    reboot:
      after_change_of: [marker]
      reason: test marker changed
      timeout_secs: 35
"#;

#[test]
fn a_host_that_does_not_come_back_is_waited_for_visibly_and_named_with_its_reason() {
    let set = NodeSet::start(&[Flavour::Debian]);
    let k = Kprov::new();
    let roles = k.path("roles");
    std::fs::create_dir_all(&roles).unwrap();
    std::fs::write(roles.join("05-wait-test.yaml"), ROLE).unwrap();
    let inv = k.inventory(&set, "root", &[(0, "control-plane")], "  cni: flannel\n", "");
    let docker = |args: &[&str]| {
        let o = Command::new("docker").args(args).output().unwrap();
        assert!(o.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let container = set.node(0).container.clone();
    docker(&["update", "--restart", "no", &container]);
    let t0 = Instant::now();
    let out = k.run(&["--roles", p(&roles), "--no-progress", "apply", p(&inv), "--tags", "waits"]);
    let took = t0.elapsed();
    let all = text(&out);
    assert_eq!(docker(&["inspect", "-f", "{{.State.Running}}", &container]), "false", "the node went down at the reboot: {all}");
    assert_eq!(code(&out), 1, "{all}");
    assert!(all.contains("h1: waiting up to 35s for h1 to come back after the reboot"), "{all}");
    assert!(all.contains("h1: still waiting for h1 to come back after the reboot: 30s of up to 35s"), "{all}");
    assert!(!all.contains("60s of up to"), "no report after the limit: {all}");
    assert!(all.contains("h1 did not come back within 35s after the reboot; last connection error: h1 (stage: connect)"), "{all}");
    assert!(all.contains("what to check: that h1 powers up and boots"), "{all}");
    // The summary: the reason under h1's row.
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let row = stdout.find("\nh1 ").unwrap_or_else(|| panic!("no row for h1: {stdout}"));
    let reason = stdout.find("  FAILED h1/wait-test/reboot:\n      h1 did not come back within 35s").unwrap_or_else(|| panic!("{stdout}"));
    assert!(row < reason, "{stdout}");
    assert!(took < Duration::from_secs(100), "the wait ends at its limit: {took:?}");
}
