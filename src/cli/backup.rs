//! `kprov backup INVENTORY [--output FILE] [--dry-run] [--output-format json]`: an etcd snapshot
//! of the cluster, saved on the operator's machine with mode 0600 ([`crate::ops::backup`]).
//!
//! The default FILE is `CLUSTER-etcd-YYYYMMDDTHHMMSSZ.db` in the current directory (the node's UTC
//! clock). An existing FILE is never overwritten. Restoring is `etcdutl snapshot restore` on the
//! control plane (docs/operations.md).
//!
//! Exit codes: 0 saved; 2 (`--dry-run`) a snapshot would be taken; 1 the cluster cannot be
//! reached or read, the snapshot failed, the copy does not match, or FILE exists.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::Globals;
use super::apply::Output;
use super::operate::{self, DriveArgs};
use crate::ops::backup::Backup;

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The inventory file.
    pub inventory: PathBuf,
    /// Where to write the snapshot (default: CLUSTER-etcd-TIMESTAMP.db here). Never overwritten.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Show what would be done, change nothing (exit 2).
    #[arg(long)]
    pub dry_run: bool,
    /// `json`: JSON Lines events on stdout (docs/operations.md). (`--output` is the file here.)
    #[arg(long, value_enum, default_value_t = Output::Text, value_name = "FORMAT")]
    pub output_format: Output,
}

pub fn run(args: &BackupArgs, g: &Globals) -> ExitCode {
    let drive = DriveArgs { dry_run: args.dry_run, output: args.output_format };
    operate::run(&mut Backup::new(args.output.clone()), &args.inventory, true, &drive, g)
}
