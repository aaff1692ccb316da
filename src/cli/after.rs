//! After an apply: is the cluster what the inventory asked for? Every node the run covers is
//! Ready (waited for after a run that changed something), optionally the guide's smoke test (an
//! nginx deployment with 3 replicas rolls out, then is removed), and optionally the admin
//! kubeconfig written to the operator's machine with mode 0600.
//!
//! All of it runs on the first control plane through the connection the run already holds, as
//! root with `/etc/kubernetes/admin.conf`. Nothing here prints the admin kubeconfig.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::apply::Remote;
use crate::engine::{Connector, Engine, Gathered};
use crate::inventory::Inventory;

/// Roles whose hosts end up as nodes of the cluster.
const CLUSTER_ROLES: [&str; 3] = ["control-plane-init", "control-plane-join", "worker-join"];
/// How long nodes get to become Ready after a run that changed something (a CNI starting).
const READY_WAIT_CHANGED: Duration = Duration::from_secs(300);
/// ... and after a run that changed nothing.
const READY_WAIT_UNCHANGED: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_secs(5);
const SMOKE_NAME: &str = "kprov-smoke-test";

/// What the after-steps found, for the summary and `--json`.
#[derive(Debug, Default, Serialize)]
pub struct AfterReport {
    /// Nodes expected, and those found Ready.
    pub nodes_expected: Vec<String>,
    pub nodes_ready: Vec<String>,
    /// `Some(true)` when the smoke test rolled out.
    pub smoke_test: Option<bool>,
    /// Where admin.conf was written.
    pub admin_conf: Option<PathBuf>,
    /// Each a sentence naming what is wrong; non-empty makes apply exit 1.
    pub problems: Vec<String>,
}

/// The nodes the run covers: hosts with a task of a cluster role in the graph (so `--limit`
/// and `--tags` narrow the check as they narrow the run).
pub fn expected_nodes(engine: &Engine) -> Vec<String> {
    let set: BTreeSet<String> =
        engine.graph.tasks().filter(|(_, t)| CLUSTER_ROLES.contains(&t.role.as_str())).map(|(_, t)| t.host_name.clone()).collect();
    set.into_iter().collect()
}

/// Run the after-steps. `changed` says whether the apply changed anything; `say` prints a
/// progress line.
pub async fn run(
    inv: &Inventory,
    engine: &Engine,
    gathered: &Gathered,
    connector: &dyn Connector,
    changed: bool,
    say: &(dyn Fn(&str) + Sync),
) -> AfterReport {
    let mut report = AfterReport { nodes_expected: expected_nodes(engine), ..Default::default() };
    let wants_cluster = !report.nodes_expected.is_empty();
    if !wants_cluster && inv.cluster.fetch_admin_conf.is_none() {
        return report;
    }
    let first = inv.first_control_plane();
    let Some(index) = inv.hosts.iter().position(|h| h.name == first.name) else { return report };
    let remote: Arc<dyn Remote> = match gathered.remotes.get(index).cloned().flatten() {
        Some(r) => r,
        None => match connector.connect(index).await {
            Ok(r) => r,
            Err(e) => {
                report.problems.push(format!("cannot reach the first control plane {} to check the cluster: {e}", first.name));
                return report;
            }
        },
    };

    if wants_cluster {
        let wait = if changed { READY_WAIT_CHANGED } else { READY_WAIT_UNCHANGED };
        match wait_ready(remote.as_ref(), &report.nodes_expected, wait).await {
            Ok(ready) => {
                say(&format!("cluster: {}/{} nodes Ready", ready.len(), report.nodes_expected.len()));
                let missing: Vec<&String> = report.nodes_expected.iter().filter(|n| !ready.contains(n)).collect();
                if !missing.is_empty() {
                    report.problems.push(format!(
                        "{} not Ready after {}s: {} (check `kubectl get nodes` and the CNI's pods on {})",
                        if missing.len() == 1 { "node" } else { "nodes" },
                        wait.as_secs(),
                        missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
                        first.name
                    ));
                }
                report.nodes_ready = ready;
            }
            Err(e) => report.problems.push(format!("cannot list the cluster's nodes on {}: {e}", first.name)),
        }
        if inv.cluster.smoke_test && report.problems.is_empty() {
            say("cluster: smoke test (nginx deployment, 3 replicas)");
            match smoke_test(remote.as_ref()).await {
                Ok(()) => {
                    say("cluster: smoke test passed");
                    report.smoke_test = Some(true);
                }
                Err(e) => {
                    report.smoke_test = Some(false);
                    report.problems.push(format!("smoke test failed on {}: {e}", first.name));
                }
            }
        }
    }
    if let Some(path) = &inv.cluster.fetch_admin_conf {
        match fetch_admin_conf(remote.as_ref(), path).await {
            Ok(written) => {
                say(&format!("cluster: admin kubeconfig {} {}", if written { "written to" } else { "unchanged at" }, path.display()));
                report.admin_conf = Some(path.clone());
            }
            Err(e) => report.problems.push(format!("cannot fetch admin.conf from {} to {}: {e}", first.name, path.display())),
        }
    }
    report
}

