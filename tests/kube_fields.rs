//! `src/kube_fields.json` is what `scripts/kube-fields.py` derives from the upstream type files
//! (../shared/upstream, next to the repository as in CI; one level further up from a git
//! worktree). A table edited by hand, or upstream files changed without regenerating it, fail
//! here.

use std::path::{Path, PathBuf};
use std::process::Command;

fn upstream() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let candidates = [root.join("../shared/upstream"), root.join("../../shared/upstream")];
    for c in &candidates {
        if c.join("kubeadm/v1beta4-types.go").is_file() {
            return c.clone();
        }
    }
    panic!(
        "the upstream type files are not there: looked for kubeadm/v1beta4-types.go under {candidates:?} (CI checks out ../shared next to the repository)"
    );
}

#[test]
fn the_checked_in_field_table_is_what_the_script_derives_from_upstream() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3").arg(root.join("scripts/kube-fields.py")).arg(upstream()).output().expect("python3 runs");
    assert!(out.status.success(), "scripts/kube-fields.py failed: {}", String::from_utf8_lossy(&out.stderr));
    let derived = String::from_utf8(out.stdout).unwrap();
    let checked_in = std::fs::read_to_string(root.join("src/kube_fields.json")).unwrap();
    assert!(
        derived == checked_in,
        "src/kube_fields.json differs from what scripts/kube-fields.py derives; run `python3 scripts/kube-fields.py > src/kube_fields.json` and review the change"
    );
    // The table is not empty or trivial: the kinds kprov writes are in it, with nested fields.
    let t: serde_json::Value = serde_json::from_str(&checked_in).unwrap();
    assert_eq!(t["kinds"]["kubeadm.k8s.io/v1beta4"]["JoinConfiguration"], "kubeadm.JoinConfiguration");
    assert_eq!(t["structs"]["kubeadm.JoinConfiguration"]["discovery"], "kubeadm.Discovery");
    assert_eq!(t["structs"]["kubeadm.BootstrapTokenDiscovery"]["caCertHashes"], "[]scalar");
    assert_eq!(t["structs"]["kubeadm.NodeRegistrationOptions"]["taints"], "[]external:corev1.Taint");
    assert_eq!(t["structs"]["kubelet.KubeletConfiguration"]["cgroupDriver"], "scalar");
    assert!(t["structs"]["kubeadm.UpgradeApplyConfiguration"]["SkipPhases"].is_string(), "an untagged field keeps its Go name");
}
