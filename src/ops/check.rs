//! After an apply: is the cluster what the inventory asked for? Every node the run covers is
//! Ready (waited for after a run that changed something), optionally the guide's smoke test (an
//! nginx deployment with 3 replicas rolls out, then is removed), and optionally the admin
//! kubeconfig written to the operator's machine with mode 0600.
//!
//! All of it runs on the first control plane through the connection the run already holds, as
//! root with `/etc/kubernetes/admin.conf`, as steps of the batch protocol ([`super::remote`]).
//! Nothing here prints the admin kubeconfig.
//!
//! The wait for Ready nodes says what it awaits and for how long, then every 30 s which nodes
//! are still not Ready ([`Waiting`]); its timeout names them and what to check.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::cluster::{self, KUBECONFIG, first_line};
use super::events::{WaitTicker, duration, waiting_line};
use super::remote::{Step, StepError, run_step};
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
/// How often a long wait says it is still waiting.
const WAIT_REPORT: Duration = Duration::from_secs(30);
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

/// A wait that is taking a while, for a `waiting` event or a "still waiting" line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Waiting {
    /// `for 3 nodes to be Ready`.
    pub what: String,
    pub elapsed_s: u64,
    pub limit_s: u64,
    /// What it still waits for (the nodes not Ready yet).
    pub pending: Vec<String>,
}

impl Waiting {
    /// `still waiting for 3 nodes to be Ready: 30s of up to 5m (not yet: h2, h3)`.
    pub fn line(&self) -> String {
        waiting_line(&self.what, self.elapsed_s, self.limit_s, &self.pending)
    }
}

