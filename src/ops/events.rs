//! Where an operation says what it does: plain lines for a person (progress on standard error,
//! results on standard output), or one JSON object per line on standard output for automation
//! (`--output json`). The JSON events share apply's schema: every line has `event` and
//! `elapsed_ms`; docs/operations.md lists them.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use super::Action;

/// What an operation reports, as it happens.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event<'a> {
    /// What the operation would do (before the dry run stops or the confirmation).
    Plan { operation: &'static str, actions: &'a [Action], description: &'a str },
    /// Something started or finished on a host (standard error; not with `-q`).
    Progress { host: &'a str, message: &'a str },
    /// A result line (standard output): `h2: kubeadm reset -f done`; `host` None for the
    /// operation as a whole.
    Result { host: Option<&'a str>, message: &'a str },
    /// A host's own output of a step (shown with `-v`).
    Output { host: &'a str, line: &'a str },
    /// A problem that did not stop the operation (one host of several failed).
    Error { host: &'a str, code: String, message: String, help: Option<String> },
    /// A wait that is taking a while: what it awaits, for how long so far and at most, and
    /// what it still waits for.
    Waiting { what: &'a str, elapsed_s: u64, limit_s: u64, pending: &'a [String] },
    /// The last event: how the operation ended.
    Report { operation: &'static str, success: bool, dry_run: bool, pending: bool, interrupted: bool, error: Option<&'a str> },
}

/// The event sink of a session.
#[derive(Debug, Clone)]
pub enum Sink {
    /// Lines for a person. `quiet`: only results and errors; `verbose`: hosts' own output too.
    Text { quiet: bool, verbose: bool, started: Instant },
    /// JSON Lines on standard output.
    Json { started: Instant },
    /// Nothing (tests).
    Silent,
}

impl Sink {
    pub fn text(quiet: bool, verbose: bool) -> Sink {
        Sink::Text { quiet, verbose, started: Instant::now() }
    }

    pub fn json() -> Sink {
        Sink::Json { started: Instant::now() }
    }

    pub fn is_json(&self) -> bool {
        matches!(self, Sink::Json { .. })
    }

    pub fn emit(&self, e: &Event) {
        match self {
            Sink::Silent => {}
            Sink::Json { started } => {
                let mut v = serde_json::to_value(e).expect("events serialize");
                v["elapsed_ms"] = json!(started.elapsed().as_millis() as u64);
                println!("{v}");
            }
            Sink::Text { quiet, verbose, .. } => match e {
                Event::Plan { description, .. } => {
                    if !description.is_empty() {
                        print!("{description}");
                    }
                }
                Event::Progress { host, message } => {
                    if !quiet {
                        eprintln!("{host}: {message}");
                    }
                }
                Event::Result { host: Some(host), message } => println!("{host}: {message}"),
                Event::Result { host: None, message } => {
                    if !message.is_empty() {
                        println!("{message}");
                    }
                }
                Event::Output { host, line } => {
                    if *verbose {
                        eprintln!("{host}:   {line}");
                    }
                }
                Event::Error { host, message, .. } => eprintln!("{host}: {message}"),
                Event::Waiting { what, elapsed_s, limit_s, pending } => {
                    if !quiet {
                        eprintln!("{}", waiting_line(what, *elapsed_s, *limit_s, pending));
                    }
                }
                Event::Report { .. } => {}
            },
        }
    }

    pub fn progress(&self, host: &str, message: &str) {
        self.emit(&Event::Progress { host, message });
    }

    pub fn result(&self, host: &str, message: &str) {
        self.emit(&Event::Result { host: Some(host), message });
    }

    /// A host's own output, line by line (with `-v`).
    pub fn output(&self, host: &str, text: &str) {
        for line in text.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
            self.emit(&Event::Output { host, line });
        }
    }

    /// A failure that does not end the operation, with its diagnostic's code and help
    /// (rendered by miette on a terminal).
    pub fn error(&self, host: &str, e: miette::Report) {
        if let Sink::Text { .. } = self {
            eprintln!("{e:?}");
            return;
        }
        let code = e.code().map(|c| c.to_string()).unwrap_or_else(|| "kprov::error".into());
        self.emit(&Event::Error { host, code, message: e.to_string(), help: e.help().map(|h| h.to_string()) });
    }
}

/// `still waiting for h2, h3 to be Ready: 30s of up to 5m`.
pub fn waiting_line(what: &str, elapsed_s: u64, limit_s: u64, pending: &[String]) -> String {
    let names = if pending.is_empty() { String::new() } else { format!(" (not yet: {})", pending.join(", ")) };
    format!("still waiting {what}: {} of up to {}{names}", duration(elapsed_s), duration(limit_s))
}

/// `45s`, `5m`, `2m30s`.
pub fn duration(secs: u64) -> String {
    match (secs / 60, secs % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}

/// Emits a `waiting` event every `every` while a wait goes on; the first after `every`.
#[derive(Debug)]
pub struct WaitTicker {
    started: Instant,
    every: Duration,
    next: Duration,
}

impl WaitTicker {
    pub fn new(every: Duration) -> WaitTicker {
        WaitTicker { started: Instant::now(), every, next: every }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// True (once per period) when a `waiting` line is due.
    pub fn due(&mut self) -> bool {
        if self.started.elapsed() >= self.next {
            while self.next <= self.started.elapsed() {
                self.next += self.every;
            }
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_lines_say_what_how_long_and_who() {
        let l = waiting_line("for the nodes to be Ready", 30, 300, &["h2".into(), "h3".into()]);
        assert_eq!(l, "still waiting for the nodes to be Ready: 30s of up to 5m (not yet: h2, h3)");
        assert_eq!(duration(150), "2m30s");
    }

    #[test]
    fn events_carry_their_name() {
        let v = serde_json::to_value(Event::Waiting { what: "x", elapsed_s: 30, limit_s: 300, pending: &["h2".into()] }).unwrap();
        assert_eq!(v["event"], "waiting");
        assert_eq!(v["pending"][0], "h2");
        let v = serde_json::to_value(Event::Result { host: Some("h1"), message: "done" }).unwrap();
        assert_eq!(v["event"], "result");
    }

    #[test]
    fn a_ticker_is_due_once_per_period() {
        let mut t = WaitTicker::new(Duration::from_millis(30));
        assert!(!t.due());
        std::thread::sleep(Duration::from_millis(40));
        assert!(t.due());
        assert!(!t.due());
    }
}
