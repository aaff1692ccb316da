//! Operations: everything kprov does to a running cluster, as one engine. An operation
//! ([`Operation`]) prepares (connects, reads the cluster as parsed facts, decides through a pure
//! function), says what it would do ([`Operation::actions`], [`Operation::describe`]), and runs.
//! [`drive`] is the one sequence every operation goes through: prepare, show, the dry run (exit
//! 2 when something is to do), one confirmation path, one Ctrl-C path, run, report.
//!
//! - [`session`]: the inventory, the SSH connector, the cancellation flag and the event sink an
//!   operation works with; the inventory's glue to the engine (`engine`, `connect_options`).
//! - [`events`]: the event sink (plain lines, or JSON Lines with one schema shared with apply).
//! - [`remote`]: every day-2 remote script as steps of one nonce-framed batch (`apply::batch`).
//! - [`cluster`]: cluster reads (nodes, versions) as facts: a step and a parser, with fixtures.
//! - [`reset`], [`remove_node`], [`upgrade`], [`backup`]: the day-2 operations.
//! - [`check`]: the check after an apply (nodes Ready, smoke test, admin.conf).
//!
//! Nothing here knows about clap or terminals beyond asking for a confirmation on one.

pub mod backup;
pub mod check;
pub mod cluster;
pub mod converge;
pub mod events;
pub mod facts;
pub mod remote;
pub mod remove_node;
pub mod reset;
pub mod session;
pub mod upgrade;

use serde::Serialize;

pub use events::{Event, Sink};
pub use session::Session;

/// One thing an operation would do, for the dry run and the `plan` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Action {
    pub host: String,
    pub action: String,
}

impl Action {
    pub fn new(host: impl Into<String>, action: impl Into<String>) -> Action {
        Action { host: host.into(), action: action.into() }
    }
}

/// What must be typed to confirm an operation that takes a cluster or a node apart.
#[derive(Debug, Clone)]
pub struct Confirmation {
    /// `reset hosts`: in "refusing to reset hosts without --yes".
    pub action: &'static str,
    /// The sentence shown above the prompt.
    pub what: String,
    /// The text to type.
    pub expected: String,
    /// `the cluster's name`.
    pub expected_is: &'static str,
}

/// An operation over a [`Session`]. `drive` calls its methods in this order: `prepare`,
/// `describe` and `actions`, `check`, then (unless a dry run, and once confirmed) `run`.
// Every operation is driven by the generic `drive` on the runtime's thread that blocks on it;
// no caller needs the futures to be `Send`, so the auto-trait bounds are not spelt out.
#[allow(async_fn_in_trait)]
pub trait Operation {
    type Error: miette::Diagnostic + Send + Sync + 'static;
    /// `reset`, `remove-node`, `upgrade`, `backup`: the `operation` of its events.
    const NAME: &'static str;

    /// Connect and read what the decision needs; decide. Nothing changes here.
    async fn prepare(&mut self, s: &Session) -> Result<(), Self::Error>;
    /// A human description of the decision (a table), printed before anything runs.
    fn describe(&self) -> String {
        String::new()
    }
    /// What `run` would do; empty when there is nothing to do.
    fn actions(&self) -> Vec<Action>;
    /// Said when there is nothing to do.
    fn nothing_to_do(&self) -> String;
    /// Said by a dry run that found something to do.
    fn pending(&self) -> String;
    /// Refusals that are shown after the description (an unhealthy cluster).
    fn check(&self) -> Result<(), Self::Error> {
        Ok(())
    }
    /// The confirmation to ask for without `--yes`; None: none needed.
    fn confirmation(&self) -> Option<Confirmation>;
    /// Do it. Returns the closing sentence.
    async fn run(&mut self, s: &Session) -> Result<String, Self::Error>;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct DriveOptions {
    /// Show what would be done and stop.
    pub dry_run: bool,
    /// Confirmed on the command line.
    pub yes: bool,
}

/// How a driven operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It ran and succeeded.
    Done,
    /// There was nothing to do.
    NothingToDo,
    /// A dry run found something to do (exit code 2).
    Pending,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Done | Exit::NothingToDo => 0,
            Exit::Pending => 2,
        }
    }
}

/// The one sequence of every operation: prepare, describe, check, dry run or confirmation,
/// Ctrl-C handling, run, and the closing `report` event. Connections are closed whatever
/// happened. Errors come back as one report for the caller to print once.
pub async fn drive<O: Operation>(op: &mut O, s: &Session, o: DriveOptions) -> Result<Exit, miette::Report> {
    let result = drive_inner(op, s, o).await;
    s.connector.close_all().await;
    let (success, message) = match &result {
        Ok(_) => (true, None),
        Err(e) => (false, Some(e.to_string())),
    };
    s.events.emit(&Event::Report {
        operation: O::NAME,
        success,
        dry_run: o.dry_run,
        pending: matches!(result, Ok(Exit::Pending)),
        interrupted: s.cancelled(),
        error: message.as_deref(),
    });
    result
}

async fn drive_inner<O: Operation>(op: &mut O, s: &Session, o: DriveOptions) -> Result<Exit, miette::Report> {
    op.prepare(s).await.map_err(miette::Report::new)?;
    let actions = op.actions();
    s.events.emit(&Event::Plan { operation: O::NAME, actions: &actions, description: &op.describe() });
    if actions.is_empty() {
        s.events.emit(&Event::Result { host: None, message: &op.nothing_to_do() });
        return Ok(Exit::NothingToDo);
    }
    op.check().map_err(miette::Report::new)?;
    if o.dry_run {
        s.events.emit(&Event::Result { host: None, message: &op.pending() });
        return Ok(Exit::Pending);
    }
    if !o.yes
        && let Some(c) = op.confirmation()
    {
        session::confirm(&c)?;
    }
    s.watch_ctrl_c();
    let said = op.run(s).await.map_err(miette::Report::new)?;
    s.events.emit(&Event::Result { host: None, message: &said });
    Ok(Exit::Done)
}
