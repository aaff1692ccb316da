//! `kprov ssh INVENTORY HOST [-- COMMAND...]`: an interactive shell (or one command) on a host
//! with the inventory's SSH settings, by running the system `ssh` client with the equivalent
//! options. kprov replaces itself with `ssh` (exec), so the terminal, signals and the exit
//! status are ssh's own.
//!
//! The equivalent of the inventory's settings: user, port, every identity file (and no agent
//! when `ssh.agent: false`), the inventory's known_hosts file only, StrictHostKeyChecking `yes`
//! (policy strict) or `accept-new`, the connect timeout, and for a bastion a ProxyCommand running
//! `ssh -W` with the bastion's own user, port, key and the same host-key checking: OpenSSH's
//! ProxyJump would apply the command-line options to the destination only, not the jump host.
//! `~/.ssh/config` is read only when `ssh.use_ssh_config` is on (kprov has already merged it).
//!
//! COMMAND runs as the SSH user, without sudo. Its words reach the host as given: each is
//! quoted, so `kprov ssh inv h1 -- sh -c 'a | b'` is how to run a pipeline.
//!
//! Exit codes: ssh's (the remote command's status, 255 when ssh itself failed); 1 when kprov
//! could not start it (invalid inventory, unknown host, no ssh client).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::Globals;
use super::plan::load_inventory;
use crate::ops::session as connect;
use crate::transport::{ConnectOptions, HostKeyPolicy};

#[derive(Debug, Args)]
pub struct SshArgs {
    /// The inventory file.
    pub inventory: PathBuf,
    /// The host's name in the inventory.
    pub host: String,
    /// A command to run instead of an interactive shell (after `--`).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

pub fn run(args: &SshArgs, g: &Globals) -> ExitCode {
    let Some(inv) = load_inventory(&args.inventory, g) else { return ExitCode::from(1) };
    let Some(host) = inv.hosts.iter().find(|h| h.name == args.host) else {
        let hint = crate::inventory::did_you_mean(&args.host, inv.hosts.iter().map(|h| h.name.as_str()))
            .map(|s| format!("did you mean {s}?"))
            .unwrap_or_else(|| format!("the hosts are: {}", inv.hosts.iter().map(|h| h.name.as_str()).collect::<Vec<_>>().join(", ")));
        eprintln!("{:?}", miette::miette!(code = "kprov::ssh::unknown_host", help = hint, "{} is not a host of {}", args.host, inv.name));
        return ExitCode::from(1);
    };
    // ssh runs nothing through sudo: the sudo password's variable need not be set.
    let mut host = host.clone();
    host.ssh.become_password_env = None;
    let host = &host;
    let options = match connect::connect_options(host) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{:?}", miette::miette!(code = "kprov::ssh::settings", "{}: {e}", host.name));
            return ExitCode::from(1);
        }
    };
    let argv = match ssh_argv(&options, &args.command, host.ssh.use_ssh_config) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{:?}", miette::miette!(code = "kprov::ssh::quote", "{}: {e}", host.name));
            return ExitCode::from(1);
        }
    };
    if g.verbose > 0 {
        let shown: Vec<String> = argv.iter().map(|a| crate::shell::quote(a).map(|q| q.into_owned()).unwrap_or_else(|_| a.clone())).collect();
        eprintln!("{}", shown.join(" "));
    }
    use std::os::unix::process::CommandExt;
    let err = std::process::Command::new(&argv[0]).args(argv[1..].iter().map(OsString::from)).exec();
    eprintln!(
        "{:?}",
        miette::miette!(
            code = "kprov::ssh::client",
            help = "kprov ssh runs the system OpenSSH client; install it (apt install openssh-client)",
            "{}: cannot run ssh: {err}",
            host.name
        )
    );
    ExitCode::from(1)
}

