//! `kprov facts INVENTORY [--limit HOST,..] [--json]`: what kprov sees on each host, read by the
//! same one-round-trip fact script the planner uses (so it is exactly what a plan decides from).
//!
//! File contents are never shown (a fact may hold a kubeconfig or a join configuration): files
//! appear with their metadata and digest only.
//!
//! `--save FILE` also records the facts in a facts snapshot (see `facts::snapshot`) for
//! `kprov plan --facts FILE`: merged with what FILE held, so a `--limit` run or an
//! unreachable host keeps that host's earlier entry.
//!
//! Exit codes: 0 every selected host answered; 1 the inventory is invalid, or a host was
//! unreachable or its facts could not be read (the others are still shown).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use serde::Serialize;

use super::Globals;
use super::connect::{self, SshConnector};
use super::plan::{load_inventory, runtime};
use crate::facts::{FactQuery, FactValue, HostFacts, OsFact, PackageFact, ServiceFact, SwapFact};
use crate::graph::Selection;
use crate::plan::HostStatus;

/// Version of the `--json` document.
const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Args)]
pub struct FactsArgs {
    /// The inventory file.
    pub inventory: PathBuf,
    /// Only these hosts (comma-separated names).
    #[arg(long, value_delimiter = ',', value_name = "HOST,...")]
    pub limit: Vec<String>,
    /// Print the facts as JSON (see format_version).
    #[arg(long)]
    pub json: bool,
    /// Hosts read at once.
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub concurrency: usize,
    /// Also record the facts in FILE, a facts snapshot for `kprov plan --facts FILE` (no file
    /// content that is secret, no token, key or password; see docs/ci.md). `kprov apply`
    /// writes INVENTORY.facts.json the same way after a successful run.
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
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

const ADMIN_CONF: &str = "/etc/kubernetes/admin.conf";
const KUBELET_CONF: &str = "/etc/kubernetes/kubelet.conf";

pub fn run(args: &FactsArgs, g: &Globals) -> ExitCode {
    let Some(inv) = load_inventory(&args.inventory, g) else { return ExitCode::from(1) };
    let rt = runtime();
    let result = rt.block_on(async {
        connect::check_limit(&inv, &args.limit)?;
        let roles = connect::roles(g.roles.as_deref())?;
        let selection = Selection { hosts: args.limit.clone(), tags: vec![] };
        let engine = connect::engine(&inv, &roles, &selection)?;
        let connector = Arc::new(SshConnector::new(&inv));
        let gathered = engine.gather(connector.clone(), args.concurrency).await;
        connector.close_all().await;
        if let Some(path) = &args.save {
            let planned = engine.plan(&gathered);
            let inputs = crate::engine::saved::inputs_digest(&inv.source, &roles);
            let n = save_snapshot(path, &inv, &engine, &gathered, &planned, &inputs)?;
            if !g.quiet {
                eprintln!("Recorded the facts of {n} host{} in {}", if n == 1 { "" } else { "s" }, path.display());
            }
        }
        let hosts = engine
            .active_hosts()
            .into_iter()
            .map(|h| host_report(&engine.hosts[h].name, &engine.addresses[h], &gathered.statuses[h], gathered.facts[h].as_ref().ok()))
            .collect();
        Ok::<FactsReport, miette::Report>(FactsReport { format_version: FORMAT_VERSION, inventory: inv.name.clone(), hosts })
    });
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e:?}");
            return ExitCode::from(1);
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).expect("facts serialize"));
    } else {
        print!("{}", render_text(&report));
    }
    let mut failed = false;
    for h in report.hosts.iter().filter(|h| h.status != "ok") {
        failed = true;
        let e = miette::miette!(
            code = "kprov::facts::host",
            help = "kprov plan and apply need these facts too; fix the connection (see the message) and run again",
            "{}: {}",
            h.name,
            h.error.as_deref().unwrap_or("no facts")
        );
        eprintln!("{e:?}");
    }
    if failed { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

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
    super::plan::write_atomic(path, snap.to_json().as_bytes()).map_err(|e| miette::miette!("cannot write the facts snapshot {shown}: {e}"))?;
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

/// The human rendering: one block per host.
pub fn render_text(report: &FactsReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for (i, h) in report.hosts.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "{} ({})", h.name, h.address);
        if let Some(e) = &h.error {
            let _ = writeln!(out, "  {}: {e}", h.status.replace('_', " "));
            continue;
        }
        let row = |out: &mut String, k: &str, v: &str| {
            let _ = writeln!(out, "  {k:<14} {v}");
        };
        if let Some(os) = &h.os {
            let release = if os.pretty_name.is_empty() { format!("{} {}", os.id, os.version_id) } else { os.pretty_name.clone() };
            let codename = if os.codename.is_empty() { String::new() } else { format!(" ({}, {})", os.id, os.codename) };
            row(&mut out, "os", &format!("{release}{codename}{}", if os.raspberry_pi_os { ", Raspberry Pi OS" } else { "" }));
            row(&mut out, "arch", &format!("{} ({})", os.arch, os.machine));
            row(&mut out, "kernel", &os.kernel);
            row(&mut out, "hostname", &os.hostname);
            row(&mut out, "cpus", &os.cpus.to_string());
            row(&mut out, "memory", &format!("{} MiB", os.memory_kib / 1024));
            if !os.board_model.is_empty() {
                row(&mut out, "board", &os.board_model);
            }
            row(&mut out, "memory cgroup", if os.memory_cgroup { "enabled" } else { "disabled" });
            row(&mut out, "listening", &if os.listening.is_empty() { "nothing".to_string() } else { os.listening.join(" ") });
        }
        if let Some(s) = &h.swap {
            let active = if s.active.is_empty() { "off".to_string() } else { format!("on ({})", s.active.join(", ")) };
            let fstab = if s.fstab.is_empty() { String::new() } else { format!("; in /etc/fstab: {}", s.fstab.join(" | ")) };
            row(&mut out, "swap", &format!("{active}{fstab}"));
        }
        if let Some(k) = &h.kubeadm {
            row(&mut out, "kubeadm", &k.state.replace('-', " "));
        }
        if !h.packages.is_empty() {
            let _ = writeln!(out, "  packages");
            for (name, p) in &h.packages {
                let v = match (&p.version, p.installed) {
                    (Some(v), true) => format!("{v}{}", if p.held { " (held)" } else { "" }),
                    _ => "not installed".to_string(),
                };
                let _ = writeln!(out, "    {name:<28} {v}");
            }
        }
        if !h.services.is_empty() {
            let _ = writeln!(out, "  services");
            for (name, s) in &h.services {
                let v = if !s.exists {
                    "not installed".to_string()
                } else {
                    format!(
                        "{}, {}",
                        if s.enablement.is_empty() { if s.enabled { "enabled" } else { "disabled" } } else { &s.enablement },
                        if s.active { "active" } else { "inactive" }
                    )
                };
                let _ = writeln!(out, "    {name:<28} {v}");
            }
        }
        if !h.sysctls.is_empty() {
            let _ = writeln!(out, "  sysctls");
            for (k, v) in &h.sysctls {
                let _ = writeln!(out, "    {k:<40} {}", v.as_deref().unwrap_or("(absent)"));
            }
        }
        if !h.modules.is_empty() {
            let _ = writeln!(out, "  kernel modules");
            for (k, m) in &h.modules {
                let v = if m.builtin {
                    "built in"
                } else if m.loaded {
                    "loaded"
                } else {
                    "not loaded"
                };
                let _ = writeln!(out, "    {k:<28} {v}");
            }
        }
        if !h.files.is_empty() {
            let _ = writeln!(out, "  files");
            for (path, f) in &h.files {
                let v = if f.exists { format!("{} {}:{} {} bytes", f.mode, f.owner, f.group, f.size) } else { "absent".to_string() };
                let _ = writeln!(out, "    {path:<48} {v}");
            }
        }
        if !h.checks.is_empty() {
            let _ = writeln!(out, "  checks (exit status)");
            for c in &h.checks {
                let one_line: String = c.command.split_whitespace().collect::<Vec<_>>().join(" ");
                let short: String =
                    if one_line.chars().count() > 90 { format!("{}...", one_line.chars().take(87).collect::<String>()) } else { one_line };
                let _ = writeln!(out, "    {:>3}  {short}", c.exit_status);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::FileFact;

    #[test]
    fn file_contents_never_reach_the_report_and_kubeadm_state_is_derived() {
        let mut f = HostFacts::default();
        f.insert(
            FactQuery::Os,
            FactValue::Os(OsFact {
                id: "debian".into(),
                arch: "amd64".into(),
                pretty_name: "Debian GNU/Linux 12 (bookworm)".into(),
                ..Default::default()
            }),
        );
        f.insert(
            FactQuery::File { path: ADMIN_CONF.into() },
            FactValue::File(FileFact { exists: true, mode: 0o600, content: Some(b"client-key-data: SECRETKEY".to_vec()), ..Default::default() }),
        );
        let r = host_report("h1", "10.0.0.1", &HostStatus::Ready, Some(&f));
        let report = FactsReport { format_version: 1, inventory: "i.yaml".into(), hosts: vec![r] };
        let json = serde_json::to_string(&report).unwrap();
        let text = render_text(&report);
        for out in [&json, &text] {
            assert!(!out.contains("SECRETKEY"), "{out}");
            assert!(out.contains("amd64"), "{out}");
        }
        assert!(text.contains("initialised control plane"), "{text}");
        assert!(json.contains("\"state\":\"initialised-control-plane\""), "{json}");
        assert!(text.contains("0600"), "{text}");
    }

    #[test]
    fn plan_verbose_summarises_each_host_in_one_line() {
        let mut f = HostFacts::default();
        f.insert(
            FactQuery::Os,
            FactValue::Os(OsFact {
                id: "debian".into(),
                arch: "arm64".into(),
                machine: "aarch64".into(),
                pretty_name: "Debian GNU/Linux 12 (bookworm)".into(),
                ..Default::default()
            }),
        );
        f.insert(FactQuery::File { path: KUBELET_CONF.into() }, FactValue::File(FileFact { exists: true, mode: 0o600, ..Default::default() }));
        f.insert(
            FactQuery::Package { name: "kubelet".into() },
            FactValue::Package(PackageFact { installed: true, version: Some("1.34.2-1.1".into()), held: true }),
        );
        let line = super::super::plan::host_summary(&host_report("pi1", "10.0.0.1", &HostStatus::Ready, Some(&f)));
        assert_eq!(line, "pi1 (10.0.0.1): Debian GNU/Linux 12 (bookworm), arm64 (aarch64), Kubernetes: joined, kubelet 1.34.2-1.1");
        let down = super::super::plan::host_summary(&host_report(
            "pi2",
            "10.0.0.2",
            &HostStatus::Unreachable { message: "connection refused".into() },
            None,
        ));
        assert_eq!(down, "pi2 (10.0.0.2): unreachable: connection refused");
    }

    #[test]
    fn an_unreachable_host_is_shown_with_its_error() {
        let r = host_report("h2", "10.0.0.2", &HostStatus::Unreachable { message: "h2: cannot connect".into() }, None);
        let text = render_text(&FactsReport { format_version: 1, inventory: "i".into(), hosts: vec![r] });
        assert!(text.contains("h2 (10.0.0.2)\n  unreachable: h2: cannot connect"), "{text}");
    }
}
