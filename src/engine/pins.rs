//! What kprov trusts on the network, pinned: the CNI manifests (by SHA-256), the apt
//! repositories' signing keys (by OpenPGP fingerprint) and the Helm release that installs
//! Cilium (by SHA-256 per architecture). Nothing is trusted because of where it comes from:
//! each host checks what it downloaded against these values before using it, and a mismatch
//! fails that host with both values shown and nothing installed or applied.
//!
//! Bumping a pin is one reviewed commit: `scripts/pin-cni.sh NAME VERSION` downloads the new
//! manifest (or reads a local copy) and rewrites its line here with the new URL and digest.

/// A CNI kprov installs: where its pinned manifest is, its digest, and what kprov needs to
/// know about it.
pub struct CniInfo {
    pub name: &'static str,
    /// The upstream version the URL and digest belong to.
    pub version: &'static str,
    /// The manifest (for Cilium: the Helm chart archive).
    pub url: &'static str,
    /// SHA-256 of the file at `url`, checked on the host before anything is patched or applied.
    pub sha256: &'static str,
    pub namespace: &'static str,
    pub daemonset: &'static str,
    /// The pod network the manifest hard-codes, replaced by the cluster's.
    pub default_cidr: Option<&'static str>,
    /// Archived or otherwise discouraged upstream.
    pub warning: Option<&'static str>,
}

// One line per CNI: scripts/pin-cni.sh rewrites the line whose `name` it is given.
// Sources of the digests (each computed from the file itself, never copied from a page):
// - calico, canal: projectcalico/calico tag v3.30.7, manifests/{calico,canal}.yaml (git blob).
// - flannel: flannel-io/flannel tag v0.27.4, Documentation/kube-flannel.yml (git blob).
// - kube-router: cloudnativelabs/kube-router tag v2.6.3, daemonset/kubeadm-kuberouter.yaml.
// - weave: the v2.8.1 release asset as the release script builds it (weave-kube-1.11 template
//   with `:latest` replaced by `:2.8.1`); computed from that reconstruction, see the report in
//   docs/reliability.md ("attacks tried").
// - cilium: cilium/charts (the repository behind helm.cilium.io) cilium-1.18.12.tgz; the
//   same value is the chart's `digest` in that repository's index.yaml.
#[rustfmt::skip]
pub const CNIS: &[CniInfo] = &[
    CniInfo { name: "calico", version: "v3.30.7", url: "https://raw.githubusercontent.com/projectcalico/calico/v3.30.7/manifests/calico.yaml", sha256: "ed105288f27c7ba4cae143bcaa3f6425f02d84fa94a4786cc8e3d371412c1a36", namespace: "kube-system", daemonset: "calico-node", default_cidr: None, warning: None },
    CniInfo { name: "flannel", version: "v0.27.4", url: "https://raw.githubusercontent.com/flannel-io/flannel/v0.27.4/Documentation/kube-flannel.yml", sha256: "2242ee218f3c3e724e4efe5f31826a3e38cfdabf334de41aee2b12b48fd4818d", namespace: "kube-flannel", daemonset: "kube-flannel-ds", default_cidr: Some("10.244.0.0/16"), warning: None },
    CniInfo { name: "cilium", version: "1.18.12", url: "https://helm.cilium.io/cilium-1.18.12.tgz", sha256: "5923f9d9fcb11bc4692ad52353cc791b935d96e09ba0c535c5a8b88ea8a37572", namespace: "kube-system", daemonset: "cilium", default_cidr: None, warning: None },
    CniInfo { name: "weave", version: "v2.8.1", url: "https://github.com/weaveworks/weave/releases/download/v2.8.1/weave-daemonset-k8s.yaml", sha256: "16c3a34dc6e073fc5faf439edf50c3e96a72480a8fcf2e5b7f09bc2f7c2b794c", namespace: "kube-system", daemonset: "weave-net", default_cidr: None, warning: Some("Weave Net is archived upstream (no releases since 2.8.1, 2021); prefer calico or flannel for new clusters") },
    CniInfo { name: "canal", version: "v3.30.7", url: "https://raw.githubusercontent.com/projectcalico/calico/v3.30.7/manifests/canal.yaml", sha256: "3adf274f6cc9bca9a00ebaa7da5a24a4894f1af1006c206e57a2f0eadf89f715", namespace: "kube-system", daemonset: "canal", default_cidr: Some("10.244.0.0/16"), warning: None },
    CniInfo { name: "kube-router", version: "v2.6.3", url: "https://raw.githubusercontent.com/cloudnativelabs/kube-router/v2.6.3/daemonset/kubeadm-kuberouter.yaml", sha256: "847b9b7a47c31d8e10149f5b4d94c78ea214d1c1d70df1640744ae21b0b9121a", namespace: "kube-system", daemonset: "kube-router", default_cidr: None, warning: None },
];

