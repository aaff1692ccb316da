//! `kprov apply INVENTORY | PLAN.json`: bring the hosts to the inventory's state. A saved plan
//! is applied only if the inventory, roles and every host's facts are what they were.
//! Exit codes: 0 success (or nothing to do), 1 any failure: a host failed, or the check after
//! the run found a node not Ready or the smoke test failing (see `after`).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use clap::Args;

use super::{Globals, after};
use super::plan::{SelectArgs, load_inventory, prepare, runtime};
use crate::apply::{ApplyOptions, ApplyReport, Event, HostRuntime, StepStatus, apply};
use crate::engine::saved;
use crate::plan::render_text;

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The inventory file, or a plan saved with `kprov plan -o FILE`.
    pub target: PathBuf,
    #[command(flatten)]
    pub select: SelectArgs,
    /// Stop starting new work once more than N hosts have failed.
    #[arg(long, value_name = "N")]
    pub max_fail: Option<usize>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &ApplyArgs, g: &Globals) -> ExitCode {
    // A saved plan names its inventory and selection.
    let text = std::fs::read_to_string(&args.target).unwrap_or_default();
    let saved_plan = if saved::is_plan_file(&text) {
        match saved::read(&args.target) {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("{:?}", miette::Report::new(e));
                return ExitCode::from(1);
            }
        }
    } else {
        None
    };
    let (inventory_path, select) = match &saved_plan {
        Some(p) => (PathBuf::from(&p.inventory), SelectArgs { limit: p.limit.clone(), tags: p.tags.clone(), concurrency: args.select.concurrency }),
        None => (args.target.clone(), args.select.clone()),
    };
    let Some(inv) = load_inventory(&inventory_path, g) else { return ExitCode::from(1) };
    let color = g.color(std::io::stdout().is_terminal());
    let rt = runtime();
    let cancel = Arc::new(AtomicBool::new(false));
    let result = rt.block_on(async {
        let p = prepare(inv, &select, g).await?;
        if let Some(saved_plan) = &saved_plan {
            if let Err(e) = saved::check(saved_plan, &p.planned.plan) {
                p.connector.close_all().await;
                return Err(miette::Report::new(e));
            }
        } else if !g.quiet && !args.json {
            print!("{}", render_text(&p.planned.plan, color));
        }
        if p.planned.plan.has_errors() && !p.planned.plan.has_changes() {
            p.connector.close_all().await;
            return Ok(None);
        }
        let hosts: Vec<HostRuntime> = (0..p.engine.hosts.len())
            .map(|h| HostRuntime {
                name: p.engine.hosts[h].name.clone(),
                remote: p.gathered.remotes[h].clone(),
                facts: p.gathered.facts[h].clone().unwrap_or_default(),
            })
            .collect();
        let c = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\nInterrupted: finishing the commands already running, starting nothing new (Ctrl-C again to abort).");
                c.store(true, Ordering::SeqCst);
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
        let options = ApplyOptions { concurrency: select.concurrency, max_fail: args.max_fail, cancel: cancel.clone() };
        let started = Instant::now();
        let quiet = g.quiet || args.json;
        let progress = move |e: Event| {
            if quiet {
                return;
            }
            let t = started.elapsed().as_secs_f64();
            match e {
                Event::BatchStarted { host, steps } => eprintln!("[{t:7.1}s] {host}: running {}", steps.join(", ")),
                Event::StepFinished { host, id, status } => {
                    let what = match &status {
                        StepStatus::Changed => "changed".to_string(),
                        StepStatus::Failed { message } => format!("FAILED\n{}", indent(message)),
                        other => format!("{other:?}").to_lowercase(),
                    };
                    let id = id.strip_prefix(&format!("{host}/")).unwrap_or(&id).to_string();
                    eprintln!("[{t:7.1}s] {host}: {id} {what}");
                }
            }
        };
        let report = apply(&p.engine.graph, &p.planned, &hosts, &options, &progress).await;
        let after = if report.success() && !report.interrupted {
            let say = |line: &str| {
                if !quiet {
                    eprintln!("[{:7.1}s] {line}", started.elapsed().as_secs_f64());
                }
            };
            after::run(&p.inventory, &p.engine, &p.gathered, p.connector.as_ref(), report.changed() > 0, &say).await
        } else {
            after::AfterReport::default()
        };
        p.connector.close_all().await;
        Ok(Some((report, after)))
    });
    match result {
        Err(e) => {
            eprintln!("{e:?}");
            ExitCode::from(1)
        }
        Ok(None) => {
            eprintln!("The plan has errors and nothing to change; nothing was done.");
            ExitCode::from(1)
        }
        Ok(Some((report, after))) => {
            if args.json {
                let mut v = serde_json::to_value(&report).expect("json");
                v["cluster"] = serde_json::to_value(&after).expect("json");
                println!("{}", serde_json::to_string_pretty(&v).expect("json"));
            } else {
                print!("{}", summary(&report));
                for p in &after.problems {
                    println!("Cluster check: {p}");
                }
            }
            if report.success() && after.problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) }
        }
    }
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("      {l}")).collect::<Vec<_>>().join("\n")
}

/// The per-host table printed at the end of an apply.
pub fn summary(r: &ApplyReport) -> String {
    let mut out = String::from("\nHOST                 OK  CHANGED  FAILED  BLOCKED  NOT RUN  TIME\n");
    for h in &r.hosts {
        if h.ok + h.failed + h.blocked + h.not_run == 0 && !h.unreachable {
            continue;
        }
        let name = if h.unreachable { format!("{} (unreachable)", h.name) } else { h.name.clone() };
        out.push_str(&format!(
            "{:<20} {:>3}  {:>7}  {:>6}  {:>7}  {:>7}  {:.1}s\n",
            name, h.ok, h.changed, h.failed, h.blocked, h.not_run, h.millis as f64 / 1000.0
        ));
    }
    let verdict = if r.interrupted {
        "Interrupted: hosts may be partly converged; run apply again to finish."
    } else if r.success() {
        "Apply complete."
    } else {
        "Apply finished with failures; fix them and run apply again (it resumes where it stopped)."
    };
    out.push_str(&format!("\n{verdict} {} changed, {} failed or not done.\n", r.changed(), r.failed()));
    out
}
