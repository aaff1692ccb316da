//! The engine ties the pipeline together for the CLI: inventory → connect → facts → plan →
//! apply. Everything here that touches the network goes through [`Connector`] and
//! [`crate::apply::Remote`], so the same code runs over SSH and, in tests, over a local shell.

pub mod context;
pub mod pins;
pub mod recorded;
pub mod saved;

use std::sync::Arc;

use tokio::task::JoinSet;

use crate::apply::{BoxFuture, Remote};
use crate::facts::{FactScript, parse};
use crate::graph::{HostInfo, Selection, TaskGraph};
use crate::plan::{HostFactsResult, HostPlan, HostStatus, Planned, Planner};
use crate::roles::{Renderer, RoleSet};
use crate::transport::TransportError;

/// Opens the connection to a host. One connection per host, reused for everything. A failure
/// keeps the transport's kind (unreachable, auth, host key, sudo...) and its help.
pub trait Connector: Send + Sync {
    fn connect(&self, host: usize) -> BoxFuture<'_, Result<Arc<dyn Remote>, TransportError>>;
}

/// A compiled run: the task graph and what rendering needs, for a fixed inventory and roles.
pub struct Engine {
    pub hosts: Vec<HostInfo>,
    pub addresses: Vec<String>,
    pub graph: TaskGraph,
    pub renderer: Renderer,
    pub contexts: Vec<minijinja::Value>,
    pub fact_scripts: Vec<FactScript>,
}

/// What fact gathering found: per host, its connection (when reachable) and its facts.
pub struct Gathered {
    pub remotes: Vec<Option<Arc<dyn Remote>>>,
    pub facts: Vec<HostFactsResult>,
    pub statuses: Vec<HostStatus>,
}

impl Engine {
    pub fn new(
        hosts: Vec<HostInfo>,
        addresses: Vec<String>,
        contexts: Vec<minijinja::Value>,
        roles: &RoleSet,
        selection: &Selection,
    ) -> Result<Engine, crate::graph::GraphError> {
        let graph = TaskGraph::build(&hosts, roles, selection)?;
        let renderer = Renderer::new(roles);
        let fact_scripts = Planner { graph: &graph, renderer: &renderer, contexts: &contexts }.discover();
        Ok(Engine { hosts, addresses, graph, renderer, contexts, fact_scripts })
    }

    /// Hosts that have at least one task (a `--limit` leaves the others alone).
    pub fn active_hosts(&self) -> Vec<usize> {
        let mut used: Vec<usize> = self.graph.tasks().map(|(_, t)| t.host).collect();
        used.sort_unstable();
        used.dedup();
        used
    }

    /// Connect to every active host and run its fact script: one connection and one round
    /// trip per host, all hosts in parallel (at most `concurrency` at once).
    pub async fn gather(&self, connector: Arc<dyn Connector>, concurrency: usize) -> Gathered {
        let n = self.hosts.len();
        let mut remotes: Vec<Option<Arc<dyn Remote>>> = vec![None; n];
        let mut facts: Vec<HostFactsResult> = (0..n).map(|_| Err("not selected".to_string())).collect();
        let mut statuses: Vec<HostStatus> = (0..n).map(|_| HostStatus::Unreachable { message: "not selected".into() }).collect();
        let limit = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
        let mut set = JoinSet::new();
        for h in self.active_hosts() {
            let connector = connector.clone();
            let script = self.fact_scripts[h].clone();
            let limit = limit.clone();
            set.spawn(async move {
                let _permit = limit.acquire_owned().await.expect("never closed");
                let remote = match connector.connect(h).await {
                    Ok(r) => r,
                    Err(e) => return (h, None, Err(e.to_string()), true),
                };
                let text = match script.render() {
                    Ok(t) => t,
                    Err(e) => return (h, Some(remote), Err(e.to_string()), false),
                };
                let result = match remote.run_script_output(text).await {
                    Ok(out) => parse(&script, &out.stdout).map_err(|e| fact_script_failed(&e, &out)),
                    Err(e) => Err(e),
                };
                (h, Some(remote), result, false)
            });
        }
        while let Some(joined) = set.join_next().await {
            let Ok((h, remote, result, unreachable)) = joined else { continue };
            statuses[h] = match (&result, unreachable) {
                (Ok(_), _) => HostStatus::Ready,
                (Err(e), true) => HostStatus::Unreachable { message: e.clone() },
                (Err(e), false) => HostStatus::FactsFailed { message: e.clone() },
            };
            remotes[h] = remote;
            facts[h] = result;
        }
        Gathered { remotes, facts, statuses }
    }

