//! The test nodes themselves: they start, are reachable over real SSH with their own host keys,
//! and clean up after themselves.

mod support;

use std::process::Command;

use support::nodes::{Flavour, NodeSet, SUDO_PASSWORD};

fn ssh(set: &NodeSet, i: usize, user: &str, cmd: &str, stdin: Option<&str>) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new("ssh")
        .args(["-i", set.key_path.to_str().unwrap(), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", set.known_hosts_path.display()))
        .arg(format!("{user}@{}", set.node(i).ip))
        .arg(cmd)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn three_debian_nodes_with_their_own_keys_and_users() {
    let t0 = std::time::Instant::now();
    let set = NodeSet::start(&[Flavour::Debian, Flavour::Debian, Flavour::Debian]);
    eprintln!("3 nodes ready in {:?}", t0.elapsed());
    let keys: std::collections::BTreeSet<String> = (0..3).map(|i| set.host_key(i)).collect();
    assert_eq!(keys.len(), 3, "every node has its own host key");
    for user in ["root", "ops", "deploy"] {
        let out = ssh(&set, 0, user, "id -un", None);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), user);
    }
    let ok = ssh(&set, 1, "ops", "sudo -S -p '' id -u", Some(&format!("{SUDO_PASSWORD}\n")));
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "0");
    let refused = ssh(&set, 1, "ops", "sudo -n id -u", None);
    assert!(!refused.status.success());
    let nopw = ssh(&set, 2, "deploy", "sudo -n id -u", None);
    assert_eq!(String::from_utf8_lossy(&nopw.stdout).trim(), "0");
    // Built-in modules count as loaded, as on a host whose kernel has them built in.
    set.sh(0, "modprobe overlay && modprobe br_netfilter");
    let network = set.network.clone();
    let containers: Vec<String> = set.nodes.iter().map(|n| n.container.clone()).collect();
    drop(set);
    let left = Command::new("docker").args(["ps", "-a", "-q", "--filter", &format!("network={network}")]).output().unwrap();
    assert!(String::from_utf8_lossy(&left.stdout).trim().is_empty());
    for c in containers {
        let out = Command::new("docker").args(["inspect", &c]).output().unwrap();
        assert!(!out.status.success(), "{c} still exists");
    }
    let net = Command::new("docker").args(["network", "inspect", &network]).output().unwrap();
    assert!(!net.status.success(), "network {network} still exists");
}

#[test]
fn ubuntu_flavour_says_ubuntu() {
    let set = NodeSet::start(&[Flavour::Ubuntu]);
    let os = set.sh(0, ". /etc/os-release && echo $ID $VERSION_CODENAME");
    assert_eq!(os.trim(), "ubuntu noble");
}

#[test]
fn raspberry_pi_flavour_is_real_arm64() {
    let set = NodeSet::start(&[Flavour::RaspberryPi]);
    assert_eq!(set.sh(0, "dpkg --print-architecture").trim(), "arm64");
    assert_eq!(set.sh(0, "uname -m").trim(), "aarch64");
    assert!(set.sh(0, "cat /boot/firmware/cmdline.txt").contains("rootwait"));
    assert!(set.exec(0, "test -f /etc/rpi-issue").status.success());
}
