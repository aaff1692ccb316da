//! Validation of what the inventory tells kprov to trust: repository key fingerprints for
//! mirrors and the digest of a CNI manifest of the user's own. A mirror's key URL without a
//! fingerprint, or a manifest URL without a digest, is an error: kprov never trusts a download
//! by its URL alone unless told so explicitly (`insecure_skip_key_fingerprint`), and then it
//! warns on every run.

use serde_saphyr::Spanned;

use super::diagnostic::{Diagnostic, Place};
use super::model::InventoryFile;
use super::validate::place;
use crate::digest::{normalize_fingerprint, normalize_sha256};

fn at<T>(s: &Spanned<T>) -> Option<Place> {
    place(&s.referenced)
}

const FINGERPRINT_HINT: &str = "write the key's fingerprint as `gpg --show-keys --with-colons KEYFILE` prints it on the `fpr` line: 40 hex digits (spaces allowed), e.g. Docker's 9DC8 5822 9FC7 DD38 854A E2D8 8D81 803C 0EBF CD88";

pub(super) fn validate(f: &InventoryFile) -> Vec<Diagnostic> {
    let mut out = vec![];
    let m = &f.mirrors;
    let skip = m.insecure_skip_key_fingerprint.as_ref().is_some_and(|s| s.value);
    for fp in [&m.kubernetes_apt_key_fingerprint, &m.docker_apt_key_fingerprint].into_iter().flatten() {
        if normalize_fingerprint(&fp.value).is_none() {
            out.push(
                Diagnostic::error("kprov::inventory::key_fingerprint", format!("`{}` is not an OpenPGP key fingerprint", fp.value))
                    .label(at(fp), "not 40 or 64 hex digits")
                    .help(FINGERPRINT_HINT),
            );
        }
    }
    // A key URL of the operator's own needs the fingerprint of the key it serves.
    let kubernetes_key = m.kubernetes_apt_key.as_ref().or(m.kubernetes_apt.as_ref());
    let wants = [
        (kubernetes_key, &m.kubernetes_apt_key_fingerprint, "kubernetes_apt_key_fingerprint", "the Kubernetes mirror's signing key"),
        (m.docker_apt.as_ref(), &m.docker_apt_key_fingerprint, "docker_apt_key_fingerprint", "the Docker mirror's signing key"),
    ];
    for (url, fp, key, what) in wants {
        let Some(url) = url else { continue };
        if fp.is_none() && !skip {
            out.push(
                Diagnostic::error("kprov::inventory::key_fingerprint_missing", format!("mirrors.{key} is required with this mirror"))
                    .label(at(url), format!("{what} is fetched from here"))
                    .help(format!(
                        "kprov checks every repository key by its fingerprint before apt trusts it; add mirrors.{key}: \"<40 hex digits>\" (gpg --show-keys --with-colons on the mirror's key). Only if you accept any key this URL serves: mirrors.insecure_skip_key_fingerprint: true"
                    )),
            );
        }
    }
    if let Some(s) = m.insecure_skip_key_fingerprint.as_ref().filter(|s| s.value) {
        out.push(
            Diagnostic::warning("kprov::inventory::insecure_skip_key_fingerprint", "repository keys are installed without a fingerprint check")
                .label(at(s), "whoever controls the key URL controls what apt installs")
                .help("pin the mirror's key instead: mirrors.kubernetes_apt_key_fingerprint / docker_apt_key_fingerprint"),
        );
    }
    let c = &f.cluster;
    if let Some(d) = &c.cni_manifest_sha256
        && normalize_sha256(&d.value).is_none()
    {
        out.push(
            Diagnostic::error("kprov::inventory::cni_manifest_sha256", format!("`{}` is not a SHA-256 digest", d.value))
                .label(at(d), "not 64 hex digits")
                .help("write the manifest's digest as `sha256sum FILE` prints it (64 hex digits)"),
        );
    }
    match (&c.cni_manifest, &c.cni_manifest_sha256) {
        (Some(url), None) if url.value.contains("://") => out.push(
            Diagnostic::error("kprov::inventory::cni_manifest_sha256", "cluster.cni_manifest_sha256 is required with a manifest URL")
                .label(at(url), "applied with cluster-admin rights: kprov checks its digest first")
                .help("add cluster.cni_manifest_sha256: <sha256sum of the file you reviewed>; a local file needs none, kprov hashes it itself"),
        ),
        (None, Some(d)) => out.push(
            Diagnostic::error("kprov::inventory::cni_manifest_sha256", "cluster.cni_manifest_sha256 without cluster.cni_manifest")
                .label(at(d), "no manifest of your own to check")
                .help("the built-in manifests have their digests pinned in kprov; remove this key, or name your manifest in cluster.cni_manifest"),
        ),
        _ => {}
    }
    out
}
