//! One SSH connection to one host, shared by every command kprov runs there.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::ChannelMsg;
use russh::client::{self, Handle};
use russh::keys::PublicKeyOrCertificate;
use russh::keys::{PrivateKeyWithHashAlg, PublicKey};
use tokio::sync::Semaphore;

use super::error::TransportError;
use super::known_hosts::{self, Verdict};
use super::{ConnectOptions, HostKeyPolicy};
use crate::shell::quote;

/// Options for one command.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// Run as the become user (root) through sudo, unless the SSH user already is.
    pub become_: bool,
    /// Bytes for the command's standard input.
    pub stdin: Option<Vec<u8>>,
    /// Overrides the connection's command timeout.
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_status: u32,
    /// Set when the command was killed by a signal.
    pub exit_signal: Option<String>,
}

impl ExecOutput {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    pub fn success(&self) -> bool {
        self.exit_status == 0 && self.exit_signal.is_none()
    }
}

#[derive(Debug, Clone)]
pub struct UploadOptions {
    pub mode: u32,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub become_: bool,
}

/// Which output stream a chunk came from, for streaming.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Host-key checking during the handshake. The verdict is kept so that a refused key becomes
/// a precise error instead of russh's generic one.
struct Checker {
    host: String,
    addr: String,
    names: Vec<String>,
    files: Vec<std::path::PathBuf>,
    policy: HostKeyPolicy,
    refusal: Arc<Mutex<Option<TransportError>>>,
}

impl Checker {
    fn refuse(&self, e: TransportError) -> Result<bool, russh::Error> {
        *self.refusal.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
        Ok(false)
    }
}

impl client::Handler for Checker {
    type Error = russh::Error;

    async fn check_server_key(&mut self, server_key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        let key: &PublicKey = match server_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key,
            PublicKeyOrCertificate::Certificate(_) => {
                return self.refuse(TransportError::Protocol {
                    host: self.host.clone(),
                    message: "the server offered a host certificate; kprov verifies plain host keys only".into(),
                });
            }
        };
        let fingerprint = known_hosts::fingerprint(key);
        match known_hosts::check(&self.files, &self.names, key) {
            Verdict::Known { .. } => Ok(true),
            Verdict::Revoked { file, line } => self.refuse(TransportError::RevokedHostKey { host: self.host.clone(), fingerprint, file, line }),
            Verdict::Mismatch { file, line } => self.refuse(TransportError::HostKeyMismatch {
                host: self.host.clone(),
                algorithm: key.algorithm().to_string(),
                fingerprint,
                file,
                line,
            }),
            Verdict::Unknown => match (self.policy, self.files.first()) {
                (HostKeyPolicy::AcceptNew, Some(file)) => match known_hosts::append(file, &self.names[0], key) {
                    Ok(line) => {
                        tracing::warn!("{}: recorded new host key {fingerprint} in {}:{line}", self.host, file.display());
                        Ok(true)
                    }
                    Err(e) => self.refuse(TransportError::Protocol {
                        host: self.host.clone(),
                        message: format!("cannot record the host key in {}: {e}", file.display()),
                    }),
                },
                _ => self.refuse(TransportError::UnknownHostKey { host: self.host.clone(), addr: self.addr.clone(), fingerprint }),
            },
        }
    }
}

struct Inner {
    opts: ConnectOptions,
    handle: Handle<Checker>,
    channels: Semaphore,
    /// The bastion's session, kept alive as long as this one.
    _jump: Option<Session>,
}

/// A connected, authenticated SSH session. Cheap to clone; safe to use from many tasks.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Session({}@{}:{})", self.inner.opts.user, self.inner.opts.address, self.inner.opts.port)
    }
}

impl Session {
    pub fn options(&self) -> &ConnectOptions {
        &self.inner.opts
    }

    /// Connect, verify the host key, authenticate.
    pub async fn connect(opts: &ConnectOptions) -> Result<Session, TransportError> {
        Box::pin(Self::connect_inner(opts)).await
    }

