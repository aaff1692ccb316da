//! A ready-queue over the task graph: a task is ready when every task it depends on finished
//! successfully. A failed task blocks everything that depends on it, transitively, and nothing
//! else (a failed host stops only its dependants).

use std::collections::{BTreeMap, BTreeSet};

use petgraph::Direction;
use petgraph::graph::NodeIndex;
use petgraph::visit::EdgeRef;

use super::TaskGraph;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    Waiting,
    Running,
    Done,
    Failed,
    /// Not run because something it depends on failed.
    Blocked,
}

pub struct ReadyQueue<'g> {
    graph: &'g TaskGraph,
    state: BTreeMap<NodeIndex, TaskState>,
    /// Unfinished dependencies per waiting task.
    pending: BTreeMap<NodeIndex, usize>,
}

impl<'g> ReadyQueue<'g> {
    pub fn new(graph: &'g TaskGraph) -> Self {
        let mut pending = BTreeMap::new();
        let mut state = BTreeMap::new();
        for n in graph.graph.node_indices() {
            pending.insert(n, graph.graph.edges_directed(n, Direction::Incoming).count());
            state.insert(n, TaskState::Waiting);
        }
        ReadyQueue { graph, state, pending }
    }

    pub fn state(&self, n: NodeIndex) -> TaskState {
        self.state[&n]
    }

    /// Waiting tasks with no unfinished dependency, in plan order.
    pub fn ready(&self) -> Vec<NodeIndex> {
        self.graph.order.iter().copied().filter(|n| self.state[n] == TaskState::Waiting && self.pending[n] == 0).collect()
    }

    /// The largest set of tasks of `host` that can run one after another in a single round
    /// trip from here: ready tasks of that host, then any of its tasks whose dependencies are
    /// all done or earlier in the batch. Returned in plan (topological) order.
    pub fn batch_for_host(&self, host: usize, stop: impl Fn(NodeIndex) -> bool) -> Vec<NodeIndex> {
        let mut batch: Vec<NodeIndex> = vec![];
        let mut in_batch = BTreeSet::new();
        for &n in &self.graph.order {
            if self.state[&n] != TaskState::Waiting || self.graph.graph[n].host != host {
                continue;
            }
            let deps_ok = self
                .graph
                .graph
                .edges_directed(n, Direction::Incoming)
                .all(|e| self.state[&e.source()] == TaskState::Done || in_batch.contains(&e.source()));
            if !deps_ok {
                continue;
            }
            batch.push(n);
            in_batch.insert(n);
            if stop(n) {
                // e.g. a reboot: nothing may follow it in the same round trip.
                break;
            }
        }
        batch
    }

    pub fn start(&mut self, n: NodeIndex) {
        self.state.insert(n, TaskState::Running);
    }

    /// Put a started task back: it did not run (an earlier step of its batch failed).
    pub fn reset(&mut self, n: NodeIndex) {
        if self.state[&n] == TaskState::Running {
            self.state.insert(n, TaskState::Waiting);
        }
    }

    pub fn finish(&mut self, n: NodeIndex, ok: bool) {
        if ok {
            self.state.insert(n, TaskState::Done);
            for e in self.graph.graph.edges_directed(n, Direction::Outgoing) {
                *self.pending.get_mut(&e.target()).expect("every node has a count") -= 1;
            }
        } else {
            self.state.insert(n, TaskState::Failed);
            self.block_dependants(n);
        }
    }

    fn block_dependants(&mut self, n: NodeIndex) {
        let mut stack: Vec<NodeIndex> = self.graph.graph.neighbors_directed(n, Direction::Outgoing).collect();
        while let Some(m) = stack.pop() {
            // Running counts too: a task started in the same batch as the failed one never ran.
            if matches!(self.state[&m], TaskState::Waiting | TaskState::Running) {
                self.state.insert(m, TaskState::Blocked);
                stack.extend(self.graph.graph.neighbors_directed(m, Direction::Outgoing));
            }
        }
    }

    /// Nothing left to run: every task is done, failed or blocked.
    pub fn finished(&self) -> bool {
        self.state.values().all(|s| !matches!(s, TaskState::Waiting | TaskState::Running))
    }

    pub fn count(&self, s: TaskState) -> usize {
        self.state.values().filter(|v| **v == s).count()
    }
}
