//! Cluster reads as facts, like host facts: each is a [`Step`] (a command run as root with the
//! admin kubeconfig on the first control plane) and a parser of its output into a typed value.
//! The parsers are tested against recorded outputs in tests/fixtures/cluster/.

use serde::Serialize;

use super::remote::{Step, StepError, run_steps};
use crate::apply::Remote;

/// Runs kubectl as the cluster's admin (on a control plane, as root).
pub const KUBECONFIG: &str = "export KUBECONFIG=/etc/kubernetes/admin.conf\n";

/// What `kubectl get nodes -o json` says of one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeStatus {
    pub name: String,
    pub ready: bool,
    /// `status.nodeInfo.kubeletVersion`, e.g. v1.34.2.
    pub kubelet_version: String,
    /// Cordoned (`spec.unschedulable`).
    pub unschedulable: bool,
}

/// The cluster as the first control plane sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterState {
    /// The API server's version (`serverVersion.gitVersion`).
    pub server: String,
    pub nodes: Vec<NodeStatus>,
}

/// A cluster read that failed or printed something else.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Step(#[from] StepError),
    #[error("{command} printed something else ({reason}): {}", first_line(output))]
    Unreadable { command: &'static str, reason: String, output: String },
}

pub fn nodes_step() -> Step {
    Step::new("kubectl get nodes", format!("{KUBECONFIG}kubectl get nodes -o json\n"))
}

pub fn version_step() -> Step {
    Step::new("kubectl version", format!("{KUBECONFIG}kubectl version -o json\n"))
}

/// The JSON document in a command's output (kubectl may print warnings before it).
fn json_of(command: &'static str, out: &str) -> Result<serde_json::Value, ReadError> {
    let start = out.find('{').unwrap_or(out.len());
    serde_json::from_str(&out[start..]).map_err(|e| ReadError::Unreadable { command, reason: e.to_string(), output: out.to_string() })
}

/// Every node in the output of `kubectl get nodes -o json`.
pub fn parse_nodes(out: &str) -> Result<Vec<NodeStatus>, ReadError> {
    const CMD: &str = "kubectl get nodes -o json";
    let v = json_of(CMD, out)?;
    let items = v.get("items").and_then(|i| i.as_array()).ok_or_else(|| ReadError::Unreadable {
        command: CMD,
        reason: "no items".into(),
        output: out.to_string(),
    })?;
    Ok(items
        .iter()
        .filter_map(|n| {
            let name = n.pointer("/metadata/name").and_then(|s| s.as_str())?.to_string();
            let ready = n
                .pointer("/status/conditions")
                .and_then(|c| c.as_array())
                .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"));
            let kubelet_version = n.pointer("/status/nodeInfo/kubeletVersion").and_then(|s| s.as_str()).unwrap_or_default().to_string();
            let unschedulable = n.pointer("/spec/unschedulable").and_then(|s| s.as_bool()).unwrap_or(false);
            Some(NodeStatus { name, ready, kubelet_version, unschedulable })
        })
        .collect())
}

/// The API server's version in the output of `kubectl version -o json`.
pub fn parse_server_version(out: &str) -> Result<String, ReadError> {
    const CMD: &str = "kubectl version -o json";
    let v = json_of(CMD, out)?;
    v.pointer("/serverVersion/gitVersion").and_then(|s| s.as_str()).map(str::to_string).ok_or_else(|| ReadError::Unreadable {
        command: CMD,
        reason: "no serverVersion".into(),
        output: out.to_string(),
    })
}

/// The nodes, read on `cp`.
pub async fn read_nodes(cp: &dyn Remote) -> Result<Vec<NodeStatus>, ReadError> {
    let out = run_steps(cp, &[nodes_step()]).await?;
    parse_nodes(out.first().map(String::as_str).unwrap_or_default())
}

/// The server version and the nodes, in one round trip on `cp`.
pub async fn read_state(cp: &dyn Remote) -> Result<ClusterState, ReadError> {
    let out = run_steps(cp, &[version_step(), nodes_step()]).await?;
    let server = parse_server_version(out.first().map(String::as_str).unwrap_or_default())?;
    let nodes = parse_nodes(out.get(1).map(String::as_str).unwrap_or_default())?;
    Ok(ClusterState { server, nodes })
}

pub fn first_line(s: &str) -> String {
    s.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("no output").chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!("{}/tests/fixtures/cluster/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn nodes_are_read_with_readiness_version_and_cordon() {
        let nodes = parse_nodes(&fixture("nodes-mid-upgrade.json")).unwrap();
        let n = |name: &str| nodes.iter().find(|n| n.name == name).unwrap().clone();
        assert_eq!(n("h1"), NodeStatus { name: "h1".into(), ready: true, kubelet_version: "v1.34.2".into(), unschedulable: false });
        assert_eq!(n("h2"), NodeStatus { name: "h2".into(), ready: true, kubelet_version: "v1.33.6".into(), unschedulable: true });
        assert_eq!(n("h3"), NodeStatus { name: "h3".into(), ready: false, kubelet_version: "v1.33.6".into(), unschedulable: false });
        // A node without conditions yet (just registered) is not Ready.
        assert!(!n("h4").ready);
    }

    #[test]
    fn a_warning_before_the_document_is_skipped() {
        let out = format!("Warning: v1 ComponentStatus is deprecated\n{}", fixture("nodes-mid-upgrade.json"));
        assert_eq!(parse_nodes(&out).unwrap().len(), 4);
    }

    #[test]
    fn the_server_version_is_read() {
        assert_eq!(parse_server_version(&fixture("version.json")).unwrap(), "v1.33.6");
        let e = parse_server_version("The connection to the server 10.0.0.1:6443 was refused - did you specify the right host or port?").unwrap_err();
        assert!(e.to_string().contains("was refused"), "{e}");
    }

    #[test]
    fn something_else_is_an_error_naming_the_command() {
        let e = parse_nodes("{not json").unwrap_err();
        assert!(e.to_string().starts_with("kubectl get nodes -o json printed something else"), "{e}");
        assert!(parse_nodes("{\"kind\":\"Status\"}").unwrap_err().to_string().contains("no items"));
    }
}
