//! The engine end to end through the kprov binary on real nodes: host preparation (swap,
//! kernel modules, sysctl) applied, re-applied with nothing to do, drift made by hand reported
//! and fixed, and a saved plan refused once a host changed.

mod support;

use support::cli::{Kprov, code, p, text};
use support::nodes::{Flavour, NodeSet};

#[test]
fn converge_noop_drift_and_saved_plans() {
    let set = NodeSet::start(&[Flavour::Debian, Flavour::Debian]);
    // Swap state a fresh host would have: a swap line in fstab (the container cannot swapon).
    for i in 0..2 {
        set.sh(i, "echo '/swap.img none swap sw 0 0' >> /etc/fstab; sysctl -w net.ipv4.ip_forward=0");
    }
    let k = Kprov::new();
    let inv = k.inventory(&set, "root", &[(0, "control-plane"), (1, "worker")], "  cni: flannel\n", "");
    let inv = p(&inv);

    // Plan: changes pending → exit 2, and it shows the sysctl diff.
    let plan = k.run(&["plan", inv, "--tags", "prepare"]);
    assert_eq!(code(&plan), 2, "{}", text(&plan));
    let out = String::from_utf8_lossy(&plan.stdout).to_string();
    assert!(out.contains("+net.ipv4.ip_forward                 = 1"), "{out}");
    assert!(out.contains("# /swap.img none swap sw 0 0"), "{out}");

    let apply = k.run(&["apply", inv, "--tags", "prepare"]);
    assert_eq!(code(&apply), 0, "{}", text(&apply));
    for i in 0..2 {
        assert_eq!(set.sh(i, "cat /proc/sys/net/ipv4/ip_forward").trim(), "1");
        assert!(set.sh(i, "cat /etc/sysctl.d/k8s.conf").contains("net.ipv4.ip_forward                 = 1"));
        assert_eq!(set.sh(i, "cat /etc/modules-load.d/k8s.conf"), "# Managed by kprov.\noverlay\nbr_netfilter\n");
        assert!(set.sh(i, "cat /etc/fstab").contains("# /swap.img none swap sw 0 0"));
        assert_eq!(set.sh(i, "ls -A /etc/sysctl.d | grep -c kprov || true").trim(), "0", "no temp file left behind");
    }

    // Second run: nothing to do, one connection and one command per host.
    let before: Vec<usize> = (0..2).map(|i| set.accepted_connections(i)).collect();
    let again = k.run(&["apply", inv, "--tags", "prepare"]);
    assert_eq!(code(&again), 0, "{}", text(&again));
    assert!(String::from_utf8_lossy(&again.stdout).contains("No changes."), "{}", text(&again));
    for (i, b) in before.iter().enumerate() {
        assert_eq!(set.accepted_connections(i) - b, 1);
    }
    let plan = k.run(&["plan", inv, "--tags", "prepare"]);
    assert_eq!(code(&plan), 0, "{}", text(&plan));

    // Drift by hand: a sysctl reset at runtime on one host, the modules file edited on the other.
    set.sh(0, "sysctl -w net.ipv4.ip_forward=0");
    set.sh(1, "echo overlay > /etc/modules-load.d/k8s.conf");
    let plan = k.run(&["plan", inv, "--tags", "prepare"]);
    assert_eq!(code(&plan), 2, "{}", text(&plan));
    let out = String::from_utf8_lossy(&plan.stdout).to_string();
    assert!(out.contains("net.ipv4.ip_forward: 0 → 1"), "{out}");
    assert!(out.contains("+br_netfilter"), "{out}");

    // A saved plan applies while nothing changed...
    let saved = k.path("plan.json");
    let plan = k.run(&["plan", inv, "--tags", "prepare", "-o", p(&saved)]);
    assert_eq!(code(&plan), 2, "{}", text(&plan));
    // ...but not after another change on a host.
    set.sh(1, "echo '# hand edit' >> /etc/sysctl.d/k8s.conf");
    let refused = k.run(&["apply", p(&saved)]);
    assert_eq!(code(&refused), 1, "{}", text(&refused));
    let err = String::from_utf8_lossy(&refused.stderr).to_string();
    assert!(err.contains("stale") && err.contains("host h2 changed"), "{err}");
    assert_eq!(set.sh(0, "cat /proc/sys/net/ipv4/ip_forward").trim(), "0", "a refused plan changes nothing");

    // A fresh saved plan applies and converges both hosts.
    let plan = k.run(&["plan", inv, "--tags", "prepare", "-o", p(&saved)]);
    assert_eq!(code(&plan), 2, "{}", text(&plan));
    // ...here as the JSON Lines event stream automation reads: the plan, each step as it
    // finishes, the report last.
    let apply = k.run(&["apply", p(&saved), "--output", "json"]);
    assert_eq!(code(&apply), 0, "{}", text(&apply));
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&apply.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"plan"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"report"), "{kinds:?}");
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "step_finished" && e["host"] == "h1" && e["id"] == "h1/kernel/sysctl" && e["status"]["status"] == "changed"),
        "{events:?}"
    );
    assert!(events.iter().any(|e| e["event"] == "batch_started" && e["host"] == "h2"), "{events:?}");
    assert_eq!(events.last().unwrap()["success"], true);
    assert_eq!(set.sh(0, "cat /proc/sys/net/ipv4/ip_forward").trim(), "1");
    assert!(!set.sh(1, "cat /etc/sysctl.d/k8s.conf").contains("hand edit"));
    let plan = k.run(&["plan", inv, "--tags", "prepare"]);
    assert_eq!(code(&plan), 0, "{}", text(&plan));

    // On a terminal (a pseudo-terminal from `script`), progress is a bar per host.
    set.sh(0, "sysctl -qw net.ipv4.ip_forward=0");
    let tty = k.run_tty(&["apply", inv, "--tags", "prepare", "--color", "never"], "");
    let screen = String::from_utf8_lossy(&tty.stdout);
    assert!(tty.status.success(), "{screen}");
    assert!(screen.contains("1/1") && screen.contains("done"), "a finished bar for h1: {screen}");
    assert!(!screen.contains("] h1: running"), "no plain progress lines on a terminal: {screen}");
    assert!(screen.contains("Apply complete."), "{screen}");
    assert_eq!(set.sh(0, "cat /proc/sys/net/ipv4/ip_forward").trim(), "1");
}
