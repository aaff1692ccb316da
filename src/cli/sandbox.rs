//! `kprov sandbox up|down|status`: local hosts (Docker containers running systemd and sshd)
//! with a ready inventory, to try kprov without hardware. See `crate::sandbox`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::Globals;
use crate::sandbox::{self, Flavour};

#[derive(Debug, Args)]
pub struct SandboxArgs {
    #[command(subcommand)]
    pub command: SandboxCommand,
}

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Start the nodes, and write their key, known_hosts and an inventory in DIR.
    #[command(after_help = "Example:\n  kprov sandbox up --nodes 3 --flavour ubuntu --dir kprov-sandbox")]
    Up {
        /// How many nodes: the first is the control plane, the others workers.
        #[arg(long, default_value_t = 3, value_name = "N")]
        nodes: usize,
        #[arg(long, value_enum, default_value_t = Flavour::Ubuntu)]
        flavour: Flavour,
        #[command(flatten)]
        dir: DirArg,
    },
    /// Remove exactly what `up` created (containers, network, files), also after a crash.
    #[command(after_help = "Example:\n  kprov sandbox down --dir kprov-sandbox")]
    Down {
        #[command(flatten)]
        dir: DirArg,
    },
    /// List the sandbox's nodes and their containers' state (exit 1 when one is not running).
    #[command(after_help = "Example:\n  kprov sandbox status --dir kprov-sandbox")]
    Status {
        #[command(flatten)]
        dir: DirArg,
    },
}

#[derive(Debug, Clone, Args)]
pub struct DirArg {
    /// The sandbox's directory (its state, key, known_hosts and inventory.yaml).
    #[arg(long, default_value = "kprov-sandbox", value_name = "DIR")]
    pub dir: PathBuf,
}

fn fail(e: sandbox::SandboxError) -> ExitCode {
    eprintln!("{:?}", miette::Report::new(e));
    ExitCode::from(1)
}

pub fn run(args: &SandboxArgs, g: &Globals) -> ExitCode {
    match &args.command {
        SandboxCommand::Up { nodes, flavour, dir } => match sandbox::docker::up(&dir.dir, *nodes, *flavour) {
            Ok(state) => {
                let inv = state.dir.join("inventory.yaml");
                let q = |p: &std::path::Path| crate::shell::quote(&p.display().to_string()).map(|c| c.into_owned()).unwrap_or_default();
                if !g.quiet {
                    println!(
                        "Sandbox {} is up: {} node{} ({}).",
                        state.id,
                        state.nodes.len(),
                        if state.nodes.len() == 1 { "" } else { "s" },
                        state.flavour.name()
                    );
                    println!("Inventory: {}", inv.display());
                    println!("Next:");
                    println!("  kprov apply {} --tags prepare   # host preparation: works without Internet access", q(&inv));
                    println!("  kprov plan {}                   # what remains (packages, kubeadm, CNI)", q(&inv));
                    println!("  kprov sandbox down --dir {}", q(&state.dir));
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
        SandboxCommand::Down { dir } => match sandbox::docker::down(&dir.dir) {
            Ok((state, left)) => {
                if left.is_empty() {
                    println!(
                        "Sandbox {} removed: {} container{}, its network and {}.",
                        state.id,
                        state.nodes.len(),
                        if state.nodes.len() == 1 { "" } else { "s" },
                        state.dir.display()
                    );
                } else {
                    println!(
                        "Sandbox {} removed: {} container{} and its network; {} stays, as it holds files the sandbox did not write: {}",
                        state.id,
                        state.nodes.len(),
                        if state.nodes.len() == 1 { "" } else { "s" },
                        state.dir.display(),
                        left.join(", ")
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
        SandboxCommand::Status { dir } => match sandbox::docker::status(&dir.dir) {
            Ok((state, states)) => {
                println!(
                    "Sandbox {} in {} ({}{}); inventory {}",
                    state.id,
                    state.dir.display(),
                    state.flavour.name(),
                    if state.complete { "" } else { ", incomplete: `up` did not finish; run kprov sandbox down" },
                    state.dir.join("inventory.yaml").display()
                );
                println!("{:<8} {:<15} {:<14} {:<10} CONTAINER", "HOST", "ADDRESS", "ROLE", "STATE");
                for (n, s) in state.nodes.iter().zip(&states) {
                    println!("{}", sandbox::status_line(n, s));
                }
                if state.complete && states.iter().all(|s| s == "running") { ExitCode::SUCCESS } else { ExitCode::from(1) }
            }
            Err(e) => fail(e),
        },
    }
}
