//! `kprov remove-node INVENTORY HOST [--yes]`: take one node out of the cluster. From the first
//! control plane (as root, with /etc/kubernetes/admin.conf): `kubectl drain HOST
//! --ignore-daemonsets --delete-emptydir-data`, then `kubectl delete node HOST`; then on HOST the
//! same reset as `kprov reset` (`kubeadm reset -f` and its cleanup). A drain that fails stops
//! everything (nothing is deleted). A node the cluster does not know is only reset.
//!
//! The first control plane is refused: it holds the cluster (use `kprov reset` for the whole
//! cluster). The host stays in the inventory: delete it there, or the next apply joins it again.
//!
//! Without `--yes` it asks for the host's name on a terminal and refuses when standard input is
//! not a terminal.
//!
//! Exit codes: 0 the node was removed and reset; 1 refused (first control plane, unknown host,
//! no `--yes` without a terminal, wrong name typed), invalid inventory, or a step failed (the
//! message names the host and what was already done).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::Globals;
use super::connect::SshConnector;
use super::plan::{load_inventory, runtime};
use super::reset::{confirm, last_lines, reset_host};
use crate::apply::Remote;
use crate::engine::Connector;

#[derive(Debug, Args)]
pub struct RemoveNodeArgs {
    /// The inventory file.
    pub inventory: PathBuf,
    /// The host to remove (its name in the inventory, which is its node name).
    pub host: String,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
}

/// How long a drain may take before it counts as failed.
pub(super) const DRAIN_TIMEOUT: &str = "300s";

