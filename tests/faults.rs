//! Faults on real nodes: a host down before the run, a host paused mid-apply, a network cut
//! mid-apply, Ctrl-C during apply, and a hostile inventory value. After each, a plain re-run
//! converges every host, with no half-written file and no broken package left behind.
//!
//! A role overlay adds one slow step (a guarded command that sleeps, then leaves a marker) so
//! that a fault can land while commands are in flight.

mod support;

use std::process::Command;
use std::time::Duration;

use support::apt_repo::AptRepo;
use support::cli::{Kprov, code, finish, p, text, wait_for};
use support::nodes::{Flavour, NodeSet};

const SLOW_ROLE: &str = "name: slow\n\
description: A slow step for the fault tests\n\
hosts: all\n\
after: [kernel]\n\
tags: [prepare]\n\
resources:\n  - name: slow-step\n    command:\n      run: sleep 8; touch /var/tmp/kprov-slow-done\n      description: a slow step (8 s)\n      creates: /var/tmp/kprov-slow-done\n";

fn slow_roles(k: &Kprov) -> String {
    let dir = k.path("roles");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("99-slow.yaml"), SLOW_ROLE).unwrap();
    p(&dir).to_string()
}

/// What a converged host looks like, and that nothing was left half-done.
fn assert_converged(set: &NodeSet, i: usize) {
    assert_eq!(set.sh(i, "cat /proc/sys/net/ipv4/ip_forward").trim(), "1", "node {i}");
    assert_eq!(set.sh(i, "cat /etc/modules-load.d/k8s.conf"), "# Managed by kprov.\noverlay\nbr_netfilter\n", "node {i}");
    assert!(set.exec(i, "test -f /var/tmp/kprov-slow-done").status.success(), "node {i}: slow step done");
    assert_clean(set, i);
}

/// No temp file of an atomic write left behind, and dpkg has nothing half-configured.
fn assert_clean(set: &NodeSet, i: usize) {
    let leftovers = set.sh(i, "find /etc -name '.kprov.*' 2>/dev/null; dpkg --audit 2>&1");
    assert_eq!(leftovers.trim(), "", "node {i}: leftovers or broken packages");
}

/// The numbers of a host's row in the apply summary: ok, changed, failed, blocked, not run.
fn summary_row(all: &str, host: &str) -> Vec<usize> {
    let line = all
        .lines()
        .rev()
        .find(|l| l.starts_with(&format!("{host} ")) && !l.contains('('))
        .unwrap_or_else(|| panic!("{host} is not in the summary:\n{all}"));
    let row: Vec<usize> = line.split_whitespace().filter_map(|w| w.parse().ok()).take(5).collect();
    assert_eq!(row.len(), 5, "not a summary row: {line}");
    row
}

fn reset_slow(set: &NodeSet, n: usize) {
    for i in 0..n {
        set.sh(i, "rm -f /var/tmp/kprov-slow-done; sysctl -qw net.ipv4.ip_forward=0");
    }
}

/// Start an apply, hit `victim` with `fault` once its slow batch runs, heal it after the run.
fn fault_mid_apply(set: &NodeSet, k: &Kprov, apply_args: &[&str], victim: usize, fault: impl Fn(&NodeSet), heal: impl Fn(&NodeSet)) {
    reset_slow(set, 3);
    let name = format!("h{}", victim + 1);
    let (child, rx) = k.spawn(apply_args);
    let mut seen = vec![];
    wait_for(&rx, &format!("{name}: running"), &mut seen);
    std::thread::sleep(Duration::from_secs(1));
    fault(set);
    let (out, took) = finish(child, rx, seen, Duration::from_secs(90));
    heal(set);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(took < Duration::from_secs(60), "ended {took:?} after the fault");
    let all = text(&out);
    let row = summary_row(&all, &name);
    assert!(row[2] + row[3] + row[4] > 0, "{name} is reported failed, blocked or not run: {row:?}\n{all}");
    assert!(all.contains("Apply finished with failures"), "{all}");
    for i in (0..3).filter(|&i| i != victim) {
        assert_eq!(summary_row(&all, &format!("h{}", i + 1))[2..5], [0, 0, 0], "{all}");
        assert_converged(set, i);
    }
    let out = k.run(apply_args);
    assert_eq!(code(&out), 0, "{}", text(&out));
    for i in 0..3 {
        assert_converged(set, i);
    }
}

