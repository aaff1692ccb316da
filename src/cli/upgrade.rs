//! `kprov upgrade INVENTORY [--yes] [--dry-run] [--workers-at-once N]`: move a running cluster to
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
//! Before changing anything it shows the plan and asks for the cluster's name on a terminal
//! (refused without a terminal unless `--yes`); `--dry-run` shows the plan and changes nothing.
//!
//! Exit codes: 0 upgraded, or nothing to upgrade; 1 refused, invalid, or a step failed; with
//! `--dry-run`, 2 when an upgrade is pending.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;

use super::Globals;
use super::after::{KUBECONFIG, NODES_SCRIPT, NodeStatus, first_line, parse_node_list};
use super::connect::SshConnector;
use super::plan::{SelectArgs, load_inventory, prepare, runtime};
use super::remove_node::DRAIN_TIMEOUT;
use super::reset::{confirm, last_lines};
use crate::apply::{ApplyOptions, Remote, StepStatus, apply};
use crate::engine::Connector;
use crate::engine::context::package_version;
use crate::inventory::Inventory;
use crate::plan::Outcome;
use crate::resources::apt_packages::{install_script, minor_of};
use crate::shell::{QuoteError, quote};

#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// The inventory file, with `cluster.kubernetes_version` set to the release to upgrade to.
    pub inventory: PathBuf,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    /// Show the versions and the order of the upgrade, change nothing (exit 0: nothing to
    /// upgrade, 2: an upgrade is pending, 1: it would be refused).
    #[arg(long)]
    pub dry_run: bool,
    /// Workers upgraded at once (control planes always go one at a time).
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub workers_at_once: u16,
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

/// The cluster as the first control plane sees it.
struct ClusterState {
    server: String,
    nodes: Vec<NodeStatus>,
}

fn state_script() -> String {
    format!("{KUBECONFIG}echo @@kprov-version; kubectl version -o json 2>&1; echo \"@@kprov-version-end $?\"\n{NODES_SCRIPT}")
}

fn parse_state(out: &str) -> Result<ClusterState, String> {
    let body = out.split_once("@@kprov-version\n").map(|(_, b)| b).ok_or_else(|| first_line(out))?;
    let (json, rest) = body.split_once("@@kprov-version-end ").ok_or_else(|| first_line(body))?;
    if !rest.starts_with('0') {
        return Err(format!("kubectl version failed: {}", first_line(json)));
    }
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| format!("kubectl version -o json printed something else ({e})"))?;
    let server = v.pointer("/serverVersion/gitVersion").and_then(|s| s.as_str()).ok_or("kubectl version -o json has no serverVersion")?;
    Ok(ClusterState { server: server.to_string(), nodes: parse_node_list(rest)? })
}

async fn read_state(cp: &dyn Remote) -> Result<ClusterState, String> {
    parse_state(&cp.run_script(state_script()).await?)
}

/// Why the upgrade stopped.
#[derive(Debug)]
struct Failure {
    host: String,
    step: &'static str,
    message: String,
    /// The node was drained and is still cordoned.
    cordoned: bool,
}

/// Runs `body` with `set -e` and reports its exit status after a marker.
fn step_script(body: &str) -> String {
    format!("(\nset -e\n{body}) 2>&1\necho \"@@kprov-step $?\"\n")
}

/// The output of a [`step_script`], or its last lines as the error.
fn step_output(out: &str) -> Result<String, String> {
    let (body, status) = out.rsplit_once("@@kprov-step ").ok_or_else(|| last_lines(out))?;
    match status.trim() {
        "0" => Ok(body.to_string()),
        rc => Err(format!("exit {rc}: {}", last_lines(body))),
    }
}

async fn run_step(remote: &dyn Remote, body: Result<String, QuoteError>) -> Result<String, String> {
    let body = body.map_err(|e| e.to_string())?;
    step_output(&remote.run_script(step_script(&body)).await?)
}