    pub fn plan(&self, gathered: &Gathered) -> Planned {
        let planner = Planner { graph: &self.graph, renderer: &self.renderer, contexts: &self.contexts };
        let hosts: Vec<HostPlan> = self
            .active_hosts()
            .into_iter()
            .map(|h| HostPlan {
                name: self.hosts[h].name.clone(),
                address: self.addresses[h].clone(),
                status: gathered.statuses[h].clone(),
                facts_fingerprint: gathered.facts[h].as_ref().ok().map(|f| f.fingerprint()),
            })
            .collect();
        let mut planned = planner.plan(&gathered.facts, hosts);
        self.cross_host_preflight(gathered, &mut planned);
        planned
    }

    /// Problems only visible across hosts (duplicate hostnames, cloned MACs) fail the
    /// preflight step of each host involved.
    fn cross_host_preflight(&self, gathered: &Gathered, planned: &mut Planned) {
        let policy = self
            .contexts
            .first()
            .and_then(|c| c.get_attr("cluster").ok())
            .and_then(|c| c.get_attr("preflight").ok())
            .and_then(|v| serde_json::to_value(&v).ok())
            .and_then(|v| serde_json::from_value::<crate::preflight::Policy>(v).ok())
            .unwrap_or_default();
        let os: Vec<(usize, &str, &crate::facts::OsFact)> = gathered
            .facts
            .iter()
            .enumerate()
            .filter_map(|(i, f)| f.as_ref().ok().and_then(|f| f.os()).map(|o| (i, self.hosts[i].name.as_str(), o)))
            .collect();
        let problems = crate::preflight::check_cluster(&os, &policy);
        if problems.is_empty() {
            return;
        }
        // Step ids are looked up once, not scanned for every problem.
        let step_of: std::collections::HashMap<String, usize> = planned.plan.steps.iter().enumerate().map(|(i, s)| (s.id.clone(), i)).collect();
        for (host, problem) in problems {
            let id = format!("{}/preflight/checks", self.hosts[host].name);
            if let Some(&i) = step_of.get(&id) {
                let step = &mut planned.plan.steps[i];
                let message = format!("preflight failed: [{}] {}", problem.code, problem.message);
                step.outcome = match &step.outcome {
                    crate::plan::Outcome::Error { message: m } if !m.contains(&message) => {
                        crate::plan::Outcome::Error { message: format!("{m}; {message}") }
                    }
                    crate::plan::Outcome::Error { message: m } => crate::plan::Outcome::Error { message: m.clone() },
                    _ => crate::plan::Outcome::Error { message },
                };
            }
        }
        planned.plan.summary = crate::plan::Summary::of(&planned.plan.steps);
    }
}

/// A fact script whose output kprov cannot read: the parser's reason, the exit status and the
/// last lines of the script's standard error (redacted), naming the stage.
fn fact_script_failed(e: &crate::facts::FactParseError, out: &crate::apply::ScriptOutput) -> String {
    format!("(stage: fact script) {e}{}", out.failure_detail(&Default::default()))
}

#[cfg(test)]
mod plan_snapshots;
#[cfg(test)]
mod supply_tests;
#[cfg(test)]
mod tests;
