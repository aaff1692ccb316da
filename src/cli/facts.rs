//! `kprov facts INVENTORY [--limit HOST,..] [--json]`: what kprov sees on each host, read by the
//! same one-round-trip fact script the planner uses (so it is exactly what a plan decides from).
//!
//! File contents are never shown (a fact may hold a kubeconfig or a join configuration): files
//! appear with their metadata and digest only.
//!
//! `--save FILE` also records the facts in a facts snapshot (see `facts::snapshot`) for
//! `kprov plan --facts FILE`: merged with what FILE held, so a `--limit` run or an
//! unreachable host keeps that host's earlier entry.
//!
//! Exit codes: 0 every selected host answered; 1 the inventory is invalid, or a host was
//! unreachable or its facts could not be read (the others are still shown).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::Globals;
use super::plan::{load_inventory, runtime};

pub use crate::ops::facts::{FactsReport, HostReport, host_report, save_snapshot};

#[derive(Debug, Args)]
pub struct FactsArgs {
    /// The inventory file.
    pub inventory: PathBuf,
    /// Only these hosts (comma-separated names).
    #[arg(long, value_delimiter = ',', value_name = "HOST,...")]
    pub limit: Vec<String>,
    /// Print the facts as JSON (see format_version).
    #[arg(long)]
    pub json: bool,
    /// Hosts read at once.
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub concurrency: usize,
    /// Also record the facts in FILE, a facts snapshot for `kprov plan --facts FILE` (no file
    /// content that is secret, no token, key or password; see docs/ci.md). `kprov apply`
    /// writes INVENTORY.facts.json the same way after a successful run.
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
}

