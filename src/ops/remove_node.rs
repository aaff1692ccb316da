//! Remove a node: from the first control plane (as root, with /etc/kubernetes/admin.conf)
//! `kubectl drain HOST --ignore-daemonsets --delete-emptydir-data`, then `kubectl delete node
//! HOST`; then on HOST the same reset as `kprov reset`. A drain that fails stops everything
//! (nothing is deleted). A node the cluster does not know is only reset.
//!
//! The first control plane is refused: it holds the cluster. The decision ([`decide`]) is a pure
//! function of the inventory and the cluster's node list.

use super::cluster::{self, KUBECONFIG, NodeStatus};
use super::remote::{Step, StepError, run_steps};
use super::reset::{reset_host, show};
use super::{Action, Confirmation, Operation, Session};
use crate::engine::Connector;
use crate::inventory::Inventory;

/// How long a drain may take before it counts as failed.
pub const DRAIN_TIMEOUT: &str = "300s";

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum RemoveNodeError {
    #[error("{host} is not a host of {inventory}")]
    #[diagnostic(code(kprov::remove_node::unknown_host), help("{hint}"))]
    UnknownHost { host: String, inventory: String, hint: String },
    #[error("{host}: refusing to remove the first control plane")]
    #[diagnostic(
        code(kprov::remove_node::first_control_plane),
        help("the first control plane holds the cluster; to take the whole cluster down use `kprov reset`")
    )]
    FirstControlPlane { host: String },
    #[error("{first}: cannot reach the first control plane to drain {host}: {message}; nothing was done")]
    #[diagnostic(code(kprov::remove_node::control_plane), help("check that the first control plane is up; `kprov ssh` to it to look"))]
    ControlPlane { first: String, host: String, message: String },
    #[error("{host}: {message} (run on the first control plane {first})")]
    #[diagnostic(
        code(kprov::remove_node::kubectl),
        help("a drain blocked by a PodDisruptionBudget names the pod; fix it and run kprov remove-node again")
    )]
    Kubectl { host: String, first: String, message: String },
    #[error("{host}: removed from the cluster, but {message}")]
    #[diagnostic(code(kprov::remove_node::reset), help("{help}"))]
    Reset { host: String, message: String, help: String },
}

/// What removing `host` takes, decided from the inventory and the cluster's nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    pub host: usize,
    pub first: usize,
    /// The cluster knows the node: drain and delete it before the reset.
    pub is_node: bool,
}

/// Refuses an unknown host and the first control plane; a node the cluster does not list is
/// only reset. `nodes` is None when the cluster was not read (a dry run's view is the same).
pub fn decide(inv: &Inventory, host: &str, nodes: &[NodeStatus]) -> Result<Removal, RemoveNodeError> {
    let Some(index) = inv.hosts.iter().position(|h| h.name == host) else {
        let hint = crate::inventory::did_you_mean(host, inv.hosts.iter().map(|h| h.name.as_str()))
            .map(|s| format!("did you mean {s}?"))
            .unwrap_or_else(|| format!("the hosts are: {}", inv.hosts.iter().map(|h| h.name.as_str()).collect::<Vec<_>>().join(", ")));
        return Err(RemoveNodeError::UnknownHost { host: host.into(), inventory: inv.name.clone(), hint });
    };
    let first_name = &inv.first_control_plane().name;
    let first = inv.hosts.iter().position(|h| &h.name == first_name).unwrap_or(0);
    if index == first {
        return Err(RemoveNodeError::FirstControlPlane { host: host.into() });
    }
    Ok(Removal { host: index, first, is_node: nodes.iter().any(|n| n.name == host) })
}

/// The drain and the delete, two steps of one batch on the first control plane.
pub fn drain_steps(node: &str) -> Result<Vec<Step>, crate::shell::QuoteError> {
    let node = crate::shell::quote(node)?;
    Ok(vec![
        Step::new(
            "kubectl drain",
            format!("{KUBECONFIG}kubectl drain {node} --ignore-daemonsets --delete-emptydir-data --timeout={DRAIN_TIMEOUT}\n"),
        ),
        Step::new("kubectl delete node", format!("{KUBECONFIG}kubectl delete node {node}\n")),
    ])
}

/// A failed drain or delete, as the operator should read it.
pub fn drain_failure(e: &StepError) -> String {
    match e {
        StepError::Failed { what, status, output } if what == "kubectl drain" => {
            format!("kubectl drain failed (exit {status}), nothing was deleted: {}", super::remote::last_lines(output))
        }
        StepError::Failed { status, output, .. } => {
            format!("drained, but kubectl delete node failed (exit {status}): {}", super::remote::last_lines(output))
        }
        other => other.to_string(),
    }
}

pub struct RemoveNode {
    pub host: String,
    removal: Option<Removal>,
    cluster: String,
    first_name: String,
}

impl RemoveNode {
    pub fn new(host: String) -> RemoveNode {
        RemoveNode { host, removal: None, cluster: String::new(), first_name: String::new() }
    }
}

impl Operation for RemoveNode {
    type Error = RemoveNodeError;
    const NAME: &'static str = "remove-node";

    async fn prepare(&mut self, s: &Session) -> Result<(), RemoveNodeError> {
        let inv = &s.inventory;
        // The refusals first: they need no connection.
        decide(inv, &self.host, &[])?;
        let first = s.first_control_plane();
        self.first_name = inv.hosts[first].name.clone();
        self.cluster = inv.cluster.name.clone();
        let unreachable = |message: String| RemoveNodeError::ControlPlane { first: self.first_name.clone(), host: self.host.clone(), message };
        let cp = s.connector.connect(first).await.map_err(|e| unreachable(e.to_string()))?;
        let nodes = cluster::read_nodes(cp.as_ref()).await.map_err(|e| RemoveNodeError::Kubectl {
            host: self.host.clone(),
            first: self.first_name.clone(),
            message: e.to_string(),
        })?;
        self.removal = Some(decide(inv, &self.host, &nodes)?);
        Ok(())
    }

