//! Backup: an etcd snapshot of the cluster, saved on the operator's machine.
//!
//! On the first control plane, as root with /etc/kubernetes/admin.conf: `kubectl -n kube-system
//! exec etcd-NODE -- etcdctl ... snapshot save /var/lib/etcd/kprov-snapshot-PID.db` (kubeadm's
//! stacked etcd pod mounts /var/lib/etcd from the host and has its client certificates in
//! /etc/kubernetes/pki/etcd), then `etcdutl snapshot status` of that file. The file comes back
//! over the same SSH connection as steps of one batch, is checked against its SHA-256 on the
//! node, is written with mode 0600 (a snapshot holds every Secret of the cluster) and is deleted
//! from the node whatever happened. An existing file is never overwritten.

use std::path::{Path, PathBuf};

use super::check::write_private;
use super::cluster::KUBECONFIG;
use super::remote::{Step, StepError, run_steps};
use super::{Action, Confirmation, Operation, Session};
use crate::engine::Connector;
use crate::shell::{QuoteError, quote};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum BackupError {
    #[error("{} exists; a backup never overwrites a file", path.display())]
    #[diagnostic(code(kprov::backup::exists), help("choose another --output, or move the old snapshot away"))]
    Exists { path: PathBuf },
    #[error("{first}: {message}; nothing was saved")]
    #[diagnostic(
        code(kprov::backup::snapshot),
        help("the cluster must be running with kubeadm's stacked etcd (kprov apply sets it up); `kprov ssh` to the control plane to look")
    )]
    Snapshot { first: String, message: String },
    #[error("cannot write the snapshot: {0}")]
    #[diagnostic(code(kprov::backup::write))]
    Write(String),
}

/// What etcdutl says of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotStatus {
    pub hash: u64,
    pub revision: u64,
    pub total_key: u64,
    pub total_size: u64,
}

/// The snapshot as it arrived.
#[derive(Debug)]
pub struct Snapshot {
    pub taken_at: String,
    pub status: SnapshotStatus,
    pub sha256: String,
    pub bytes: Vec<u8>,
}

const ETCDCTL: &str = "etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt \
--cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt --key=/etc/kubernetes/pki/etcd/healthcheck-client.key";

/// The node's file for a snapshot: its own name per run, so two backups never share it.
pub fn snapshot_file() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    format!("/var/lib/etcd/kprov-snapshot-{}-{nanos}.db", std::process::id())
}

/// Five steps of one batch: the node's UTC time, the snapshot into `file`, its status, its
/// SHA-256 and its bytes in base64. The last step removes the node's file; when a step fails,
/// [`Backup`] removes it in a batch of its own.
pub fn snapshot_steps(node: &str, file: &str) -> Result<Vec<Step>, QuoteError> {
    let pod = format!("etcd-{node}");
    let pod = quote(&pod)?;
    let snap = quote(file)?;
    let snap: &str = &snap;
    Ok(vec![
        Step::new("reading the node's clock", "date -u +%Y%m%dT%H%M%SZ\n"),
        Step::new("etcd snapshot save", format!("{KUBECONFIG}kubectl -n kube-system exec {pod} -- {ETCDCTL} snapshot save {snap}\n")),
        Step::new("etcd snapshot status", format!("{KUBECONFIG}kubectl -n kube-system exec {pod} -- etcdutl snapshot status {snap} -w json\n")),
        Step::new("the snapshot's SHA-256", format!("sha256sum < {snap} | cut -d' ' -f1\n")),
        Step::new("the snapshot's transfer", format!("trap \"rm -f {snap}\" EXIT\nbase64 -w0 < {snap}\necho\n")),
    ])
}

/// The snapshot from the steps' outputs, checked against its digest and size.
pub fn parse_snapshot(outs: &[String]) -> Result<Snapshot, String> {
    let [taken_at, _, status_json, sha256, data] = outs else { return Err(format!("{} of 5 steps ran", outs.len())) };
    let status_json = &status_json[status_json.find('{').unwrap_or(0)..];
    let status: SnapshotStatus = serde_json::from_str(status_json.trim())
        .map_err(|e| format!("etcdutl snapshot status printed something else ({e}): {}", super::remote::last_lines(status_json)))?;
    let sha256 = sha256.trim();
    if sha256.len() != 64 {
        return Err("no SHA-256 of the snapshot".into());
    }
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD.decode(data.trim()).map_err(|e| format!("the snapshot arrived damaged ({e})"))?;
    let got = crate::digest::sha256_hex(&bytes);
    if got != sha256 {
        return Err(format!("the copy's SHA-256 {got} differs from the node's {sha256}"));
    }
    if bytes.len() as u64 != status.total_size {
        return Err(format!("the copy has {} bytes, etcdutl reported {}", bytes.len(), status.total_size));
    }
    Ok(Snapshot { taken_at: taken_at.trim().to_string(), status, sha256: sha256.to_string(), bytes })
}

