//! `kprov reset INVENTORY [--limit HOST,..] [--yes]`: undo what kubeadm did on the selected
//! hosts, workers first, then control planes (the first control plane last): `kubeadm reset -f`,
//! the CNI configuration in /etc/cni/net.d, the SSH user's ~/.kube/config when it is this
//! cluster's (a copy of admin.conf, or naming the cluster's API endpoint; any other kubeconfig is
//! kept), and the iptables rules and chains kube-proxy made (`KUBE-*` only: every other rule of
//! the host stays as it is). Packages, containerd and kprov's host settings stay; the next
//! `kprov apply` initialises or joins the hosts again.
//!
//! Without `--yes` it asks for the cluster's name on a terminal, and refuses when standard input
//! is not a terminal.
//!
//! Exit codes: 0 every selected host was reset; 1 refused (no `--yes` and no terminal, or the
//! typed name was wrong), invalid inventory or `--limit`, or a host failed (the others are still
//! reset; each failure names its host).

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::Globals;
use super::connect::{self, SshConnector};
use super::plan::{load_inventory, runtime};
use crate::apply::Remote;
use crate::engine::Connector;
use crate::inventory::Inventory;

#[derive(Debug, Args)]
pub struct ResetArgs {
    /// The inventory file.
    pub inventory: PathBuf,
    /// Only these hosts (comma-separated names); default: every host.
    #[arg(long, value_delimiter = ',', value_name = "HOST,...")]
    pub limit: Vec<String>,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
}

pub fn run(args: &ResetArgs, g: &Globals) -> ExitCode {
    let Some(inv) = load_inventory(&args.inventory, g) else { return ExitCode::from(1) };
    if let Err(e) = connect::check_limit(&inv, &args.limit) {
        eprintln!("{e:?}");
        return ExitCode::from(1);
    }
    let order = reset_order(&inv, &args.limit);
    let names: Vec<&str> = order.iter().map(|&i| inv.hosts[i].name.as_str()).collect();
    if !args.yes {
        let what = format!(
            "This runs `kubeadm reset -f` on {} of cluster {}, and removes their CNI configuration: they stop being part of the cluster.",
            names.join(", "),
            inv.cluster.name
        );
        if let Err(e) = confirm("reset hosts", &what, &inv.cluster.name, "the cluster's name") {
            eprintln!("{e:?}");
            return ExitCode::from(1);
        }
    }
    let rt = runtime();
    let failures = rt.block_on(async {
        let connector = SshConnector::new(&inv);
        let mut failures = 0;
        for &i in &order {
            let host = &inv.hosts[i];
            if !g.quiet {
                eprintln!("{}: resetting", host.name);
            }
            let result = match connector.connect(i).await {
                Ok(remote) => reset_host(remote.as_ref(), &inv, i).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(report) => {
                    if g.verbose > 0 {
                        for l in report.kubeadm_output.lines() {
                            eprintln!("{}:   {l}", host.name);
                        }
                    }
                    for l in &report.done {
                        println!("{}: {l}", host.name);
                    }
                }
                Err(e) => {
                    failures += 1;
                    let e = miette::miette!(
                        code = "kprov::reset::host",
                        help = "fix the cause and run kprov reset again for this host (--limit); resetting twice is harmless",
                        "{}: reset failed: {e}",
                        host.name
                    );
                    eprintln!("{e:?}");
                }
            }
        }
        connector.close_all().await;
        failures
    });
    if failures > 0 {
        eprintln!("{failures} of {} hosts failed.", order.len());
        ExitCode::from(1)
    } else {
        if !g.quiet {
            println!("Reset {}. Run kprov apply to set the cluster up again.", names.join(", "));
        }
        ExitCode::SUCCESS
    }
}

