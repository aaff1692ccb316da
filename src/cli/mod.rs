//! Command-line interface: clap arguments, one file per subcommand, miette rendering and exit
//! codes. The only module that knows about terminals.
//!
//! Exit codes: 0 success (plan: no changes); 1 error or invalid input; 2 (plan) changes
//! pending. See README.md.

mod apply;
mod backup;
mod facts;
mod import;
mod operate;
mod plan;
mod progress;
mod remove_node;
mod reset;
mod sandbox;
mod setup;
mod ssh;
mod upgrade;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "kprov",
    version,
    about = "Declarative, agentless provisioning of kubeadm Kubernetes clusters over SSH",
    propagate_version = true,
    after_help = "Example:\n  kprov validate inventory.yaml && kprov plan inventory.yaml && kprov apply inventory.yaml"
)]
pub struct Cli {
    #[command(flatten)]
    pub globals: Globals,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct Globals {
    /// More output (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors and the final summary.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Colour: auto (a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Plain timestamped lines instead of progress bars.
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// A directory of roles (and templates/) overlaying the built-in ones.
    #[arg(long, global = true, value_name = "DIR")]
    pub roles: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl Globals {
    pub fn color(&self, stream_is_terminal: bool) -> bool {
        match self.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => stream_is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check an inventory and report every problem at once.
    #[command(after_help = "Example:\n  kprov validate inventory.yaml --format json")]
    Validate(validate::ValidateArgs),
    /// Read the hosts' facts and show what apply would change (exit 0: none, 2: changes, 1: error).
    #[command(after_help = "Example:\n  kprov plan inventory.yaml --limit k8s-02 -o plan.json")]
    Plan(plan::PlanArgs),
    /// Bring the hosts to the state the inventory describes (or carry out a saved plan).
    #[command(after_help = "Example:\n  kprov apply inventory.yaml --tags prepare,packages")]
    Apply(apply::ApplyArgs),
    /// Show what kprov sees on each host (OS, packages, services, kubeadm state...).
    #[command(after_help = "Example:\n  kprov facts inventory.yaml --limit k8s-01 --json")]
    Facts(facts::FactsArgs),
    /// Open a shell (or run a command) on a host with the inventory's SSH settings.
    #[command(after_help = "Example:\n  kprov ssh inventory.yaml k8s-01 -- systemctl status kubelet")]
    Ssh(ssh::SshArgs),
    /// kubeadm reset and cleanup on the hosts, workers first (asks to confirm unless --yes).
    #[command(after_help = "Example:\n  kprov reset inventory.yaml --limit k8s-03")]
    Reset(reset::ResetArgs),
    /// Drain and delete a node from the cluster, then reset it (asks to confirm unless --yes).
    #[command(after_help = "Example:\n  kprov remove-node inventory.yaml k8s-03")]
    RemoveNode(remove_node::RemoveNodeArgs),
    /// Upgrade the cluster to the inventory's Kubernetes version, in kubeadm's order (asks to
    /// confirm unless --yes).
    #[command(after_help = "Example:\n  kprov upgrade inventory.yaml --dry-run")]
    Upgrade(upgrade::UpgradeArgs),
    /// Save an etcd snapshot of the cluster on this machine.
    #[command(after_help = "Example:\n  kprov backup inventory.yaml -o etcd-snapshot.db")]
    Backup(backup::BackupArgs),
    /// Convert another tool's inventory into a kprov inventory (exit 1 on any problem).
    #[command(after_help = "Example:\n  kprov import kubespray inventory/mycluster/hosts.yaml -o cluster.yaml")]
    Import(import::ImportArgs),
    /// Local hosts to try kprov on: Docker containers with systemd and sshd, and an inventory.
    #[command(after_help = "Example:\n  kprov sandbox up --nodes 3 --flavour ubuntu")]
    Sandbox(sandbox::SandboxArgs),
    /// Print the JSON Schema of the inventory.
    #[command(after_help = "Example:\n  kprov schema > kprov-inventory.schema.json")]
    Schema,
    /// Print shell completions.
    #[command(after_help = "Example:\n  kprov completions bash > ~/.local/share/bash-completion/completions/kprov")]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            // clap uses 2 for usage errors; kprov keeps 2 for "plan has changes".
            return if e.use_stderr() { ExitCode::from(1) } else { ExitCode::SUCCESS };
        }
    };
    setup::install(&cli.globals);
    match &cli.command {
        Command::Validate(a) => validate::run(a, &cli.globals),
        Command::Plan(a) => plan::run(a, &cli.globals),
        Command::Apply(a) => apply::run(a, &cli.globals),
        Command::Facts(a) => facts::run(a, &cli.globals),
        Command::Ssh(a) => ssh::run(a, &cli.globals),
        Command::Reset(a) => reset::run(a, &cli.globals),
        Command::RemoveNode(a) => remove_node::run(a, &cli.globals),
        Command::Upgrade(a) => upgrade::run(a, &cli.globals),
        Command::Backup(a) => backup::run(a, &cli.globals),
        Command::Import(a) => import::run(a, &cli.globals),
        Command::Sandbox(a) => sandbox::run(a, &cli.globals),
        Command::Schema => {
            println!("{}", serde_json::to_string_pretty(&crate::inventory::schema()).expect("schema serializes"));
            ExitCode::SUCCESS
        }
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "kprov", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::Cli;

    /// The example under "Example:" in a command's help.
    fn example(cmd: &mut clap::Command) -> String {
        let help = cmd.render_long_help().to_string();
        let after = help.split_once("Example:\n").unwrap_or_else(|| panic!("no example in the help of {}:\n{help}", cmd.get_name())).1;
        after.lines().next().unwrap().trim().to_string()
    }

    /// `kprov --help` and every subcommand's help show one example, and the example is a
    /// command line kprov accepts (parsed, not run).
    #[test]
    fn every_help_shows_an_example_that_parses() {
        let mut top = Cli::command();
        assert!(example(&mut top).starts_with("kprov validate "));
        // clap's own `help` subcommand aside.
        let names: Vec<String> = top.get_subcommands().map(|c| c.get_name().to_string()).filter(|n| n != "help").collect();
        assert!(names.len() >= 12, "{names:?}");
        for name in names {
            let mut sub = top.find_subcommand_mut(&name).unwrap().clone();
            let line = example(&mut sub);
            // Shell redirections are not kprov's arguments.
            let line = line.split(" > ").next().unwrap();
            let words = shlex::split(line).unwrap();
            assert_eq!(&words[..2], ["kprov", name.as_str()], "{name}: {line}");
            if let Err(e) = Cli::try_parse_from(&words) {
                panic!("the example of `kprov {name}` does not parse: {line}\n{e}");
            }
        }
    }
}
