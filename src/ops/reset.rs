//! Reset: undo what kubeadm did on the selected hosts, workers first, then control planes (the
//! first control plane last): `kubeadm reset -f`, the CNI configuration in /etc/cni/net.d, the
//! SSH user's ~/.kube/config when it is this cluster's (a copy of admin.conf, or naming the
//! cluster's API endpoint; any other kubeconfig is kept), and the iptables rules and chains
//! kube-proxy made (`KUBE-*` only: every other rule of the host stays as it is). Packages,
//! containerd and kprov's host settings stay; the next `kprov apply` initialises or joins the
//! hosts again.
//!
//! One batch per host (four steps, [`reset_steps`]); a host that fails does not stop the
//! others, each failure names its host.

use super::events::Sink;
use super::remote::{Step, StepError, run_steps};
use super::{Action, Confirmation, Operation, Session};
use crate::apply::Remote;
use crate::engine::Connector;
use crate::inventory::Inventory;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ResetError {
    #[error("{0}")]
    #[diagnostic(code(kprov::reset::limit))]
    Limit(String),
    #[error("{host}: reset failed: {message}")]
    #[diagnostic(code(kprov::reset::host), help("fix the cause and run kprov reset again for this host (--limit); resetting twice is harmless"))]
    Host { host: String, message: String },
    #[error("{failed} of {total} hosts failed.")]
    #[diagnostic(code(kprov::reset::failed), help("each failure is shown above with its host; resetting twice is harmless"))]
    Failed { failed: usize, total: usize },
    #[error("interrupted (Ctrl-C) before {next}: reset {}", if done.is_empty() { "nothing".to_string() } else { done.join(", ") })]
    #[diagnostic(code(kprov::reset::interrupted), help("run kprov reset again to reset the remaining hosts"))]
    Interrupted { next: String, done: Vec<String> },
}

/// Reset of the hosts named by `limit` (all when empty).
pub struct Reset {
    pub limit: Vec<String>,
    /// The hosts in reset order (inventory index, name), and the cluster's name.
    order: Vec<(usize, String)>,
    cluster: String,
}

impl Reset {
    pub fn new(limit: Vec<String>) -> Reset {
        Reset { limit, order: vec![], cluster: String::new() }
    }

    fn names(&self) -> Vec<String> {
        self.order.iter().map(|(_, h)| h.clone()).collect()
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

/// The reset of one host as four batch steps, run as root. `user` is the SSH user (whose
/// ~/.kube/config is removed when it is this cluster's) and `endpoint` the cluster's API
/// endpoint. Every line a cleanup step prints is a sentence of what it did; the first step
/// prints kubeadm's own output, then its sentence as its last line.
pub fn reset_steps(user: &str, endpoint: &str) -> Result<Vec<Step>, crate::shell::QuoteError> {
    let user = crate::shell::quote(user)?;
    let endpoint = crate::shell::quote(endpoint)?;
    let kubeadm = "if ! command -v kubeadm >/dev/null 2>&1; then echo 'kubeadm is not installed: nothing to reset'; exit 0; fi
kubeadm reset -f
# kprov's records that init or join finished go with what they vouch for.
rm -f /etc/kubernetes/kprov/init.done /etc/kubernetes/kprov/join.done
echo 'kubeadm reset -f done'
";
    let cni = "if [ -d /etc/cni/net.d ] && [ -n \"$(ls -A /etc/cni/net.d 2>/dev/null)\" ]; then
  find /etc/cni/net.d -mindepth 1 -delete
  echo 'removed the CNI configuration in /etc/cni/net.d'
fi
";
    let kubeconfig = format!(
        r#"user={user}
endpoint={endpoint}
home=$(getent passwd "$user" | cut -d: -f6 || true)
[ -n "$home" ] && [ -f "$home/.kube/config" ] || exit 0
if cmp -s /etc/kubernetes/admin.conf "$home/.kube/config" || grep -qF -- "$endpoint" "$home/.kube/config"; then
  rm -f "$home/.kube/config"
  echo "removed $home/.kube/config"
else
  echo "kept $home/.kube/config: it is not this cluster's kubeconfig"
fi
"#
    );
    let iptables = r#"for t in iptables ip6tables; do
  command -v "$t-save" >/dev/null 2>&1 && command -v "$t-restore" >/dev/null 2>&1 || continue
  rules=$("$t-save" 2>/dev/null) || continue
  n=$(printf '%s\n' "$rules" | grep -c -- 'KUBE-' || true)
  [ "$n" -gt 0 ] || continue
  printf '%s\n' "$rules" | grep -v -- 'KUBE-' | "$t-restore"
  echo "removed $n $t lines of kube-proxy's rules and chains (KUBE-*)"
done
"#;
    Ok(vec![
        Step::new("kubeadm reset -f", kubeadm),
        Step::new("removing the CNI configuration in /etc/cni/net.d", cni),
        Step::new("removing the SSH user's kubeconfig", kubeconfig),
        Step::new("removing kube-proxy's iptables rules (KUBE-*)", iptables),
    ])
}

/// What a reset did on one host.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ResetReport {
    /// One sentence per thing done.
    pub done: Vec<String>,
    /// kubeadm's own output (shown with -v).
    pub kubeadm_output: String,
}

/// The steps' outputs as sentences: kubeadm's last line, then every line of the cleanups.
pub fn report_of(outputs: &[String]) -> ResetReport {
    let mut r = ResetReport::default();
    if let Some(kubeadm) = outputs.first() {
        let (output, said) = kubeadm.trim_end().rsplit_once('\n').unwrap_or(("", kubeadm.trim_end()));
        r.kubeadm_output = output.lines().map(|l| format!("{l}\n")).collect();
        r.done.push(said.trim().to_string());
    }
    for out in outputs.iter().skip(1) {
        r.done.extend(out.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string));
    }
    r
}

