//! Apply: carry out a plan. A ready-queue over the task graph; hosts in parallel under a global
//! limit; on each host, the changed resources that are ready are batched into one round trip
//! (see [`batch`]); every step's exit status is checked; a failed step blocks only what depends
//! on it; values captured on one host (join commands) are handed to commands on others.

pub mod batch;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use petgraph::graph::NodeIndex;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use batch::{Batch, BatchStep, RecoveredBatch, StepResult};

use crate::facts::HostFacts;
use crate::graph::{ReadyQueue, TaskGraph, TaskState};
use crate::plan::{Outcome, Planned};
use crate::resources::{Action, Captures, CheckContext, ResourceSpec};
use crate::secret::Secret;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What apply needs from a connection to a host. The SSH session implements it; tests may use
/// a local shell.
pub trait Remote: Send + Sync {
    /// Run a script with `sh -s` as root (through become when needed); the script arrives on
    /// standard input. Returns standard output and standard error, combined.
    fn run_script(&self, script: String) -> BoxFuture<'_, Result<String, String>>;
    /// Like [`run_script`](Remote::run_script), with standard error and the exit status kept
    /// apart, so a script that failed or ended early is reported in the host's own words.
    /// The default (for remotes that cannot tell) has no standard error and no status.
    fn run_script_output(&self, script: String) -> BoxFuture<'_, Result<ScriptOutput, String>> {
        Box::pin(async move { self.run_script(script).await.map(|stdout| ScriptOutput { stdout, ..Default::default() }) })
    }
    /// Reboot the host and wait until it is back with a new boot id.
    fn reboot(&self, timeout: Duration) -> BoxFuture<'_, Result<(), String>>;
}

/// A script's output as the host gave it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScriptOutput {
    pub stdout: String,
    pub stderr: String,
    /// `exit status N` or `killed by signal S`; None when the remote cannot tell.
    pub status: Option<String>,
}

impl ScriptOutput {
    /// Lines of standard error shown when a script failed or ended early.
    pub const TAIL_LINES: usize = 10;

