//! `kprov validate INVENTORY`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use super::Globals;
use crate::inventory::{self, Loaded};

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The inventory file.
    pub inventory: PathBuf,
    /// Output format of the diagnostics.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
}

pub fn run(args: &ValidateArgs, g: &Globals) -> ExitCode {
    let loaded = inventory::load(&args.inventory);
    if args.format == Format::Json {
        let out = serde_json::json!({
            "valid": loaded.inventory.is_some(),
            "diagnostics": loaded.diagnostics.iter().map(|d| d.to_json()).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&out).expect("json"));
        return if loaded.inventory.is_some() { ExitCode::SUCCESS } else { ExitCode::from(1) };
    }
    match report(&loaded, g) {
        Some(inv) => {
            if !g.quiet {
                let cps = inv.control_planes().count();
                let workers = inv.hosts.iter().filter(|h| h.is_worker() && !h.is_control_plane()).count();
                println!(
                    "✓ {}: {} hosts ({} control plane{}, {} worker{}), Kubernetes {}, CNI {}",
                    inv.name,
                    inv.hosts.len(),
                    cps,
                    if cps == 1 { "" } else { "s" },
                    workers,
                    if workers == 1 { "" } else { "s" },
                    inv.cluster.kubernetes_patch_version.clone().unwrap_or_else(|| inv.cluster.kubernetes_version.clone()),
                    inv.cluster.cni
                );
            }
            ExitCode::SUCCESS
        }
        None => ExitCode::from(1),
    }
}

/// Print every diagnostic to stderr; the inventory when it is valid.
pub fn report<'a>(loaded: &'a Loaded, g: &Globals) -> Option<&'a inventory::Inventory> {
    let color = g.color(std::io::stderr().is_terminal());
    for d in &loaded.diagnostics {
        if g.quiet && !d.is_error() {
            continue;
        }
        eprint!("{}", super::setup::render(d, color));
    }
    let errors = loaded.errors().count();
    if errors > 0 {
        eprintln!("{errors} error{} in the inventory; nothing was done.", if errors == 1 { "" } else { "s" });
    }
    loaded.inventory.as_ref()
}
