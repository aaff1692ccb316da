//! `kprov remove-node INVENTORY HOST [--yes] [--dry-run] [--output json]`: take one node out of
//! the cluster: drain and delete it from the first control plane, then reset it
//! ([`crate::ops::remove_node`]). The first control plane is refused. The host stays in the
//! inventory: delete it there, or the next apply joins it again.
//!
//! Without `--yes` it asks for the host's name on a terminal and refuses when standard input is
//! not a terminal.
//!
//! Exit codes: 0 the node was removed and reset; 2 (`--dry-run`) it would be; 1 refused (first
//! control plane, unknown host, no `--yes` without a terminal, wrong name typed), invalid
//! inventory, or a step failed (the message names the host and what was already done).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::Globals;
use super::operate::{self, DriveArgs};
use crate::ops::remove_node::RemoveNode;

#[derive(Debug, Args)]
pub struct RemoveNodeArgs {
    /// The inventory file.
    pub inventory: PathBuf,
    /// The host to remove (its name in the inventory, which is its node name).
    pub host: String,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub drive: DriveArgs,
}

pub fn run(args: &RemoveNodeArgs, g: &Globals) -> ExitCode {
    operate::run(&mut RemoveNode::new(args.host.clone()), &args.inventory, args.yes, &args.drive, g)
}
