//! `kprov backup INVENTORY [--output FILE]`: an etcd snapshot of the cluster, saved on the
//! operator's machine.
//!
//! On the first control plane, as root with /etc/kubernetes/admin.conf: `kubectl -n kube-system
//! exec etcd-NODE -- etcdctl ... snapshot save /var/lib/etcd/kprov-snapshot-PID.db` (kubeadm's
//! stacked etcd pod mounts /var/lib/etcd from the host and has its client certificates in
//! /etc/kubernetes/pki/etcd), then `etcdutl snapshot status` of that file. The file comes back
//! over the same SSH connection, is checked against its SHA-256 on the node, is written to FILE
//! with mode 0600 (a snapshot holds every Secret of the cluster) and is deleted from the node
//! whatever happened. An existing FILE is never overwritten.
//!
//! The default FILE is `CLUSTER-etcd-YYYYMMDDTHHMMSSZ.db` in the current directory (the node's UTC
//! clock). Restoring is `etcdutl snapshot restore` on the control plane (docs/operations.md).
//!
//! Exit codes: 0 saved; 1 the cluster cannot be reached or read, the snapshot failed, the copy
//! does not match, or FILE exists.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use super::Globals;
use super::after::{KUBECONFIG, write_private};
use super::connect::SshConnector;
use super::plan::{load_inventory, runtime};
use super::reset::last_lines;
use crate::engine::Connector;
use crate::shell::{QuoteError, quote};

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The inventory file.
    pub inventory: PathBuf,
    /// Where to write the snapshot (default: CLUSTER-etcd-TIMESTAMP.db here). Never overwritten.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
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

pub fn snapshot_script(node: &str) -> Result<String, QuoteError> {
    let pod = format!("etcd-{node}");
    let pod = quote(&pod)?;
    Ok(format!(
        r#"{KUBECONFIG}snap=/var/lib/etcd/kprov-snapshot-$$.db
trap 'rm -f "$snap" "$snap.part"' EXIT
echo "@@kprov-date $(date -u +%Y%m%dT%H%M%SZ)"
if ! out=$(kubectl -n kube-system exec {pod} -- {ETCDCTL} snapshot save "$snap" 2>&1); then
  printf '%s\n' "$out"; echo '@@kprov-failed snapshot save'; exit 0
fi
if ! status=$(kubectl -n kube-system exec {pod} -- etcdutl snapshot status "$snap" -w json 2>&1); then
  printf '%s\n' "$status"; echo '@@kprov-failed snapshot status'; exit 0
fi
echo "@@kprov-status $status"
echo "@@kprov-sha256 $(sha256sum < "$snap" | cut -d' ' -f1)"
echo @@kprov-data
base64 -w0 < "$snap"
echo
echo @@kprov-end
"#
    ))
}

pub fn parse_snapshot(out: &str) -> Result<Snapshot, String> {
    if let Some((before, what)) = out.split_once("@@kprov-failed ") {
        return Err(format!("etcd {} failed: {}", what.trim(), last_lines(before.split_once('\n').map(|(_, b)| b).unwrap_or(before))));
    }
    let field = |marker: &str| out.lines().find_map(|l| l.strip_prefix(marker)).map(str::trim);
    let taken_at = field("@@kprov-date ").ok_or_else(|| format!("unexpected output: {}", last_lines(out)))?.to_string();
    let status_json = field("@@kprov-status ").ok_or_else(|| format!("no snapshot status: {}", last_lines(out)))?;
    let status: SnapshotStatus = serde_json::from_str(status_json)
        .map_err(|e| format!("etcdutl snapshot status printed something else ({e}): {}", last_lines(status_json)))?;
    let sha256 = field("@@kprov-sha256 ").filter(|s| s.len() == 64).ok_or("no SHA-256 of the snapshot")?.to_string();
    let data = out
        .split_once("@@kprov-data\n")
        .and_then(|(_, rest)| rest.split_once("\n@@kprov-end"))
        .map(|(d, _)| d.trim())
        .ok_or("the snapshot's transfer did not finish")?;
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD.decode(data).map_err(|e| format!("the snapshot arrived damaged ({e})"))?;
    let got = crate::digest::sha256_hex(&bytes);
    if got != sha256 {
        return Err(format!("the copy's SHA-256 {got} differs from the node's {sha256}"));
    }
    if bytes.len() as u64 != status.total_size {
        return Err(format!("the copy has {} bytes, etcdutl reported {}", bytes.len(), status.total_size));
    }
    Ok(Snapshot { taken_at, status, sha256, bytes })
}