/// Run the after-steps. `changed` says whether the apply changed anything; `say` prints a
/// progress line, `waiting` reports a long wait.
pub async fn run(
    inv: &Inventory,
    engine: &Engine,
    gathered: &Gathered,
    connector: &dyn Connector,
    changed: bool,
    say: &(dyn Fn(&str) + Sync),
    waiting: &(dyn Fn(&Waiting) + Sync),
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
        let n = report.nodes_expected.len();
        say(&format!("cluster: waiting for {n} {} to be Ready (up to {})", if n == 1 { "node" } else { "nodes" }, duration(wait.as_secs())));
        match wait_ready(remote.as_ref(), &report.nodes_expected, wait, WAIT_REPORT, waiting).await {
            Ok(ready) => {
                say(&format!("cluster: {}/{} nodes Ready", ready.len(), report.nodes_expected.len()));
                let missing: Vec<&String> = report.nodes_expected.iter().filter(|n| !ready.contains(n)).collect();
                if !missing.is_empty() {
                    report.problems.push(not_ready_problem(&missing, wait, &first.name));
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

/// The problem a Ready wait that ran out reports: the nodes, how long, and what to check.
pub fn not_ready_problem(missing: &[&String], wait: Duration, first: &str) -> String {
    format!(
        "{} not Ready after {}s: {} (check `kubectl get nodes` and the CNI's pods on {first}; `kubectl describe node NAME` says why)",
        if missing.len() == 1 { "node" } else { "nodes" },
        wait.as_secs(),
        missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
    )
}

/// Polls the cluster's nodes until every expected node is Ready or `wait` is over, reporting
/// the wait every `every` with the nodes still not Ready. Returns the expected nodes found
/// Ready at the last look.
async fn wait_ready(
    remote: &dyn Remote,
    expected: &[String],
    wait: Duration,
    every: Duration,
    waiting: &(dyn Fn(&Waiting) + Sync),
) -> Result<Vec<String>, String> {
    let mut ticker = WaitTicker::new(every);
    let mut last_error;
    let what = format!("for {} {} to be Ready", expected.len(), if expected.len() == 1 { "node" } else { "nodes" });
    let mut pending: Vec<String> = expected.to_vec();
    loop {
        match cluster::read_nodes(remote).await {
            Ok(nodes) => {
                let ready = ready_of(&nodes, expected);
                if ready.len() == expected.len() || ticker.elapsed() >= wait {
                    return Ok(ready);
                }
                pending = expected.iter().filter(|n| !ready.contains(n)).cloned().collect();
                last_error = None;
            }
            Err(cluster::ReadError::Step(StepError::Transport(e))) => return Err(e),
            Err(e) => last_error = Some(e.to_string()),
        }
        if ticker.elapsed() >= wait {
            return Err(last_error.unwrap_or_else(|| "no answer".into()));
        }
        if ticker.due() {
            waiting(&Waiting { what: what.clone(), elapsed_s: ticker.elapsed().as_secs(), limit_s: wait.as_secs(), pending: pending.clone() });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The expected nodes that are Ready, in the expected order.
pub fn ready_of(nodes: &[cluster::NodeStatus], expected: &[String]) -> Vec<String> {
    expected.iter().filter(|e| nodes.iter().any(|n| &n.name == *e && n.ready)).cloned().collect()
}

/// The guide's smoke test: an nginx deployment with 3 replicas must roll out; it is removed
/// afterwards whatever happened.
async fn smoke_test(remote: &dyn Remote) -> Result<(), String> {
    let script = format!(
        "{KUBECONFIG}kubectl apply -f - >/dev/null <<'EOF'
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
rc=0
kubectl rollout status deployment/{SMOKE_NAME} -n default --timeout=180s || rc=$?
kubectl delete deployment {SMOKE_NAME} -n default --ignore-not-found >/dev/null 2>&1 || true
exit $rc
"
    );
    match run_step(remote, Step::new("the smoke test", script)).await {
        Ok(_) => Ok(()),
        Err(StepError::Failed { output, .. }) => Err(first_line(&output)),
        Err(e) => Err(e.to_string()),
    }
}

/// Copies /etc/kubernetes/admin.conf to `path` with mode 0600 (written to a temporary file
/// beside it, then renamed). Returns false when the file there already had that content.
async fn fetch_admin_conf(remote: &dyn Remote, path: &Path) -> Result<bool, String> {
    // The batch protocol trims a step's output; a kubeconfig ends with one newline.
    let step = Step::new(
        "reading admin.conf",
        "[ -f /etc/kubernetes/admin.conf ] || { echo 'no /etc/kubernetes/admin.conf'; exit 3; }\ncat /etc/kubernetes/admin.conf\n",
    );
    let body = match run_step(remote, step).await {
        Ok(body) => body,
        Err(StepError::Failed { status: 3, .. }) => return Err("the cluster is not initialised yet (no /etc/kubernetes/admin.conf)".into()),
        Err(e) => return Err(e.to_string()),
    };
    let content = format!("{}\n", body.trim_end_matches('\n'));
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
    fn ready_nodes_are_the_expected_nodes_with_a_ready_condition() {
        let path = format!("{}/tests/fixtures/cluster/nodes-mid-upgrade.json", env!("CARGO_MANIFEST_DIR"));
        let nodes = cluster::parse_nodes(&std::fs::read_to_string(path).unwrap()).unwrap();
        let expected: Vec<String> = ["h3", "h1", "h4", "h9"].iter().map(|s| s.to_string()).collect();
        assert_eq!(ready_of(&nodes, &expected), vec!["h1".to_string()]);
    }

    #[test]
    fn a_timeout_names_the_nodes_and_what_to_check() {
        let (h2, h3) = ("h2".to_string(), "h3".to_string());
        let p = not_ready_problem(&[&h2, &h3], Duration::from_secs(300), "h1");
        assert!(p.starts_with("nodes not Ready after 300s: h2, h3 (check `kubectl get nodes`"), "{p}");
        assert!(p.contains("on h1") && p.contains("kubectl describe node"), "{p}");
        let w = Waiting { what: "for 3 nodes to be Ready".into(), elapsed_s: 60, limit_s: 300, pending: vec![h3] };
        assert_eq!(w.line(), "still waiting for 3 nodes to be Ready: 1m of up to 5m (not yet: h3)");
    }

    /// A control plane whose kubectl (a script on PATH) always lists h1 Ready and h2 NotReady.
    struct StuckCluster(tempfile::TempDir);

    impl StuckCluster {
        fn new() -> StuckCluster {
            use std::os::unix::fs::PermissionsExt;
            let dir = tempfile::tempdir().unwrap();
            let json = r#"{"items":[{"metadata":{"name":"h1"},"status":{"conditions":[{"type":"Ready","status":"True"}]}},{"metadata":{"name":"h2"},"status":{"conditions":[{"type":"Ready","status":"False"}]}}]}"#;
            let kubectl = dir.path().join("kubectl");
            std::fs::write(&kubectl, format!("#!/bin/sh\necho '{json}'\n")).unwrap();
            std::fs::set_permissions(&kubectl, std::fs::Permissions::from_mode(0o755)).unwrap();
            StuckCluster(dir)
        }

        fn with_path(&self, script: String) -> String {
            script.replacen("PATH=", &format!("PATH={}:", self.0.path().display()), 1)
        }
    }

    impl Remote for StuckCluster {
        fn run_script(&self, script: String) -> crate::apply::BoxFuture<'_, Result<String, String>> {
            Box::pin(async move { crate::ops::remote::tests::LocalShell.run_script(self.with_path(script)).await })
        }

        fn run_script_output(&self, script: String) -> crate::apply::BoxFuture<'_, Result<crate::apply::ScriptOutput, String>> {
            Box::pin(async move { crate::ops::remote::tests::LocalShell.run_script_output(self.with_path(script)).await })
        }

        fn reboot(&self, _: Duration) -> crate::apply::BoxFuture<'_, Result<(), String>> {
            Box::pin(async { Err("no".into()) })
        }
    }

    #[tokio::test]
    async fn the_wait_reports_itself_with_the_nodes_not_ready() {
        let seen: std::sync::Mutex<Vec<Waiting>> = std::sync::Mutex::new(vec![]);
        let expected = vec!["h1".to_string(), "h2".to_string()];
        let remote = StuckCluster::new();
        let ready = wait_ready(&remote, &expected, Duration::from_secs(7), Duration::from_secs(4), &|w| seen.lock().unwrap().push(w.clone())).await;
        assert_eq!(ready.unwrap(), vec!["h1".to_string()]);
        let seen = seen.into_inner().unwrap();
        assert!(!seen.is_empty(), "no waiting report in 7s");
        assert_eq!(seen[0].pending, vec!["h2".to_string()]);
        assert_eq!((seen[0].limit_s, seen[0].what.as_str()), (7, "for 2 nodes to be Ready"));
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
