//! The operating systems as they ship today, end to end: Ubuntu 24.04 (/swap.img in fstab,
//! swap.img.swap; deb822 sources), from empty hosts to every node Ready, then a second apply
//! that changes nothing. (Raspberry Pi OS trixie's node does not boot under this machine's
//! qemu-user: tests/nodes/README.md; its swap and cgroup logic is tested from fixtures.) The stand-in swap units record each activation with the boot it
//! happened in (tests/nodes/README.md), so "swap stays off across a reboot" is checked from
//! what the node's own generators did at its latest boot.

mod support;

use support::apt_repo::AptRepo;
use support::cli::{Kprov, code, p, text};
use support::nodes::{Flavour, NodeSet};

/// PID 1's start time: what the stand-ins record as the boot (a container restart is a boot).
fn boot(set: &NodeSet, i: usize) -> String {
    set.sh(i, "cut -d' ' -f22 /proc/1/stat").trim().to_string()
}

/// Swap activations the node's stand-in units recorded in the current boot.
fn activations_this_boot(set: &NodeSet, i: usize) -> Vec<String> {
    let b = boot(set, i);
    set.sh(i, "cat /var/log/kprov-test-swap.log 2>/dev/null || true")
        .lines()
        .filter(|l| l.ends_with(&format!(" boot={b}")))
        .map(str::to_string)
        .collect()
}

fn nodes_ready(set: &NodeSet, cp: usize) -> String {
    set.sh(cp, "kubectl --kubeconfig /etc/kubernetes/admin.conf get nodes")
}

#[test]
fn ubuntu_swap_img_is_off_for_good_and_its_deb822_sources_are_left_alone() {
    let set = NodeSet::start(&[Flavour::Ubuntu]);
    let repo = AptRepo::serve(set.gateway);
    // Ubuntu 24.04 as installed: /swap.img in fstab, swap.img.swap generated from it at boot.
    assert!(set.sh(0, "cat /etc/fstab").contains("/swap.img\tnone\tswap\tsw\t0\t0"));
    assert_eq!(set.sh(0, "grep SourcePath /run/systemd/generator/swap.img.swap").trim(), "SourcePath=/etc/fstab");
    assert_eq!(activations_this_boot(&set, 0).len(), 1, "the stand-in works: swap at boot");
    let sources = set.sh(0, "sha256sum /etc/apt/sources.list.d/ubuntu.sources /etc/apt/sources.list");
    let k = Kprov::new();
    let cluster = format!(
        "  cni: flannel\n  pod_cidr: 10.20.0.0/16\n  cni_manifest: {}\n  cni_manifest_sha256: {}\n",
        repo.manifest("kube-flannel.yml"),
        repo.manifest_sha256("kube-flannel.yml")
    );
    let inv = k.inventory(&set, "root", &[(0, "control-plane")], &cluster, &repo.mirrors_yaml());
    let plan = k.run(&["plan", p(&inv)]);
    assert_eq!(code(&plan), 2, "{}", text(&plan));
    let out = String::from_utf8_lossy(&plan.stdout).to_string();
    assert!(out.contains("fstab: /swap.img\tnone\tswap\tsw\t0\t0 → # /swap.img\tnone\tswap\tsw\t0\t0"), "{out}");
    let apply = k.run(&["apply", p(&inv)]);
    assert_eq!(code(&apply), 0, "{}", text(&apply));
    assert!(set.sh(0, "cat /etc/fstab").contains("# /swap.img\tnone\tswap\tsw\t0\t0"));
    assert!(
        !set.exec(0, "test -e /run/systemd/generator/swap.img.swap").status.success(),
        "the generated unit is gone once the generators ran again"
    );
    assert_eq!(set.sh(0, "sha256sum /etc/apt/sources.list.d/ubuntu.sources /etc/apt/sources.list"), sources, "deb822 sources untouched");
    assert!(set.sh(0, "cat /etc/apt/sources.list.d/docker.list").contains("/linux/ubuntu noble stable"));
    assert_eq!(nodes_ready(&set, 0).matches(" Ready ").count(), 1);
    // A boot after kprov: the node's generators bring no swap back.
    set.stop(0);
    set.start_again(0);
    assert_eq!(activations_this_boot(&set, 0), Vec::<String>::new(), "no swap unit activated at the next boot");
    let plan = k.run(&["plan", p(&inv)]);
    assert_eq!(code(&plan), 0, "a second run changes nothing: {}", text(&plan));
}
