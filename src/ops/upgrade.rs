//! Upgrade: move a running cluster to
//! the Kubernetes release the inventory now names (`cluster.kubernetes_version`), in kubeadm's
//! documented order:
//!
//! 1. the first control plane: its Kubernetes apt repository switched to the new minor (the
//!    inventory's `apt` role, run as apply runs it), kubeadm installed at the new version and
//!    held, `kubeadm upgrade apply --yes VERSION`, the node drained, kubelet and kubectl installed
//!    and held, the kubelet restarted, the node uncordoned and waited for until it is Ready at the
//!    new version;
//! 2. every other control plane, one at a time, the same with `kubeadm upgrade node`;
//! 3. the workers, `--workers-at-once` at a time (default 1), the same with `kubeadm upgrade node`.
//!
//! kubeadm moves one minor at a time: the inventory may name the cluster's minor (a newer patch
//! release) or the next one; a downgrade or a skipped minor is refused before anything changes,
//! and so is a cluster with a node that is not Ready. A host whose node already runs the target
//! version and is schedulable is skipped, so an upgrade that stopped resumes when run again. The
//! first failure stops everything: nothing further starts, and the message names the host, the
//! step, and whether the node was left cordoned.
//!
//! Before changing anything it shows the plan and asks for the cluster's name (through
//! [`super::drive`]). The decisions ([`check_step`], [`plan_upgrade`], [`not_ready`],
//! [`stopped`]) are pure functions of the inventory and the cluster's state, tested without SSH.
//! Every remote step is a step of the batch protocol ([`super::remote`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::cluster::{self, KUBECONFIG, NodeStatus};
use super::converge::{Scope, prepare};
use super::events::Sink;
use super::remote::{Step, StepError, last_lines, run_step};
use super::remove_node::DRAIN_TIMEOUT;
use super::{Action, Confirmation, Operation, Session};
use crate::apply::{ApplyOptions, Remote, StepStatus, apply};
use crate::engine::Connector;
use crate::engine::context::package_version;
use crate::inventory::Inventory;
use crate::plan::Outcome;
use crate::resources::apt_packages::{install_script, minor_of};
use crate::shell::{QuoteError, quote};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum UpgradeError {
    #[error("{first}: cannot reach the first control plane: {message}; nothing was done")]
    #[diagnostic(code(kprov::upgrade::control_plane), help("check that the first control plane is up and reachable over SSH (`kprov ssh`)"))]
    ControlPlane { first: String, message: String },
    #[error("{first}: cannot read the cluster's version and nodes: {message}; nothing was done")]
    #[diagnostic(code(kprov::upgrade::cluster), help("kprov upgrade needs a running cluster; a new one is set up by kprov apply"))]
    Cluster { first: String, message: String },
    #[error("{0}; nothing was done")]
    #[diagnostic(
        code(kprov::upgrade::version),
        help("kubeadm moves one minor at a time and never down: set cluster.kubernetes_version as the message says")
    )]
    Version(String),
    #[error("{nodes} not Ready; nothing was done")]
    #[diagnostic(
        code(kprov::upgrade::not_ready),
        help("an upgrade starts from a healthy cluster: check `kubectl get nodes` and the CNI's pods, or run kprov apply")
    )]
    NotReady { nodes: String },
    #[error("{message}")]
    #[diagnostic(code(kprov::upgrade::step), help("fix the cause, then run kprov upgrade again: it resumes with the nodes not yet at {target}"))]
    Stopped { message: String, target: String },
    #[error("{first}: every node was upgraded, but the cluster cannot be read: {message}")]
    #[diagnostic(code(kprov::upgrade::read_after), help("check the API server on the first control plane (`kprov ssh`, `kubectl get nodes`)"))]
    ReadAfter { first: String, message: String },
    #[error("after the upgrade the control plane runs {server} and these nodes are not Ready at {version}: {nodes}")]
    #[diagnostic(
        code(kprov::upgrade::check),
        help("check `kubectl get nodes` and `kubectl describe node NAME`; kprov upgrade again resumes with what is behind")
    )]
    Check { server: String, version: String, nodes: String },
}

/// How long a node gets to be Ready at the new version after its kubelet restarted.
const READY_WAIT: Duration = Duration::from_secs(300);
/// How long kubectl may fail to reach the API server (restarted by the upgrade) before a step
/// that needs it counts as failed.
const API_WAIT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_secs(3);
/// The step of a [`Failure`] that is a Ctrl-C between steps.
const INTERRUPTED: &str = "interrupted";
/// What kubectl says while the API server restarts.
const API_AWAY: [&str; 6] =
    ["connection to the server", "connection refused", "Unable to connect to the server", "unable to handle the request", "i/o timeout", ": EOF"];