/// Runs a kubectl step on the first control plane, retrying while the API server is away (the
/// upgrade restarts it).
async fn kubectl_step(cp: &dyn Remote, body: Result<String, QuoteError>) -> Result<String, String> {
    let body = body.map_err(|e| e.to_string())?;
    let started = Instant::now();
    loop {
        match step_output(&cp.run_script(step_script(&format!("{KUBECONFIG}{body}"))).await?) {
            Ok(out) => return Ok(out),
            Err(e) if started.elapsed() < API_WAIT && API_AWAY.iter().any(|m| e.contains(m)) => {
                tokio::time::sleep(POLL).await;
            }
            Err(e) => return Err(e),
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
    say: Arc<dyn Fn(String) + Send + Sync>,
    /// Show every step's output (`-v`).
    verbose: bool,
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
    let say = |s: String| (job.say)(format!("{}: {s}", job.name));
    let go_on = |cordoned: bool| {
        if job.cancel.load(Ordering::SeqCst) { Err(fail(INTERRUPTED, cordoned)(String::new())) } else { Ok(()) }
    };
    let show = |out: &str| {
        if job.verbose {
            for l in out.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
                (job.say)(format!("{}:   {l}", job.name));
            }
        }
    };
    // The version found so far, or the minor's newest; the apt revision is the repository's.
    let wanted = package_version(&job.minor, job.version.as_deref());
    let out = run_step(job.remote.as_ref(), install_script(&["kubeadm"], Some(&wanted), &["kubeadm"]).map(|s| s + "kubeadm version -o short\n"))
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
        let out = run_step(job.remote.as_ref(), quote(&version).map(|v| format!("kubeadm upgrade apply --yes {v}\n")))
            .await
            .map_err(fail("kubeadm upgrade apply", false))?;
        show(&out);
    } else {
        let out = run_step(job.remote.as_ref(), Ok("kubeadm upgrade node\n".into())).await.map_err(fail("kubeadm upgrade node", false))?;
        show(&out);
        say("kubeadm upgrade node done".into());
    }
    go_on(false)?;
    let node = quote(&job.name);
    let out = kubectl_step(
        job.cp.as_ref(),
        node.clone().map(|n| format!("kubectl drain {n} --ignore-daemonsets --delete-emptydir-data --timeout={DRAIN_TIMEOUT}\n")),
    )
    .await
    .map_err(fail("drain", true))?;
    show(&out);
    say("drained".into());
    go_on(true)?;
    let kubelet = install_script(&["kubelet", "kubectl"], Some(&package_version(&job.minor, Some(&version))), &["kubelet", "kubectl"])
        .map(|s| s + "systemctl daemon-reload\nsystemctl restart kubelet\n");
    let out = run_step(job.remote.as_ref(), kubelet).await.map_err(fail("installing kubelet and kubectl", true))?;
    show(&out);
    say(format!("kubelet and kubectl {version} installed and held, kubelet restarted"));
    go_on(true)?;
    kubectl_step(job.cp.as_ref(), node.map(|n| format!("kubectl uncordon {n}\n"))).await.map_err(fail("uncordon", true))?;
    let started = Instant::now();
    let nodes_script = format!("{KUBECONFIG}{NODES_SCRIPT}");
    loop {
        // Only the node list: the server's version was read before this host started.
        let state = match job.cp.run_script(nodes_script.clone()).await {
            Ok(out) => parse_node_list(&out),
            Err(e) => Err(e),
        };
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
async fn switch_repository(inv: &Inventory, hosts: &[String], g: &Globals) -> Result<usize, String> {
    let select = SelectArgs { limit: hosts.to_vec(), tags: vec!["apt".into()], concurrency: hosts.len().max(1) };
    let p = prepare(inv.clone(), &select, g).await.map_err(|e| e.to_string())?;
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
        let options = ApplyOptions { concurrency: select.concurrency, max_fail: Some(0), cancel: Arc::new(AtomicBool::new(false)) };
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

pub fn run(args: &UpgradeArgs, g: &Globals) -> ExitCode {
    let Some(inv) = load_inventory(&args.inventory, g) else { return ExitCode::from(1) };
    let fail = |e: miette::Report| {
        eprintln!("{e:?}");
        ExitCode::from(1)
    };
    let target = Target::of(&inv);
    let first = inv.first_control_plane().name.clone();
    let Some(first_index) = inv.hosts.iter().position(|h| h.name == first) else { return ExitCode::from(1) };
    let rt = runtime();
    let quiet = g.quiet;
    let say: Arc<dyn Fn(String) + Send + Sync> = Arc::new(move |line: String| {
        if !quiet {
            eprintln!("{line}");
        }
    });
    rt.block_on(async {
        let connector = SshConnector::new(&inv);
        let code = async {
            let cp = connector.connect(first_index).await.map_err(|e| {
                miette::miette!(code = "kprov::upgrade::control_plane", "{first}: cannot reach the first control plane: {e}; nothing was done")
            })?;
            let state = read_state(cp.as_ref()).await.map_err(|e| {
                miette::miette!(
                    code = "kprov::upgrade::cluster",
                    help = "kprov upgrade needs a running cluster; a new one is set up by kprov apply",
                    "{first}: cannot read the cluster's version and nodes: {e}; nothing was done"
                )
            })?;
            check_step(&state.server, &target).map_err(|e| miette::miette!(code = "kprov::upgrade::version", "{e}; nothing was done"))?;
            let plan = plan_upgrade(&inv, &state.nodes, &state.server, &target, args.workers_at_once as usize);
            print!("{}", render_plan(&inv, &plan, &state.server, &target));
            if plan.batches.is_empty() {
                println!("Nothing to upgrade: every node runs {}.", state.server);
                return Ok(ExitCode::SUCCESS);
            }
            let not_ready: Vec<&str> =
                state.nodes.iter().filter(|n| !n.ready && inv.hosts.iter().any(|h| h.name == n.name)).map(|n| n.name.as_str()).collect();
            if !not_ready.is_empty() {
                return Err(miette::miette!(
                    code = "kprov::upgrade::not_ready",
                    help = "an upgrade starts from a healthy cluster: check `kubectl get nodes` and the CNI's pods, or run kprov apply",
                    "{} not Ready; nothing was done",
                    not_ready.join(", ")
                ));
            }
            if args.dry_run {
                let nodes: usize = plan.batches.iter().map(Vec::len).sum();
                println!(
                    "Upgrade pending: {nodes} {} in {} {}; `kprov upgrade {}` carries it out.",
                    if nodes == 1 { "node" } else { "nodes" },
                    plan.batches.len(),
                    if plan.batches.len() == 1 { "step" } else { "steps" },
                    args.inventory.display()
                );
                return Ok(ExitCode::from(2));
            }
            if !args.yes {
                let what = format!(
                    "This upgrades cluster {} to {}: each node in the order above is drained, upgraded and uncordoned.",
                    inv.cluster.name,
                    target.describe()
                );
                confirm("upgrade the cluster", &what, &inv.cluster.name, "the cluster's name")?;
            }
            let cancel = Arc::new(AtomicBool::new(false));
            super::apply::on_ctrl_c(cancel.clone(), "the steps running now finish, nothing further starts");
            let started = Instant::now();
            let mut version = target.patch.clone().or_else(|| (!plan.control_plane_behind).then(|| state.server.clone()));
            let mut done: Vec<String> = vec![];
            for batch in &plan.batches {
                if cancel.load(Ordering::SeqCst) {
                    let host = inv.hosts[batch[0]].name.clone();
                    return Err(stopped(&Failure { host, step: INTERRUPTED, message: String::new(), cordoned: false }, &done, &target));
                }
                let names: Vec<String> = batch.iter().map(|&i| inv.hosts[i].name.clone()).collect();
                let changed = switch_repository(&inv, &names, g).await.map_err(|e| {
                    stopped(&Failure { host: names.join(", "), step: "switching the apt repository", message: e, cordoned: false }, &done, &target)
                })?;
                if changed > 0 {
                    say(format!("{}: Kubernetes apt repository set to {}", names.join(", "), target.minor));
                }
                let mut tasks = tokio::task::JoinSet::new();
                for &i in batch {
                    let remote = if i == first_index {
                        cp.clone()
                    } else {
                        connector.connect(i).await.map_err(|e| {
                            stopped(&Failure { host: inv.hosts[i].name.clone(), step: "connecting", message: e, cordoned: false }, &done, &target)
                        })?
                    };
                    tasks.spawn(upgrade_host(HostJob {
                        name: inv.hosts[i].name.clone(),
                        remote,
                        cp: cp.clone(),
                        upgrade_apply: i == first_index && plan.control_plane_behind,
                        version: version.clone(),
                        minor: target.minor.clone(),
                        say: say.clone(),
                        verbose: g.verbose > 0,
                        cancel: cancel.clone(),
                    }));
                }
                let mut failures = vec![];
                while let Some(r) = tasks.join_next().await {
                    match r {
                        Ok(Ok(v)) => {
                            version = Some(v);
                        }
                        Ok(Err(f)) => failures.push(f),
                        Err(e) => failures.push(Failure { host: names.join(", "), step: "upgrading", message: e.to_string(), cordoned: false }),
                    }
                }
                if let Some(f) = failures.first() {
                    for other in &failures[1..] {
                        eprintln!("{}: {} failed: {}", other.host, other.step, other.message);
                    }
                    return Err(stopped(f, &done, &target));
                }
                done.extend(names);
            }
            let version = version.unwrap_or_default();
            let state = read_state(cp.as_ref())
                .await
                .map_err(|e| miette::miette!("{first}: every node was upgraded, but the cluster cannot be read: {e}"))?;
            let behind: Vec<String> = inv
                .hosts
                .iter()
                .filter_map(|h| state.nodes.iter().find(|n| n.name == h.name))
                .filter(|n| !n.ready || !target.reached_by(&n.kubelet_version))
                .map(|n| format!("{} ({}, {})", n.name, n.kubelet_version, if n.ready { "Ready" } else { "NotReady" }))
                .collect();
            if !behind.is_empty() || !target.reached_by(&state.server) {
                return Err(miette::miette!(
                    code = "kprov::upgrade::check",
                    "after the upgrade the control plane runs {} and these nodes are not Ready at {version}: {}",
                    state.server,
                    behind.join(", ")
                ));
            }
            println!(
                "Cluster {} upgraded to {version} in {:.0}s: {} upgraded; every node is Ready.",
                inv.cluster.name,
                started.elapsed().as_secs_f64(),
                done.join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }
        .await;
        connector.close_all().await;
        code.unwrap_or_else(fail)
    })
}

fn stopped(f: &Failure, done: &[String], target: &Target) -> miette::Report {
    let left =
        if f.cordoned { format!(" {} is drained and still cordoned (`kubectl uncordon {}` puts it back).", f.host, f.host) } else { String::new() };
    let what = if f.step == INTERRUPTED {
        format!("{}: interrupted (Ctrl-C) before its next step", f.host)
    } else {
        format!("{}: {} failed: {}", f.host, f.step, f.message.trim_end_matches('.'))
    };
    let finished = if done.is_empty() { "No node was upgraded.".to_string() } else { format!("Upgraded before it stopped: {}.", done.join(", ")) };
    miette::miette!(
        code = "kprov::upgrade::step",
        help = format!("fix the cause, then run kprov upgrade again: it resumes with the nodes not yet at {}", target.describe()),
        "{what}. The upgrade stopped; nothing further was started. {finished}{left}",
    )
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

    #[test]
    fn state_is_read_from_kubectl() {
        let out = "@@kprov-version\n{\"clientVersion\":{\"gitVersion\":\"v1.34.2\"},\"serverVersion\":{\"gitVersion\":\"v1.33.6\"}}\n@@kprov-version-end 0\n\
            @@kprov-nodes\n{\"items\":[{\"metadata\":{\"name\":\"h1\"},\"status\":{\"nodeInfo\":{\"kubeletVersion\":\"v1.33.6\"},\
            \"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}]}\n@@kprov-nodes-end 0\n";
        let s = parse_state(out).unwrap();
        assert_eq!(s.server, "v1.33.6");
        assert_eq!(s.nodes.len(), 1);
        assert!(s.nodes[0].ready);
        let e = parse_state("@@kprov-version\nThe connection to the server 10.0.0.1:6443 was refused\n@@kprov-version-end 1\n").err().unwrap();
        assert!(e.contains("was refused"), "{e}");
    }

    #[test]
    fn steps_report_their_exit_status_and_last_lines() {
        assert_eq!(step_output("a\nb\n@@kprov-step 0\n").unwrap(), "a\nb\n");
        let e = step_output("E: Unable to locate package kubeadm\n@@kprov-step 100\n").unwrap_err();
        assert!(e.contains("exit 100") && e.contains("Unable to locate"), "{e}");
        assert!(step_output("sudo: a password is required\n").is_err());
        assert!(step_script("true\n").starts_with("(\nset -e\n"));
    }
}
