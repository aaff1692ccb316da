//! `kprov apply INVENTORY | PLAN.json`: bring the hosts to the inventory's state. A saved plan
//! is applied only if the inventory, roles and every host's facts are what they were.
//! After a successful run the hosts' facts are recorded in a facts snapshot beside the
//! inventory (INVENTORY.facts.json, or `--save-facts FILE`) for `kprov plan --facts`: the
//! facts the run started from when it changed nothing, else read again over the same
//! connections (one more round trip per host, only when something changed).
//! Exit codes: 0 success (or nothing to do), 1 any failure: a host failed, or the check after
//! the run found a node not Ready or the smoke test failing (see `after`).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use clap::Args;

use super::Globals;
use super::plan::{SelectArgs, load_inventory, prepare, runtime};
use super::progress::Progress;
use crate::apply::{ApplyOptions, ApplyReport, apply};
use crate::engine::saved;
use crate::ops::check as after;
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
    /// Print only the final report, as one JSON document.
    #[arg(long, conflicts_with = "output")]
    pub json: bool,
    /// `json`: a JSON Lines event stream on stdout for automation (every step as it finishes,
    /// the checks after the run, then the report as the last line).
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Where to record the hosts' facts after a successful run, for `kprov plan --facts FILE`
    /// (default: INVENTORY.facts.json beside the inventory).
    #[arg(long, value_name = "FILE")]
    pub save_facts: Option<PathBuf>,
    /// Do not record the facts snapshot after the run.
    #[arg(long, conflicts_with = "save_facts")]
    pub no_save_facts: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
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
        if let Some(saved_plan) = &saved_plan
            && let Err(e) = saved::check(saved_plan, &p.planned.plan)
        {
            p.connector.close_all().await;
            return Err(miette::Report::new(e));
        }
        if args.output == Output::Json {
            println!("{}", serde_json::json!({"event": "plan", "plan": &p.planned.plan}));
        } else if saved_plan.is_none() && !g.quiet && !args.json {
            print!("{}", render_text(&p.planned.plan, color));
        }
        if p.planned.plan.has_errors() && !p.planned.plan.has_changes() {
            p.connector.close_all().await;
            return Ok(None);
        }
        let hosts = p.host_runtimes();
        on_ctrl_c(cancel.clone(), "finishing the commands already running, starting nothing new");
        let options = ApplyOptions { concurrency: select.concurrency, max_fail: args.max_fail, cancel: cancel.clone() };
        let started = Instant::now();
        let stream = args.output == Output::Json;
        let progress = if stream {
            Progress::Json { started }
        } else if g.quiet || args.json {
            Progress::Quiet
        } else if std::io::stderr().is_terminal() && !g.no_progress {
            // One bar per host, as long as the steps that will run on it.
            let mut counts: Vec<(String, u64)> = vec![];
            for step in &p.planned.plan.steps {
                if !matches!(step.outcome, crate::plan::Outcome::Change(_)) {
                    continue;
                }
                match counts.iter_mut().find(|(h, _)| *h == step.host) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((step.host.clone(), 1)),
                }
            }
            Progress::bars(&counts)
        } else {
            Progress::Lines { started }
        };
        let report = apply(&p.engine.graph, &p.planned, &hosts, &options, &|e| progress.event(&e)).await;
        progress.finish();
        let after = if report.success() && !report.interrupted {
            // A waiting event of its own until progress.rs has one for every wait.
            let waiting = |w: &after::Waiting| match &progress {
                Progress::Json { started } => {
                    let mut v = serde_json::json!({"event": "waiting", "elapsed_ms": started.elapsed().as_millis() as u64});
                    v["what"] = serde_json::json!(w.what);
                    v["elapsed_s"] = serde_json::json!(w.elapsed_s);
                    v["limit_s"] = serde_json::json!(w.limit_s);
                    v["pending"] = serde_json::json!(w.pending);
                    println!("{v}");
                }
                _ => progress.say(&format!("cluster: {}", w.line())),
            };
            let changed = report.changed() > 0;
            after::run(&p.inventory, &p.engine, &p.gathered, p.connector.as_ref(), changed, &|line: &str| progress.say(line), &waiting).await
        } else {
            after::AfterReport::default()
        };
        let path = args.save_facts.clone().unwrap_or_else(|| crate::facts::snapshot::default_path(&inventory_path));
        let recorded = if args.no_save_facts || !report.success() || report.interrupted || !after.problems.is_empty() {
            None
        } else if !select.tags.is_empty() {
            // Said only to someone who keeps a snapshot.
            (args.save_facts.is_some() || path.exists()).then(|| {
                Err(format!(
                    "The facts snapshot {} was not updated: an apply with --tags reads only part of each host's facts; record them with kprov facts --save {} INVENTORY",
                    path.display(),
                    path.display()
                ))
            })
        } else {
            let inputs = p.planned.plan.inputs_sha256.clone();
            let result = if report.changed() == 0 {
                super::facts::save_snapshot(&path, &p.inventory, &p.engine, &p.gathered, &p.planned, &inputs)
            } else {
                let now = p.engine.gather_again(&p.gathered.remotes).await;
                let planned = p.engine.plan(&now);
                super::facts::save_snapshot(&path, &p.inventory, &p.engine, &now, &planned, &inputs)
            };
            Some(result.map(|n| format!("Recorded the facts of {n} host{} in {} (for kprov plan --facts).", if n == 1 { "" } else { "s" }, path.display())).map_err(|e| format!("{e:?}")))
        };
        p.connector.close_all().await;
        Ok(Some((report, after, recorded)))
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
        Ok(Some((report, after, recorded))) => {
            if args.output == Output::Json {
                let mut v = serde_json::to_value(&report).expect("json");
                v["cluster"] = serde_json::to_value(&after).expect("json");
                v["event"] = serde_json::json!("report");
                v["success"] = serde_json::json!(report.success() && after.problems.is_empty());
                println!("{v}");
            } else if args.json {
                let mut v = serde_json::to_value(&report).expect("json");
                v["cluster"] = serde_json::to_value(&after).expect("json");
                println!("{}", serde_json::to_string_pretty(&v).expect("json"));
            } else {
                print!("{}", summary(&report));
                for p in &after.problems {
                    println!("Cluster check: {p}");
                }
            }
            let mut ok = report.success() && after.problems.is_empty();
            match recorded {
                Some(Ok(line)) if !g.quiet => eprintln!("{line}"),
                Some(Err(message)) => {
                    eprintln!("{message}");
                    // With --tags that is a note, and so is a default snapshot that cannot be
                    // written (a read-only checkout). One asked for by --save-facts fails the
                    // run (CI relies on it), though the hosts are converged.
                    if select.tags.is_empty() && args.save_facts.is_some() {
                        ok = false;
                    }
                }
                _ => {}
            }
            if ok { ExitCode::SUCCESS } else { ExitCode::from(1) }
        }
    }
}