    /// The exit status and the last lines of standard error, redacted, for a message about a
    /// script that failed or ended early: ` (exit status 2); its standard error ended with:`
    /// and the lines, indented. Empty when there is nothing to say.
    pub fn failure_detail(&self, secrets: &Captures) -> String {
        let mut s = String::new();
        if let Some(status) = &self.status {
            s.push_str(&format!(" ({status})"));
        }
        let clean = crate::secret::redact(&self.stderr, secrets.values());
        let lines: Vec<&str> = clean.lines().map(str::trim_end).filter(|l| !l.trim().is_empty()).collect();
        let tail = &lines[lines.len().saturating_sub(Self::TAIL_LINES)..];
        if tail.is_empty() {
            if self.status.is_some() {
                s.push_str("; it wrote nothing on standard error");
            }
        } else {
            s.push_str("; its standard error ended with:");
            for l in tail {
                s.push_str(&format!("\n  {l}"));
            }
        }
        s
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum StepStatus {
    Unchanged,
    Changed,
    Failed {
        message: String,
    },
    /// Something it depends on failed.
    Blocked,
    /// Not started: the run was interrupted or reached --max-fail.
    NotRun,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepReport {
    pub id: String,
    pub host: String,
    #[serde(flatten)]
    pub status: StepStatus,
    pub millis: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostReport {
    pub name: String,
    pub ok: usize,
    pub changed: usize,
    pub failed: usize,
    pub blocked: usize,
    pub not_run: usize,
    pub unreachable: bool,
    pub millis: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyReport {
    pub steps: Vec<StepReport>,
    pub hosts: Vec<HostReport>,
    pub interrupted: bool,
}

impl ApplyReport {
    pub fn changed(&self) -> usize {
        self.hosts.iter().map(|h| h.changed).sum()
    }

    pub fn failed(&self) -> usize {
        self.hosts.iter().map(|h| h.failed + h.blocked + h.not_run).sum::<usize>() + self.hosts.iter().filter(|h| h.unreachable).count()
    }

    pub fn success(&self) -> bool {
        self.failed() == 0 && !self.interrupted
    }
}

/// Progress events, for the terminal or a JSON event stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    BatchStarted {
        host: String,
        steps: Vec<String>,
    },
    StepFinished {
        host: String,
        id: String,
        status: StepStatus,
    },
    /// A batch that ran on the host without a kprov to collect it (the connection was cut, the
    /// host paused, kprov killed), found and cleaned up by a later batch: its status (`exit
    /// status N`, or `died` when its runner never finished) and the end of its log, redacted.
    BatchRecovered {
        host: String,
        batch: String,
        status: String,
        log: String,
    },
    /// A long wait (the host's reboot): at its start, then every 30 s while pending.
    Waiting(crate::wait::Waiting),
}

pub struct ApplyOptions {
    /// Hosts running a batch at once.
    pub concurrency: usize,
    /// Stop starting new work once more than this many hosts have failed (None: never).
    pub max_fail: Option<usize>,
    /// Set from a Ctrl-C handler: finish what runs, start nothing new.
    pub cancel: Arc<AtomicBool>,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions { concurrency: 50, max_fail: None, cancel: Arc::new(AtomicBool::new(false)) }
    }
}

/// Host inputs for apply: its connection (None when unreachable) and its facts.
pub struct HostRuntime {
    pub name: String,
    pub remote: Option<Arc<dyn Remote>>,
    pub facts: HostFacts,
}

struct Job {
    host: usize,
    tasks: Vec<NodeIndex>,
    /// Which tasks of `tasks` have a script in the batch (the rest are no-ops).
    changed: Vec<NodeIndex>,
    /// For a reboot: how long to wait, and what to check once the host is back.
    reboot: Option<(Duration, crate::resources::Verify)>,
}

/// What a batch's round trip brought back: the steps' results, and the script's own output
/// (for a step that did not end: the exit status and standard error).
/// Also the batches nobody collected that this one found on the host.
type BatchOutcome = (Vec<StepResult>, ScriptOutput, Vec<RecoveredBatch>);

/// Carry out `planned` over `graph`.
pub async fn apply(
    graph: &TaskGraph,
    planned: &Planned,
    hosts: &[HostRuntime],
    options: &ApplyOptions,
    on_event: &(dyn Fn(Event) + Sync),
) -> ApplyReport {
    let mut queue = ReadyQueue::new(graph);
    let mut captures = Captures::new();
    let mut status: BTreeMap<NodeIndex, (StepStatus, u64)> = BTreeMap::new();
    let mut host_millis = vec![0u64; hosts.len()];
    let mut busy: BTreeSet<usize> = BTreeSet::new();
    let mut failed_hosts: BTreeSet<usize> = BTreeSet::new();
    let mut running: JoinSet<(Job, Result<BatchOutcome, String>, u64)> = JoinSet::new();
    // Reports of the waits running tasks are in, shown as they come.
    let (wait_tx, mut wait_rx) = tokio::sync::mpsc::unbounded_channel::<crate::wait::Waiting>();

    let outcome = |n: NodeIndex| planned.step_of.get(&n).map(|&i| &planned.plan.steps[i].outcome);
    let change_of = |n: NodeIndex| match outcome(n) {
        Some(Outcome::Change(c)) => Some(c.clone()),
        _ => None,
    };

    // Unreachable hosts and tasks that could not be planned fail up front.
    for (n, task) in graph.tasks() {
        let unplannable = matches!(outcome(n), Some(Outcome::Error { .. } | Outcome::Blocked { .. }) | None);
        if hosts[task.host].remote.is_none() || unplannable {
            let message = match outcome(n) {
                Some(Outcome::Error { message }) => message.clone(),
                Some(Outcome::Blocked { reason }) => reason.clone(),
                _ => format!("host {} is unreachable", task.host_name),
            };
            if queue.state(n) == TaskState::Waiting {
                queue.finish(n, false);
                status.insert(n, (StepStatus::Failed { message }, 0));
                failed_hosts.insert(task.host);
            }
        }
    }

    loop {
        let stop_new = options.cancel.load(Ordering::SeqCst) || options.max_fail.is_some_and(|m| failed_hosts.len() > m);
        // Start every batch that can start.
        let mut progressed = true;
        while progressed && !stop_new {
            progressed = false;
            for (h, host) in hosts.iter().enumerate() {
                if busy.contains(&h) || running.len() >= options.concurrency.max(1) {
                    continue;
                }
                let is_reboot = |n: NodeIndex| change_of(n).is_some_and(|c| c.action == Action::Reboot);
                let mut tasks = queue.batch_for_host(h, is_reboot);
                if tasks.is_empty() {
                    continue;
                }
                // A reboot always runs alone, after what came before it has finished.
                if let Some(pos) = tasks.iter().position(|&n| is_reboot(n))
                    && pos > 0
                {
                    tasks.truncate(pos);
                }
                let changed: Vec<NodeIndex> = tasks.iter().copied().filter(|&n| change_of(n).is_some()).collect();
                if changed.is_empty() {
                    for n in tasks {
                        queue.finish(n, true);
                        status.insert(n, (StepStatus::Unchanged, 0));
                    }
                    progressed = true;
                    continue;
                }
                let reboot = tasks.first().filter(|&&n| is_reboot(n)).and_then(|&n| match &planned.rendered.get(&n)?.spec {
                    ResourceSpec::Reboot(r) => Some((Duration::from_secs(r.timeout_secs), r.verify.clone())),
                    _ => None,
                });
                // Build the scripts now: captures from earlier batches are known by now.
                let mut steps = vec![];
                let mut build_error = None;
                for &n in &changed {
                    let r = &planned.rendered[&n];
                    let ctx = CheckContext { facts: &host.facts, dependency_changed: r.dependency_changed, captures: &captures };
                    let change = change_of(n).expect("changed");
                    match r.spec.as_resource().apply_script(&ctx, &change) {
                        Ok(script) => steps.push(BatchStep { script }),
                        Err(e) => {
                            build_error = Some((n, e.to_string()));
                            break;
                        }
                    }
                }
                if let Some((n, message)) = build_error {
                    queue.finish(n, false);
                    status.insert(n, (StepStatus::Failed { message }, 0));
                    failed_hosts.insert(h);
                    progressed = true;
                    continue;
                }
                for &n in &tasks {
                    queue.start(n);
                }
                on_event(Event::BatchStarted { host: host.name.clone(), steps: changed.iter().map(|&n| graph.task(n).id()).collect() });
                let remote = host.remote.clone().expect("reachable hosts only");
                let job = Job { host: h, tasks, changed, reboot };
                busy.insert(h);
                let batch = Batch::new(steps);
                let (name, wait_tx) = (host.name.clone(), wait_tx.clone());
                running.spawn(async move {
                    let t0 = Instant::now();
                    let result = match &job.reboot {
                        Some((timeout, verify)) => match reboot_watched(remote.as_ref(), &name, *timeout, &wait_tx).await {
                            Ok(()) => verify_after_reboot(remote.as_ref(), verify).await.map(|()| {
                                (vec![StepResult { exit_status: 0, output: String::new(), capture: None }], ScriptOutput::default(), vec![])
                            }),
                            Err(e) => Err(e),
                        },
                        // Steps' output is on stdout (2>&1 each); the batch's own standard error
                        // holds only what the shell said, shown when a step did not end.
                        None => remote.run_script_output(batch.script()).await.map(|out| {
                            let (results, recovered) = (batch.parse(&out.stdout), batch.recovered(&out.stdout));
                            (results, out, recovered)
                        }),
                    };
                    (job, result, t0.elapsed().as_millis() as u64)
                });
                progressed = true;
            }
        }

        let joined = loop {
            tokio::select! {
                biased;
                Some(w) = wait_rx.recv() => on_event(Event::Waiting(w)),
                j = running.join_next() => break j,
            }
        };
        while let Ok(w) = wait_rx.try_recv() {
            on_event(Event::Waiting(w));
        }
        let Some(joined) = joined else { break };
        let (job, result, millis) = match joined {
            Ok(v) => v,
            Err(e) => {
                // A panicking task is a bug; it must not hang the run.
                tracing::error!("apply task failed: {e}");
                continue;
            }
        };
        busy.remove(&job.host);
        host_millis[job.host] += millis;
        let (results, script_out, recovered) = match result {
            Ok(r) => r,
            Err(message) => {
                for &n in &job.tasks {
                    if job.changed.contains(&n) {
                        queue.finish(n, false);
                        let st = StepStatus::Failed { message: message.clone() };
                        on_event(Event::StepFinished { host: hosts[job.host].name.clone(), id: graph.task(n).id(), status: st.clone() });
                        status.insert(n, (st, millis));
                    } else {
                        queue.finish(n, true);
                        status.insert(n, (StepStatus::Unchanged, 0));
                    }
                }
                failed_hosts.insert(job.host);
                continue;
            }
        };
        for r in recovered {
            let log = crate::secret::redact_sensitive(&r.log_tail, captures.values());
            on_event(Event::BatchRecovered { host: hosts[job.host].name.clone(), batch: r.batch, status: r.status, log });
        }
        let mut results = results.into_iter();
        let mut stopped = false;
        for &n in &job.tasks {
            if stopped {
                // Not run because an earlier step of the batch failed; if it does not depend
                // on that step it runs in a later batch.
                queue.reset(n);
                continue;
            }
            if !job.changed.contains(&n) {
                queue.finish(n, true);
                status.insert(n, (StepStatus::Unchanged, 0));
                continue;
            }
            let id = graph.task(n).id();
            let st = match results.next() {
                Some(r) if r.exit_status == 0 => {
                    if let (Some(value), Some(ResourceSpec::Capture(c))) = (r.capture, planned.rendered.get(&n).map(|r| &r.spec)) {
                        let secret = Secret::new(value);
                        crate::secret::remember(&secret);
                        captures.insert(c.name.clone(), secret);
                    }
                    queue.finish(n, true);
                    StepStatus::Changed
                }
                Some(r) => {
                    stopped = true;
                    queue.finish(n, false);
                    failed_hosts.insert(job.host);
                    let sensitive = change_of(n).is_some_and(|c| c.sensitive);
                    let mut message = failure_message(&r, &captures, sensitive);
                    if r.exit_status == -1 {
                        message = format!("the step did not finish: the batch script ended early{}\n{message}", script_out.failure_detail(&captures));
                    }
                    StepStatus::Failed { message }
                }
                None => {
                    stopped = true;
                    queue.finish(n, false);
                    failed_hosts.insert(job.host);
                    StepStatus::Failed {
                        message: format!("the host did not report this step (connection lost?){}", script_out.failure_detail(&captures)),
                    }
                }
            };
            on_event(Event::StepFinished { host: hosts[job.host].name.clone(), id, status: st.clone() });
            status.insert(n, (st, millis));
        }
    }

    let interrupted = options.cancel.load(Ordering::SeqCst);
    let mut report = ApplyReport { interrupted, ..Default::default() };
    // A host without tasks (outside --limit, or no role applies) was never connected to: it
    // is not unreachable, it was left alone.
    let mut has_tasks = vec![false; hosts.len()];
    for (_, task) in graph.tasks() {
        has_tasks[task.host] = true;
    }
    for (i, h) in hosts.iter().enumerate() {
        report.hosts.push(HostReport {
            name: h.name.clone(),
            unreachable: h.remote.is_none() && has_tasks[i],
            millis: host_millis[i],
            ..Default::default()
        });
    }
    for (n, task) in graph.tasks() {
        let (st, millis) = match (status.get(&n), queue.state(n)) {
            (Some(s), _) => s.clone(),
            (None, TaskState::Blocked) => (StepStatus::Blocked, 0),
            (None, _) => (StepStatus::NotRun, 0),
        };
        let hr = &mut report.hosts[task.host];
        match &st {
            StepStatus::Unchanged => hr.ok += 1,
            StepStatus::Changed => {
                hr.ok += 1;
                hr.changed += 1;
            }
            StepStatus::Failed { .. } => hr.failed += 1,
            StepStatus::Blocked => hr.blocked += 1,
            StepStatus::NotRun => hr.not_run += 1,
        }
        report.steps.push(StepReport { id: task.id(), host: task.host_name.clone(), status: st, millis });
    }
    report
}

/// The host's reboot and the wait until it is back, reported as it goes (what is awaited and
/// for how long, then every 30 s); a timeout says what to check.
async fn reboot_watched(
    remote: &dyn Remote,
    host: &str,
    timeout: Duration,
    tx: &tokio::sync::mpsc::UnboundedSender<crate::wait::Waiting>,
) -> Result<(), String> {
    let what = format!("{host} to come back after the reboot");
    let limit_secs = timeout.as_secs();
    let report = |waited: Duration| {
        let _ = tx.send(crate::wait::Waiting { host: host.to_string(), what: what.clone(), waited_secs: waited.as_secs(), limit_secs });
    };
    crate::wait::watched(remote.reboot(timeout), crate::wait::EVERY, report)
        .await
        .map_err(|e| format!("{e}\n{}", crate::wait::reboot_timeout_help(host)))
}

/// The reboot's checks, on facts gathered again now that the host is back (one more round
/// trip, only after a reboot): the fact script for what the checks read, parsed and judged.
async fn verify_after_reboot(remote: &dyn Remote, verify: &crate::resources::Verify) -> Result<(), String> {
    if verify.is_empty() {
        return Ok(());
    }
    let script = crate::facts::FactScript::new(verify.queries());
    let text = script.render().map_err(|e| format!("the checks after the reboot: {e}"))?;
    let out = remote.run_script(text).await.map_err(|e| format!("the checks after the reboot could not run: {e}"))?;
    let facts = crate::facts::parse(&script, &out).map_err(|e| format!("the checks after the reboot: {e}"))?;
    verify.check(&facts)
}

/// The last lines of a failed step's output, with every secret taken out: captured values,
/// the sudo password, bootstrap tokens and certificate keys, whatever printed them; for a
/// `sensitive` step also any other run of key material (see [`crate::secret::redact_sensitive`]),
/// as such a step can print a secret kprov never learned the value of.
fn failure_message(r: &StepResult, captures: &Captures, sensitive: bool) -> String {
    let clean =
        if sensitive { crate::secret::redact_sensitive(&r.output, captures.values()) } else { crate::secret::redact(&r.output, captures.values()) };
    let tail: Vec<&str> = clean.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect();
    format!("exit status {}\n{}", r.exit_status, tail.join("\n"))
}
