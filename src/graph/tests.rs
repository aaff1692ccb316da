use super::*;
use crate::roles::{Origin, RoleSet, parse_role};

fn roles(texts: &[&str]) -> RoleSet {
    RoleSet {
        roles: texts.iter().map(|t| (Origin::Embedded("test"), parse_role(&Origin::Embedded("test"), t).unwrap())).collect(),
        templates: Default::default(),
    }
}

fn hosts() -> Vec<HostInfo> {
    vec![
        HostInfo { name: "cp1".into(), control_plane: true, worker: false },
        HostInfo { name: "cp2".into(), control_plane: true, worker: false },
        HostInfo { name: "w1".into(), control_plane: false, worker: true },
    ]
}

const PREP: &str = "name: prep\nhosts: all\nresources:\n  - {name: a, swap_off: {}}\n  - {name: b, swap_off: {}}\n";
const INIT: &str = "name: init\nhosts: first-control-plane\nafter: [prep]\nresources:\n  - {name: init, command: {run: x, creates: /y}}\n";
const JOIN: &str = "name: join\nhosts: worker\nafter: [prep, init]\nresources:\n  - {name: join, command: {run: x, creates: /y}}\n";

fn ids(g: &TaskGraph) -> Vec<String> {
    g.tasks().map(|(_, t)| t.id()).collect()
}

fn edge(g: &TaskGraph, from: &str, to: &str) -> bool {
    let find = |id: &str| g.graph.node_indices().find(|&n| g.graph[n].id() == id).unwrap();
    g.graph.contains_edge(find(from), find(to))
}

#[test]
fn roles_select_hosts_and_order_resources() {
    let g = TaskGraph::build(&hosts(), &roles(&[PREP, INIT, JOIN]), &Selection::default()).unwrap();
    let ids = ids(&g);
    assert_eq!(ids.len(), 3 * 2 + 1 + 1);
    assert!(ids.contains(&"cp1/init/init".to_string()));
    assert!(!ids.contains(&"cp2/init/init".to_string()));
    assert!(edge(&g, "w1/prep/a", "w1/prep/b"));
    // Same-host `after`, and the cross-host edge from the first control plane to the worker.
    assert!(edge(&g, "w1/prep/b", "w1/join/join"));
    assert!(edge(&g, "cp1/init/init", "w1/join/join"));
    assert!(edge(&g, "cp1/prep/b", "cp1/init/init"));
    let pos = |id: &str| ids.iter().position(|i| i == id).unwrap();
    assert!(pos("cp1/init/init") < pos("w1/join/join"));
}

#[test]
fn a_cycle_names_every_step() {
    let a = "name: a\nhosts: all\nafter: [b]\nresources:\n  - {name: x, swap_off: {}}\n";
    let b = "name: b\nhosts: all\nafter: [a]\nresources:\n  - {name: y, swap_off: {}}\n";
    let err = TaskGraph::build(&hosts()[..1], &roles(&[a, b]), &Selection::default()).unwrap_err();
    let GraphError::Cycle { cycle } = &err else { panic!("{err:?}") };
    assert_eq!(cycle.len(), 3, "{cycle:?}");
    assert_eq!(cycle.first(), cycle.last());
    assert!(cycle.contains(&"cp1/a/x".to_string()) && cycle.contains(&"cp1/b/y".to_string()));
    assert!(err.to_string().starts_with("dependency cycle: "), "{err}");
}

#[test]
fn limit_and_tags_select() {
    let sel = Selection { hosts: vec!["w1".into()], tags: vec!["prep".into()] };
    let g = TaskGraph::build(&hosts(), &roles(&[PREP, INIT, JOIN]), &sel).unwrap();
    assert_eq!(ids(&g), ["w1/prep/a", "w1/prep/b"]);
}

#[test]
fn failure_blocks_only_dependants_and_batches_follow_the_graph() {
    let g = TaskGraph::build(&hosts(), &roles(&[PREP, INIT, JOIN]), &Selection::default()).unwrap();
    let mut q = ReadyQueue::new(&g);
    // The worker's whole prep role fits one round trip; its join must wait for cp1's init.
    let batch: Vec<String> = q.batch_for_host(2, |_| false).iter().map(|&n| g.task(n).id()).collect();
    assert_eq!(batch, ["w1/prep/a", "w1/prep/b"]);
    let find = |id: &str| g.graph.node_indices().find(|&n| g.graph[n].id() == id).unwrap();
    q.finish(find("cp1/prep/a"), false);
    assert_eq!(q.state(find("cp1/init/init")), ready::TaskState::Blocked);
    assert_eq!(q.state(find("w1/join/join")), ready::TaskState::Blocked);
    assert_eq!(q.state(find("cp2/prep/a")), ready::TaskState::Waiting);
    for id in ["cp2/prep/a", "cp2/prep/b", "w1/prep/a", "w1/prep/b"] {
        q.finish(find(id), true);
    }
    assert!(q.finished());
}
