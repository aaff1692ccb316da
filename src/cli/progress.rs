//! How an apply shows its progress: indicatif bars on a terminal (one per host: current step,
//! done/total, elapsed), plain timestamped lines otherwise or with `--no-progress`, a JSON
//! Lines event stream with `--output json`, or nothing with `-q`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use crate::apply::{Event, StepStatus};

pub enum Progress {
    Quiet,
    /// `[  12.3s] host: what happened`, on stderr.
    Lines {
        started: Instant,
    },
    /// One JSON object per line on stdout, each with an `event` field.
    Json {
        started: Instant,
    },
    Bars {
        multi: MultiProgress,
        bars: BTreeMap<String, ProgressBar>,
    },
}

impl Progress {
    /// Bars for these hosts with their number of steps, drawn to stderr.
    pub fn bars(hosts: &[(String, u64)]) -> Progress {
        Self::bars_to(hosts, ProgressDrawTarget::stderr())
    }

    pub fn bars_to(hosts: &[(String, u64)], target: ProgressDrawTarget) -> Progress {
        let multi = MultiProgress::with_draw_target(target);
        let width = hosts.iter().map(|(h, _)| h.len()).max().unwrap_or(4).min(24);
        let style = ProgressStyle::with_template(&format!(
            "{{prefix:<{width}}} [{{elapsed_precise}}] {{bar:24.cyan/blue}} {{pos:>3}}/{{len:<3}} {{wide_msg}}"
        ))
        .expect("a valid template")
        .progress_chars("=> ");
        let mut bars = BTreeMap::new();
        for (host, steps) in hosts {
            let bar = multi.add(ProgressBar::new(*steps));
            bar.set_style(style.clone());
            bar.set_prefix(host.clone());
            bar.set_message("waiting");
            bar.enable_steady_tick(Duration::from_millis(250));
            bars.insert(host.clone(), bar);
        }
        Progress::Bars { multi, bars }
    }

    pub fn event(&self, e: &Event) {
        if let Event::Waiting(w) = e {
            return self.waiting(w);
        }
        match self {
            Progress::Quiet => {}
            Progress::Json { started } => {
                let mut v = serde_json::to_value(e).expect("events serialize");
                v["elapsed_ms"] = json!(started.elapsed().as_millis() as u64);
                println!("{v}");
            }
            Progress::Lines { started } => {
                let t = started.elapsed().as_secs_f64();
                match e {
                    Event::BatchStarted { host, steps } => eprintln!("[{t:7.1}s] {host}: running {}", steps.join(", ")),
                    Event::StepFinished { host, id, status } => {
                        eprintln!("[{t:7.1}s] {host}: {} {}", short(host, id), describe(status));
                    }
                    Event::BatchRecovered { host, batch, status, log } => eprintln!("[{t:7.1}s] {host}: {}", recovered(batch, status, log)),
                    Event::Waiting(_) => {}
                }
            }
            Progress::Bars { multi, bars, .. } => match e {
                Event::BatchStarted { host, steps } => {
                    if let Some(bar) = bars.get(host) {
                        let names: Vec<&str> = steps.iter().map(|s| short(host, s)).collect();
                        bar.set_message(names.join(", "));
                    }
                }
                Event::BatchRecovered { host, batch, status, log } => {
                    let _ = multi.println(format!("{host}: {}", recovered(batch, status, log)));
                }
                Event::StepFinished { host, id, status } => {
                    if let Some(bar) = bars.get(host) {
                        bar.inc(1);
                        if let StepStatus::Failed { .. } = status {
                            let _ = multi.println(format!("{host}: {} {}", short(host, id), describe(status)));
                        }
                        if bar.position() >= bar.length().unwrap_or(0) {
                            bar.finish_with_message("done");
                        }
                    }
                }
                Event::Waiting(_) => {}
            },
        }
    }

    /// A long wait: its start, then every 30 s while pending (see [`crate::wait::watched`]): on
    /// the host's bar, as a plain line, or as a JSON `waiting` event. For any wait of a
    /// command that shows progress (the reboot's, the nodes' Ready).
    pub fn waiting(&self, w: &crate::wait::Waiting) {
        match self {
            Progress::Quiet => {}
            Progress::Json { started } => {
                let mut v = serde_json::to_value(Event::Waiting(w.clone())).expect("events serialize");
                v["elapsed_ms"] = json!(started.elapsed().as_millis() as u64);
                println!("{v}");
            }
            Progress::Lines { started } => eprintln!("[{:7.1}s] {}: {}", started.elapsed().as_secs_f64(), w.host, w.line()),
            Progress::Bars { multi, bars } => match bars.get(&w.host) {
                Some(bar) => bar.set_message(w.line()),
                None => {
                    let _ = multi.println(format!("{}: {}", w.host, w.line()));
                }
            },
        }
    }