/// On the first Ctrl-C: say so and set `cancel` (the run finishes what is running and starts
/// nothing new); on the second, exit 130 at once. Call inside the runtime.
pub(super) fn on_ctrl_c(cancel: Arc<AtomicBool>, what: &'static str) {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\nInterrupted: {what} (Ctrl-C again to abort).");
            cancel.store(true, Ordering::SeqCst);
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
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
            name,
            h.ok,
            h.changed,
            h.failed,
            h.blocked,
            h.not_run,
            h.millis as f64 / 1000.0
        ));
        // Each failed step of the host with its reason, under its row.
        for st in r.steps.iter().filter(|s| s.host == h.name) {
            if let crate::apply::StepStatus::Failed { message } = &st.status {
                out.push_str(&format!("  FAILED {}:\n", st.id));
                for line in message.lines() {
                    out.push_str(&format!("      {line}\n"));
                }
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::{HostReport, StepReport, StepStatus};

    #[test]
    fn the_failed_row_carries_each_failed_steps_reason() {
        let failed = StepStatus::Failed { message: "pi1 did not come back within 10m after the reboot\nwhat to check: ...".into() };
        let r = ApplyReport {
            steps: vec![
                StepReport { id: "pi1/kernel/sysctl".into(), host: "pi1".into(), status: StepStatus::Changed, millis: 5 },
                StepReport { id: "pi1/raspberry-pi/reboot".into(), host: "pi1".into(), status: failed, millis: 600_000 },
                StepReport { id: "pi2/raspberry-pi/reboot".into(), host: "pi2".into(), status: StepStatus::Changed, millis: 40_000 },
            ],
            hosts: vec![
                HostReport { name: "pi1".into(), ok: 1, changed: 1, failed: 1, millis: 600_005, ..Default::default() },
                HostReport { name: "pi2".into(), ok: 1, changed: 1, millis: 40_000, ..Default::default() },
            ],
            interrupted: false,
        };
        let s = summary(&r);
        let pi1 = s.find("pi1    ").unwrap();
        let pi2 = s.find("pi2    ").unwrap();
        let reason = s
            .find("  FAILED pi1/raspberry-pi/reboot:\n      pi1 did not come back within 10m after the reboot\n      what to check: ...\n")
            .expect(&s);
        assert!(pi1 < reason && reason < pi2, "the reason is under pi1's row:\n{s}");
        assert_eq!(s.matches("  FAILED pi").count(), 1, "{s}");
    }
}
