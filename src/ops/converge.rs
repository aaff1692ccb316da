//! "Converge a role selection": the inventory's engine for a selection of hosts and tags, the
//! facts read over one connection per host, and the plan. Plan and apply run it for the whole
//! inventory; upgrade runs it for the `apt` role of the hosts it is about to upgrade.

use std::path::Path;
use std::sync::Arc;

use super::session::{self, ssh_connector};
use crate::engine::{Engine, Gathered, saved};
use crate::graph::Selection;
use crate::inventory::Inventory;
use crate::plan::Planned;
use crate::transport::ssh::SshConnector;

/// Which hosts and roles a converge covers, and how many hosts at once.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub limit: Vec<String>,
    pub tags: Vec<String>,
    pub concurrency: usize,
}

/// What plan and apply share: a valid inventory, the engine, the facts and the plan.
pub struct Prepared {
    /// Read by apply for its after-steps (nodes Ready, smoke test, admin.conf).
    pub inventory: Inventory,
    pub engine: Engine,
    pub connector: Arc<SshConnector>,
    pub gathered: Gathered,
    pub planned: Planned,
}

impl Prepared {
    /// What apply needs of each host: its connection and facts from the gathering.
    pub fn host_runtimes(&self) -> Vec<crate::apply::HostRuntime> {
        (0..self.engine.hosts.len())
            .map(|h| crate::apply::HostRuntime {
                name: self.engine.hosts[h].name.clone(),
                remote: self.gathered.remotes[h].clone(),
                facts: self.gathered.facts[h].clone().unwrap_or_default(),
            })
            .collect()
    }
}

/// Reads the facts of the hosts in `scope` and plans them, with the roles of `roles_dir`
/// overlaying the built-in ones.
pub async fn prepare(inv: Inventory, scope: &Scope, roles_dir: Option<&Path>) -> miette::Result<Prepared> {
    session::check_limit(&inv, &scope.limit)?;
    let roles = session::roles(roles_dir)?;
    let selection = Selection { hosts: scope.limit.clone(), tags: scope.tags.clone() };
    let engine = session::engine(&inv, &roles, &selection)?;
    let connector = Arc::new(ssh_connector(&inv));
    let gathered = engine.gather(connector.clone(), scope.concurrency).await;
    let mut planned = engine.plan(&gathered);
    planned.plan.inputs_sha256 = saved::inputs_digest(&inv.source, &roles);
    planned.plan.inventory = inv.name.clone();
    planned.plan.limit = scope.limit.clone();
    planned.plan.tags = scope.tags.clone();
    Ok(Prepared { inventory: inv, engine, connector, gathered, planned })
}

/// Write a file whole or not at all.
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let tmp = dir.join(format!(".{}.kprov-tmp", path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