    /// A line of the check after the run ("cluster: 3/3 nodes Ready").
    pub fn say(&self, line: &str) {
        match self {
            Progress::Quiet => {}
            Progress::Json { started } => {
                println!("{}", json!({"event": "cluster_check", "message": line, "elapsed_ms": started.elapsed().as_millis() as u64}));
            }
            Progress::Lines { started } => eprintln!("[{:7.1}s] {line}", started.elapsed().as_secs_f64()),
            Progress::Bars { multi, .. } => {
                let _ = multi.println(line);
            }
        }
    }

    /// Stop drawing: bars of hosts that did not finish keep their last state.
    pub fn finish(&self) {
        if let Progress::Bars { bars, .. } = self {
            for bar in bars.values() {
                if !bar.is_finished() {
                    bar.abandon();
                }
            }
        }
    }

    #[cfg(test)]
    fn bar(&self, host: &str) -> Option<&ProgressBar> {
        match self {
            Progress::Bars { bars, .. } => bars.get(host),
            _ => None,
        }
    }
}

/// An uncollected batch found on a host, and the end of its log.
fn recovered(batch: &str, status: &str, log: &str) -> String {
    let body: Vec<String> = log.lines().map(|l| format!("      {l}")).collect();
    format!(
        "a batch of an earlier run that nobody collected (batch {batch}) ended: {status}; removed, with its temp files; its log ended with:\n{}",
        body.join("\n")
    )
}

fn short<'a>(host: &str, id: &'a str) -> &'a str {
    id.strip_prefix(host).and_then(|s| s.strip_prefix('/')).unwrap_or(id)
}

fn describe(status: &StepStatus) -> String {
    match status {
        StepStatus::Changed => "changed".into(),
        StepStatus::Unchanged => "unchanged".into(),
        StepStatus::Failed { message } => {
            let body: Vec<String> = message.lines().map(|l| format!("      {l}")).collect();
            format!("FAILED\n{}", body.join("\n"))
        }
        StepStatus::Blocked => "blocked".into(),
        StepStatus::NotRun => "not run".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_follow_each_host() {
        let p = Progress::bars_to(&[("cp".into(), 2), ("w1".into(), 1)], ProgressDrawTarget::hidden());
        p.event(&Event::BatchStarted { host: "cp".into(), steps: vec!["cp/swap/swap-off".into(), "cp/kernel/sysctl".into()] });
        assert_eq!(p.bar("cp").unwrap().message(), "swap/swap-off, kernel/sysctl");
        p.event(&Event::StepFinished { host: "cp".into(), id: "cp/swap/swap-off".into(), status: StepStatus::Changed });
        assert_eq!(p.bar("cp").unwrap().position(), 1);
        assert!(!p.bar("cp").unwrap().is_finished());
        p.event(&Event::StepFinished { host: "cp".into(), id: "cp/kernel/sysctl".into(), status: StepStatus::Unchanged });
        assert!(p.bar("cp").unwrap().is_finished());
        assert_eq!(p.bar("w1").unwrap().position(), 0);
        p.finish();
        assert!(p.bar("w1").unwrap().is_finished());
    }

    #[test]
    fn waits_show_on_the_bar_and_as_json() {
        let p = Progress::bars_to(&[("pi1".into(), 1)], ProgressDrawTarget::hidden());
        let w = crate::wait::Waiting { host: "pi1".into(), what: "pi1 to come back after the reboot".into(), waited_secs: 30, limit_secs: 600 };
        p.event(&Event::Waiting(w.clone()));
        assert_eq!(p.bar("pi1").unwrap().message(), "still waiting for pi1 to come back after the reboot: 30s of up to 10m");
        let v = serde_json::to_value(Event::Waiting(w)).unwrap();
        assert_eq!(v["event"], "waiting");
        assert_eq!(v["host"], "pi1");
        assert_eq!(v["waited_secs"], 30);
    }

    #[test]
    fn failures_show_their_output_indented() {
        let d = describe(&StepStatus::Failed { message: "exit status 1\nE: broken".into() });
        assert_eq!(d, "FAILED\n      exit status 1\n      E: broken");
        assert_eq!(short("cp", "cp/apt/packages"), "apt/packages");
    }
}