    async fn connect_inner(opts: &ConnectOptions) -> Result<Session, TransportError> {
        let started = Instant::now();
        let refusal = Arc::new(Mutex::new(None));
        let checker = Checker {
            host: opts.host.clone(),
            addr: opts.address.clone(),
            names: known_hosts::lookup_names(&[&opts.address], opts.port),
            files: opts.known_hosts.clone(),
            policy: opts.host_key_policy,
            refusal: refusal.clone(),
        };
        let config = Arc::new(client::Config {
            nodelay: true,
            keepalive_interval: Some(opts.keepalive),
            keepalive_max: 3,
            inactivity_timeout: None,
            ..Default::default()
        });
        let addr = format!("{}:{}", opts.address, opts.port);
        let timed_out =
            |during: &str| TransportError::Timeout { host: opts.host.clone(), during: during.into(), secs: started.elapsed().as_secs_f64() };
        let refused = |e: russh::Error| {
            refusal.lock().unwrap_or_else(|p| p.into_inner()).take().unwrap_or_else(|| TransportError::Unreachable {
                host: opts.host.clone(),
                addr: addr.clone(),
                message: e.to_string(),
            })
        };

        let (mut handle, jump) = match &opts.jump {
            Some(j) => {
                let bastion = Session::connect(j).await?;
                let channel = tokio::time::timeout(
                    opts.connect_timeout,
                    bastion.inner.handle.channel_open_direct_tcpip(opts.address.clone(), opts.port as u32, "127.0.0.1", 0),
                )
                .await
                .map_err(|_| timed_out("opening a tunnel through the jump host"))?
                .map_err(|e| TransportError::Unreachable {
                    host: opts.host.clone(),
                    addr: format!("{addr} via {}", j.address),
                    message: e.to_string(),
                })?;
                let handle = tokio::time::timeout(opts.connect_timeout, client::connect_stream(config, channel.into_stream(), checker))
                    .await
                    .map_err(|_| timed_out("connecting through the jump host"))?
                    .map_err(refused)?;
                (handle, Some(bastion))
            }
            None => {
                let handle = tokio::time::timeout(opts.connect_timeout, client::connect(config, (opts.address.as_str(), opts.port), checker))
                    .await
                    .map_err(|_| timed_out("connecting"))?
                    .map_err(refused)?;
                (handle, None)
            }
        };

        tokio::time::timeout(opts.connect_timeout.max(Duration::from_secs(5)), authenticate(&mut handle, opts))
            .await
            .map_err(|_| timed_out("authenticating"))??;
        Ok(Session { inner: Arc::new(Inner { channels: Semaphore::new(opts.max_channels.clamp(1, 10)), opts: opts.clone(), handle, _jump: jump }) })
    }

    /// Run `command` and collect its output.
    pub async fn exec(&self, command: &str, opts: ExecOptions) -> Result<ExecOutput, TransportError> {
        self.exec_streaming(command, opts, |_, _| {}).await
    }

    /// Run `command`, handing each chunk of output to `on_output` as it arrives.
    pub async fn exec_streaming(
        &self,
        command: &str,
        opts: ExecOptions,
        mut on_output: impl FnMut(Stream, &[u8]) + Send,
    ) -> Result<ExecOutput, TransportError> {
        let o = &self.inner.opts;
        let (wrapped, stdin, becoming) = self.wrap(command, &opts)?;
        let limit = opts.timeout.unwrap_or(o.command_timeout);
        let started = Instant::now();
        let _permit =
            self.inner.channels.acquire().await.map_err(|_| TransportError::Protocol { host: o.host.clone(), message: "session closed".into() })?;
        let run = async {
            let mut channel = self.open_channel().await?;
            let result = async {
                channel.exec(true, wrapped.as_bytes()).await.map_err(|e| self.lost(e))?;
                if let Some(bytes) = stdin {
                    channel.data(&bytes[..]).await.map_err(|e| self.lost(e))?;
                }
                channel.eof().await.map_err(|e| self.lost(e))?;
                let mut out = ExecOutput { stdout: vec![], stderr: vec![], exit_status: u32::MAX, exit_signal: None };
                let mut got_status = false;
                while let Some(msg) = channel.wait().await {
                    match msg {
                        ChannelMsg::Data { data } => {
                            on_output(Stream::Stdout, &data);
                            out.stdout.extend_from_slice(&data);
                        }
                        ChannelMsg::ExtendedData { data, ext: 1 } => {
                            on_output(Stream::Stderr, &data);
                            out.stderr.extend_from_slice(&data);
                        }
                        ChannelMsg::ExitStatus { exit_status } => {
                            out.exit_status = exit_status;
                            got_status = true;
                        }
                        ChannelMsg::ExitSignal { signal_name, .. } => {
                            out.exit_signal = Some(format!("{signal_name:?}"));
                            got_status = true;
                        }
                        ChannelMsg::Close => break,
                        _ => {}
                    }
                }
                if !got_status {
                    return Err(TransportError::Protocol {
                        host: o.host.clone(),
                        message: "the connection was lost before the command finished".into(),
                    });
                }
                Ok(out)
            }
            .await;
            // A dropped channel is not closed: close it so the server frees its session slot.
            let _ = channel.close().await;
            result
        };
        let out = tokio::time::timeout(limit, run).await.map_err(|_| TransportError::Timeout {
            host: o.host.clone(),
            during: "waiting for a command".into(),
            secs: started.elapsed().as_secs_f64(),
        })??;
        if becoming {
            check_become(&o.host, &out, o.become_.as_ref().map(|b| b.user.as_str()).unwrap_or("root"))?;
        }
        Ok(out)
    }