pub fn run(args: &FactsArgs, g: &Globals) -> ExitCode {
    let Some(inv) = load_inventory(&args.inventory, g) else { return ExitCode::from(1) };
    let scope = crate::ops::converge::Scope { limit: args.limit.clone(), tags: vec![], concurrency: args.concurrency };
    let read = runtime().block_on(crate::ops::facts::read(&inv, &scope, g.roles.as_deref(), args.save.as_deref()));
    let result = read.map(|(report, saved)| {
        if let (Some(n), Some(path), false) = (saved, &args.save, g.quiet) {
            eprintln!("Recorded the facts of {n} host{} in {}", if n == 1 { "" } else { "s" }, path.display());
        }
        report
    });
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e:?}");
            return ExitCode::from(1);
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).expect("facts serialize"));
    } else {
        print!("{}", render_text(&report));
    }
    let mut failed = false;
    for h in report.hosts.iter().filter(|h| h.status != "ok") {
        failed = true;
        let e = miette::miette!(
            code = "kprov::facts::host",
            help = "kprov plan and apply need these facts too; fix the connection (see the message) and run again",
            "{}: {}",
            h.name,
            h.error.as_deref().unwrap_or("no facts")
        );
        eprintln!("{e:?}");
    }
    if failed { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

/// The human rendering: one block per host.
pub fn render_text(report: &FactsReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for (i, h) in report.hosts.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "{} ({})", h.name, h.address);
        if let Some(e) = &h.error {
            let _ = writeln!(out, "  {}: {e}", h.status.replace('_', " "));
            continue;
        }
        let row = |out: &mut String, k: &str, v: &str| {
            let _ = writeln!(out, "  {k:<14} {v}");
        };
        if let Some(os) = &h.os {
            let release = if os.pretty_name.is_empty() { format!("{} {}", os.id, os.version_id) } else { os.pretty_name.clone() };
            let codename = if os.codename.is_empty() { String::new() } else { format!(" ({}, {})", os.id, os.codename) };
            row(&mut out, "os", &format!("{release}{codename}{}", if os.raspberry_pi_os { ", Raspberry Pi OS" } else { "" }));
            row(&mut out, "arch", &format!("{} ({})", os.arch, os.machine));
            row(&mut out, "kernel", &os.kernel);
            row(&mut out, "hostname", &os.hostname);
            row(&mut out, "cpus", &os.cpus.to_string());
            row(&mut out, "memory", &format!("{} MiB", os.memory_kib / 1024));
            if !os.board_model.is_empty() {
                row(&mut out, "board", &os.board_model);
            }
            row(&mut out, "memory cgroup", if os.memory_cgroup { "enabled" } else { "disabled" });
            row(&mut out, "listening", &if os.listening.is_empty() { "nothing".to_string() } else { os.listening.join(" ") });
        }
        if let Some(s) = &h.swap {
            let active = if s.active.is_empty() { "off".to_string() } else { format!("on ({})", s.active.join(", ")) };
            let fstab = if s.fstab.is_empty() { String::new() } else { format!("; in /etc/fstab: {}", s.fstab.join(" | ")) };
            row(&mut out, "swap", &format!("{active}{fstab}"));
        }
        if let Some(k) = &h.kubeadm {
            row(&mut out, "kubeadm", &k.state.replace('-', " "));
        }
        if !h.packages.is_empty() {
            let _ = writeln!(out, "  packages");
            for (name, p) in &h.packages {
                let v = match (&p.version, p.installed) {
                    (Some(v), true) => format!("{v}{}", if p.held { " (held)" } else { "" }),
                    _ => "not installed".to_string(),
                };
                let _ = writeln!(out, "    {name:<28} {v}");
            }
        }
        if !h.services.is_empty() {
            let _ = writeln!(out, "  services");
            for (name, s) in &h.services {
                let v = if !s.exists {
                    "not installed".to_string()
                } else {
                    format!(
                        "{}, {}",
                        if s.enablement.is_empty() { if s.enabled { "enabled" } else { "disabled" } } else { &s.enablement },
                        if s.active { "active" } else { "inactive" }
                    )
                };
                let _ = writeln!(out, "    {name:<28} {v}");
            }
        }
        if !h.sysctls.is_empty() {
            let _ = writeln!(out, "  sysctls");
            for (k, v) in &h.sysctls {
                let _ = writeln!(out, "    {k:<40} {}", v.as_deref().unwrap_or("(absent)"));
            }
        }
        if !h.modules.is_empty() {
            let _ = writeln!(out, "  kernel modules");
            for (k, m) in &h.modules {
                let v = if m.builtin {
                    "built in"
                } else if m.loaded {
                    "loaded"
                } else {
                    "not loaded"
                };
                let _ = writeln!(out, "    {k:<28} {v}");
            }
        }
        if !h.files.is_empty() {
            let _ = writeln!(out, "  files");
            for (path, f) in &h.files {
                let v = if f.exists { format!("{} {}:{} {} bytes", f.mode, f.owner, f.group, f.size) } else { "absent".to_string() };
                let _ = writeln!(out, "    {path:<48} {v}");
            }
        }
        if !h.checks.is_empty() {
            let _ = writeln!(out, "  checks (exit status)");
            for c in &h.checks {
                let one_line: String = c.command.split_whitespace().collect::<Vec<_>>().join(" ");
                let short: String =
                    if one_line.chars().count() > 90 { format!("{}...", one_line.chars().take(87).collect::<String>()) } else { one_line };
                let _ = writeln!(out, "    {:>3}  {short}", c.exit_status);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::FileFact;
    use crate::facts::{FactQuery, FactValue, HostFacts, OsFact, PackageFact};
    use crate::ops::facts::{ADMIN_CONF, KUBELET_CONF};
    use crate::plan::HostStatus;

    #[test]
    fn file_contents_never_reach_the_report_and_kubeadm_state_is_derived() {
        let mut f = HostFacts::default();
        f.insert(
            FactQuery::Os,
            FactValue::Os(OsFact {
                id: "debian".into(),
                arch: "amd64".into(),
                pretty_name: "Debian GNU/Linux 12 (bookworm)".into(),
                ..Default::default()
            }),
        );
        f.insert(
            FactQuery::File { path: ADMIN_CONF.into() },
            FactValue::File(FileFact { exists: true, mode: 0o600, content: Some(b"client-key-data: SECRETKEY".to_vec()), ..Default::default() }),
        );
        let r = host_report("h1", "10.0.0.1", &HostStatus::Ready, Some(&f));
        let report = FactsReport { format_version: 1, inventory: "i.yaml".into(), hosts: vec![r] };
        let json = serde_json::to_string(&report).unwrap();
        let text = render_text(&report);
        for out in [&json, &text] {
            assert!(!out.contains("SECRETKEY"), "{out}");
            assert!(out.contains("amd64"), "{out}");
        }
        assert!(text.contains("initialised control plane"), "{text}");
        assert!(json.contains("\"state\":\"initialised-control-plane\""), "{json}");
        assert!(text.contains("0600"), "{text}");
    }

    #[test]
    fn plan_verbose_summarises_each_host_in_one_line() {
        let mut f = HostFacts::default();
        f.insert(
            FactQuery::Os,
            FactValue::Os(OsFact {
                id: "debian".into(),
                arch: "arm64".into(),
                machine: "aarch64".into(),
                pretty_name: "Debian GNU/Linux 12 (bookworm)".into(),
                ..Default::default()
            }),
        );
        f.insert(FactQuery::File { path: KUBELET_CONF.into() }, FactValue::File(FileFact { exists: true, mode: 0o600, ..Default::default() }));
        f.insert(
            FactQuery::Package { name: "kubelet".into() },
            FactValue::Package(PackageFact { installed: true, version: Some("1.34.2-1.1".into()), held: true }),
        );
        let line = super::super::plan::host_summary(&host_report("pi1", "10.0.0.1", &HostStatus::Ready, Some(&f)));
        assert_eq!(line, "pi1 (10.0.0.1): Debian GNU/Linux 12 (bookworm), arm64 (aarch64), Kubernetes: joined, kubelet 1.34.2-1.1");
        let down = super::super::plan::host_summary(&host_report(
            "pi2",
            "10.0.0.2",
            &HostStatus::Unreachable { message: "connection refused".into() },
            None,
        ));
        assert_eq!(down, "pi2 (10.0.0.2): unreachable: connection refused");
    }

    #[test]
    fn an_unreachable_host_is_shown_with_its_error() {
        let r = host_report("h2", "10.0.0.2", &HostStatus::Unreachable { message: "h2: cannot connect".into() }, None);
        let text = render_text(&FactsReport { format_version: 1, inventory: "i".into(), hosts: vec![r] });
        assert!(text.contains("h2 (10.0.0.2)\n  unreachable: h2: cannot connect"), "{text}");
    }
}
