//! `kprov plan INVENTORY`: read every host's facts and show what apply would change.
//! `kprov plan --facts FILE INVENTORY` plans from a facts snapshot instead, with no SSH at all
//! (see `engine::recorded`): for a CI runner that cannot reach the hosts.
//! Exit codes (as Terraform's -detailed-exitcode): 0 no changes, 2 changes, 1 error.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::Globals;
use crate::engine::saved;
use crate::graph::Selection;
use crate::inventory::{self, Inventory};
use crate::ops::session as connect;
use crate::plan::{Plan, render_json, render_markdown, render_text};

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The inventory file.
    pub inventory: PathBuf,
    /// Print the plan as JSON (versioned, see format_version).
    #[arg(long, conflicts_with = "markdown")]
    pub json: bool,
    /// Print the plan as Markdown for a pull-request comment.
    #[arg(long)]
    pub markdown: bool,
    /// Save the plan to FILE for `kprov apply FILE`.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Plan from the facts recorded in FILE (by `kprov apply` or `kprov facts --save`) instead
    /// of reading the hosts: no SSH connection is made. Hosts FILE does not know are planned
    /// as empty hosts. A plan saved from it is applied only if no host changed since.
    #[arg(long = "facts", value_name = "FILE")]
    pub facts: Option<PathBuf>,
    #[command(flatten)]
    pub select: SelectArgs,
}

#[derive(Debug, Clone, Args)]
pub struct SelectArgs {
    /// Only these hosts (comma-separated names).
    #[arg(long, value_delimiter = ',', value_name = "HOST,...")]
    pub limit: Vec<String>,
    /// Only these roles or tags (comma-separated), e.g. prepare,packages.
    #[arg(long, value_delimiter = ',', value_name = "ROLE,...")]
    pub tags: Vec<String>,
    /// Hosts worked on at once.
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub concurrency: usize,
}

pub use crate::ops::converge::Prepared;

pub fn load_inventory(path: &std::path::Path, g: &Globals) -> Option<Inventory> {
    let loaded = inventory::load(path);
    super::validate::report(&loaded, g).cloned()
}

pub async fn prepare(inv: Inventory, select: &SelectArgs, g: &Globals) -> miette::Result<Prepared> {
    crate::ops::converge::prepare(inv, &select.scope(), g.roles.as_deref()).await
}

impl SelectArgs {
    pub fn scope(&self) -> crate::ops::converge::Scope {
        crate::ops::converge::Scope { limit: self.limit.clone(), tags: self.tags.clone(), concurrency: self.concurrency }
    }
}

/// The plan from a facts snapshot: the inventory and roles as for a live plan, the facts
/// from `file`; nothing is connected to.
pub fn plan_from_facts(inv: &Inventory, select: &SelectArgs, g: &Globals, file: &std::path::Path) -> miette::Result<Plan> {
    use crate::facts::snapshot::{self, Snapshot};
    connect::check_limit(inv, &select.limit)?;
    let roles = connect::roles(g.roles.as_deref())?;
    let selection = Selection { hosts: select.limit.clone(), tags: select.tags.clone() };
    let engine = connect::engine(inv, &roles, &selection)?;
    let shown = file.display().to_string();
    let text = std::fs::read_to_string(file).map_err(|e| {
        miette::miette!(
            code = "kprov::facts::snapshot_unreadable",
            help = "record one with `kprov facts --save FILE INVENTORY`; a successful `kprov apply` writes INVENTORY.facts.json",
            "cannot read the facts snapshot {shown}: {e}"
        )
    })?;
    let snap = Snapshot::parse(&shown, &text).map_err(miette::Report::new)?;
    let inputs = saved::inputs_digest(&inv.source, &roles);
    let mut planned = crate::engine::recorded::plan_from(&engine, &snap, &shown, &inputs, snapshot::now_secs());
    planned.plan.inputs_sha256 = inputs;
    planned.plan.inventory = inv.name.clone();
    planned.plan.limit = select.limit.clone();
    planned.plan.tags = select.tags.clone();
    Ok(planned.plan)
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime")
}

pub fn run(args: &PlanArgs, g: &Globals) -> ExitCode {
    let Some(inv) = load_inventory(&args.inventory, g) else {
        return ExitCode::from(1);
    };
    let result = match &args.facts {
        Some(file) => plan_from_facts(&inv, &args.select, g, file),
        None => runtime().block_on(async {
            let p = prepare(inv, &args.select, g).await?;
            p.connector.close_all().await;
            if g.verbose > 0 {
                for h in p.engine.active_hosts() {
                    let r = super::facts::host_report(
                        &p.engine.hosts[h].name,
                        &p.engine.addresses[h],
                        &p.gathered.statuses[h],
                        p.gathered.facts[h].as_ref().ok(),
                    );
                    eprintln!("{}", host_summary(&r));
                }
            }
            Ok::<Plan, miette::Report>(p.planned.plan)
        }),
    };
    let plan = match result {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e:?}");
            return ExitCode::from(1);
        }
    };
    if let Some(out) = &args.out
        && let Err(e) = write_atomic(out, render_json(&plan).as_bytes())
    {
        eprintln!("cannot write {}: {e}", out.display());
        return ExitCode::from(1);
    }
    let text = if args.json {
        render_json(&plan)
    } else if args.markdown {
        render_markdown(&plan)
    } else {
        render_text(&plan, g.color(std::io::stdout().is_terminal()))
    };
    print!("{text}");
    if let Some(out) = &args.out
        && !args.json
        && !args.markdown
        && !g.quiet
    {
        println!("Saved the plan to {}; apply it with: kprov apply {}", out.display(), out.display());
    }
    exit_code(&plan)
}

/// `plan -v`: one line per host of what kprov found there (OS, architecture, Kubernetes).
pub fn host_summary(r: &super::facts::HostReport) -> String {
    let head = format!("{} ({})", r.name, r.address);
    if r.status != "ok" {
        return format!("{head}: {}: {}", r.status.replace('_', " "), r.error.as_deref().unwrap_or("no facts"));
    }
    let mut parts = vec![];
    if let Some(os) = &r.os {
        parts.push(if os.pretty_name.is_empty() { os.id.clone() } else { os.pretty_name.clone() });
        parts.push(if os.machine.is_empty() || os.machine == os.arch { os.arch.clone() } else { format!("{} ({})", os.arch, os.machine) });
    }
    let kubelet = r.packages.get("kubelet").map(|p| match (&p.version, p.installed) {
        (Some(v), true) => format!("kubelet {v}"),
        _ => "kubelet not installed".to_string(),
    });
    let state = r.kubeadm.as_ref().map(|k| k.state.replace('-', " "));
    let kube: Vec<String> = state.into_iter().chain(kubelet).collect();
    parts.push(if kube.is_empty() { "Kubernetes: not read by the selected tags".to_string() } else { format!("Kubernetes: {}", kube.join(", ")) });
    format!("{head}: {}", parts.join(", "))
}

pub fn exit_code(plan: &Plan) -> ExitCode {
    if plan.has_errors() {
        ExitCode::from(1)
    } else if plan.has_changes() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

pub use crate::ops::converge::write_atomic;
