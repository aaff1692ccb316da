//! Nothing fetched is trusted by its URL alone, on real nodes: the local apt repository's key is
//! pinned through the mirror settings (a wrong fingerprint installs nothing), and the CNI
//! manifest the repository serves, the real flannel manifest kprov pins, is applied only when
//! its digest matches (a copy with one byte changed is refused and nothing is applied).

mod support;

use support::apt_repo::AptRepo;
use support::cli::{Kprov, code, p, text};
use support::nodes::{Flavour, NodeSet};

const KEYRING: &str = "/etc/apt/keyrings/kubernetes-apt-keyring.gpg";

#[test]
fn a_mirror_key_is_installed_only_with_its_pinned_fingerprint() {
    let set = NodeSet::start(&[Flavour::Debian]);
    let repo = AptRepo::serve(set.gateway);
    let k = Kprov::new();
    // Docker's real fingerprint is a real key, but not the one this mirror serves.
    let wrong = kprov::engine::pins::DOCKER_APT_KEY_FINGERPRINTS[0];
    assert_ne!(wrong, repo.fingerprint);
    let mirrors = repo.mirrors_yaml().replacen(
        &format!("kubernetes_apt_key_fingerprint: {}", repo.fingerprint),
        &format!("kubernetes_apt_key_fingerprint: {wrong}"),
        1,
    );
    let inv = k.inventory(&set, "root", &[(0, "control-plane")], "  cni: flannel\n", &mirrors);
    let plan = k.run(&["plan", p(&inv), "--tags", "packages"]);
    assert_eq!(code(&plan), 2, "{}", text(&plan));
    let shown = String::from_utf8_lossy(&plan.stdout).to_string();
    assert!(shown.contains("Downloads, each checked on the host before use:"), "{shown}");
    assert!(shown.contains(&format!("OpenPGP key fingerprint {wrong}")), "the plan says what it will trust: {shown}");
    let apply = k.run(&["apply", p(&inv), "--tags", "packages"]);
    assert_eq!(code(&apply), 1, "{}", text(&apply));
    let all = text(&apply);
    assert!(
        all.contains("key fingerprint mismatch") && all.contains(&format!("expected {wrong}, got {}; nothing installed", repo.fingerprint)),
        "{all}"
    );
    assert!(set.exec(0, &format!("test -e {KEYRING}")).status.code() == Some(1), "no keyring installed");
    assert!(!set.exec(0, "dpkg -s kubeadm").status.success(), "nothing installed from the mirror");
    assert_eq!(set.sh(0, "ls /etc/apt/keyrings/ | grep -c kprov || true").trim(), "0", "no temporary file left");

    // The right fingerprint: installed, and the next plan reads the keyring and finds it pinned.
    let inv = k.inventory(&set, "root", &[(0, "control-plane")], "  cni: flannel\n", &repo.mirrors_yaml());
    let apply = k.run(&["apply", p(&inv), "--tags", "packages"]);
    assert_eq!(code(&apply), 0, "{}", text(&apply));
    assert!(set.exec(0, "dpkg -s kubeadm").status.success());
    let again = k.run(&["plan", p(&inv), "--tags", "packages"]);
    assert_eq!(code(&again), 0, "{}", text(&again));

    // Someone swaps the keyring for another key: the plan sees it and puts the pinned key back.
    set.sh(0, &format!("cp /usr/share/keyrings/debian-archive-bookworm-stable.gpg {KEYRING}"));
    let swapped = k.run(&["plan", p(&inv), "--tags", "packages"]);
    assert_eq!(code(&swapped), 2, "{}", text(&swapped));
    assert!(text(&swapped).contains("not pinned"), "{}", text(&swapped));
    let apply = k.run(&["apply", p(&inv), "--tags", "packages"]);
    assert_eq!(code(&apply), 0, "{}", text(&apply));
    let listed = set
        .sh(0, &format!("export GNUPGHOME=$(mktemp -d); gpg --batch --no-options --with-colons --show-keys {KEYRING} 2>&1; rm -rf \"$GNUPGHOME\""));
    assert!(listed.contains(&repo.fingerprint), "{listed}");
}

#[test]
fn the_served_cni_manifest_is_verified_and_a_tampered_copy_is_refused() {
    let set = NodeSet::start(&[Flavour::Debian]);
    let repo = AptRepo::serve(set.gateway);
    let k = Kprov::new();
    let pin = kprov::engine::pins::cni("flannel").unwrap();
    // The repository serves the real manifest kprov pins, byte for byte.
    assert_eq!(repo.manifest_sha256("upstream/kube-flannel.yml"), pin.sha256);
    let cluster = |file: &str| {
        format!("  cni: flannel\n  pod_cidr: 10.30.0.0/16\n  cni_manifest: {}\n  cni_manifest_sha256: {}\n", repo.manifest(file), pin.sha256)
    };

    let inv = k.inventory(&set, "root", &[(0, "control-plane")], &cluster("tampered/kube-flannel.yml"), &repo.mirrors_yaml());
    let json = k.run(&["plan", p(&inv), "--json"]);
    assert_eq!(code(&json), 2, "{}", text(&json));
    let plan: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let fetches = plan["fetches"].as_array().expect("the plan lists its downloads");
    let manifest = fetches.iter().find(|f| f["url"] == repo.manifest("tampered/kube-flannel.yml")).expect("the manifest is listed");
    assert_eq!((manifest["check"].as_str(), manifest["sha256"].as_str()), (Some("sha256"), Some(pin.sha256)));
    assert!(fetches.iter().any(|f| f["check"] == "key_fingerprint" && f["fingerprints"][0] == repo.fingerprint.as_str()), "{fetches:?}");

    let apply = k.run(&["apply", p(&inv)]);
    assert_eq!(code(&apply), 1, "{}", text(&apply));
    let tampered = repo.manifest_sha256("tampered/kube-flannel.yml");
    assert!(text(&apply).contains(&format!("expected sha256 {}, got {tampered}; nothing applied", pin.sha256)), "{}", text(&apply));
    let ds = "kubectl --kubeconfig /etc/kubernetes/admin.conf get daemonset -n kube-flannel kube-flannel-ds";
    assert!(!set.exec(0, ds).status.success(), "nothing applied");
    assert!(!set.exec(0, "test -e /etc/kubernetes/kprov/cni-flannel.yaml").status.success());

    // The real manifest: verified, its network set to the cluster's, applied.
    let inv = k.inventory(&set, "root", &[(0, "control-plane")], &cluster("upstream/kube-flannel.yml"), &repo.mirrors_yaml());
    let apply = k.run(&["apply", p(&inv)]);
    assert_eq!(code(&apply), 0, "{}", text(&apply));
    assert!(set.exec(0, ds).status.success());
    let applied = set.sh(0, "cat /etc/kubernetes/kprov/cni-flannel.yaml");
    assert!(applied.contains("\"Network\": \"10.30.0.0/16\"") && !applied.contains("10.244.0.0/16"), "{applied}");
}
