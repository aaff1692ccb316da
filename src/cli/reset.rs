//! `kprov reset INVENTORY [--limit HOST,..] [--yes] [--dry-run] [--output json]`: undo what
//! kubeadm did on the selected hosts, workers first, the first control plane last
//! ([`crate::ops::reset`]).
//!
//! Without `--yes` it asks for the cluster's name on a terminal, and refuses when standard input
//! is not a terminal.
//!
//! Exit codes: 0 every selected host was reset; 2 (`--dry-run`) hosts would be reset; 1 refused
//! (no `--yes` and no terminal, or the typed name was wrong), invalid inventory or `--limit`, or
//! a host failed (the others are still reset; each failure names its host).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::Globals;
use super::operate::{self, DriveArgs};
use crate::ops::reset::Reset;

#[derive(Debug, Args)]
pub struct ResetArgs {
    /// The inventory file.
    pub inventory: PathBuf,
    /// Only these hosts (comma-separated names); default: every host.
    #[arg(long, value_delimiter = ',', value_name = "HOST,...")]
    pub limit: Vec<String>,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub drive: DriveArgs,
}

pub fn run(args: &ResetArgs, g: &Globals) -> ExitCode {
    operate::run(&mut Reset::new(args.limit.clone()), &args.inventory, args.yes, &args.drive, g)
}