/// The release the inventory asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `1.34`.
    pub minor: String,
    /// `v1.34.2` when the inventory pins a patch release.
    pub patch: Option<String>,
}

impl Target {
    pub fn of(inv: &Inventory) -> Target {
        let patch = inv.cluster.kubernetes_patch_version.as_ref().map(|p| format!("v{}", p.trim_start_matches('v')));
        Target { minor: inv.cluster.kubernetes_version.clone(), patch }
    }

    /// A node or cluster at `version` needs nothing.
    pub fn reached_by(&self, version: &str) -> bool {
        match &self.patch {
            Some(p) => version.trim_start_matches('v') == p.trim_start_matches('v'),
            None => minor_of(version) == Some(self.minor.as_str()),
        }
    }

    fn describe(&self) -> String {
        match &self.patch {
            Some(p) => p.clone(),
            None => format!("{} (the repository's newest {}.x)", self.minor, self.minor),
        }
    }
}

/// `(1, 33, 6)` of `v1.33.6`.
fn version_numbers(v: &str) -> Option<(u32, u32, u32)> {
    let mut parts = v.trim().trim_start_matches('v').splitn(3, '.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let patch: String = parts.next()?.chars().take_while(|c| c.is_ascii_digit()).collect();
    Some((major, minor, patch.parse().ok()?))
}

/// Refuses what kubeadm cannot do, before anything changes: a downgrade, or more than one minor
/// at once.
pub fn check_step(current: &str, target: &Target) -> Result<(), String> {
    let (cmaj, cmin, cpatch) = version_numbers(current).ok_or_else(|| format!("cannot read the cluster's version {current:?}"))?;
    let (tmaj, tmin) = minor_of(&target.minor)
        .and_then(|m| m.split_once('.'))
        .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)))
        .ok_or_else(|| format!("cannot read kubernetes_version {:?}", target.minor))?;
    if (tmaj, tmin) < (cmaj, cmin) {
        return Err(format!(
            "the cluster runs {current} and the inventory asks for {}: kubeadm does not downgrade a cluster; set kubernetes_version back to \"{cmaj}.{cmin}\"",
            target.minor
        ));
    }
    if tmaj != cmaj || tmin > cmin + 1 {
        return Err(format!(
            "the cluster runs {current} and the inventory asks for {}: kubeadm upgrades one minor at a time; set kubernetes_version to \"{cmaj}.{}\", run kprov upgrade, then the next",
            target.minor,
            cmin + 1
        ));
    }
    if let Some((_, pmin, ppatch)) = target.patch.as_deref().and_then(version_numbers)
        && pmin == cmin
        && ppatch < cpatch
    {
        return Err(format!(
            "the cluster runs {current} and the inventory pins {}: kubeadm does not downgrade a patch release",
            target.patch.as_deref().unwrap_or_default()
        ));
    }
    Ok(())
}

/// What one inventory host needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    /// Its node runs the target and is schedulable.
    UpToDate,
    /// Not a node of the cluster (yet): `kprov apply` joins it at the inventory's version.
    NotANode,
    Upgrade,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub host: usize,
    pub kubelet_version: Option<String>,
    pub work: Work,
}

/// The upgrade's order: the first control plane (which also runs `kubeadm upgrade apply`), the
/// other control planes one by one, then the workers in batches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradePlan {
    pub rows: Vec<Row>,
    /// Host indices, batch by batch; empty when there is nothing to do.
    pub batches: Vec<Vec<usize>>,
    /// The control plane itself (the API server's version) is not at the target yet.
    pub control_plane_behind: bool,
}

pub fn plan_upgrade(inv: &Inventory, nodes: &[NodeStatus], server: &str, target: &Target, workers_at_once: usize) -> UpgradePlan {
    let first = inv.first_control_plane().name.clone();
    let control_plane_behind = !target.reached_by(server);
    let mut rows = vec![];
    for (i, h) in inv.hosts.iter().enumerate() {
        let node = nodes.iter().find(|n| n.name == h.name);
        let work = match node {
            None => Work::NotANode,
            Some(n) if target.reached_by(&n.kubelet_version) && !n.unschedulable && !(h.name == first && control_plane_behind) => Work::UpToDate,
            Some(_) => Work::Upgrade,
        };
        rows.push(Row { host: i, kubelet_version: node.map(|n| n.kubelet_version.clone()), work });
    }
    let pending = |i: &usize| rows[*i].work == Work::Upgrade;
    let order: Vec<usize> = (0..inv.hosts.len()).collect();
    let mut batches: Vec<Vec<usize>> = vec![];
    let firsts = order.iter().copied().filter(|&i| inv.hosts[i].name == first).filter(pending);
    let planes = order.iter().copied().filter(|&i| inv.hosts[i].is_control_plane() && inv.hosts[i].name != first).filter(pending);
    batches.extend(firsts.chain(planes).map(|i| vec![i]));
    let workers: Vec<usize> = order.iter().copied().filter(|&i| !inv.hosts[i].is_control_plane()).filter(pending).collect();
    batches.extend(workers.chunks(workers_at_once.max(1)).map(<[usize]>::to_vec));
    UpgradePlan { rows, batches, control_plane_behind }
}