/// The `ssh` command line equivalent to `o`. `command` (possibly empty) is quoted word by word.
pub fn ssh_argv(o: &ConnectOptions, command: &[String], use_ssh_config: bool) -> Result<Vec<String>, crate::shell::QuoteError> {
    let mut a: Vec<String> = vec!["ssh".into()];
    a.extend(common_options(o, use_ssh_config));
    if let Some(j) = &o.jump {
        // The jump host's own options; ssh runs ProxyCommand through the user's shell, so every
        // word is quoted.
        let mut proxy: Vec<String> = vec!["ssh".into()];
        proxy.extend(common_options(j, use_ssh_config));
        proxy.extend(["-W".into(), "%h:%p".into(), "--".into(), j.address.clone()]);
        let words: Vec<&str> = proxy.iter().map(String::as_str).collect();
        // %h and %p are expanded by ssh after quoting; the quoting keeps them literal words.
        a.extend(["-o".into(), format!("ProxyCommand={}", crate::shell::join(words)?)]);
    }
    if !command.is_empty() {
        // No terminal for a command, as `ssh host cmd` does: its output is captured cleanly.
        a.push("-T".into());
    }
    a.push("--".into());
    a.push(o.address.clone());
    if !command.is_empty() {
        a.push(crate::shell::join(command.iter().map(String::as_str))?);
    }
    Ok(a)
}

fn common_options(o: &ConnectOptions, use_ssh_config: bool) -> Vec<String> {
    let mut a: Vec<String> = vec![];
    if !use_ssh_config {
        a.extend(["-F".into(), "none".into()]);
    }
    a.extend(["-l".into(), o.user.clone(), "-p".into(), o.port.to_string()]);
    for f in &o.identity_files {
        a.extend(["-i".into(), f.display().to_string()]);
    }
    if !o.use_agent {
        a.extend(["-o".into(), "IdentityAgent=none".into(), "-o".into(), "IdentitiesOnly=yes".into()]);
    }
    if let Some(k) = o.known_hosts.first() {
        a.extend(["-o".into(), format!("UserKnownHostsFile={}", k.display())]);
        a.extend(["-o".into(), "GlobalKnownHostsFile=/dev/null".into()]);
    }
    let strict = match o.host_key_policy {
        HostKeyPolicy::Strict => "yes",
        HostKeyPolicy::AcceptNew => "accept-new",
    };
    a.extend(["-o".into(), format!("StrictHostKeyChecking={strict}")]);
    a.extend(["-o".into(), format!("ConnectTimeout={}", o.connect_timeout.as_secs_f64().ceil().max(1.0) as u64)]);
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inventory_settings_become_ssh_options() {
        let mut o = ConnectOptions::new("h1", "10.0.0.5", "pi");
        o.port = 2222;
        o.identity_files = vec![PathBuf::from("/keys/id ed25519")];
        o.use_agent = false;
        o.known_hosts = vec![PathBuf::from("/kh/known_hosts")];
        o.host_key_policy = HostKeyPolicy::AcceptNew;
        let a = ssh_argv(&o, &["echo".into(), "a b; rm -rf /".into()], false).unwrap();
        let s = a.join(" ");
        assert!(s.starts_with("ssh -F none -l pi -p 2222 -i /keys/id ed25519 -o IdentityAgent=none"), "{s}");
        assert!(s.contains("-o UserKnownHostsFile=/kh/known_hosts"), "{s}");
        assert!(s.contains("-o StrictHostKeyChecking=accept-new"), "{s}");
        assert_eq!(a[a.len() - 3..], ["--".to_string(), "10.0.0.5".into(), "echo 'a b; rm -rf /'".into()]);
    }

    #[test]
    fn a_bastion_becomes_a_quoted_proxy_command_with_its_own_settings() {
        let mut o = ConnectOptions::new("h1", "10.0.0.5", "pi");
        let mut j = ConnectOptions::new("bastion", "bastion.example", "jump user");
        j.identity_files = vec![PathBuf::from("/keys/jump")];
        o.jump = Some(Box::new(j));
        let a = ssh_argv(&o, &[], true).unwrap();
        let proxy = a.iter().find(|w| w.starts_with("ProxyCommand=")).unwrap();
        assert!(proxy.contains("-l 'jump user'") && proxy.contains("-i /keys/jump") && proxy.contains("-W '%h:%p' -- bastion.example"), "{proxy}");
        assert!(!a.contains(&"-T".to_string()), "an interactive shell gets a terminal");
        assert!(!a.contains(&"-F".to_string()), "~/.ssh/config allowed");
    }
}
