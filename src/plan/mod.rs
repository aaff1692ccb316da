//! Planning: desired resources + facts → the changes to make. A pure function: no I/O, so the
//! same facts always give the same plan, and plans are snapshot-tested from fact fixtures.
//!
//! Planning runs in two steps around fact gathering:
//! 1. [`Planner::discover`] renders every task without facts to learn which fact queries each
//!    host needs (one [`FactScript`] per host);
//! 2. [`Planner::plan`] renders every task again with the host's facts, evaluates `when`,
//!    checks it, and records a [`Step`] per task in graph order.

mod model;
mod render;

pub use model::{FactsOrigin, HostFactsOrigin, HostPlan, HostStatus, Outcome, PLAN_FORMAT_VERSION, Plan, PlannedFetch, Step, Summary};
pub use render::{CONTENT_NOT_RECORDED, render_json, render_markdown, render_text};

use std::collections::{BTreeMap, BTreeSet};

use petgraph::graph::NodeIndex;
use serde_json::Value as Json;

use crate::facts::{FactQuery, FactScript, HostFacts};
use crate::graph::TaskGraph;
use crate::resources::{Captures, Check, CheckContext, ResourceSpec};
use crate::roles::{Pass, Renderer};

/// A task rendered for its host, ready to check or apply.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub spec: ResourceSpec,
    /// Whether anything this task follows (restart_on, after_change_of) changes in this plan.
    pub dependency_changed: bool,
}

/// The plan plus what apply needs to carry it out.
#[derive(Debug, Clone)]
pub struct Planned {
    pub plan: Plan,
    /// Rendered resources by task, for tasks that rendered (not for blocked hosts).
    pub rendered: BTreeMap<NodeIndex, Rendered>,
    /// Step index by task.
    pub step_of: BTreeMap<NodeIndex, usize>,
}

pub struct Planner<'a> {
    pub graph: &'a TaskGraph,
    pub renderer: &'a Renderer,
    /// Template context per host (inventory values), without facts.
    pub contexts: &'a [minijinja::Value],
}

/// The result of fact gathering for one host.
pub type HostFactsResult = Result<HostFacts, String>;

impl Planner<'_> {
    /// Fact scripts per host, and the rendering errors found on the way (a resource whose
    /// identity cannot even be rendered is reported again by [`Planner::plan`]).
    pub fn discover(&self) -> Vec<FactScript> {
        let mut queries: Vec<BTreeSet<FactQuery>> = vec![BTreeSet::new(); self.contexts.len()];
        for (_, task) in self.graph.tasks() {
            if let Ok(spec) = self.render(task, Pass::Discover, &self.contexts[task.host]) {
                queries[task.host].extend(spec.as_resource().facts());
            }
        }
        queries.into_iter().map(FactScript::new).collect()
    }

    fn render(&self, task: &crate::graph::Task, pass: Pass, ctx: &minijinja::Value) -> Result<ResourceSpec, String> {
        let raw = Json::Object(task.decl.spec.clone().into_iter().collect());
        let value = self.renderer.render_value(pass, &raw, ctx)?;
        let spec: ResourceSpec = serde_json::from_value(value).map_err(|e| e.to_string())?;
        if let ResourceSpec::Command(c) = &spec
            && !c.has_guard()
        {
            return Err("a command needs a guard (creates, unless or only_if) so a re-run does not repeat it".into());
        }
        Ok(spec)
    }

    /// The plan, given each host's facts (or why they could not be gathered).
    pub fn plan(&self, facts: &[HostFactsResult], hosts: Vec<HostPlan>) -> Planned {
        let no_captures = Captures::new();
        let mut steps = vec![];
        let mut rendered = BTreeMap::new();
        let mut step_of = BTreeMap::new();
        // Resource name → changed, per host, for restart_on / after_change_of.
        let mut changed: BTreeMap<(usize, String), bool> = BTreeMap::new();

        for (n, task) in self.graph.tasks() {
            let step_base = |outcome| Step {
                id: task.id(),
                host: task.host_name.clone(),
                role: task.role.clone(),
                resource: task.decl.name.clone(),
                kind: task.decl.spec.keys().next().cloned().unwrap_or_default(),
                outcome,
            };
            let host_facts = match &facts[task.host] {
                Ok(f) => f,
                Err(e) => {
                    step_of.insert(n, steps.len());
                    steps.push(step_base(Outcome::Blocked { reason: format!("host {} has no facts: {e}", task.host_name) }));
                    continue;
                }
            };
            let ctx = with_facts(&self.contexts[task.host], host_facts);
            let outcome = match self.plan_task(task, &ctx, host_facts, &changed, &no_captures) {
                Ok((r, outcome)) => {
                    rendered.insert(n, r);
                    outcome
                }
                Err(message) => Outcome::Error { message },
            };
            let is_change = matches!(outcome, Outcome::Change(_));
            changed.insert((task.host, task.decl.name.clone()), is_change);
            changed.insert((task.host, format!("{}/{}", task.role, task.decl.name)), is_change);
            step_of.insert(n, steps.len());
            steps.push(step_base(outcome));
        }

        // A capture runs only when a planned command uses its value.
        let wanted: BTreeSet<String> = rendered
            .iter()
            .filter(|(n, _)| matches!(steps[step_of[n]].outcome, Outcome::Change(_)))
            .filter_map(|(_, r)| match &r.spec {
                ResourceSpec::Command(c) => Some(c.env_from_capture.values().cloned().collect::<Vec<_>>()),
                _ => None,
            })
            .flatten()
            .collect();
        for (n, r) in &rendered {
            if let ResourceSpec::Capture(c) = &r.spec
                && !wanted.contains(&c.name)
            {
                steps[step_of[n]].outcome = Outcome::NoOp { reason: "nothing in this plan needs it".into() };
            }
        }

        let mut fetches = planned_fetches(&rendered, &steps, &step_of);
        // Hosts in inventory order, as everywhere else in a plan.
        let rank: BTreeMap<&str, usize> = hosts.iter().enumerate().map(|(i, h)| (h.name.as_str(), i)).collect();
        for f in &mut fetches {
            f.hosts.sort_by_key(|h| rank.get(h.as_str()).copied().unwrap_or(usize::MAX));
        }
        let mut plan = Plan::new(hosts, steps);
        plan.fetches = fetches;
        Planned { plan, rendered, step_of }
    }

    fn plan_task(
        &self,
        task: &crate::graph::Task,
        ctx: &minijinja::Value,
        facts: &HostFacts,
        changed: &BTreeMap<(usize, String), bool>,
        captures: &Captures,
    ) -> Result<(Rendered, Outcome), String> {
        if let Some(when) = &task.decl.when
            && !self.renderer.when(Pass::Final, when, ctx).map_err(|e| format!("when: {e}"))?
        {
            let spec = self.render(task, Pass::Discover, ctx)?;
            return Ok((Rendered { spec, dependency_changed: false }, Outcome::Skipped { reason: format!("when: {when}") }));
        }
        let spec = self.render(task, Pass::Final, ctx)?;
        let follows: Vec<&String> = match &spec {
            ResourceSpec::Service(s) => s.restart_on.iter().collect(),
            ResourceSpec::Reboot(r) => r.after_change_of.iter().collect(),
            _ => vec![],
        };
        let mut dependency_changed = false;
        for name in follows {
            match changed.get(&(task.host, name.clone())) {
                Some(c) => dependency_changed |= c,
                None => {
                    return Err(format!(
                        "{name:?} names no resource planned before this one on {} (write `resource` or `role/resource` of an earlier task)",
                        task.host_name
                    ));
                }
            }
        }
        let check_ctx = CheckContext { facts, dependency_changed, captures };
        let outcome = match spec.as_resource().check(&check_ctx) {
            Ok(Check::NoOp { reason }) => Outcome::NoOp { reason },
            Ok(Check::Change(c)) => Outcome::Change(c),
            Err(e) => Outcome::Error { message: e.to_string() },
        };
        Ok((Rendered { spec, dependency_changed }, outcome))
    }
}