pub(super) const KUBECONFIG: &str = "export KUBECONFIG=/etc/kubernetes/admin.conf\n";
/// Lists the nodes as JSON between markers; read by [`parse_node_list`].
pub(super) const NODES_SCRIPT: &str = "echo @@kprov-nodes; kubectl get nodes -o json 2>&1; echo \"@@kprov-nodes-end $?\"\n";

/// What `kubectl get nodes -o json` says of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub name: String,
    pub ready: bool,
    /// `status.nodeInfo.kubeletVersion`, e.g. v1.34.2.
    pub kubelet_version: String,
    /// Cordoned (`spec.unschedulable`).
    pub unschedulable: bool,
}

/// Polls `kubectl get nodes -o json` until every expected node is Ready or `wait` is over.
/// Returns the expected nodes found Ready at the last look.
async fn wait_ready(remote: &dyn Remote, expected: &[String], wait: Duration) -> Result<Vec<String>, String> {
    let started = Instant::now();
    let script = format!("{KUBECONFIG}{NODES_SCRIPT}");
    let mut last_error;
    loop {
        let out = remote.run_script(script.clone()).await?;
        match parse_nodes(&out) {
            Ok(ready) => {
                let ready: Vec<String> = expected.iter().filter(|n| ready.contains(*n)).cloned().collect();
                if ready.len() == expected.len() || started.elapsed() >= wait {
                    return Ok(ready);
                }
                last_error = None;
            }
            Err(e) => last_error = Some(e),
        }
        if started.elapsed() >= wait {
            return Err(last_error.unwrap_or_else(|| "no answer".into()));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The Ready nodes in the output of [`NODES_SCRIPT`].
pub fn parse_nodes(out: &str) -> Result<BTreeSet<String>, String> {
    Ok(parse_node_list(out)?.into_iter().filter(|n| n.ready).map(|n| n.name).collect())
}

/// Every node in the output of [`NODES_SCRIPT`].
pub fn parse_node_list(out: &str) -> Result<Vec<NodeStatus>, String> {
    let body = out.split_once("@@kprov-nodes\n").map(|(_, b)| b).ok_or_else(|| first_line(out))?;
    let (json, status) = body.rsplit_once("@@kprov-nodes-end ").ok_or_else(|| first_line(body))?;
    if status.trim() != "0" {
        return Err(format!("kubectl get nodes failed: {}", first_line(json)));
    }
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| format!("kubectl get nodes -o json printed something else ({e})"))?;
    let items = v.get("items").and_then(|i| i.as_array()).ok_or("kubectl get nodes -o json has no items")?;
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

pub(super) fn first_line(s: &str) -> String {
    s.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("no output").chars().take(300).collect()
}

/// The guide's smoke test: an nginx deployment with 3 replicas must roll out; it is removed
/// afterwards whatever happened.
async fn smoke_test(remote: &dyn Remote) -> Result<(), String> {
    let script = format!(
        "{KUBECONFIG}kubectl apply -f - >/dev/null <<'EOF' || {{ echo '@@kprov-smoke apply failed'; exit 0; }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {SMOKE_NAME}
  namespace: default
  labels:
    app.kubernetes.io/managed-by: kprov
spec:
  replicas: 3
  selector:
    matchLabels:
      app: {SMOKE_NAME}
  template:
    metadata:
      labels:
        app: {SMOKE_NAME}
    spec:
      containers:
        - name: nginx
          image: nginx:stable
          ports:
            - containerPort: 80
EOF
out=$(kubectl rollout status deployment/{SMOKE_NAME} -n default --timeout=180s 2>&1); rc=$?
kubectl delete deployment {SMOKE_NAME} -n default --ignore-not-found >/dev/null 2>&1
if [ $rc -eq 0 ]; then echo '@@kprov-smoke ok'; else printf '@@kprov-smoke %s\\n' \"$out\"; fi
"
    );
    let out = remote.run_script(script).await?;
    match out.split_once("@@kprov-smoke ") {
        Some((_, rest)) if rest.trim() == "ok" => Ok(()),
        Some((_, rest)) => Err(first_line(rest)),
        None => Err(first_line(&out)),
    }
}

/// Copies /etc/kubernetes/admin.conf to `path` with mode 0600 (written to a temporary file
/// beside it, then renamed). Returns false when the file there already had that content.
async fn fetch_admin_conf(remote: &dyn Remote, path: &Path) -> Result<bool, String> {
    let out = remote
        .run_script("if [ -f /etc/kubernetes/admin.conf ]; then echo @@kprov-admin; cat /etc/kubernetes/admin.conf; echo; echo @@kprov-admin-end; else echo @@kprov-admin-missing; fi\n".into())
        .await?;
    if out.contains("@@kprov-admin-missing") {
        return Err("the cluster is not initialised yet (no /etc/kubernetes/admin.conf)".into());
    }
    let body = out
        .split_once("@@kprov-admin\n")
        .and_then(|(_, b)| b.rsplit_once("\n@@kprov-admin-end"))
        .map(|(b, _)| b.strip_suffix('\n').unwrap_or(b))
        .ok_or("unexpected output from the control plane")?;
    let content = format!("{body}\n");
    write_private(path, content.as_bytes())
}

/// Atomically writes `content` to `path` with mode 0600; false if it was already there.
pub fn write_private(path: &Path, content: &[u8]) -> Result<bool, String> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if let Ok(old) = std::fs::read(path) {
        let private = std::fs::metadata(path).map(|m| m.permissions().mode() & 0o077 == 0).unwrap_or(false);
        if old == content && private {
            return Ok(false);
        }
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "admin.conf".into());
    let tmp = dir.join(format!(".{name}.kprov-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("{}: {e}", path.display()));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_nodes_are_read_from_kubectl_json() {
        let out = "noise\n@@kprov-nodes\n{\"items\":[\
            {\"metadata\":{\"name\":\"cp1\"},\"status\":{\"conditions\":[{\"type\":\"MemoryPressure\",\"status\":\"False\"},{\"type\":\"Ready\",\"status\":\"True\"}]}},\
            {\"metadata\":{\"name\":\"w1\"},\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\"}]}},\
            {\"metadata\":{\"name\":\"w2\"},\"status\":{}}]}\n@@kprov-nodes-end 0\n";
        let ready = parse_nodes(out).unwrap();
        assert_eq!(ready.into_iter().collect::<Vec<_>>(), vec!["cp1".to_string()]);
        let out = "@@kprov-nodes\n{\"items\":[{\"metadata\":{\"name\":\"w1\"},\"spec\":{\"unschedulable\":true},\
            \"status\":{\"nodeInfo\":{\"kubeletVersion\":\"v1.33.6\"}}}]}\n@@kprov-nodes-end 0\n";
        let all = parse_node_list(out).unwrap();
        assert_eq!(all, vec![NodeStatus { name: "w1".into(), ready: false, kubelet_version: "v1.33.6".into(), unschedulable: true }]);
    }

    #[test]
    fn a_failing_kubectl_is_an_error_with_its_message() {
        let out = "@@kprov-nodes\nThe connection to the server 10.0.0.1:6443 was refused\n@@kprov-nodes-end 1\n";
        let e = parse_nodes(out).unwrap_err();
        assert!(e.contains("connection to the server 10.0.0.1:6443 was refused"), "{e}");
        assert!(parse_nodes("sudo: a password is required\n").unwrap_err().contains("sudo: a password"));
        assert!(parse_nodes("@@kprov-nodes\n{not json\n@@kprov-nodes-end 0\n").unwrap_err().contains("something else"));
    }

    #[test]
    fn admin_conf_is_written_private_and_atomically() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/admin.conf");
        assert!(write_private(&path, b"apiVersion: v1\n").unwrap());
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(!write_private(&path, b"apiVersion: v1\n").unwrap(), "same content: untouched");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(write_private(&path, b"apiVersion: v1\n").unwrap(), "a readable copy is rewritten private");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1, "no temporary file left");
    }
}