fn render_plan(inv: &Inventory, plan: &UpgradePlan, server: &str, target: &Target) -> String {
    let first = inv.first_control_plane().name.as_str();
    let mut out = format!("Cluster {}: control plane {server}, upgrading to {}\n", inv.cluster.name, target.describe());
    let batch_of = |i: usize| plan.batches.iter().position(|b| b.contains(&i));
    for row in &plan.rows {
        let h = &inv.hosts[row.host];
        let kind = if h.name == first {
            "first control plane"
        } else if h.is_control_plane() {
            "control plane"
        } else {
            "worker"
        };
        let what = match (&row.work, batch_of(row.host)) {
            (Work::Upgrade, Some(b)) => {
                let how = if h.name == first && plan.control_plane_behind { "kubeadm upgrade apply" } else { "kubeadm upgrade node" };
                format!("step {}: {how}, drain, kubelet, uncordon", b + 1)
            }
            (Work::UpToDate, _) => "up to date".into(),
            (Work::NotANode, _) => "not a node of the cluster: kprov apply joins it".into(),
            (Work::Upgrade, None) => "upgrade".into(),
        };
        out.push_str(&format!("  {:<20} {:<20} {:<10} {what}\n", h.name, kind, row.kubelet_version.as_deref().unwrap_or("-")));
    }
    out
}

/// Why the upgrade stopped.
#[derive(Debug)]
pub struct Failure {
    host: String,
    step: &'static str,
    message: String,
    /// The node was drained and is still cordoned.
    cordoned: bool,
}

/// A failed step as the upgrade reports it: its exit status and last lines.
fn message_of(e: &StepError) -> String {
    match e {
        StepError::Failed { status, output, .. } => format!("exit {status}: {}", last_lines(output)),
        other => other.to_string(),
    }
}

/// Runs one step on a host (a batch of one).
async fn host_step(remote: &dyn Remote, what: &str, body: Result<String, QuoteError>) -> Result<String, String> {
    let body = body.map_err(|e| e.to_string())?;
    run_step(remote, Step::new(what, body)).await.map_err(|e| message_of(&e))
}

/// Runs a kubectl step on the first control plane, retrying while the API server is away (the
/// upgrade restarts it).
async fn kubectl_step(cp: &dyn Remote, what: &str, body: Result<String, QuoteError>) -> Result<String, String> {
    let body = body.map_err(|e| e.to_string())?;
    let started = Instant::now();
    loop {
        match run_step(cp, Step::new(what, format!("{KUBECONFIG}{body}"))).await {
            Ok(out) => return Ok(out),
            Err(e @ StepError::Failed { .. }) if started.elapsed() < API_WAIT && API_AWAY.iter().any(|m| e.output().contains(m)) => {
                tokio::time::sleep(POLL).await;
            }
            Err(e) => return Err(message_of(&e)),
        }
    }
}

/// What one host's upgrade needs, owned so that a batch's hosts run as separate tasks.
struct HostJob {
    name: String,
    remote: Arc<dyn Remote>,
    cp: Arc<dyn Remote>,
    /// Run `kubeadm upgrade apply` (the first control plane, while the control plane is behind).
    upgrade_apply: bool,
    /// The version to reach; None until the first control plane's kubeadm tells it.
    version: Option<String>,
    minor: String,
    events: Sink,
    /// Set by Ctrl-C: the step that runs finishes, no further step starts.
    cancel: Arc<AtomicBool>,
}