pub fn cni(name: &str) -> Option<&'static CniInfo> {
    CNIS.iter().find(|c| c.name == name)
}

/// kube-router's DaemonSet names its image without a tag (latest); kprov pins the tag of the
/// release whose manifest it applies.
pub const KUBE_ROUTER_IMAGE: &str = "docker.io/cloudnativelabs/kube-router";

/// The signing key of every pkgs.k8s.io `core:/stable:/v1.x/deb/` repository (one key for all
/// minors, the OBS project `isv:kubernetes`; its expiry was extended in place in November
/// 2024, so the fingerprint stayed). Source: `gpg` on the v1.26 and v1.27 Release.key files,
/// quoted in kubernetes/kubernetes#128609 (`pub rsa2048 2022-08-25 [SC]`,
/// `DE15B14486CD377B9E876E1A234654DA9A296436`, `isv:kubernetes OBS Project
/// <isv:kubernetes@build.opensuse.org>`), and the key id `234654DA9A296436` in apt's
/// EXPKEYSIG messages for the v1.31 repository (kubernetes/release#3818).
pub const KUBERNETES_APT_KEY_FINGERPRINTS: &[&str] = &["DE15B14486CD377B9E876E1A234654DA9A296436"];

/// Docker's apt signing key (download.docker.com/linux/{debian,ubuntu}/gpg, one key for both).
/// Source: Docker's install guide, engine/install/debian.md in docker/docs (PR #11990):
/// "Verify that you now have the key with the fingerprint 9DC8 5822 9FC7 DD38 854A E2D8 8D81
/// 803C 0EBF CD88" (`Docker Release (CE deb) <docker@docker.com>`, 4096R, 2017-02-22).
pub const DOCKER_APT_KEY_FINGERPRINTS: &[&str] = &["9DC858229FC7DD38854AE2D88D81803C0EBFCD88"];

/// The Helm release that installs the Cilium chart on the first control plane, per dpkg
/// architecture: the SHA-256 of `helm-VERSION-linux-ARCH.tar.gz` as published on get.helm.sh.
/// Source: Kubespray's roles/kubespray_defaults/vars/main/checksums.yml
/// (`helm_archive_checksums`, kubernetes-sigs/kubespray at 46dbdd39, August 2026).
pub struct HelmPin {
    pub version: &'static str,
    pub sha256: &'static [(&'static str, &'static str)],
}

pub const HELM: HelmPin = HelmPin {
    version: "v3.18.4",
    sha256: &[
        ("amd64", "f8180838c23d7c7d797b208861fecb591d9ce1690d8704ed1e4cb8e2add966c1"),
        ("arm64", "c0a45e67eef0c7416a8a8c9e9d5d2d30d70e4f4d3f7bea5de28241fffa8f3b89"),
    ],
};

pub const DEFAULT_HELM: &str = "https://get.helm.sh";

pub use crate::digest::{normalize_fingerprint, normalize_sha256};