/// A failed step, as the operator should read it.
fn snapshot_failure(e: &StepError) -> String {
    match e {
        StepError::Failed { what, output, .. } if what.starts_with("etcd ") => {
            format!("{what} failed: {}", super::remote::last_lines(output))
        }
        other => other.to_string(),
    }
}

pub fn refuse_existing(path: &Path) -> Result<(), BackupError> {
    if path.exists() {
        return Err(BackupError::Exists { path: path.to_path_buf() });
    }
    Ok(())
}

pub struct Backup {
    /// Where to write; None: CLUSTER-etcd-TIMESTAMP.db here.
    pub output: Option<PathBuf>,
    first: String,
}

impl Backup {
    pub fn new(output: Option<PathBuf>) -> Backup {
        Backup { output, first: String::new() }
    }
}

impl Operation for Backup {
    type Error = BackupError;
    const NAME: &'static str = "backup";

    async fn prepare(&mut self, s: &Session) -> Result<(), BackupError> {
        if let Some(path) = &self.output {
            refuse_existing(path)?;
        }
        self.first = s.inventory.first_control_plane().name.clone();
        Ok(())
    }

    fn actions(&self) -> Vec<Action> {
        let to = self.output.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "CLUSTER-etcd-TIMESTAMP.db".into());
        vec![Action::new(&self.first, format!("etcd snapshot, saved to {to}"))]
    }

    fn nothing_to_do(&self) -> String {
        String::new()
    }

    fn pending(&self) -> String {
        "Backup pending: `kprov backup` without --dry-run takes the snapshot.".into()
    }

    fn confirmation(&self) -> Option<Confirmation> {
        None
    }

    async fn run(&mut self, s: &Session) -> Result<String, BackupError> {
        let first = self.first.clone();
        s.events.progress(&first, "etcd snapshot");
        let failed = |message: String| BackupError::Snapshot { first: first.clone(), message };
        let cp = s.connector.connect(s.first_control_plane()).await.map_err(|e| failed(format!("cannot reach the first control plane: {e}")))?;
        let file = snapshot_file();
        let steps = snapshot_steps(&first, &file).map_err(|e| failed(e.to_string()))?;
        let outs = match run_steps(cp.as_ref(), &steps).await {
            Ok(outs) => outs,
            Err(e) => {
                // Nothing of the cluster's Secrets stays behind on the node.
                let rm = quote(&file).map(|f| format!("rm -f {f}\n")).unwrap_or_default();
                let _ = run_steps(cp.as_ref(), &[Step::new("removing the snapshot", rm)]).await;
                return Err(failed(snapshot_failure(&e)));
            }
        };
        let snap = parse_snapshot(&outs).map_err(failed)?;
        let inv = &s.inventory;
        let path = self.output.clone().unwrap_or_else(|| PathBuf::from(format!("{}-etcd-{}.db", inv.cluster.name, snap.taken_at)));
        refuse_existing(&path)?;
        write_private(&path, &snap.bytes).map_err(BackupError::Write)?;
        Ok(format!(
            "Saved the etcd snapshot of cluster {} from {first} to {} (mode 0600): revision {}, {} keys, {} bytes, sha256 {}.",
            inv.cluster.name,
            path.display(),
            snap.status.revision,
            snap.status.total_key,
            snap.bytes.len(),
            snap.sha256
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outputs(data: &[u8]) -> Vec<String> {
        use base64::Engine as _;
        vec![
            "20261125T120000Z".into(),
            "Snapshot saved at /var/lib/etcd/kprov-snapshot.db".into(),
            format!("{{\"hash\":1,\"revision\":7,\"totalKey\":3,\"totalSize\":{},\"version\":\"3.6.0\"}}", data.len()),
            crate::digest::sha256_hex(data),
            base64::engine::general_purpose::STANDARD.encode(data),
        ]
    }

    #[test]
    fn a_snapshot_arrives_checked() {
        let s = parse_snapshot(&outputs(b"etcd bytes")).unwrap();
        assert_eq!(s.bytes, b"etcd bytes");
        assert_eq!(s.status.revision, 7);
        assert_eq!(s.taken_at, "20261125T120000Z");
    }

    #[test]
    fn a_damaged_or_failed_snapshot_is_an_error() {
        let mut damaged = outputs(b"etcd bytes");
        damaged[4] = damaged[4].replace("ZXRjZCBieXRlcw==", "ZXRjZCBieXRlcX==");
        assert!(parse_snapshot(&damaged).is_err());
        let cut = outputs(b"etcd bytes")[..4].to_vec();
        assert!(parse_snapshot(&cut).unwrap_err().contains("4 of 5 steps"));
        let failed = StepError::Failed {
            what: "etcd snapshot save".into(),
            status: 1,
            output: "Error from server (NotFound): pods \"etcd-h1\" not found".into(),
        };
        let e = snapshot_failure(&failed);
        assert!(e.contains("snapshot save failed") && e.contains("not found"), "{e}");
    }

    #[test]
    fn the_pod_name_is_quoted() {
        assert!(snapshot_steps("h1;reboot", "/var/lib/etcd/s.db").unwrap()[1].script.contains("exec 'etcd-h1;reboot' --"));
    }
}
