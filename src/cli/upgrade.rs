//! `kprov upgrade INVENTORY [--yes] [--dry-run] [--output json] [--workers-at-once N]`: move a
//! running cluster to the Kubernetes release the inventory now names, in kubeadm's documented
//! order: the first control plane (`kubeadm upgrade apply`), the other control planes one at a
//! time, then the workers `--workers-at-once` at a time ([`crate::ops::upgrade`]).
//!
//! Before changing anything it shows the plan and asks for the cluster's name on a terminal
//! (refused without a terminal unless `--yes`); `--dry-run` shows the plan and changes nothing.
//!
//! Exit codes: 0 upgraded, or nothing to upgrade; 1 refused, invalid, or a step failed; with
//! `--dry-run`, 2 when an upgrade is pending.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::Globals;
use super::operate::{self, DriveArgs};
use crate::ops::upgrade::Upgrade;

#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// The inventory file, with `cluster.kubernetes_version` set to the release to upgrade to.
    pub inventory: PathBuf,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub drive: DriveArgs,
    /// Workers upgraded at once (control planes always go one at a time).
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub workers_at_once: u16,
}

pub fn run(args: &UpgradeArgs, g: &Globals) -> ExitCode {
    let mut op = Upgrade::new(args.workers_at_once as usize, g.roles.clone(), args.inventory.clone());
    operate::run(&mut op, &args.inventory, args.yes, &args.drive, g)
}