/// Runs the reset of host `index` of `inv` over `remote`.
pub async fn reset_host(remote: &dyn Remote, inv: &Inventory, index: usize) -> Result<ResetReport, StepError> {
    let host = &inv.hosts[index];
    let steps = reset_steps(&host.ssh.user, &inv.endpoint()).map_err(|e| StepError::Transport(e.to_string()))?;
    Ok(report_of(&run_steps(remote, &steps).await?))
}

/// Shows what a host's reset did: kubeadm's output with `-v`, the sentences always.
pub fn show(events: &Sink, host: &str, r: &ResetReport) {
    events.output(host, &r.kubeadm_output);
    for l in &r.done {
        events.result(host, l);
    }
}

impl Operation for Reset {
    type Error = ResetError;
    const NAME: &'static str = "reset";

    async fn prepare(&mut self, s: &Session) -> Result<(), ResetError> {
        super::session::check_limit(&s.inventory, &self.limit).map_err(|e| ResetError::Limit(e.to_string()))?;
        self.order = reset_order(&s.inventory, &self.limit).into_iter().map(|i| (i, s.inventory.hosts[i].name.clone())).collect();
        self.cluster = s.inventory.cluster.name.clone();
        Ok(())
    }

    fn actions(&self) -> Vec<Action> {
        self.order
            .iter()
            .map(|(_, h)| Action::new(h, "kubeadm reset -f; remove the CNI configuration, this cluster's kubeconfig and kube-proxy's rules"))
            .collect()
    }

    fn nothing_to_do(&self) -> String {
        "No host selected: nothing to reset.".into()
    }

    fn pending(&self) -> String {
        format!("Reset pending, in this order: {}; `kprov reset --yes` carries it out.", self.names().join(", "))
    }

    fn confirmation(&self) -> Option<Confirmation> {
        Some(Confirmation {
            action: "reset hosts",
            what: format!(
                "This runs `kubeadm reset -f` on {} of cluster {}, and removes their CNI configuration: they stop being part of the cluster.",
                self.names().join(", "),
                self.cluster
            ),
            expected: self.cluster.clone(),
            expected_is: "the cluster's name",
        })
    }

    async fn run(&mut self, s: &Session) -> Result<String, ResetError> {
        let mut failed = 0;
        let mut done = vec![];
        for (i, host) in &self.order {
            if s.cancelled() {
                return Err(ResetError::Interrupted { next: host.clone(), done });
            }
            s.events.progress(host, "resetting");
            let result = match s.connector.connect(*i).await {
                Ok(remote) => reset_host(remote.as_ref(), &s.inventory, *i).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match result {
                Ok(report) => {
                    show(&s.events, host, &report);
                    done.push(host.clone());
                }
                Err(message) => {
                    failed += 1;
                    s.events.error(host, miette::Report::new(ResetError::Host { host: host.clone(), message }));
                }
            }
        }
        if failed > 0 {
            return Err(ResetError::Failed { failed, total: self.order.len() });
        }
        Ok(format!("Reset {}. Run kprov apply to set the cluster up again.", self.names().join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_quotes_the_user_and_endpoint() {
        let s = reset_steps("pi; rm -rf /", "10.0.0.1:6443").unwrap();
        assert!(s[2].script.starts_with("user='pi; rm -rf /'\nendpoint=10.0.0.1:6443\n"), "{}", s[2].script);
    }

    #[test]
    fn the_output_becomes_sentences_and_failures_name_the_step() {
        let outs = [
            "[reset] Stopping the kubelet service\nkubeadm reset -f done".to_string(),
            "removed the CNI configuration in /etc/cni/net.d".to_string(),
            "removed /root/.kube/config".to_string(),
            "removed 12 iptables lines of kube-proxy's rules and chains (KUBE-*)".to_string(),
        ];
        let r = report_of(&outs);
        assert_eq!(r.kubeadm_output, "[reset] Stopping the kubelet service\n");
        assert_eq!(r.done[0], "kubeadm reset -f done");
        assert!(r.done.iter().any(|d| d == "removed /root/.kube/config"));
        assert!(r.done.iter().any(|d| d.contains("12 iptables lines")));
        let bad = StepError::Failed { what: "kubeadm reset -f".into(), status: 1, output: "boom".into() };
        assert!(bad.to_string().contains("exit 1): boom"), "{bad}");
        let sudo = StepError::Transport("sudo: a password is required".into());
        assert!(sudo.to_string().contains("sudo: a password"));
    }

    /// The steps on this machine's own shell, against a missing kubeadm and empty places: each
    /// says what it found, and nothing fails under `set -e` (grep -c of nothing exits 1).
    #[tokio::test]
    async fn the_steps_run_clean_where_there_is_nothing_to_reset() {
        let steps = reset_steps("nobody-kprov-test", "10.255.255.1:6443").unwrap();
        // Only the steps that touch nothing on this machine: iptables-save is left out.
        let mut steps = steps[..1].to_vec();
        steps[0].script = steps[0].script.replace("command -v kubeadm", "command -v kubeadm-not-here-kprov");
        let out = run_steps(&crate::ops::remote::tests::LocalShell, &steps).await.unwrap();
        assert_eq!(report_of(&out).done, vec!["kubeadm is not installed: nothing to reset".to_string()]);
    }
}