pub fn run(args: &RemoveNodeArgs, g: &Globals) -> ExitCode {
    let Some(inv) = load_inventory(&args.inventory, g) else { return ExitCode::from(1) };
    let fail = |e: miette::Report| {
        eprintln!("{e:?}");
        ExitCode::from(1)
    };
    let Some(index) = inv.hosts.iter().position(|h| h.name == args.host) else {
        let hint = crate::inventory::did_you_mean(&args.host, inv.hosts.iter().map(|h| h.name.as_str()))
            .map(|s| format!("did you mean {s}?"))
            .unwrap_or_else(|| format!("the hosts are: {}", inv.hosts.iter().map(|h| h.name.as_str()).collect::<Vec<_>>().join(", ")));
        return fail(miette::miette!(code = "kprov::remove_node::unknown_host", help = hint, "{} is not a host of {}", args.host, inv.name));
    };
    let first = inv.first_control_plane();
    let Some(first_index) = inv.hosts.iter().position(|h| h.name == first.name) else { return ExitCode::from(1) };
    if index == first_index {
        return fail(miette::miette!(
            code = "kprov::remove_node::first_control_plane",
            help = "the first control plane holds the cluster; to take the whole cluster down use `kprov reset`",
            "{}: refusing to remove the first control plane",
            args.host
        ));
    }
    if !args.yes {
        let what = format!("This drains {h}, deletes node {h} from cluster {} and runs `kubeadm reset -f` on it.", inv.cluster.name, h = args.host);
        if let Err(e) = confirm("remove a node", &what, &args.host, "the host's name") {
            return fail(e);
        }
    }
    let say = |line: &str| {
        if !g.quiet {
            eprintln!("{line}");
        }
    };
    let rt = runtime();
    let result: Result<(), miette::Report> = rt.block_on(async {
        let connector = SshConnector::new(&inv);
        let result = async {
            let cp = connector.connect(first_index).await.map_err(|e| {
                miette::miette!(
                    code = "kprov::remove_node::control_plane",
                    "{}: cannot reach the first control plane to drain {}: {e}; nothing was done",
                    first.name,
                    args.host
                )
            })?;
            match drain_and_delete(cp.as_ref(), &args.host, &say).await {
                Ok(()) => {}
                Err(e) => {
                    return Err(miette::miette!(
                        code = "kprov::remove_node::kubectl",
                        "{}: {e} (run on the first control plane {})",
                        args.host,
                        first.name
                    ));
                }
            }
            let remote = connector.connect(index).await.map_err(|e| {
                miette::miette!(
                    code = "kprov::remove_node::reset",
                    help = format!("when the host is back: kprov reset {} --limit {} --yes", inv.name, args.host),
                    "{}: removed from the cluster, but cannot connect to reset it: {e}",
                    args.host
                )
            })?;
            say(&format!("{}: kubeadm reset -f", args.host));
            let report = reset_host(remote.as_ref(), &inv, index).await.map_err(|e| {
                miette::miette!(
                    code = "kprov::remove_node::reset",
                    help = format!("fix the cause, then: kprov reset {} --limit {} --yes", inv.name, args.host),
                    "{}: removed from the cluster, but the reset failed: {e}",
                    args.host
                )
            })?;
            if g.verbose > 0 {
                for l in report.kubeadm_output.lines() {
                    eprintln!("{}:   {l}", args.host);
                }
            }
            for l in &report.done {
                println!("{}: {l}", args.host);
            }
            Ok(())
        }
        .await;
        connector.close_all().await;
        result
    });
    match result {
        Ok(()) => {
            println!(
                "{h} is no longer part of cluster {}. Now delete {h} from {}, or the next kprov apply joins it again.",
                inv.cluster.name,
                inv.name,
                h = args.host
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// On the first control plane: drain the node, then delete it. A node the cluster does not know
/// is skipped (already deleted); a failed drain stops before anything is deleted.
async fn drain_and_delete(cp: &dyn Remote, node: &str, say: &(dyn Fn(&str) + Sync)) -> Result<(), String> {
    let script = drain_script(node).map_err(|e| e.to_string())?;
    say(&format!("{node}: kubectl drain {node} --ignore-daemonsets --delete-emptydir-data, then kubectl delete node {node}"));
    let out = cp.run_script(script).await?;
    match parse_drain(&out) {
        Ok(Some(lines)) => {
            for l in lines {
                println!("{node}: {l}");
            }
            Ok(())
        }
        Ok(None) => {
            println!("{node}: not a node of the cluster (already deleted)");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

pub fn drain_script(node: &str) -> Result<String, crate::shell::QuoteError> {
    let node = crate::shell::quote(node)?;
    Ok(format!(
        r#"export KUBECONFIG=/etc/kubernetes/admin.conf
node={node}
if ! out=$(kubectl get node "$node" 2>&1); then
  case "$out" in
    *NotFound*) echo '@@kprov-node absent' ;;
    *) printf '%s\n' "$out"; echo '@@kprov-node error' ;;
  esac
  exit 0
fi
echo '@@kprov-drain-output'
kubectl drain "$node" --ignore-daemonsets --delete-emptydir-data --timeout={DRAIN_TIMEOUT} 2>&1
rc=$?
echo "@@kprov-drain $rc"
[ "$rc" -eq 0 ] || exit 0
echo '@@kprov-delete-output'
kubectl delete node "$node" 2>&1
echo "@@kprov-delete $?"
"#
    ))
}

/// `Ok(None)`: the node is unknown to the cluster. `Ok(Some(lines))`: drained and deleted,
/// with kubectl's lines.
pub fn parse_drain(out: &str) -> Result<Option<Vec<String>>, String> {
    if out.contains("@@kprov-node absent") {
        return Ok(None);
    }
    let before = |marker: &str| out.split_once(marker).map(|(b, _)| b).unwrap_or(out);
    if out.contains("@@kprov-node error") {
        return Err(format!("kubectl get node failed: {}", last_lines(before("@@kprov-node error"))));
    }
    let drain_out = out.split_once("@@kprov-drain-output\n").map(|(_, r)| r).unwrap_or_default();
    let drain_out = drain_out.split_once("@@kprov-drain ").map(|(b, _)| b).unwrap_or(drain_out);
    let status = |marker: &str| out.lines().find_map(|l| l.strip_prefix(marker)).map(str::trim);
    match status("@@kprov-drain ") {
        Some("0") => {}
        Some(rc) => return Err(format!("kubectl drain failed (exit {rc}), nothing was deleted: {}", last_lines(drain_out))),
        None => return Err(format!("unexpected output: {}", last_lines(out))),
    }
    let delete_out = out.split_once("@@kprov-delete-output\n").map(|(_, r)| r).unwrap_or_default();
    let delete_out = delete_out.split_once("@@kprov-delete ").map(|(b, _)| b).unwrap_or(delete_out);
    match status("@@kprov-delete ") {
        Some("0") => {}
        Some(rc) => return Err(format!("drained, but kubectl delete node failed (exit {rc}): {}", last_lines(delete_out))),
        None => return Err(format!("drained, but kubectl delete node did not finish: {}", last_lines(out))),
    }
    Ok(Some(drain_out.lines().chain(delete_out.lines()).map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_name_is_quoted() {
        assert!(drain_script("h3$(reboot)").unwrap().contains("node='h3$(reboot)'\n"));
    }

    #[test]
    fn drain_and_delete_results_are_read() {
        let ok = "@@kprov-drain-output\nnode/h3 cordoned\nnode/h3 drained\n@@kprov-drain 0\n@@kprov-delete-output\nnode \"h3\" deleted\n@@kprov-delete 0\n";
        assert_eq!(parse_drain(ok).unwrap().unwrap(), vec!["node/h3 cordoned", "node/h3 drained", "node \"h3\" deleted"]);
        assert_eq!(parse_drain("@@kprov-node absent\n").unwrap(), None);
        let blocked = "@@kprov-drain-output\nerror: cannot evict pod as it would violate the pod's disruption budget.\n@@kprov-drain 1\n";
        let e = parse_drain(blocked).unwrap_err();
        assert!(e.contains("nothing was deleted") && e.contains("disruption budget"), "{e}");
        let e = parse_drain("The connection to the server 10.0.0.1:6443 was refused\n@@kprov-node error\n").unwrap_err();
        assert!(e.contains("was refused"), "{e}");
    }
}