    /// The command line and stdin to send, and whether sudo wraps it.
    fn wrap(&self, command: &str, opts: &ExecOptions) -> Result<(String, Option<Vec<u8>>, bool), TransportError> {
        let o = &self.inner.opts;
        let become_ = match (&o.become_, opts.become_) {
            (Some(b), true) if !(o.user == "root" && b.user == "root") => b,
            _ => return Ok((command.to_string(), opts.stdin.clone(), false)),
        };
        let q = |s: &str| quote(s).map(|c| c.into_owned()).map_err(|e| TransportError::Protocol { host: o.host.clone(), message: e.to_string() });
        let user = q(&become_.user)?;
        let inner = q(command)?;
        Ok(match &become_.password {
            // The password goes first on stdin, never in argv; -p '' keeps the prompt out of
            // the output.
            Some(pw) => {
                let mut stdin = pw.expose().as_bytes().to_vec();
                stdin.push(b'\n');
                stdin.extend_from_slice(opts.stdin.as_deref().unwrap_or_default());
                (format!("sudo -S -p '' -H -u {user} -- sh -c {inner}"), Some(stdin), true)
            }
            None => (format!("sudo -n -H -u {user} -- sh -c {inner}"), opts.stdin.clone(), true),
        })
    }

    /// Open a session channel. sshd frees a closed channel's slot asynchronously, so under a
    /// full load an open can be refused for a moment; retrying is safe because nothing ran yet.
    async fn open_channel(&self) -> Result<russh::Channel<client::Msg>, TransportError> {
        let mut attempt = 0u64;
        loop {
            match self.inner.handle.channel_open_session().await {
                Ok(c) => return Ok(c),
                Err(russh::Error::ChannelOpenFailure(_)) if attempt < 8 => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(25 * attempt)).await;
                }
                Err(e) => return Err(self.lost(e)),
            }
        }
    }

    fn lost(&self, e: russh::Error) -> TransportError {
        TransportError::Protocol { host: self.inner.opts.host.clone(), message: format!("connection lost: {e}") }
    }

    /// Write `content` to `path` atomically: a temp file in the same directory, mode and owner
    /// set, then renamed over the target. Nothing is left behind on failure.
    pub async fn upload(&self, path: &str, content: &[u8], opts: UploadOptions) -> Result<(), TransportError> {
        let host = &self.inner.opts.host;
        let q = |s: &str| quote(s).map(|c| c.into_owned()).map_err(|e| TransportError::Protocol { host: host.clone(), message: e.to_string() });
        let dir = match path.rfind('/') {
            Some(0) => "/".to_string(),
            Some(i) => path[..i].to_string(),
            None => ".".to_string(),
        };
        let mut script =
            format!("set -e\ntmp=$(mktemp {}/.kprov.XXXXXX)\ntrap 'rm -f \"$tmp\"' EXIT\ncat > \"$tmp\"\nchmod {:o} \"$tmp\"\n", q(&dir)?, opts.mode);
        if opts.owner.is_some() || opts.group.is_some() {
            let og = format!("{}:{}", opts.owner.as_deref().unwrap_or(""), opts.group.as_deref().unwrap_or(""));
            script.push_str(&format!("chown {} \"$tmp\"\n", q(og.trim_end_matches(':'))?));
        }
        script.push_str(&format!("mv -f \"$tmp\" {}\ntrap - EXIT\n", q(path)?));
        let out =
            self.exec(&format!("sh -c {}", q(&script)?), ExecOptions { become_: opts.become_, stdin: Some(content.to_vec()), timeout: None }).await?;
        if !out.success() {
            return Err(TransportError::Protocol { host: host.clone(), message: format!("upload of {path} failed: {}", out.stderr_text().trim()) });
        }
        Ok(())
    }

    /// Close the connection politely.
    pub async fn close(&self) {
        let _ = self.inner.handle.disconnect(russh::Disconnect::ByApplication, "", "en").await;
    }
}

