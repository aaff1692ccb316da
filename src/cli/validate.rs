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
                // Without -v, one line; with it, what kprov will do with each host. Facts
                // (OS, architecture, Kubernetes state) need the hosts: `kprov plan -v`.
                if g.verbose > 0 {
                    for h in &inv.hosts {
                        println!("  {}", host_line(h));
                    }
                }
            }
            ExitCode::SUCCESS
        }
        None => ExitCode::from(1),
    }
}

/// `validate -v`: a host as the inventory resolves it (roles, and SSH settings after merging
/// the defaults with the host's overrides).
pub fn host_line(h: &inventory::Host) -> String {
    let roles: Vec<&str> =
        h.roles.iter().map(|r| if *r == crate::inventory::model::Role::ControlPlane { "control-plane" } else { "worker" }).collect();
    let mut ssh = format!("ssh {}@{}:{}", h.ssh.user, h.address, h.ssh.port);
    if let Some(b) = &h.ssh.bastion {
        ssh.push_str(&format!(" via {}", b.address));
    }
    if h.ssh.become_ && h.ssh.user != "root" {
        ssh.push_str(", sudo");
    }
    format!("{}: {}; {ssh}", h.name, roles.join(", "))
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

#[cfg(test)]
mod tests {
    use super::host_line;

    #[test]
    fn verbose_validate_shows_each_host_as_resolved() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("inventory-examples/rpi-homelab.yaml");
        let inv = crate::inventory::load(&path).inventory.unwrap();
        assert_eq!(host_line(&inv.hosts[0]), "k8s-01: control-plane; ssh pi@192.168.0.150:22, sudo");
        assert_eq!(host_line(&inv.hosts[1]), "k8s-02: worker; ssh pi@192.168.0.151:22, sudo");
    }
}