/// Where the upstream reference files are: `$KPROV_UPSTREAM`, else `../shared/upstream` beside
/// the repository (as CI lays it out), else `/work/shared/upstream`.
#[cfg(test)]
pub(crate) fn upstream_dir() -> std::path::PathBuf {
    if let Some(d) = std::env::var_os("KPROV_UPSTREAM") {
        return d.into();
    }
    let beside = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/upstream");
    if beside.is_dir() { beside } else { std::path::PathBuf::from("/work/shared/upstream") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pin_is_well_formed_and_names_its_version() {
        for c in CNIS {
            assert_eq!(normalize_sha256(c.sha256).as_deref(), Some(c.sha256), "{}: the digest is 64 lowercase hex digits", c.name);
            assert!(c.url.starts_with("https://"), "{}: fetched over TLS", c.name);
            assert!(c.url.contains(c.version), "{}: the URL names the pinned version {}", c.name, c.version);
        }
        let mut digests: Vec<&str> = CNIS.iter().map(|c| c.sha256).collect();
        digests.sort_unstable();
        digests.dedup();
        assert_eq!(digests.len(), CNIS.len(), "no two manifests share a digest");
        for f in KUBERNETES_APT_KEY_FINGERPRINTS.iter().chain(DOCKER_APT_KEY_FINGERPRINTS) {
            assert_eq!(normalize_fingerprint(f).as_deref(), Some(*f));
        }
        let arches: Vec<&str> = HELM.sha256.iter().map(|(a, _)| *a).collect();
        assert_eq!(arches, ["amd64", "arm64"], "Helm is pinned for both architectures kprov supports");
        for (_, d) in HELM.sha256 {
            assert!(normalize_sha256(d).is_some());
        }
    }

    #[test]
    fn every_cni_validation_accepts_is_pinned() {
        for c in CNIS {
            let inv = format!("cluster:\n  cni: {}\nhosts:\n  - {{ name: a, address: 192.0.2.1, roles: [control-plane] }}\n", c.name);
            assert!(crate::inventory::parse(&inv, "t.yaml").inventory.is_some(), "{} is a valid cni", c.name);
        }
        let listed =
            crate::inventory::parse("cluster:\n  cni: nope\nhosts:\n  - { name: a, address: 192.0.2.1, roles: [control-plane] }\n", "t.yaml");
        let help = listed.diagnostics[0].help.clone().unwrap_or_default();
        let names: Vec<&str> = CNIS.iter().map(|c| c.name).collect();
        assert!(help.ends_with(&names.join(", ")), "validation offers exactly the pinned CNIs: {help}");
    }

    /// The pinned manifests are the files in ../shared/upstream/cni where the versions match:
    /// each pin is the SHA-256 of the real file. Cilium's pin is a Helm chart, not in that
    /// directory (its quick-install.yaml there is a pre-1.10 snapshot, see the README there).
    #[test]
    fn pins_are_the_digests_of_the_real_manifests() {
        use sha2::Digest as _;
        let dir = crate::engine::pins::upstream_dir();
        for (name, file) in [
            ("calico", "calico.yaml"),
            ("canal", "canal.yaml"),
            ("flannel", "kube-flannel.yml"),
            ("kube-router", "kube-router.yaml"),
            ("weave", "weave-daemonset-k8s.yaml"),
        ] {
            let path = dir.join("cni").join(file);
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let got = hex::encode(sha2::Sha256::digest(&bytes));
            assert_eq!(got, cni(name).unwrap().sha256, "{name}: the pin is the digest of {file}");
        }
    }

    #[test]
    fn fingerprints_and_digests_are_normalised_or_refused() {
        assert_eq!(normalize_fingerprint("9DC8 5822 9FC7 DD38 854A  E2D8 8D81 803C 0EBF CD88").as_deref(), Some(DOCKER_APT_KEY_FINGERPRINTS[0]));
        assert_eq!(normalize_fingerprint("de15b14486cd377b9e876e1a234654da9a296436").as_deref(), Some(KUBERNETES_APT_KEY_FINGERPRINTS[0]));
        for bad in ["", "0EBFCD88", "234654DA9A296436", "9DC858229FC7DD38854AE2D88D81803C0EBFCD8Z", "9DC858229FC7DD38854AE2D88D81803C0EBFCD880"] {
            assert_eq!(normalize_fingerprint(bad), None, "{bad:?}");
        }
        assert_eq!(normalize_sha256("sha256:ED105288F27C7BA4CAE143BCAA3F6425F02D84FA94A4786CC8E3D371412C1A36").as_deref(), Some(CNIS[0].sha256));
        assert_eq!(normalize_sha256("ed105288"), None);
    }
}
