//! The SSH transport over russh.
//!
//! - One connection per host ([`Session`]), reused for every command; channels multiplexed
//!   under a per-host limit below OpenSSH's MaxSessions (10); every channel closed explicitly.
//! - TCP_NODELAY, keepalives, a connect timeout, and a timeout on every command, so a paused or
//!   cut-off host fails in bounded time instead of hanging the run.
//! - Auth with ssh-agent keys and key files (passphrase from `KPROV_SSH_PASSPHRASE` or a prompt
//!   on a terminal). Host keys are verified against known_hosts ([`known_hosts`]) with OpenSSH's
//!   rules; `accept-new` records unknown keys; a changed key is always an error naming the file
//!   and line.
//! - Jump hosts through `direct-tcpip`, both hops verified. `~/.ssh/config` is read for
//!   HostName, User, Port, IdentityFile and ProxyJump ([`ssh_config`]).
//! - Commands run through sudo when the user is not root (`become`). The password goes on
//!   stdin, never in argv, and only in answer to sudo's own prompt: `sudo -S -p NONCE` prints
//!   a fresh nonce when it asks, and the root shell prints another one when sudo has started
//!   it, so a sudo that does not ask (NOPASSWD, a cached timestamp) never gets the password,
//!   a wrong password is answered once, and a sudo that fails is reported in its own words.
//!   Uploads are atomic (temp file, then rename).

mod error;
pub mod known_hosts;
mod session;
pub mod ssh;
pub mod ssh_config;

pub use error::TransportError;
pub use session::{ExecOptions, ExecOutput, Session, UploadOptions, exit_text};

use std::path::PathBuf;
use std::time::Duration;

use crate::secret::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// Unknown and changed keys are refused.
    Strict,
    /// Unknown keys are recorded in the first known_hosts file; changed keys are refused.
    AcceptNew,
}

#[derive(Debug, Clone)]
pub struct Become {
    /// The user to become (root).
    pub user: String,
    pub password: Option<Secret>,
}

/// Everything needed to reach one host. Built from the inventory by the CLI.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// The host's name, for messages.
    pub host: String,
    pub address: String,
    pub port: u16,
    pub user: String,
    pub identity_files: Vec<PathBuf>,
    pub passphrase: Option<Secret>,
    pub use_agent: bool,
    pub known_hosts: Vec<PathBuf>,
    pub host_key_policy: HostKeyPolicy,
    pub connect_timeout: Duration,
    /// Time allowed for one command before it counts as hung.
    pub command_timeout: Duration,
    pub keepalive: Duration,
    /// Channels open at once on this connection (OpenSSH allows 10 by default).
    pub max_channels: usize,
    pub jump: Option<Box<ConnectOptions>>,
    pub become_: Option<Become>,
}

impl ConnectOptions {
    pub fn new(host: impl Into<String>, address: impl Into<String>, user: impl Into<String>) -> Self {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
        ConnectOptions {
            host: host.into(),
            address: address.into(),
            port: 22,
            user: user.into(),
            identity_files: vec![],
            passphrase: None,
            use_agent: true,
            known_hosts: vec![home.join(".ssh/known_hosts")],
            host_key_policy: HostKeyPolicy::Strict,
            connect_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(1800),
            keepalive: Duration::from_secs(5),
            max_channels: 8,
            jump: None,
            become_: None,
        }
    }
}
