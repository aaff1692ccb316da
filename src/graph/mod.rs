//! The task graph: hosts × role resources in petgraph, with edges for the order inside a role,
//! for role `after` lists on the same host, and across hosts (a role that comes after a role
//! running elsewhere, e.g. workers join after the first control plane is initialised).
//!
//! [`TaskGraph::build`] rejects cycles with the whole cycle named. [`ReadyQueue`] hands out
//! tasks whose dependencies are done, the way cargo's dependency queue does.

mod ready;

pub use ready::{ReadyQueue, TaskState};

use std::collections::BTreeMap;

use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};

use crate::roles::{HostSelector, ResourceDecl, RoleSet};

/// What the graph needs to know of a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInfo {
    pub name: String,
    pub control_plane: bool,
    pub worker: bool,
}

/// One resource of one role on one host.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// Index into the host list given to [`TaskGraph::build`].
    pub host: usize,
    pub host_name: String,
    pub role: String,
    pub decl: ResourceDecl,
}

impl Task {
    /// `host/role/resource`: unique, stable, shown in plans and results.
    pub fn id(&self) -> String {
        format!("{}/{}/{}", self.host_name, self.role, self.decl.name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum GraphError {
    #[error("dependency cycle: {}", cycle.join(" → "))]
    #[diagnostic(code(kprov::graph::cycle), help("a role's `after` list must not lead back to itself; check the roles named here"))]
    Cycle { cycle: Vec<String> },
    #[error("role {role}: resource name {name:?} is used twice")]
    #[diagnostic(code(kprov::graph::duplicate))]
    DuplicateResource { role: String, name: String },
}

/// Which roles and hosts to plan: all by default.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Host names to keep (`--limit`); empty keeps all.
    pub hosts: Vec<String>,
    /// Role names or tags to keep (`--tags`); empty keeps all.
    pub tags: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct TaskGraph {
    pub graph: DiGraph<Task, ()>,
    /// A topological order, fixed at build time so plans list tasks deterministically.
    pub order: Vec<NodeIndex>,
}

pub fn selects(selector: HostSelector, hosts: &[HostInfo], i: usize) -> bool {
    let first_cp = hosts.iter().position(|h| h.control_plane);
    match selector {
        HostSelector::All => true,
        HostSelector::ControlPlane => hosts[i].control_plane,
        HostSelector::Worker => hosts[i].worker && !hosts[i].control_plane,
        HostSelector::FirstControlPlane => first_cp == Some(i),
        HostSelector::OtherControlPlanes => hosts[i].control_plane && first_cp != Some(i),
    }
}

impl TaskGraph {
    pub fn build(hosts: &[HostInfo], roles: &RoleSet, selection: &Selection) -> Result<TaskGraph, GraphError> {
        let mut graph: DiGraph<Task, ()> = DiGraph::new();
        // (role, host) → (first, last) task of that role on that host.
        let mut span: BTreeMap<(&str, usize), (NodeIndex, NodeIndex)> = BTreeMap::new();
        let keep_host = |name: &str| selection.hosts.is_empty() || selection.hosts.iter().any(|h| h == name);
        let keep_role = |name: &str, tags: &[String]| selection.tags.is_empty() || selection.tags.iter().any(|t| t == name || tags.contains(t));

        for (_, role) in &roles.roles {
            let mut names = std::collections::BTreeSet::new();
            for r in &role.resources {
                if !names.insert(&r.name) {
                    return Err(GraphError::DuplicateResource { role: role.name.clone(), name: r.name.clone() });
                }
            }
            if !keep_role(&role.name, &role.tags) || role.resources.is_empty() {
                continue;
            }
            for (i, h) in hosts.iter().enumerate() {
                if !keep_host(&h.name) || !selects(role.hosts, hosts, i) {
                    continue;
                }
                let mut prev: Option<NodeIndex> = None;
                let mut first = None;
                for decl in &role.resources {
                    let n = graph.add_node(Task { host: i, host_name: h.name.clone(), role: role.name.clone(), decl: decl.clone() });
                    if let Some(p) = prev {
                        graph.add_edge(p, n, ());
                    }
                    first.get_or_insert(n);
                    prev = Some(n);
                }
                span.insert((role.name.as_str(), i), (first.expect("non-empty"), prev.expect("non-empty")));
            }
        }

        for (_, role) in &roles.roles {
            for (i, _) in hosts.iter().enumerate() {
                let Some(&(first, _)) = span.get(&(role.name.as_str(), i)) else { continue };
                for after in &role.after {
                    if let Some(&(_, last)) = span.get(&(after.as_str(), i)) {
                        graph.add_edge(last, first, ());
                    } else {
                        // The role runs elsewhere: wait for it on every host that runs it.
                        for (&(r, _), &(_, last)) in span.iter().filter(|((r, _), _)| *r == after.as_str()) {
                            debug_assert_eq!(r, after);
                            graph.add_edge(last, first, ());
                        }
                    }
                }
            }
        }

        let order = match toposort(&graph, None) {
            Ok(order) => order,
            Err(cycle) => return Err(GraphError::Cycle { cycle: describe_cycle(&graph, cycle.node_id()) }),
        };
        Ok(TaskGraph { graph, order })
    }

    pub fn task(&self, n: NodeIndex) -> &Task {
        &self.graph[n]
    }

    /// Tasks in plan order.
    pub fn tasks(&self) -> impl Iterator<Item = (NodeIndex, &Task)> {
        self.order.iter().map(|&n| (n, &self.graph[n]))
    }

    /// The task of `host` named `name` in `role`, for same-host references like restart_on.
    pub fn find(&self, host: usize, role: &str, name: &str) -> Option<NodeIndex> {
        self.graph.node_indices().find(|&n| {
            let t = &self.graph[n];
            t.host == host && t.role == role && t.decl.name == name
        })
    }
}

/// One full loop through `start`: a breadth-first search inside its strongly connected
/// component for the shortest way back to it.
fn describe_cycle(graph: &DiGraph<Task, ()>, start: NodeIndex) -> Vec<String> {
    let scc = tarjan_scc(graph).into_iter().find(|c| c.contains(&start)).unwrap_or_else(|| vec![start]);
    let mut came_from: BTreeMap<NodeIndex, NodeIndex> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    let mut end = None;
    'search: while let Some(n) = queue.pop_front() {
        for next in graph.neighbors(n).filter(|m| scc.contains(m)) {
            if next == start {
                end = Some(n);
                break 'search;
            }
            if let std::collections::btree_map::Entry::Vacant(e) = came_from.entry(next) {
                e.insert(n);
                queue.push_back(next);
            }
        }
    }
    // Walk back from the last step to the start, then read it forwards.
    let mut back = vec![];
    let mut n = end.unwrap_or(start);
    while n != start {
        back.push(n);
        n = came_from[&n];
    }
    let path = std::iter::once(start).chain(back.into_iter().rev()).chain(std::iter::once(start));
    path.map(|n| graph[n].id()).collect()
}

#[cfg(test)]
mod tests;