#[test]
fn faults_mid_run_end_cleanly_and_a_re_run_converges() {
    let set = NodeSet::start(&[Flavour::Debian, Flavour::Debian, Flavour::Debian]);
    let k = Kprov::new();
    let roles = slow_roles(&k);
    let inv = k.inventory(&set, "root", &[(0, "control-plane"), (1, "worker"), (2, "worker")], "  cni: flannel\n", "");
    let inv = p(&inv).to_string();
    let apply_args = ["apply", inv.as_str(), "--tags", "prepare", "--roles", roles.as_str()];

    // 1. A host down before the run. With --max-fail 0 nothing starts anywhere; with --limit
    //    the operator finishes the run on the healthy hosts; a plain run converges the others,
    //    names the host down and exits non-zero.
    set.stop(2);
    let mut strict = apply_args.to_vec();
    strict.extend(["--max-fail", "0"]);
    let out = k.run(&strict);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let all = text(&out);
    for h in ["h1", "h2"] {
        let row = summary_row(&all, h);
        assert_eq!(row[1], 0, "{h} changed nothing: {all}");
        assert!(row[4] > 0, "{h} has steps not run: {all}");
    }
    let mut limited = apply_args.to_vec();
    limited.extend(["--limit", "h1,h2"]);
    let out = k.run(&limited);
    assert_eq!(code(&out), 0, "{}", text(&out));
    for i in 0..2 {
        assert_converged(&set, i);
        set.sh(i, "rm -f /var/tmp/kprov-slow-done");
    }
    let out = k.run(&apply_args);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("h3 (unreachable)"), "{}", text(&out));
    for i in 0..2 {
        assert_converged(&set, i);
    }
    set.start_again(2);
    let out = k.run(&apply_args);
    assert_eq!(code(&out), 0, "{}", text(&out));
    for i in 0..3 {
        assert_converged(&set, i);
    }

    // 2. A host paused while its slow step runs, and 3. a network cut (docker network
    //    disconnect) of another: each time the run ends within the keepalive limit (3 × 5 s),
    //    the summary names that host failed and the others done, and a re-run converges.
    fault_mid_apply(&set, &k, &apply_args, 1, |s| s.pause(1), |s| s.unpause(1));
    fault_mid_apply(&set, &k, &apply_args, 2, |s| s.disconnect(2), |s| s.connect(2));

    // 4. Ctrl-C while the slow steps run: the commands in flight finish, nothing new starts,
    //    the summary says the run was interrupted, and the exit is non-zero.
    reset_slow(&set, 3);
    let (child, rx) = k.spawn(&apply_args);
    let mut seen = vec![];
    wait_for(&rx, "running", &mut seen);
    std::thread::sleep(Duration::from_secs(1));
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let (out, _) = finish(child, rx, seen, Duration::from_secs(60));
    assert_ne!(code(&out), 0, "{}", text(&out));
    let all = text(&out);
    assert!(all.contains("Interrupted"), "{all}");
    assert!(all.contains("run apply again to finish"), "{all}");
    for i in 0..3 {
        assert_clean(&set, i);
    }
    let out = k.run(&apply_args);
    assert_eq!(code(&out), 0, "{}", text(&out));
    for i in 0..3 {
        assert_converged(&set, i);
    }
    let again = k.run(&["plan", inv.as_str(), "--tags", "prepare", "--roles", roles.as_str()]);
    assert_eq!(code(&again), 0, "{}", text(&again));
}

