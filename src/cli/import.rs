//! `kprov import kubespray FILE [-o OUT]`: the arguments, the rendering of the diagnostics and
//! the summary, and the exit codes. The conversion itself is [`crate::import`]; its output is
//! checked with kprov's own inventory parser before it is written (exit 1 on any error, and
//! nothing is written).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};

use super::Globals;
use crate::import;
use crate::inventory::{self, Diagnostic};

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(subcommand)]
    pub source: Source,
}

#[derive(Debug, Subcommand)]
pub enum Source {
    /// A Kubespray inventory: the YAML hosts.yaml or the INI inventory.ini.
    Kubespray(KubesprayArgs),
}

#[derive(Debug, Args)]
pub struct KubesprayArgs {
    /// The Kubespray inventory (hosts.yaml or inventory.ini).
    pub file: PathBuf,
    /// Write the kprov inventory here instead of to standard output.
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
}

pub fn run(args: &ImportArgs, g: &Globals) -> ExitCode {
    match &args.source {
        Source::Kubespray(a) => kubespray(a, g),
    }
}

fn kubespray(a: &KubesprayArgs, g: &Globals) -> ExitCode {
    let color = g.color(std::io::stderr().is_terminal());
    let fail = |diags: &[Diagnostic], what: &str| {
        for d in diags {
            eprint!("{}", super::setup::render(d, color));
        }
        let n = diags.iter().filter(|d| d.is_error()).count();
        eprintln!("{n} error{} {what}; nothing was written.", if n == 1 { "" } else { "s" });
        ExitCode::from(1)
    };
    let name = a.file.display().to_string();
    let text = match import::read(&a.file, &name) {
        Ok(t) => t,
        Err(d) => return fail(&[*d], "in the Kubespray inventory"),
    };
    if let Some(out) = &a.output
        && let (Ok(x), Ok(y)) = (a.file.canonicalize(), out.canonicalize())
        && x == y
    {
        let d = Diagnostic::error("kprov::import::same_file", format!("refusing to overwrite the Kubespray inventory {name} with its import"))
            .help("write the kprov inventory to a new file, e.g. -o kprov.yaml")
            .in_file(&name, &Arc::new(String::new()));
        return fail(&[d], "in the arguments");
    }
    let imported = match import::convert(&text, &name) {
        Ok(i) => i,
        Err(diags) => return fail(&diags, "in the Kubespray inventory"),
    };
    // The output must be an inventory kprov accepts: check it with kprov's own parser.
    let out_name = a.output.as_ref().map_or_else(|| "<stdout>".to_string(), |p| p.display().to_string());
    let loaded = inventory::parse(&imported.yaml, &out_name);
    if loaded.inventory.is_none() {
        let code = fail(&loaded.diagnostics, "in the imported inventory");
        eprintln!("This is a bug in kprov import: please report it with the Kubespray inventory {name}.");
        return code;
    }
    if !g.quiet {
        for d in imported.warnings.iter().chain(loaded.warnings()) {
            eprint!("{}", super::setup::render(d, color));
        }
    }
    match &a.output {
        Some(out) => {
            if let Err(e) = std::fs::write(out, &imported.yaml) {
                let d = Diagnostic::error("kprov::import::write", format!("cannot write {out_name}: {e}"))
                    .help("check that the directory exists and is writable")
                    .in_file(&out_name, &Arc::new(String::new()));
                return fail(&[d], "writing the output");
            }
        }
        None => print!("{}", imported.yaml),
    }
    if !g.quiet {
        let settings = match imported.not_imported {
            0 => "every setting was imported".to_string(),
            n => format!("{n} setting{} not imported (listed at the top)", plural(n)),
        };
        eprintln!("✓ {out_name}: {} imported from {name}; {settings}", imported.summary());
    }
    ExitCode::SUCCESS
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
