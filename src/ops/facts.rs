//! What kprov sees on each host: the planner's facts, read by the same one-round-trip fact
//! script, as a report without file contents (a fact may hold a kubeconfig or a join
//! configuration: files appear with their metadata and digest only), and the facts snapshot
//! (`facts::snapshot`) that `kprov plan --facts` plans from.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use super::converge::Scope;
use super::session;
use crate::facts::{FactQuery, FactValue, HostFacts, OsFact, PackageFact, ServiceFact, SwapFact};
use crate::graph::Selection;
use crate::plan::HostStatus;

/// Version of the `--json` document.
pub const FORMAT_VERSION: u32 = 1;

/// Reads the facts of the hosts in `scope` (its tags are ignored: every fact the roles need),
/// records them in the snapshot `save` when given, and reports them. Returns the report and,
/// with `save`, how many hosts were recorded.
pub async fn read(
    inv: &crate::inventory::Inventory,
    scope: &Scope,
    roles_dir: Option<&Path>,
    save: Option<&Path>,
) -> miette::Result<(FactsReport, Option<usize>)> {
    session::check_limit(inv, &scope.limit)?;
    let roles = session::roles(roles_dir)?;
    let selection = Selection { hosts: scope.limit.clone(), tags: vec![] };
    let engine = session::engine(inv, &roles, &selection)?;
    let connector = Arc::new(session::ssh_connector(inv));
    let gathered = engine.gather(connector.clone(), scope.concurrency).await;
    connector.close_all().await;
    let saved = match save {
        Some(path) => {
            let planned = engine.plan(&gathered);
            let inputs = crate::engine::saved::inputs_digest(&inv.source, &roles);
            Some(save_snapshot(path, inv, &engine, &gathered, &planned, &inputs)?)
        }
        None => None,
    };
    let hosts = engine
        .active_hosts()
        .into_iter()
        .map(|h| host_report(&engine.hosts[h].name, &engine.addresses[h], &gathered.statuses[h], gathered.facts[h].as_ref().ok()))
        .collect();
    Ok((FactsReport { format_version: FORMAT_VERSION, inventory: inv.name.clone(), hosts }, saved))
}

/// What `--json` prints.
#[derive(Debug, Serialize)]
pub struct FactsReport {
    pub format_version: u32,
    pub inventory: String,
    pub hosts: Vec<HostReport>,
}

#[derive(Debug, Serialize)]
pub struct HostReport {
    pub name: String,
    pub address: String,
    /// ok, unreachable or facts_failed.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Option<OsFact>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap: Option<SwapFact>,
    pub packages: BTreeMap<String, PackageFact>,
    pub services: BTreeMap<String, ServiceFact>,
    pub files: BTreeMap<String, FileSummary>,
    pub sysctls: BTreeMap<String, Option<String>>,
    pub modules: BTreeMap<String, ModuleSummary>,
    /// Read-only guard commands of the roles and their exit status.
    pub checks: Vec<CheckSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubeadm: Option<KubeadmState>,
}

/// A file fact without its content.
#[derive(Debug, Serialize)]
pub struct FileSummary {
    pub exists: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub file_type: String,
    pub mode: String,
    pub owner: String,
    pub group: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Serialize)]
pub struct ModuleSummary {
    pub loaded: bool,
    pub builtin: bool,
}

#[derive(Debug, Serialize)]
pub struct CheckSummary {
    pub command: String,
    pub exit_status: i32,
}

/// What kubeadm has done on the host, judged from the files it writes.
#[derive(Debug, Serialize)]
pub struct KubeadmState {
    /// initialised-control-plane, joined, not-initialised (the first control plane before
    /// kubeadm init) or not-joined. Absent when the host's roles do not look at these files.
    pub state: &'static str,
    /// /etc/kubernetes/admin.conf exists (a control plane).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_conf: Option<bool>,
    /// /etc/kubernetes/kubelet.conf exists (a member of a cluster).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubelet_conf: Option<bool>,
}

pub const ADMIN_CONF: &str = "/etc/kubernetes/admin.conf";
pub const KUBELET_CONF: &str = "/etc/kubernetes/kubelet.conf";