#[test]
fn hostile_inventory_values_create_nothing_on_the_node() {
    let set = NodeSet::start(&[Flavour::Debian]);
    let repo = AptRepo::serve(set.gateway);
    let k = Kprov::new();
    // Every URL points at the test's own repository server, so whatever is fetched stays on
    // the test network; the rest of each value is shell syntax that must stay inert.
    // No whitespace: a URL with a space or a line break is refused before anything runs
    // (checked below); `${IFS}` is the shell's own way to split words without one.
    let evil = "x$(touch${IFS}/tmp/pwned1)`touch${IFS}/tmp/pwned2`';touch${IFS}/tmp/pwned3;'\"$(touch${IFS}/tmp/pwned4)\"";
    let tail = format!(
        "mirrors:\n  kubernetes_apt: '{u}/{e}/{{minor}}/'\n  kubernetes_apt_key_fingerprint: {f}\n  docker_apt: '{u}/{e}'\n  docker_apt_key_fingerprint: {f}\n",
        u = repo.url,
        f = repo.fingerprint,
        e = evil.replace('\'', "''")
    );
    let cluster = format!(
        "  cni: flannel\n  cni_manifest: '{}/{}'\n  cni_manifest_sha256: {}\n",
        repo.url,
        evil.replace('\'', "''"),
        repo.manifest_sha256("kube-flannel.yml")
    );
    let inv = k.inventory(&set, "root", &[(0, "control-plane")], &cluster, &tail);
    let validate = k.run(&["validate", p(&inv)]);
    assert_eq!(code(&validate), 0, "the values are valid URLs: {}", text(&validate));
    // The same values with spaces are refused by validation, naming each key.
    let spaced = std::fs::read_to_string(&inv).unwrap().replace("${IFS}", " ");
    let spaced_inv = inv.with_file_name("spaced.yaml");
    std::fs::write(&spaced_inv, spaced).unwrap();
    let refused = k.run(&["validate", p(&spaced_inv)]);
    assert_eq!(code(&refused), 1, "{}", text(&refused));
    for key in ["kubernetes_apt", "docker_apt", "cni_manifest"] {
        assert!(text(&refused).contains(&format!("{key} `")), "{key}: {}", text(&refused));
    }
    let plan = k.run(&["plan", p(&inv)]);
    assert_ne!(code(&plan), 1, "{}", text(&plan));
    let apply = k.run(&["apply", p(&inv)]);
    // The repository does not exist at that path: the apply fails, cleanly and by name.
    assert_eq!(code(&apply), 1, "{}", text(&apply));
    assert!(text(&apply).contains("FAILED"), "{}", text(&apply));
    let pwned = set.sh(0, "ls /tmp/pwned* 2>/dev/null || true");
    assert_eq!(pwned.trim(), "", "a hostile value ran on the node");
    assert_clean(&set, 0);
}

#[test]
fn the_sudo_password_never_reaches_any_output() {
    let set = NodeSet::start(&[Flavour::Debian]);
    let k = Kprov::new();
    let inv = k.inventory(&set, "ops", &[(0, "control-plane")], "  cni: flannel\n", "");
    let text_inv = std::fs::read_to_string(&inv).unwrap().replace("  agent: false\n", "  agent: false\n  become_password_env: KPROV_TEST_SUDO\n");
    std::fs::write(&inv, text_inv).unwrap();
    let pw = support::nodes::SUDO_PASSWORD;
    let env = [("KPROV_TEST_SUDO", pw)];
    let mut outputs = vec![];
    for args in [
        vec!["plan", p(&inv), "--tags", "prepare", "-vv"],
        vec!["plan", p(&inv), "--tags", "prepare", "--json"],
        vec!["apply", p(&inv), "--tags", "prepare", "-vv"],
        vec!["apply", p(&inv), "--tags", "prepare", "--output", "json", "-vv"],
    ] {
        let o = k.run_env(&args, &env);
        assert_ne!(code(&o), 1, "{}", text(&o));
        outputs.push(text(&o));
    }
    assert_eq!(set.sh(0, "cat /proc/sys/net/ipv4/ip_forward").trim(), "1", "applied through sudo");
    // A wrong password fails by name, without echoing either password.
    let o = k.run_env(&["plan", p(&inv), "--tags", "prepare", "-vv"], &[("KPROV_TEST_SUDO", "wrong-pw-1234")]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    assert!(text(&o).contains("h1"), "{}", text(&o));
    assert!(!text(&o).contains("wrong-pw-1234"), "{}", text(&o));
    outputs.push(text(&o));
    for out in &outputs {
        assert!(!out.contains(pw), "the sudo password reached an output:\n{out}");
    }
}
