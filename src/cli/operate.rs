//! What the day-2 commands share: `--dry-run`, `--output json`, the session, and [`ops::drive`]
//! with its exit codes (0 done or nothing to do, 2 a dry run with something to do, 1 refused or
//! failed). The error is printed here, once.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use super::Globals;
use super::apply::Output;
use super::plan::{load_inventory, runtime};
use crate::ops::{self, DriveOptions, Operation, Session, Sink};

#[derive(Debug, Clone, Args)]
pub struct DriveArgs {
    /// Show what would be done, change nothing (exit 0: nothing to do, 2: something to do,
    /// 1: it would be refused).
    #[arg(long)]
    pub dry_run: bool,
    /// `json`: JSON Lines events on stdout (the schema of docs/operations.md), the last one
    /// `report`.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// Loads the inventory, drives `op` over a session, prints the error once, returns the exit
/// code.
pub fn run<O: Operation>(op: &mut O, inventory: &Path, yes: bool, d: &DriveArgs, g: &Globals) -> ExitCode {
    let Some(inv) = load_inventory(inventory, g) else { return ExitCode::from(1) };
    let sink = match d.output {
        Output::Json => Sink::json(),
        Output::Text => Sink::text(g.quiet, g.verbose > 0),
    };
    let session = Session::new(inv, sink);
    let result = runtime().block_on(ops::drive(op, &session, DriveOptions { dry_run: d.dry_run, yes }));
    match result {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(e) => {
            // With --output json the report event carries it too; the rendering goes to stderr.
            eprintln!("{e:?}");
            ExitCode::from(1)
        }
    }
}