/// Indices of the hosts to reset: workers first, then control planes, the first control plane
/// last (it holds the cluster until the others are gone).
pub fn reset_order(inv: &Inventory, limit: &[String]) -> Vec<usize> {
    let selected = |i: &usize| limit.is_empty() || limit.contains(&inv.hosts[*i].name);
    let first = inv.first_control_plane().name.clone();
    let mut order: Vec<usize> = (0..inv.hosts.len()).filter(selected).filter(|&i| !inv.hosts[i].is_control_plane()).collect();
    order.extend((0..inv.hosts.len()).filter(selected).filter(|&i| inv.hosts[i].is_control_plane() && inv.hosts[i].name != first));
    order.extend((0..inv.hosts.len()).filter(selected).filter(|&i| inv.hosts[i].name == first));
    order
}

/// Asks for `expected` to be typed on the terminal. Refuses when standard input is not one.
pub fn confirm(action: &str, what: &str, expected: &str, expected_is: &str) -> miette::Result<()> {
    if !std::io::stdin().is_terminal() {
        return Err(miette::miette!(
            code = "kprov::confirm::no_terminal",
            help = "pass --yes to confirm without a terminal (in scripts and CI)",
            "refusing to {action} without --yes: standard input is not a terminal, so nobody can confirm; nothing was done"
        ));
    }
    eprintln!("{what}");
    eprint!("Type {expected_is} ({expected}) to confirm: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| miette::miette!("cannot read the confirmation: {e}"))?;
    if line.trim() != expected {
        return Err(miette::miette!(code = "kprov::confirm::mismatch", "aborted: you typed {:?}, not {expected:?}; nothing was done", line.trim()));
    }
    Ok(())
}

/// What a reset did on one host.
#[derive(Debug, Default)]
pub struct ResetReport {
    /// One sentence per thing done.
    pub done: Vec<String>,
    /// kubeadm's own output (shown with -v).
    pub kubeadm_output: String,
}

/// The reset script for one host, run as root. `user` is the SSH user (whose ~/.kube/config is
/// removed when it is this cluster's) and `endpoint` the cluster's API endpoint.
pub fn reset_script(user: &str, endpoint: &str) -> Result<String, crate::shell::QuoteError> {
    let user = crate::shell::quote(user)?;
    let endpoint = crate::shell::quote(endpoint)?;
    Ok(format!(
        r#"user={user}
endpoint={endpoint}
home=$(getent passwd "$user" | cut -d: -f6)
ours=no
if [ -n "$home" ] && [ -f "$home/.kube/config" ]; then
  if cmp -s /etc/kubernetes/admin.conf "$home/.kube/config" || grep -qF -- "$endpoint" "$home/.kube/config"; then ours=yes; fi
fi
if command -v kubeadm >/dev/null 2>&1; then
  echo '@@kprov-reset-output'
  kubeadm reset -f 2>&1
  echo "@@kprov-reset kubeadm $?"
else
  echo '@@kprov-reset kubeadm-missing'
fi
if [ -d /etc/cni/net.d ] && [ -n "$(ls -A /etc/cni/net.d 2>/dev/null)" ]; then
  if find /etc/cni/net.d -mindepth 1 -delete; then echo '@@kprov-reset cni removed'; else echo '@@kprov-reset cni failed'; fi
fi
if [ -n "$home" ] && [ -f "$home/.kube/config" ]; then
  if [ "$ours" = yes ]; then
    if rm -f "$home/.kube/config"; then echo "@@kprov-reset kubeconfig-removed $home/.kube/config"; else echo "@@kprov-reset kubeconfig-failed $home/.kube/config"; fi
  else
    echo "@@kprov-reset kubeconfig-kept $home/.kube/config"
  fi
fi
for t in iptables ip6tables; do
  command -v "$t-save" >/dev/null 2>&1 && command -v "$t-restore" >/dev/null 2>&1 || continue
  rules=$("$t-save" 2>/dev/null) || continue
  n=$(printf '%s\n' "$rules" | grep -c -- 'KUBE-')
  [ "$n" -gt 0 ] || continue
  if printf '%s\n' "$rules" | grep -v -- 'KUBE-' | "$t-restore"; then echo "@@kprov-reset $t-removed $n"; else echo "@@kprov-reset $t-failed $n"; fi
done
echo '@@kprov-reset end'
"#
    ))
}

/// Runs the reset script on host `index` of `inv` over `remote`.
pub async fn reset_host(remote: &dyn Remote, inv: &Inventory, index: usize) -> Result<ResetReport, String> {
    let host = &inv.hosts[index];
    let script = reset_script(&host.ssh.user, &inv.endpoint()).map_err(|e| e.to_string())?;
    let out = remote.run_script(script).await?;
    parse_reset(&out)
}

pub fn parse_reset(out: &str) -> Result<ResetReport, String> {
    if !out.contains("@@kprov-reset end") {
        return Err(format!("the reset script did not finish: {}", last_lines(out)));
    }
    let mut r = ResetReport::default();
    let mut problems = vec![];
    let mut in_output = false;
    for line in out.lines() {
        if line == "@@kprov-reset-output" {
            in_output = true;
            continue;
        }
        let Some(rest) = line.strip_prefix("@@kprov-reset ") else {
            if in_output {
                r.kubeadm_output.push_str(line);
                r.kubeadm_output.push('\n');
            }
            continue;
        };
        in_output = false;
        let (what, arg) = rest.split_once(' ').unwrap_or((rest, ""));
        match what {
            "kubeadm" if arg == "0" => r.done.push("kubeadm reset -f done".into()),
            "kubeadm" => problems.push(format!("kubeadm reset -f failed (exit {arg}): {}", last_lines(&r.kubeadm_output))),
            "kubeadm-missing" => r.done.push("kubeadm is not installed: nothing to reset".into()),
            "cni" if arg == "removed" => r.done.push("removed the CNI configuration in /etc/cni/net.d".into()),
            "cni" => problems.push("cannot remove the CNI configuration in /etc/cni/net.d".into()),
            "kubeconfig-removed" => r.done.push(format!("removed {arg}")),
            "kubeconfig-kept" => r.done.push(format!("kept {arg}: it is not this cluster's kubeconfig")),
            "kubeconfig-failed" => problems.push(format!("cannot remove {arg}")),
            t if t.ends_with("-removed") => {
                r.done.push(format!("removed {arg} {} lines of kube-proxy's rules and chains (KUBE-*)", t.trim_end_matches("-removed")))
            }
            t if t.ends_with("-failed") => problems.push(format!("cannot remove kube-proxy's {} rules (KUBE-*)", t.trim_end_matches("-failed"))),
            _ => {}
        }
    }
    if problems.is_empty() { Ok(r) } else { Err(problems.join("; ")) }
}

/// The last three non-empty lines of a command's output, for an error message.
pub(super) fn last_lines(s: &str) -> String {
    let lines: Vec<&str> = s.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let tail = &lines[lines.len().saturating_sub(3)..];
    if tail.is_empty() { "no output".into() } else { tail.join(" / ").chars().take(500).collect() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_quotes_the_user_and_endpoint() {
        let s = reset_script("pi; rm -rf /", "10.0.0.1:6443").unwrap();
        assert!(s.starts_with("user='pi; rm -rf /'\nendpoint=10.0.0.1:6443\n"), "{s}");
    }

    #[test]
    fn the_output_becomes_sentences_and_failures_name_the_step() {
        let out = "@@kprov-reset-output\n[reset] Stopping the kubelet service\n@@kprov-reset kubeadm 0\n@@kprov-reset cni removed\n@@kprov-reset kubeconfig-removed /root/.kube/config\n@@kprov-reset iptables-removed 12\n@@kprov-reset end\n";
        let r = parse_reset(out).unwrap();
        assert_eq!(r.kubeadm_output, "[reset] Stopping the kubelet service\n");
        assert_eq!(r.done[0], "kubeadm reset -f done");
        assert!(r.done.iter().any(|d| d == "removed /root/.kube/config"));
        assert!(r.done.iter().any(|d| d.contains("12 iptables lines")));
        let bad = "@@kprov-reset-output\nboom\n@@kprov-reset kubeadm 1\n@@kprov-reset end\n";
        assert!(parse_reset(bad).unwrap_err().contains("exit 1): boom"));
        assert!(parse_reset("sudo: a password is required\n").unwrap_err().contains("sudo: a password"));
    }
}