pub fn run(args: &BackupArgs, g: &Globals) -> ExitCode {
    let Some(inv) = load_inventory(&args.inventory, g) else { return ExitCode::from(1) };
    let fail = |e: miette::Report| {
        eprintln!("{e:?}");
        ExitCode::from(1)
    };
    if let Some(path) = &args.output
        && let Err(e) = refuse_existing(path)
    {
        return fail(e);
    }
    let first = inv.first_control_plane().name.clone();
    let Some(index) = inv.hosts.iter().position(|h| h.name == first) else { return ExitCode::from(1) };
    if !g.quiet {
        eprintln!("{first}: etcd snapshot");
    }
    let rt = runtime();
    let result = rt.block_on(async {
        let connector = SshConnector::new(&inv);
        let result = async {
            let cp = connector.connect(index).await.map_err(|e| format!("cannot reach the first control plane: {e}"))?;
            let out = cp.run_script(snapshot_script(&first).map_err(|e| e.to_string())?).await?;
            parse_snapshot(&out)
        }
        .await;
        connector.close_all().await;
        result
    });
    let snap = match result {
        Ok(s) => s,
        Err(e) => {
            return fail(miette::miette!(
                code = "kprov::backup::snapshot",
                help = "the cluster must be running with kubeadm's stacked etcd (kprov apply sets it up); `kprov ssh` to the control plane to look",
                "{first}: {e}; nothing was saved"
            ));
        }
    };
    let path = args.output.clone().unwrap_or_else(|| PathBuf::from(format!("{}-etcd-{}.db", inv.cluster.name, snap.taken_at)));
    if let Err(e) = refuse_existing(&path)
        .and_then(|()| write_private(&path, &snap.bytes).map(|_| ()).map_err(|e| miette::miette!("cannot write the snapshot: {e}")))
    {
        return fail(e);
    }
    println!(
        "Saved the etcd snapshot of cluster {} from {first} to {} (mode 0600): revision {}, {} keys, {} bytes, sha256 {}.",
        inv.cluster.name,
        path.display(),
        snap.status.revision,
        snap.status.total_key,
        snap.bytes.len(),
        snap.sha256
    );
    ExitCode::SUCCESS
}

fn refuse_existing(path: &Path) -> miette::Result<()> {
    if path.exists() {
        return Err(miette::miette!(
            code = "kprov::backup::exists",
            help = "choose another --output, or move the old snapshot away",
            "{} exists; a backup never overwrites a file",
            path.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(data: &[u8]) -> String {
        use base64::Engine as _;
        let sha = crate::digest::sha256_hex(data);
        format!(
            "@@kprov-date 20261125T120000Z\n@@kprov-status {{\"hash\":1,\"revision\":7,\"totalKey\":3,\"totalSize\":{},\"version\":\"3.6.0\"}}\n@@kprov-sha256 {sha}\n@@kprov-data\n{}\n@@kprov-end\n",
            data.len(),
            base64::engine::general_purpose::STANDARD.encode(data)
        )
    }

    #[test]
    fn a_snapshot_arrives_checked() {
        let s = parse_snapshot(&output(b"etcd bytes")).unwrap();
        assert_eq!(s.bytes, b"etcd bytes");
        assert_eq!(s.status.revision, 7);
        assert_eq!(s.taken_at, "20261125T120000Z");
    }

    #[test]
    fn a_damaged_or_failed_snapshot_is_an_error() {
        let damaged = output(b"etcd bytes").replace("ZXRjZCBieXRlcw==", "ZXRjZCBieXRlcX==");
        assert!(parse_snapshot(&damaged).is_err());
        let cut = output(b"etcd bytes").replace("@@kprov-end\n", "");
        assert!(parse_snapshot(&cut).unwrap_err().contains("did not finish"));
        let failed = "@@kprov-date 20261125T120000Z\nError from server (NotFound): pods \"etcd-h1\" not found\n@@kprov-failed snapshot save\n";
        let e = parse_snapshot(failed).unwrap_err();
        assert!(e.contains("snapshot save failed") && e.contains("not found"), "{e}");
    }

    #[test]
    fn the_pod_name_is_quoted() {
        assert!(snapshot_script("h1;reboot").unwrap().contains("exec 'etcd-h1;reboot' --"));
    }
}