/// One host, in kubeadm's order. Returns the version it now runs.
async fn upgrade_host(job: HostJob) -> Result<String, Failure> {
    let name = job.name.clone();
    let fail = |step: &'static str, cordoned: bool| {
        let name = name.clone();
        move |message: String| Failure { host: name, step, message, cordoned }
    };
    let say = |s: String| job.events.progress(&job.name, &s);
    let go_on = |cordoned: bool| {
        if job.cancel.load(Ordering::SeqCst) { Err(fail(INTERRUPTED, cordoned)(String::new())) } else { Ok(()) }
    };
    let show = |out: &str| job.events.output(&job.name, out);
    // The version found so far, or the minor's newest; the apt revision is the repository's.
    let wanted = package_version(&job.minor, job.version.as_deref());
    let out = host_step(
        job.remote.as_ref(),
        "installing kubeadm",
        install_script(&["kubeadm"], Some(&wanted), &["kubeadm"]).map(|s| s + "kubeadm version -o short\n"),
    )
    .await
    .map_err(fail("installing kubeadm", false))?;
    show(&out);
    let installed = out.lines().map(str::trim).rfind(|l| l.starts_with('v')).unwrap_or_default().to_string();
    let version = match &job.version {
        Some(v) if v.trim_start_matches('v') != installed.trim_start_matches('v') => {
            return Err(fail("installing kubeadm", false)(format!("kubeadm {installed} was installed, not {v}: is {v} in the repository?")));
        }
        Some(v) => v.clone(),
        None if version_numbers(&installed).is_some() => installed.clone(),
        None => return Err(fail("installing kubeadm", false)(format!("kubeadm version printed {installed:?}"))),
    };
    say(format!("kubeadm {version} installed and held"));
    go_on(false)?;
    if job.upgrade_apply {
        say(format!("kubeadm upgrade apply {version} (the control plane)"));
        let out = host_step(job.remote.as_ref(), "kubeadm upgrade apply", quote(&version).map(|v| format!("kubeadm upgrade apply --yes {v}\n")))
            .await
            .map_err(fail("kubeadm upgrade apply", false))?;
        show(&out);
    } else {
        let out = host_step(job.remote.as_ref(), "kubeadm upgrade node", Ok("kubeadm upgrade node\n".into()))
            .await
            .map_err(fail("kubeadm upgrade node", false))?;
        show(&out);
        say("kubeadm upgrade node done".into());
    }
    go_on(false)?;
    let node = quote(&job.name);
    let out = kubectl_step(
        job.cp.as_ref(),
        "kubectl drain",
        node.clone().map(|n| format!("kubectl drain {n} --ignore-daemonsets --delete-emptydir-data --timeout={DRAIN_TIMEOUT}\n")),
    )
    .await
    .map_err(fail("drain", true))?;
    show(&out);
    say("drained".into());
    go_on(true)?;
    let kubelet = install_script(&["kubelet", "kubectl"], Some(&package_version(&job.minor, Some(&version))), &["kubelet", "kubectl"])
        .map(|s| s + "systemctl daemon-reload\nsystemctl restart kubelet\n");
    let out =
        host_step(job.remote.as_ref(), "installing kubelet and kubectl", kubelet).await.map_err(fail("installing kubelet and kubectl", true))?;
    show(&out);
    say(format!("kubelet and kubectl {version} installed and held, kubelet restarted"));
    go_on(true)?;
    kubectl_step(job.cp.as_ref(), "kubectl uncordon", node.map(|n| format!("kubectl uncordon {n}\n"))).await.map_err(fail("uncordon", true))?;
    let started = Instant::now();
    loop {
        // Only the node list: the server's version was read before this host started.
        let state = cluster::read_nodes(job.cp.as_ref()).await.map_err(|e| e.to_string());
        let status = state.as_ref().ok().and_then(|nodes| nodes.iter().find(|n| n.name == job.name).cloned());
        if let Some(n) = &status
            && n.ready
            && n.kubelet_version.trim_start_matches('v') == version.trim_start_matches('v')
        {
            say(format!("uncordoned, Ready at {version}"));
            return Ok(version);
        }
        if started.elapsed() >= READY_WAIT {
            let seen = match (&state, &status) {
                (Err(e), _) => e.clone(),
                (Ok(_), None) => "the node is not listed".into(),
                (Ok(_), Some(n)) => format!("Ready: {}, kubelet {}", n.ready, n.kubelet_version),
            };
            return Err(fail("waiting for the node", false)(format!("not Ready at {version} after {}s ({seen})", READY_WAIT.as_secs())));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Switches the hosts' Kubernetes apt repository to the inventory's minor: the `apt` role,
/// planned and applied as `kprov apply --limit HOSTS --tags apt` would.
async fn switch_repository(inv: &Inventory, hosts: &[String], roles: Option<&Path>) -> Result<usize, String> {
    let scope = Scope { limit: hosts.to_vec(), tags: vec!["apt".into()], concurrency: hosts.len().max(1) };
    let p = prepare(inv.clone(), &scope, roles).await.map_err(|e| e.to_string())?;
    let result = async {
        let problems: Vec<String> = p
            .planned
            .plan
            .steps
            .iter()
            .filter_map(|s| match &s.outcome {
                Outcome::Error { message } => Some(format!("{}: {message}", s.id)),
                Outcome::Blocked { reason } => Some(format!("{}: {reason}", s.id)),
                _ => None,
            })
            .chain(p.planned.plan.hosts.iter().filter(|h| h.status != crate::plan::HostStatus::Ready).map(|h| format!("{}: {:?}", h.name, h.status)))
            .collect();
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        if !p.planned.plan.has_changes() {
            return Ok(0);
        }
        let options = ApplyOptions { concurrency: scope.concurrency, max_fail: Some(0), cancel: Arc::new(AtomicBool::new(false)) };
        let report = apply(&p.engine.graph, &p.planned, &p.host_runtimes(), &options, &|_| {}).await;
        let failed: Vec<String> = report
            .steps
            .iter()
            .filter_map(|s| match &s.status {
                StepStatus::Failed { message } => Some(format!("{}: {message}", s.id)),
                _ => None,
            })
            .collect();
        if report.success() {
            Ok(report.changed())
        } else {
            Err(if failed.is_empty() { "the apt role did not finish".into() } else { failed.join("; ") })
        }
    }
    .await;
    p.connector.close_all().await;
    result
}

/// The inventory hosts whose node is not Ready: an upgrade does not start.
pub fn not_ready(inv: &Inventory, nodes: &[NodeStatus]) -> Vec<String> {
    nodes.iter().filter(|n| !n.ready && inv.hosts.iter().any(|h| h.name == n.name)).map(|n| n.name.clone()).collect()
}

/// `kprov upgrade` as an operation over a session.
pub struct Upgrade {
    pub workers_at_once: usize,
    /// A directory of roles overlaying the built-in ones (for the repository switch).
    pub roles: Option<PathBuf>,
    /// The inventory's file, for "`kprov upgrade FILE` carries it out".
    pub inventory_path: PathBuf,
    decided: Option<Decided>,
}

/// What prepare read and decided.
struct Decided {
    target: Target,
    server: String,
    plan: UpgradePlan,
    names: Vec<String>,
    cluster: String,
    description: String,
    not_ready: Vec<String>,
    cp: Arc<dyn Remote>,
}

impl Upgrade {
    pub fn new(workers_at_once: usize, roles: Option<PathBuf>, inventory_path: PathBuf) -> Upgrade {
        Upgrade { workers_at_once, roles, inventory_path, decided: None }
    }
}

impl Operation for Upgrade {
    type Error = UpgradeError;
    const NAME: &'static str = "upgrade";

    async fn prepare(&mut self, s: &Session) -> Result<(), UpgradeError> {
        let inv = &s.inventory;
        let target = Target::of(inv);
        let first = inv.hosts[s.first_control_plane()].name.clone();
        let cp = s
            .connector
            .connect(s.first_control_plane())
            .await
            .map_err(|e| UpgradeError::ControlPlane { first: first.clone(), message: e.to_string() })?;
        let state = cluster::read_state(cp.as_ref()).await.map_err(|e| UpgradeError::Cluster { first: first.clone(), message: e.to_string() })?;
        check_step(&state.server, &target).map_err(UpgradeError::Version)?;
        let plan = plan_upgrade(inv, &state.nodes, &state.server, &target, self.workers_at_once);
        self.decided = Some(Decided {
            description: render_plan(inv, &plan, &state.server, &target),
            not_ready: not_ready(inv, &state.nodes),
            names: inv.hosts.iter().map(|h| h.name.clone()).collect(),
            cluster: inv.cluster.name.clone(),
            server: state.server,
            target,
            plan,
            cp,
        });
        Ok(())
    }

    fn describe(&self) -> String {
        self.decided.as_ref().map(|d| d.description.clone()).unwrap_or_default()
    }

    fn actions(&self) -> Vec<Action> {
        let Some(d) = &self.decided else { return vec![] };
        let first = d.plan.batches.first().and_then(|b| b.first()).copied();
        let mut actions = vec![];
        for (b, batch) in d.plan.batches.iter().enumerate() {
            for &i in batch {
                let how = if Some(i) == first && d.plan.control_plane_behind { "kubeadm upgrade apply" } else { "kubeadm upgrade node" };
                actions.push(Action::new(&d.names[i], format!("step {}: {how}, drain, kubelet, uncordon", b + 1)));
            }
        }
        actions
    }

    fn nothing_to_do(&self) -> String {
        format!("Nothing to upgrade: every node runs {}.", self.decided.as_ref().map(|d| d.server.as_str()).unwrap_or_default())
    }

    fn check(&self) -> Result<(), UpgradeError> {
        match &self.decided {
            Some(d) if !d.not_ready.is_empty() => Err(UpgradeError::NotReady { nodes: d.not_ready.join(", ") }),
            _ => Ok(()),
        }
    }

    fn pending(&self) -> String {
        let Some(d) = &self.decided else { return String::new() };
        let nodes: usize = d.plan.batches.iter().map(Vec::len).sum();
        format!(
            "Upgrade pending: {nodes} {} in {} {}; `kprov upgrade {}` carries it out.",
            if nodes == 1 { "node" } else { "nodes" },
            d.plan.batches.len(),
            if d.plan.batches.len() == 1 { "step" } else { "steps" },
            self.inventory_path.display()
        )
    }

    fn confirmation(&self) -> Option<Confirmation> {
        let d = self.decided.as_ref()?;
        Some(Confirmation {
            action: "upgrade the cluster",
            what: format!(
                "This upgrades cluster {} to {}: each node in the order above is drained, upgraded and uncordoned.",
                d.cluster,
                d.target.describe()
            ),
            expected: d.cluster.clone(),
            expected_is: "the cluster's name",
        })
    }

    async fn run(&mut self, s: &Session) -> Result<String, UpgradeError> {
        let Some(d) = &self.decided else { return Ok(String::new()) };
        let inv = &s.inventory;
        let target = &d.target;
        let first_index = s.first_control_plane();
        let first = inv.hosts[first_index].name.clone();
        let cp = d.cp.clone();
        let started = Instant::now();
        let mut version = target.patch.clone().or_else(|| (!d.plan.control_plane_behind).then(|| d.server.clone()));
        let mut done: Vec<String> = vec![];
        for batch in &d.plan.batches {
            if s.cancelled() {
                let host = inv.hosts[batch[0]].name.clone();
                return Err(stopped(&Failure { host, step: INTERRUPTED, message: String::new(), cordoned: false }, &done, target));
            }
            let names: Vec<String> = batch.iter().map(|&i| inv.hosts[i].name.clone()).collect();
            let changed = switch_repository(inv, &names, self.roles.as_deref()).await.map_err(|e| {
                stopped(&Failure { host: names.join(", "), step: "switching the apt repository", message: e, cordoned: false }, &done, target)
            })?;
            if changed > 0 {
                s.events.progress(&names.join(", "), &format!("Kubernetes apt repository set to {}", target.minor));
            }
            let mut tasks = tokio::task::JoinSet::new();
            for &i in batch {
                let remote = if i == first_index {
                    cp.clone()
                } else {
                    s.connector.connect(i).await.map_err(|e| {
                        stopped(
                            &Failure { host: inv.hosts[i].name.clone(), step: "connecting", message: e.to_string(), cordoned: false },
                            &done,
                            target,
                        )
                    })?
                };
                tasks.spawn(upgrade_host(HostJob {
                    name: inv.hosts[i].name.clone(),
                    remote,
                    cp: cp.clone(),
                    upgrade_apply: i == first_index && d.plan.control_plane_behind,
                    version: version.clone(),
                    minor: target.minor.clone(),
                    events: s.events.clone(),
                    cancel: s.cancel.clone(),
                }));
            }
            let mut failures = vec![];
            while let Some(r) = tasks.join_next().await {
                match r {
                    Ok(Ok(v)) => version = Some(v),
                    Ok(Err(f)) => failures.push(f),
                    Err(e) => failures.push(Failure { host: names.join(", "), step: "upgrading", message: e.to_string(), cordoned: false }),
                }
            }
            if let Some(f) = failures.first() {
                for other in &failures[1..] {
                    s.events.progress(&other.host, &format!("{} failed: {}", other.step, other.message));
                }
                return Err(stopped(f, &done, target));
            }
            done.extend(names);
        }
        let version = version.unwrap_or_default();
        let state = cluster::read_state(cp.as_ref()).await.map_err(|e| UpgradeError::ReadAfter { first: first.clone(), message: e.to_string() })?;
        let behind: Vec<String> = inv
            .hosts
            .iter()
            .filter_map(|h| state.nodes.iter().find(|n| n.name == h.name))
            .filter(|n| !n.ready || !target.reached_by(&n.kubelet_version))
            .map(|n| format!("{} ({}, {})", n.name, n.kubelet_version, if n.ready { "Ready" } else { "NotReady" }))
            .collect();
        if !behind.is_empty() || !target.reached_by(&state.server) {
            return Err(UpgradeError::Check { server: state.server, version, nodes: behind.join(", ") });
        }
        Ok(format!(
            "Cluster {} upgraded to {version} in {:.0}s: {} upgraded; every node is Ready.",
            inv.cluster.name,
            started.elapsed().as_secs_f64(),
            done.join(", ")
        ))
    }
}

/// The error of an upgrade that stopped: what failed on which host, what was upgraded before,
/// and whether the host is left cordoned.
pub fn stopped(f: &Failure, done: &[String], target: &Target) -> UpgradeError {
    let left =
        if f.cordoned { format!(" {} is drained and still cordoned (`kubectl uncordon {}` puts it back).", f.host, f.host) } else { String::new() };
    let what = if f.step == INTERRUPTED {
        format!("{}: interrupted (Ctrl-C) before its next step", f.host)
    } else {
        format!("{}: {} failed: {}", f.host, f.step, f.message.trim_end_matches('.'))
    };
    let finished = if done.is_empty() { "No node was upgraded.".to_string() } else { format!("Upgraded before it stopped: {}.", done.join(", ")) };
    UpgradeError::Stopped {
        message: format!("{what}. The upgrade stopped; nothing further was started. {finished}{left}"),
        target: target.describe(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(minor: &str, patch: Option<&str>) -> Target {
        Target { minor: minor.into(), patch: patch.map(str::to_string) }
    }

    #[test]
    fn one_minor_at_a_time_and_never_down() {
        assert!(check_step("v1.33.6", &target("1.34", None)).is_ok());
        assert!(check_step("v1.34.2", &target("1.34", None)).is_ok());
        assert!(check_step("v1.34.2", &target("1.34", Some("v1.34.3"))).is_ok());
        let skip = check_step("v1.32.1", &target("1.34", None)).unwrap_err();
        assert!(skip.contains("one minor at a time") && skip.contains("\"1.33\""), "{skip}");
        let down = check_step("v1.34.2", &target("1.33", None)).unwrap_err();
        assert!(down.contains("does not downgrade") && down.contains("\"1.34\""), "{down}");
        assert!(check_step("v1.34.2", &target("1.34", Some("v1.34.1"))).unwrap_err().contains("patch"));
        assert!(check_step("garbage", &target("1.34", None)).is_err());
    }

    #[test]
    fn targets_are_reached_by_minor_or_exact_patch() {
        assert!(target("1.34", None).reached_by("v1.34.2"));
        assert!(!target("1.34", None).reached_by("v1.33.6"));
        assert!(target("1.34", Some("v1.34.2")).reached_by("v1.34.2"));
        assert!(!target("1.34", Some("v1.34.3")).reached_by("v1.34.2"));
    }

    fn node(name: &str, version: &str, ready: bool, cordoned: bool) -> NodeStatus {
        NodeStatus { name: name.into(), ready, kubelet_version: version.into(), unschedulable: cordoned }
    }

    #[test]
    fn control_planes_go_first_one_at_a_time_then_workers_in_batches() {
        let text = "cluster:\n  name: c\n  kubernetes_version: \"1.34\"\n  control_plane_endpoint: 10.0.0.1:6443\nhosts:\n\
            - { name: w1, address: 10.0.0.4, roles: [worker] }\n\
            - { name: cp1, address: 10.0.0.1, roles: [control-plane] }\n\
            - { name: cp2, address: 10.0.0.2, roles: [control-plane] }\n\
            - { name: w2, address: 10.0.0.5, roles: [worker] }\n\
            - { name: w3, address: 10.0.0.6, roles: [worker] }\n\
            - { name: new, address: 10.0.0.7, roles: [worker] }\n";
        let loaded = crate::inventory::parse(text, "c");
        let inv = loaded.inventory.expect("valid");
        let t = Target::of(&inv);
        let nodes = [
            node("cp1", "v1.33.6", true, false),
            node("cp2", "v1.33.6", true, false),
            node("w1", "v1.33.6", true, false),
            node("w2", "v1.34.2", true, false),
            node("w3", "v1.34.2", true, true),
        ];
        let plan = plan_upgrade(&inv, &nodes, "v1.33.6", &t, 2);
        let names = |b: &Vec<usize>| b.iter().map(|&i| inv.hosts[i].name.as_str()).collect::<Vec<_>>();
        let batches: Vec<Vec<&str>> = plan.batches.iter().map(names).collect();
        // w2 is done; w3 is at the version but cordoned (a run that stopped), so it is finished.
        assert_eq!(batches, vec![vec!["cp1"], vec!["cp2"], vec!["w1", "w3"]]);
        assert!(plan.control_plane_behind);
        let work = |n: &str| plan.rows.iter().find(|r| inv.hosts[r.host].name == n).unwrap().work.clone();
        assert_eq!(work("w2"), Work::UpToDate);
        assert_eq!(work("new"), Work::NotANode);
        // Resumed after the control plane: the first control plane is up to date even though
        // nothing else is, and the order stays.
        let nodes = [node("cp1", "v1.34.2", true, false), node("cp2", "v1.33.6", true, false), node("w1", "v1.33.6", true, false)];
        let plan = plan_upgrade(&inv, &nodes, "v1.34.2", &t, 1);
        assert_eq!(plan.batches.iter().map(names).collect::<Vec<_>>(), vec![vec!["cp2"], vec!["w1"]]);
        assert!(!plan.control_plane_behind);
        // The API server behind while the first control plane's kubelet is not: it still goes first.
        let nodes = [node("cp1", "v1.34.2", true, false)];
        assert_eq!(plan_upgrade(&inv, &nodes, "v1.33.6", &t, 1).batches.iter().map(names).collect::<Vec<_>>(), vec![vec!["cp1"]]);
    }

    fn fixture_inventory() -> Inventory {
        let text = "cluster:\n  name: c\n  kubernetes_version: \"1.34\"\n  control_plane_endpoint: 10.0.0.1:6443\nhosts:\n\
            - { name: h1, address: 10.0.0.1, roles: [control-plane] }\n\
            - { name: h2, address: 10.0.0.2, roles: [worker] }\n\
            - { name: h3, address: 10.0.0.3, roles: [worker] }\n";
        crate::inventory::parse(text, "c").inventory.expect("valid")
    }

    fn fixture_nodes() -> Vec<NodeStatus> {
        let path = format!("{}/tests/fixtures/cluster/nodes-mid-upgrade.json", env!("CARGO_MANIFEST_DIR"));
        cluster::parse_nodes(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// A run that stopped after the control plane, with h2 left cordoned: the next run resumes
    /// with h2 (cordoned, so not finished) and h3, and the control plane is up to date.
    #[test]
    fn a_stopped_upgrade_resumes_with_the_cordoned_node_and_what_is_behind() {
        let inv = fixture_inventory();
        let nodes = fixture_nodes();
        let plan = plan_upgrade(&inv, &nodes, "v1.34.2", &Target::of(&inv), 1);
        assert!(!plan.control_plane_behind);
        let names: Vec<Vec<&str>> = plan.batches.iter().map(|b| b.iter().map(|&i| inv.hosts[i].name.as_str()).collect()).collect();
        assert_eq!(names, vec![vec!["h2"], vec!["h3"]]);
        assert_eq!(plan.rows[0].work, Work::UpToDate);
    }

    /// h3 is NotReady in the fixture (and h4, which is not in the inventory, does not count).
    #[test]
    fn a_node_that_is_not_ready_refuses_the_upgrade() {
        let inv = fixture_inventory();
        assert_eq!(not_ready(&inv, &fixture_nodes()), vec!["h3".to_string()]);
        let healthy: Vec<NodeStatus> = fixture_nodes().into_iter().filter(|n| n.ready).collect();
        assert!(not_ready(&inv, &healthy).is_empty());
    }

    #[test]
    fn a_skipped_minor_is_refused_before_anything_changes() {
        let e = check_step(
            &cluster::parse_server_version(
                &std::fs::read_to_string(format!("{}/tests/fixtures/cluster/version.json", env!("CARGO_MANIFEST_DIR"))).unwrap(),
            )
            .unwrap(),
            &target("1.35", None),
        )
        .unwrap_err();
        assert!(e.contains("one minor at a time") && e.contains("\"1.34\""), "{e}");
    }

    /// A failed node stops everything: the message names the host, the step, the host's words,
    /// what was upgraded before, and that the node is still cordoned.
    #[test]
    fn a_failed_node_is_named_with_what_was_done_and_left_cordoned() {
        let f = Failure {
            host: "h2".into(),
            step: "installing kubelet and kubectl",
            message: "exit 1: Failed to restart kubelet.service: Unit kubelet.service is masked.".into(),
            cordoned: true,
        };
        let e = stopped(&f, &["h1".to_string()], &target("1.34", None));
        let said = e.to_string();
        assert!(said.starts_with("h2: installing kubelet and kubectl failed: exit 1: Failed to restart"), "{said}");
        assert!(said.contains("Upgraded before it stopped: h1.") && said.contains("h2 is drained and still cordoned"), "{said}");
        let interrupted =
            stopped(&Failure { host: "h3".into(), step: INTERRUPTED, message: String::new(), cordoned: false }, &[], &target("1.34", None));
        assert!(
            interrupted.to_string().contains("h3: interrupted (Ctrl-C) before its next step")
                && interrupted.to_string().contains("No node was upgraded.")
        );
        use miette::Diagnostic;
        assert_eq!(e.code().unwrap().to_string(), "kprov::upgrade::step");
    }
}