/// Every download of the rendered steps (not of skipped or failed ones), one entry per URL and
/// check, in plan order.
fn planned_fetches(rendered: &BTreeMap<NodeIndex, Rendered>, steps: &[Step], step_of: &BTreeMap<NodeIndex, usize>) -> Vec<PlannedFetch> {
    let mut order: Vec<usize> = rendered.keys().filter_map(|n| step_of.get(n).copied()).collect();
    order.sort_unstable();
    let spec_of: BTreeMap<usize, &Rendered> = rendered.iter().filter_map(|(n, r)| step_of.get(n).map(|&i| (i, r))).collect();
    let mut out: Vec<PlannedFetch> = vec![];
    // Host membership per entry, so a thousand hosts cost a thousand lookups, not a million.
    let mut seen: Vec<BTreeSet<String>> = vec![];
    for i in order {
        let step = &steps[i];
        let planned = match &step.outcome {
            Outcome::Change(_) => true,
            Outcome::NoOp { .. } => false,
            _ => continue,
        };
        for f in spec_of[&i].spec.as_resource().fetches() {
            let name = format!("{}/{}", step.role, step.resource);
            match out.iter().position(|p| p.url == f.url && p.check == f.check) {
                Some(k) => {
                    let p = &mut out[k];
                    p.planned |= planned;
                    if seen[k].insert(step.host.clone()) {
                        p.hosts.push(step.host.clone());
                    }
                    if !p.steps.contains(&name) {
                        p.steps.push(name);
                    }
                }
                None => {
                    seen.push(BTreeSet::from([step.host.clone()]));
                    out.push(PlannedFetch { url: f.url, check: f.check, planned, hosts: vec![step.host.clone()], steps: vec![name] });
                }
            }
        }
    }
    out
}

/// The host's context with its facts added under `facts` (`facts.os.id`...): a small overlay
/// on the shared context, never a copy of it.
pub fn with_facts(ctx: &minijinja::Value, facts: &HostFacts) -> minijinja::Value {
    let os = facts.os().map(crate::roles::to_value).unwrap_or(minijinja::Value::from(()));
    minijinja::context! { facts => minijinja::context! { os => os }, ..ctx.clone() }
}