/// Record the facts of `gathered` in the snapshot at `path`, merged with the entries it held
/// for other hosts of the inventory. A file there that is not a snapshot is left alone (an
/// error): `--save inventory.yaml` must not overwrite the inventory. Returns how many hosts
/// were recorded now.
pub fn save_snapshot(
    path: &std::path::Path,
    inv: &crate::inventory::Inventory,
    engine: &crate::engine::Engine,
    gathered: &crate::engine::Gathered,
    planned: &crate::plan::Planned,
    inputs_sha256: &str,
) -> miette::Result<usize> {
    use crate::facts::snapshot::{self, Snapshot};
    let shown = path.display().to_string();
    let previous = match std::fs::read_to_string(path) {
        Ok(text) => Some(
            Snapshot::parse(&shown, &text)
                .map_err(|e| miette::Report::new(e).wrap_err(format!("not writing the facts snapshot over {shown}, which holds something else")))?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(miette::miette!("cannot read {shown}: {e}")),
    };
    let now = snapshot::rfc3339(snapshot::now_secs());
    let hosts = crate::engine::recorded::record(engine, gathered, planned, &now);
    let n = hosts.len();
    let known: Vec<&str> = inv.hosts.iter().map(|h| h.name.as_str()).collect();
    let snap = Snapshot::merge(previous, &known, &inv.name, inputs_sha256, &now, hosts);
    crate::ops::converge::write_atomic(path, snap.to_json().as_bytes())
        .map_err(|e| miette::miette!("cannot write the facts snapshot {shown}: {e}"))?;
    Ok(n)
}

pub fn host_report(name: &str, address: &str, status: &HostStatus, facts: Option<&HostFacts>) -> HostReport {
    let (status, error) = match status {
        HostStatus::Ready => ("ok", None),
        HostStatus::Unreachable { message } => ("unreachable", Some(message.clone())),
        HostStatus::FactsFailed { message } => ("facts_failed", Some(message.clone())),
    };
    let mut r = HostReport {
        name: name.to_string(),
        address: address.to_string(),
        status,
        error,
        os: None,
        swap: None,
        packages: BTreeMap::new(),
        services: BTreeMap::new(),
        files: BTreeMap::new(),
        sysctls: BTreeMap::new(),
        modules: BTreeMap::new(),
        checks: vec![],
        kubeadm: None,
    };
    let Some(facts) = facts else { return r };
    for (q, v) in &facts.values {
        match (q, v) {
            (FactQuery::Os, FactValue::Os(os)) => r.os = Some(os.clone()),
            (FactQuery::Swap, FactValue::Swap(s)) => r.swap = Some(s.clone()),
            (FactQuery::Package { name }, FactValue::Package(p)) => {
                r.packages.insert(name.clone(), p.clone());
            }
            (FactQuery::Service { name }, FactValue::Service(s)) => {
                r.services.insert(name.clone(), s.clone());
            }
            (FactQuery::File { path }, FactValue::File(f)) => {
                r.files.insert(
                    path.clone(),
                    FileSummary {
                        exists: f.exists,
                        file_type: f.file_type.clone(),
                        mode: if f.exists { format!("{:04o}", f.mode) } else { String::new() },
                        owner: f.owner.clone(),
                        group: f.group.clone(),
                        size: f.size,
                        sha256: f.sha256.clone(),
                    },
                );
            }
            (FactQuery::Sysctl { key }, FactValue::Sysctl { value }) => {
                r.sysctls.insert(key.clone(), value.clone());
            }
            (FactQuery::Module { name }, FactValue::Module { loaded, builtin }) => {
                r.modules.insert(name.clone(), ModuleSummary { loaded: *loaded, builtin: *builtin });
            }
            (FactQuery::Command { command }, FactValue::Command { exit_status }) => {
                r.checks.push(CheckSummary { command: command.clone(), exit_status: *exit_status });
            }
            _ => {}
        }
    }
    let admin = r.files.get(ADMIN_CONF).map(|f| f.exists);
    let kubelet = r.files.get(KUBELET_CONF).map(|f| f.exists);
    if admin.is_some() || kubelet.is_some() {
        let state = match (admin, kubelet) {
            (Some(true), _) => "initialised-control-plane",
            (_, Some(true)) => "joined",
            // The first control plane: kubeadm init has not run.
            (Some(false), _) => "not-initialised",
            _ => "not-joined",
        };
        r.kubeadm = Some(KubeadmState { state, admin_conf: admin, kubelet_conf: kubelet });
    }
    r
}