async fn authenticate(handle: &mut Handle<Checker>, o: &ConnectOptions) -> Result<(), TransportError> {
    let mut tried = vec![];
    let auth_err = |e: russh::Error| TransportError::Protocol { host: o.host.clone(), message: format!("authentication: {e}") };
    let hash = handle.best_supported_rsa_hash().await.map_err(auth_err)?.flatten();
    if o.use_agent && std::env::var_os("SSH_AUTH_SOCK").is_some() {
        if let Ok(mut agent) = russh::keys::agent::client::AgentClient::connect_env().await {
            let identities = agent.request_identities().await.unwrap_or_default();
            for id in identities {
                let russh::keys::agent::AgentIdentity::PublicKey { key, comment } = id else { continue };
                tried.push(format!("agent key {}", if comment.is_empty() { known_hosts::fingerprint(&key) } else { comment }));
                if let Ok(r) = handle.authenticate_publickey_with(o.user.clone(), key, hash, &mut agent).await {
                    if r.success() {
                        return Ok(());
                    }
                }
            }
        }
    }
    for path in &o.identity_files {
        let key = match load_key(o, path) {
            Ok(k) => k,
            Err(e) => return Err(e),
        };
        tried.push(format!("key {}", path.display()));
        let r = handle.authenticate_publickey(o.user.clone(), PrivateKeyWithHashAlg::new(Arc::new(key), hash)).await.map_err(auth_err)?;
        if r.success() {
            return Ok(());
        }
    }
    if tried.is_empty() {
        tried.push("no keys: set ssh.private_key or start ssh-agent".into());
    }
    Err(TransportError::AuthFailed { host: o.host.clone(), user: o.user.clone(), tried })
}

fn load_key(o: &ConnectOptions, path: &std::path::Path) -> Result<russh::keys::PrivateKey, TransportError> {
    let key_err = |message: String| TransportError::Key { host: o.host.clone(), path: path.to_path_buf(), message };
    match russh::keys::load_secret_key(path, None) {
        Ok(k) => Ok(k),
        Err(russh::keys::Error::KeyIsEncrypted) => {
            let passphrase = match &o.passphrase {
                Some(p) => p.clone(),
                None => match std::env::var("KPROV_SSH_PASSPHRASE") {
                    Ok(p) => crate::secret::Secret::new(p),
                    Err(_) => prompt_passphrase(path)
                        .ok_or_else(|| key_err("the key is encrypted; set KPROV_SSH_PASSPHRASE or run kprov on a terminal to be asked".into()))?,
                },
            };
            russh::keys::load_secret_key(path, Some(passphrase.expose())).map_err(|e| key_err(format!("cannot decrypt: {e}")))
        }
        Err(e) => Err(key_err(e.to_string())),
    }
}

/// Ask on the terminal, once per key file per run.
fn prompt_passphrase(path: &std::path::Path) -> Option<crate::secret::Secret> {
    use std::collections::HashMap;
    use std::io::IsTerminal;
    static CACHE: Mutex<Option<HashMap<std::path::PathBuf, crate::secret::Secret>>> = Mutex::new(None);
    if !std::io::stdin().is_terminal() {
        return None;
    }
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    let map = cache.get_or_insert_with(HashMap::new);
    if let Some(s) = map.get(path) {
        return Some(s.clone());
    }
    let p = rpassword::prompt_password(format!("Passphrase for {}: ", path.display())).ok()?;
    let s = crate::secret::Secret::new(p);
    map.insert(path.to_path_buf(), s.clone());
    Some(s)
}

/// sudo's own failures (wrong or missing password, no rights) are exit status 1 with a
/// `sudo:` message; the password never appears in what we report.
fn check_become(host: &str, out: &ExecOutput, user: &str) -> Result<(), TransportError> {
    if out.exit_status != 1 {
        return Ok(());
    }
    let err = out.stderr_text();
    let markers = [
        "a password is required",
        "incorrect password",
        "Sorry, try again",
        "is not in the sudoers",
        "a terminal is required",
        "no tty present",
        "may not run sudo",
    ];
    if let Some(line) = err.lines().find(|l| markers.iter().any(|m| l.contains(m))) {
        return Err(TransportError::BecomeFailed { host: host.to_string(), user: user.to_string(), message: line.trim().to_string() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sudo_failures_are_recognised_and_say_no_password() {
        let out = ExecOutput {
            stdout: vec![],
            stderr: b"Sorry, try again.\nsudo: 3 incorrect password attempts\n".to_vec(),
            exit_status: 1,
            exit_signal: None,
        };
        let e = check_become("h", &out, "root").unwrap_err();
        assert!(matches!(e, TransportError::BecomeFailed { .. }));
        let ok = ExecOutput { stdout: vec![], stderr: b"grep: nothing\n".to_vec(), exit_status: 1, exit_signal: None };
        assert!(check_become("h", &ok, "root").is_ok());
    }
}
