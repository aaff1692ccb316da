//! Transport errors. Each names the host and the stage that failed (connect, auth, sudo,
//! command), so a failed run says which machine, how far it got, and why.

use std::path::PathBuf;

#[derive(Debug, Clone, thiserror::Error, miette::Diagnostic)]
pub enum TransportError {
    #[error("{host} (stage: connect): cannot connect to {addr}: {message}")]
    #[diagnostic(code(kprov::ssh::unreachable), help("check that the host is up, the address and port are right, and sshd is running"))]
    Unreachable { host: String, addr: String, message: String },

    #[error("{host} (stage: {stage}): timed out {during} after {secs:.1}s")]
    #[diagnostic(code(kprov::ssh::timeout), help("the host stopped answering; check it is not paused, overloaded or cut off"))]
    Timeout { host: String, stage: &'static str, during: String, secs: f64 },

    #[error("{host} (stage: auth): authentication failed for user {user} (tried: {})", tried.join(", "))]
    #[diagnostic(
        code(kprov::ssh::auth),
        help("check ssh.user and ssh.private_key (or load the key into ssh-agent), and the user's authorized_keys on the host")
    )]
    AuthFailed { host: String, user: String, tried: Vec<String> },

    #[error("{host} (stage: connect): HOST KEY CHANGED: the host's {algorithm} key {fingerprint} does not match the one recorded in {}:{line}", file.display())]
    #[diagnostic(
        code(kprov::ssh::host_key_changed),
        help(
            "someone may be intercepting the connection, or the host was reinstalled; if you know it was reinstalled, remove line {line} of that file (ssh-keygen -R HOST) and connect again"
        )
    )]
    HostKeyMismatch { host: String, algorithm: String, fingerprint: String, file: PathBuf, line: usize },

    #[error("{host} (stage: connect): unknown host key {fingerprint}")]
    #[diagnostic(
        code(kprov::ssh::host_key_unknown),
        help("verify the fingerprint, then add the key: ssh-keyscan -H {addr} >> ~/.ssh/known_hosts, or set ssh.host_key_policy: accept-new")
    )]
    UnknownHostKey { host: String, addr: String, fingerprint: String },

    #[error("{host} (stage: connect): the host key {fingerprint} is revoked in {}:{line}", file.display())]
    #[diagnostic(code(kprov::ssh::host_key_revoked))]
    RevokedHostKey { host: String, fingerprint: String, file: PathBuf, line: usize },

    /// sudo did not start the command: it refused, the password was wrong or missing, or it
    /// cannot run at all (not setuid, a nosuid mount). `message` is the tail of what sudo
    /// printed, with the prompt taken out and every secret redacted.
    #[error("{host} (stage: sudo): sudo did not run the command as {user} ({status}); it said:\n{message}")]
    #[diagnostic(
        code(kprov::ssh::sudo),
        help(
            "the SSH user needs sudo rights; if sudo asks for a password, set ssh.become_password_env to the name of an environment variable holding it; try `sudo -v` by hand on the host"
        )
    )]
    BecomeFailed { host: String, user: String, status: String, message: String },

    #[error("{host} (stage: auth): cannot read private key {}: {message}", path.display())]
    #[diagnostic(code(kprov::ssh::key))]
    Key { host: String, path: PathBuf, message: String },

    #[error("{host} (stage: {stage}): {message}")]
    #[diagnostic(code(kprov::ssh::protocol))]
    Protocol { host: String, stage: &'static str, message: String },

    /// The inventory names an environment variable for the sudo password that is not set.
    #[error("{host} (stage: settings): ssh.become_password_env names {var}, which is not set in the environment")]
    #[diagnostic(
        code(kprov::ssh::become_password_env),
        help("export {var} with the sudo password before running kprov, or drop ssh.become_password_env when sudo needs no password")
    )]
    BecomePasswordUnset { host: String, var: String },
}

impl TransportError {
    pub fn host(&self) -> &str {
        match self {
            TransportError::Unreachable { host, .. }
            | TransportError::Timeout { host, .. }
            | TransportError::AuthFailed { host, .. }
            | TransportError::HostKeyMismatch { host, .. }
            | TransportError::UnknownHostKey { host, .. }
            | TransportError::RevokedHostKey { host, .. }
            | TransportError::BecomeFailed { host, .. }
            | TransportError::Key { host, .. }
            | TransportError::Protocol { host, .. }
            | TransportError::BecomePasswordUnset { host, .. } => host,
        }
    }

    /// Which stage failed: `settings`, `connect`, `auth`, `sudo` or `command`.
    pub fn stage(&self) -> &'static str {
        match self {
            TransportError::Unreachable { .. }
            | TransportError::HostKeyMismatch { .. }
            | TransportError::UnknownHostKey { .. }
            | TransportError::RevokedHostKey { .. } => "connect",
            TransportError::AuthFailed { .. } | TransportError::Key { .. } => "auth",
            TransportError::BecomeFailed { .. } => "sudo",
            TransportError::BecomePasswordUnset { .. } => "settings",
            TransportError::Timeout { stage, .. } | TransportError::Protocol { stage, .. } => stage,
        }
    }

    /// Connection set-up failures that a retry may cure (the host is booting, a packet was
    /// lost). Never host-key or auth errors.
    pub fn is_transient(&self) -> bool {
        matches!(self, TransportError::Unreachable { .. } | TransportError::Timeout { .. })
    }
}