    fn actions(&self) -> Vec<Action> {
        let mut actions = vec![];
        if self.removal.as_ref().is_some_and(|r| r.is_node) {
            actions.push(Action::new(&self.host, format!("kubectl drain {h}, then kubectl delete node {h} (on {})", self.first_name, h = self.host)));
        }
        actions.push(Action::new(&self.host, "kubeadm reset -f and cleanup"));
        actions
    }

    fn nothing_to_do(&self) -> String {
        String::new()
    }

    fn pending(&self) -> String {
        format!("Removal pending: {}; `kprov remove-node --yes` carries it out.", self.host)
    }

    fn confirmation(&self) -> Option<Confirmation> {
        Some(Confirmation {
            action: "remove a node",
            what: format!("This drains {h}, deletes node {h} from cluster {} and runs `kubeadm reset -f` on it.", self.cluster, h = self.host),
            expected: self.host.clone(),
            expected_is: "the host's name",
        })
    }

    async fn run(&mut self, s: &Session) -> Result<String, RemoveNodeError> {
        let Some(r) = self.removal.clone() else { return Ok(String::new()) };
        let host = self.host.clone();
        if r.is_node {
            let cp = s.connector.connect(r.first).await.map_err(|e| RemoveNodeError::ControlPlane {
                first: self.first_name.clone(),
                host: host.clone(),
                message: e.to_string(),
            })?;
            s.events.progress(&host, &format!("kubectl drain {host} --ignore-daemonsets --delete-emptydir-data, then kubectl delete node {host}"));
            let kubectl = |message: String| RemoveNodeError::Kubectl { host: host.clone(), first: self.first_name.clone(), message };
            let steps = drain_steps(&host).map_err(|e| kubectl(e.to_string()))?;
            let outs = run_steps(cp.as_ref(), &steps).await.map_err(|e| kubectl(drain_failure(&e)))?;
            for line in outs.iter().flat_map(|o| o.lines()).map(str::trim).filter(|l| !l.is_empty()) {
                s.events.result(&host, line);
            }
        } else {
            s.events.result(&host, "not a node of the cluster (already deleted)");
        }
        let reset_error = |message: String, help: String| RemoveNodeError::Reset { host: host.clone(), message, help };
        let remote = s.connector.connect(r.host).await.map_err(|e| {
            reset_error(
                format!("cannot connect to reset it: {e}"),
                format!("when the host is back: kprov reset {} --limit {host} --yes", s.inventory.name),
            )
        })?;
        s.events.progress(&host, "kubeadm reset -f");
        let report = reset_host(remote.as_ref(), &s.inventory, r.host).await.map_err(|e| {
            reset_error(format!("the reset failed: {e}"), format!("fix the cause, then: kprov reset {} --limit {host} --yes", s.inventory.name))
        })?;
        show(&s.events, &host, &report);
        Ok(format!(
            "{host} is no longer part of cluster {}. Now delete {host} from {}, or the next kprov apply joins it again.",
            self.cluster, s.inventory.name
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inventory() -> Inventory {
        let text = "cluster:\n  name: c\n  control_plane_endpoint: 10.0.0.1:6443\nhosts:\n\
            - { name: cp1, address: 10.0.0.1, roles: [control-plane] }\n\
            - { name: cp2, address: 10.0.0.2, roles: [control-plane] }\n\
            - { name: w1, address: 10.0.0.4, roles: [worker] }\n";
        crate::inventory::parse(text, "c.yaml").inventory.expect("valid")
    }

    fn node(name: &str) -> NodeStatus {
        NodeStatus { name: name.into(), ready: true, kubelet_version: "v1.34.2".into(), unschedulable: false }
    }

    #[test]
    fn the_first_control_plane_and_unknown_hosts_are_refused() {
        let inv = inventory();
        assert!(matches!(decide(&inv, "cp1", &[node("cp1")]), Err(RemoveNodeError::FirstControlPlane { .. })));
        let e = decide(&inv, "w2", &[]).unwrap_err();
        assert!(matches!(&e, RemoveNodeError::UnknownHost { hint, .. } if hint.contains("w1")), "{e:?}");
        // Another control plane may go.
        assert_eq!(decide(&inv, "cp2", &[node("cp2")]).unwrap(), Removal { host: 1, first: 0, is_node: true });
    }

    #[test]
    fn a_node_the_cluster_does_not_list_is_only_reset() {
        let inv = inventory();
        assert!(!decide(&inv, "w1", &[node("cp1")]).unwrap().is_node);
        assert!(decide(&inv, "w1", &[node("cp1"), node("w1")]).unwrap().is_node);
    }

    #[test]
    fn the_node_name_is_quoted() {
        let steps = drain_steps("h3$(reboot)").unwrap();
        assert!(steps[0].script.contains("kubectl drain 'h3$(reboot)' --ignore-daemonsets"), "{}", steps[0].script);
    }

    #[test]
    fn drain_and_delete_failures_say_what_was_deleted() {
        let blocked = StepError::Failed {
            what: "kubectl drain".into(),
            status: 1,
            output: "error: cannot evict pod as it would violate the pod's disruption budget.".into(),
        };
        let e = drain_failure(&blocked);
        assert!(e.contains("nothing was deleted") && e.contains("disruption budget"), "{e}");
        let delete = StepError::Failed { what: "kubectl delete node".into(), status: 1, output: "forbidden".into() };
        assert!(drain_failure(&delete).starts_with("drained, but kubectl delete node failed (exit 1)"));
    }
}
