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
use crate::secret::Secret;
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
                    stage: "connect",
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
                        stage: "connect",
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
        // Whatever prints them later (a sudo message, a failed step), they are redacted.
        for secret in opts.become_.iter().filter_map(|b| b.password.as_ref()).chain(opts.passphrase.as_ref()) {
            crate::secret::remember(secret);
        }
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
        let timed_out = |during: &str| TransportError::Timeout {
            host: opts.host.clone(),
            stage: if during.starts_with("authenticating") { "auth" } else { "connect" },
            during: during.into(),
            secs: started.elapsed().as_secs_f64(),
        };
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
    ///
    /// Through become, sudo's own stage comes first: nothing from before the root shell's
    /// start marker reaches `on_output` or the result (sudo's prompt and lecture stay out), the
    /// password is written only in answer to sudo's own prompt, and a sudo that does not start
    /// the command is a [`TransportError::BecomeFailed`] with sudo's own words.
    pub async fn exec_streaming(
        &self,
        command: &str,
        opts: ExecOptions,
        mut on_output: impl FnMut(Stream, &[u8]) + Send,
    ) -> Result<ExecOutput, TransportError> {
        let o = &self.inner.opts;
        let (wrapped, stdin, become_) = self.wrap(command, &opts)?;
        let limit = opts.timeout.unwrap_or(o.command_timeout);
        let started = Instant::now();
        let _permit = self.inner.channels.acquire().await.map_err(|_| self.closed())?;
        let run = async {
            let mut channel = self.open_channel().await?;
            let result = async {
                channel.exec(true, wrapped.as_bytes()).await.map_err(|e| self.lost(e))?;
                let mut gate = become_.map(Gate::new);
                let mut stdin = stdin;
                // Without a password sudo (-n) never reads stdin, so the input goes at once and
                // costs no round trip. With one, nothing is written until sudo has asked with
                // kprov's prompt or started the command: before that, any byte could be read as
                // a password, or the password run as a command.
                if gate.as_ref().is_none_or(|g| g.plan.password.is_none()) {
                    self.send_input(&channel, stdin.take()).await?;
                }
                let mut out = ExecOutput { stdout: vec![], stderr: vec![], exit_status: u32::MAX, exit_signal: None };
                let mut got_status = false;
                loop {
                    let waiting_for_sudo = gate.as_ref().is_some_and(|g| !g.started && g.plan.password.is_some());
                    let msg = if waiting_for_sudo {
                        match tokio::time::timeout_at(started_at(started, SUDO_STAGE_TIMEOUT), channel.wait()).await {
                            Ok(m) => m,
                            Err(_) => {
                                let Some(g) = gate.as_ref() else { break };
                                return Err(self.become_failed(g, "no answer", &format!(
                                    "sudo neither asked for the password with kprov's prompt nor started the command within {}s (a PAM module with its own prompt, or a slow name lookup?)",
                                    SUDO_STAGE_TIMEOUT.as_secs()
                                )));
                            }
                        }
                    } else {
                        channel.wait().await
                    };
                    let Some(msg) = msg else { break };
                    match msg {
                        ChannelMsg::Data { data } => {
                            on_output(Stream::Stdout, &data);
                            out.stdout.extend_from_slice(&data);
                        }
                        ChannelMsg::ExtendedData { data, ext: 1 } => {
                            let data = match gate.as_mut().filter(|g| !g.started) {
                                None => data.to_vec(),
                                Some(g) => {
                                    let mut rest = vec![];
                                    for event in g.feed(&data) {
                                        match event {
                                            GateEvent::Answer => {
                                                // Only a plan with a password has a prompt to answer.
                                                if let Some(pw) = g.plan.password.as_ref() {
                                                    let mut line = pw.expose().as_bytes().to_vec();
                                                    line.push(b'\n');
                                                    channel.data(&line[..]).await.map_err(|e| self.lost(e))?;
                                                }
                                            }
                                            // sudo asks again: the password was wrong. Never a
                                            // second try: end its input, so it fails in its own words.
                                            GateEvent::GiveUp => channel.eof().await.map_err(|e| self.lost(e))?,
                                            GateEvent::Started { rest: r } => {
                                                rest = r;
                                                if g.plan.password.is_some() {
                                                    self.send_input(&channel, stdin.take()).await?;
                                                }
                                            }
                                        }
                                    }
                                    rest
                                }
                            };
                            if !data.is_empty() {
                                on_output(Stream::Stderr, &data);
                                out.stderr.extend_from_slice(&data);
                            }
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
                if let Some(g) = gate.as_ref().filter(|g| !g.started) {
                    let status = match (&out.exit_signal, got_status) {
                        (Some(sig), _) => format!("killed by signal {sig}"),
                        (None, true) => format!("exit status {}", out.exit_status),
                        (None, false) => "the connection was lost".to_string(),
                    };
                    return Err(self.become_failed(g, &status, ""));
                }
                if !got_status {
                    return Err(TransportError::Protocol {
                        host: o.host.clone(),
                        stage: "command",
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
        tokio::time::timeout(limit, run).await.map_err(|_| TransportError::Timeout {
            host: o.host.clone(),
            stage: "command",
            during: "waiting for a command".into(),
            secs: started.elapsed().as_secs_f64(),
        })?
    }

    async fn send_input(&self, channel: &russh::Channel<client::Msg>, stdin: Option<Vec<u8>>) -> Result<(), TransportError> {
        if let Some(bytes) = stdin {
            channel.data(&bytes[..]).await.map_err(|e| self.lost(e))?;
        }
        channel.eof().await.map_err(|e| self.lost(e))
    }

    /// sudo's failure, in sudo's own words (its last lines, the prompt taken out, redacted).
    fn become_failed(&self, gate: &Gate, status: &str, extra: &str) -> TransportError {
        let said = gate.said();
        let secrets: Vec<&Secret> = gate.plan.password.iter().collect();
        let said = crate::secret::redact(&said, secrets);
        let mut lines: Vec<&str> = said.lines().map(str::trim_end).filter(|l| !l.trim().is_empty()).collect();
        if lines.len() > STDERR_TAIL_LINES {
            lines.drain(..lines.len() - STDERR_TAIL_LINES);
        }
        let mut message = lines.iter().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n");
        if message.is_empty() {
            message = "  (nothing)".into();
        }
        if !extra.is_empty() {
            message = format!("{message}\n  {extra}");
        }
        TransportError::BecomeFailed { host: self.inner.opts.host.clone(), user: gate.plan.user.clone(), status: status.to_string(), message }
    }

    fn closed(&self) -> TransportError {
        TransportError::Protocol { host: self.inner.opts.host.clone(), stage: "command", message: "session closed".into() }
    }

    /// The command line and stdin to send, and how sudo wraps it (None: no sudo).
    ///
    /// Through sudo, the command runs as `sh -c 'printf START >&2; exec sh -c COMMAND'`: the
    /// start marker (a fresh random nonce) says sudo has started the root shell. With a
    /// password, `sudo -S -p PROMPT` prints another fresh nonce as its prompt, so kprov answers
    /// sudo and nothing else, and only when sudo really asks (a NOPASSWD rule or a cached
    /// timestamp means it never does). Nonces are not secret (they show in `ps`); they only
    /// have to be unknown to whatever wrote to stderr before them.
    fn wrap(&self, command: &str, opts: &ExecOptions) -> Result<Wrapped, TransportError> {
        let o = &self.inner.opts;
        let become_ = match (&o.become_, opts.become_) {
            (Some(b), true) if !(o.user == "root" && b.user == "root") => b,
            _ => return Ok((command.to_string(), opts.stdin.clone(), None)),
        };
        let q = |s: &str| {
            quote(s).map(|c| c.into_owned()).map_err(|e| TransportError::Protocol { host: o.host.clone(), stage: "command", message: e.to_string() })
        };
        let user = q(&become_.user)?;
        let start = format!("kprov-started-{}", nonce());
        let root_shell = format!("printf '%s\\n' {start} >&2; exec sh -c {}", q(command)?);
        let (line, prompt) = match &become_.password {
            Some(_) => {
                let prompt = format!("[kprov-sudo-{}]", nonce());
                (format!("sudo -S -p {} -H -u {user} -- sh -c {}", q(&prompt)?, q(&root_shell)?), Some(prompt))
            }
            None => (format!("sudo -n -H -u {user} -- sh -c {}", q(&root_shell)?), None),
        };
        let plan = BecomePlan { user: become_.user.clone(), password: become_.password.clone(), prompt, start };
        Ok((line, opts.stdin.clone(), Some(plan)))
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
        TransportError::Protocol { host: self.inner.opts.host.clone(), stage: "command", message: format!("connection lost: {e}") }
    }

    /// Write `content` to `path` atomically and crash-safely ([`crate::shell::atomic_write_script`]:
    /// a temp file in the same directory, mode and owner set, fsynced, renamed over the target,
    /// the directory fsynced). Nothing is left behind on failure or on a signal.
    pub async fn upload(&self, path: &str, content: &[u8], opts: UploadOptions) -> Result<(), TransportError> {
        let host = &self.inner.opts.host;
        let q = |s: &str| {
            quote(s).map(|c| c.into_owned()).map_err(|e| TransportError::Protocol { host: host.clone(), stage: "command", message: e.to_string() })
        };
        let og = match (&opts.owner, &opts.group) {
            (None, None) => None,
            (o, g) => Some(format!("{}:{}", o.as_deref().unwrap_or(""), g.as_deref().unwrap_or("")).trim_end_matches(':').to_string()),
        };
        let write = crate::shell::atomic_write_script(path, "cat", opts.mode, og.as_deref(), None).map_err(|e| TransportError::Protocol {
            host: host.clone(),
            stage: "command",
            message: e.to_string(),
        })?;
        let script = format!("set -e\n{write}");
        let out =
            self.exec(&format!("sh -c {}", q(&script)?), ExecOptions { become_: opts.become_, stdin: Some(content.to_vec()), timeout: None }).await?;
        if !out.success() {
            return Err(TransportError::Protocol {
                host: host.clone(),
                stage: "command",
                message: format!("upload of {path} failed ({}): {}", exit_text(&out), crate::secret::redact(out.stderr_text().trim(), [])),
            });
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
    let auth_err = |e: russh::Error| TransportError::Protocol { host: o.host.clone(), stage: "auth", message: format!("authentication: {e}") };
    let hash = handle.best_supported_rsa_hash().await.map_err(auth_err)?.flatten();
    if o.use_agent
        && std::env::var_os("SSH_AUTH_SOCK").is_some()
        && let Ok(mut agent) = russh::keys::agent::client::AgentClient::connect_env().await
    {
        let identities = agent.request_identities().await.unwrap_or_default();
        for id in identities {
            let russh::keys::agent::AgentIdentity::PublicKey { key, comment } = id else { continue };
            tried.push(format!("agent key {}", if comment.is_empty() { known_hosts::fingerprint(&key) } else { comment }));
            if let Ok(r) = handle.authenticate_publickey_with(o.user.clone(), key, hash, &mut agent).await
                && r.success()
            {
                return Ok(());
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

/// `exit status N` or `killed by signal S`.
pub fn exit_text(out: &ExecOutput) -> String {
    match &out.exit_signal {
        Some(sig) => format!("killed by signal {sig}"),
        None => format!("exit status {}", out.exit_status),
    }
}

/// How long sudo may take to ask for the password or start the command. sudo answers in
/// milliseconds, or a few seconds after a wrong password (pam_faildelay) or a slow name lookup;
/// a sudo silent for this long is waiting for an answer to a prompt that is not kprov's.
const SUDO_STAGE_TIMEOUT: Duration = Duration::from_secs(30);

/// Lines of sudo's output kept in an error.
const STDERR_TAIL_LINES: usize = 10;

fn started_at(t0: Instant, d: Duration) -> tokio::time::Instant {
    tokio::time::Instant::from_std(t0 + d)
}

/// A fresh random nonce (128 bits from the system's random source; the clock, the process and
/// a counter if that cannot be read).
fn nonce() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    let random = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).is_ok();
    if !random {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        let seed = format!("{t}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        return crate::digest::sha256_hex(seed.as_bytes())[..32].to_string();
    }
    hex::encode(bytes)
}

/// The command line to send, its stdin, and how sudo wraps it (None: no sudo).
type Wrapped = (String, Option<Vec<u8>>, Option<BecomePlan>);

/// How one command goes through sudo.
#[derive(Debug)]
struct BecomePlan {
    user: String,
    password: Option<Secret>,
    /// The prompt sudo prints (`-p`), with a password only.
    prompt: Option<String>,
    /// What the root shell prints on stderr first, once sudo has started it.
    start: String,
}

/// Reads sudo's stage of stderr: answers kprov's own prompt once, and sees the root shell's
/// start marker. Pure, so the protocol is tested without a host.
#[derive(Debug)]
struct Gate {
    plan: BecomePlan,
    /// Everything sudo printed so far, prompts taken out.
    buf: Vec<u8>,
    answered: bool,
    started: bool,
}

#[derive(Debug, PartialEq, Eq)]
enum GateEvent {
    /// sudo asked: write the password.
    Answer,
    /// sudo asked again (the password was wrong): end its input.
    GiveUp,
    /// The command runs as root; `rest` is its first stderr bytes.
    Started { rest: Vec<u8> },
}

impl Gate {
    fn new(plan: BecomePlan) -> Gate {
        Gate { plan, buf: vec![], answered: false, started: false }
    }

    fn feed(&mut self, data: &[u8]) -> Vec<GateEvent> {
        let mut events = vec![];
        if self.started {
            return events;
        }
        self.buf.extend_from_slice(data);
        let start = format!("{}\n", self.plan.start).into_bytes();
        loop {
            let at_start = find(&self.buf, &start);
            let at_prompt = self.plan.prompt.as_ref().and_then(|p| find(&self.buf, p.as_bytes()).map(|i| (i, p.len())));
            match (at_prompt, at_start) {
                (Some((i, len)), s) if s.is_none_or(|s| i < s) => {
                    self.buf.drain(i..i + len);
                    events.push(if self.answered { GateEvent::GiveUp } else { GateEvent::Answer });
                    self.answered = true;
                }
                (_, Some(s)) => {
                    let rest = self.buf.split_off(s + start.len());
                    self.buf.truncate(s);
                    self.started = true;
                    if !self.buf.is_empty() {
                        tracing::debug!("{}", crate::secret::redact(&self.said(), self.plan.password.iter()).trim_end());
                    }
                    events.push(GateEvent::Started { rest });
                    return events;
                }
                _ => return events,
            }
        }
    }

    /// What sudo printed, without kprov's prompt.
    fn said(&self) -> String {
        String::from_utf8_lossy(&self.buf).into_owned()
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(password: bool) -> Gate {
        Gate::new(BecomePlan {
            user: "root".into(),
            password: password.then(|| Secret::new("s3cret-pw")),
            prompt: password.then(|| "[kprov-sudo-abc]".to_string()),
            start: "kprov-started-xyz".into(),
        })
    }

    #[test]
    fn the_password_answers_sudos_own_prompt_once_and_nothing_else() {
        // What real sudo -S printed on the test nodes: the prompt without a newline, then the
        // root shell's marker right after it.
        let mut g = gate(true);
        assert_eq!(g.feed(b"sudo: unable to resolve host n1\n[kprov-su"), vec![]);
        assert_eq!(g.feed(b"do-abc]"), vec![GateEvent::Answer]);
        assert_eq!(g.feed(b"kprov-started-xyz\nfirst stderr"), vec![GateEvent::Started { rest: b"first stderr".to_vec() }]);
        assert_eq!(g.said(), "sudo: unable to resolve host n1\n");
        // Later output is the command's, even if it prints the prompt.
        assert_eq!(g.feed(b"[kprov-sudo-abc]"), vec![]);
    }

    #[test]
    fn a_sudo_that_does_not_ask_gets_no_password() {
        // NOPASSWD, or a cached timestamp: the marker comes first, no prompt at all.
        let mut g = gate(true);
        assert_eq!(g.feed(b"kprov-started-xyz\n"), vec![GateEvent::Started { rest: vec![] }]);
        assert!(!g.answered);
    }

    #[test]
    fn a_second_prompt_is_never_answered() {
        let mut g = gate(true);
        assert_eq!(g.feed(b"[kprov-sudo-abc]"), vec![GateEvent::Answer]);
        assert_eq!(g.feed(b"Sorry, try again.\n[kprov-sudo-abc]"), vec![GateEvent::GiveUp]);
        g.feed(b"\nsudo: no password was provided\nsudo: 1 incorrect password attempt\n");
        assert!(!g.started);
        assert_eq!(g.said(), "Sorry, try again.\n\nsudo: no password was provided\nsudo: 1 incorrect password attempt\n");
    }

    #[test]
    fn without_a_password_only_the_marker_counts() {
        let mut g = gate(false);
        assert_eq!(g.feed(b"[kprov-sudo-abc]sudo: a password is required\n"), vec![]);
        assert!(!g.started);
        assert_eq!(g.feed(b"kprov-started-xyz\n"), vec![GateEvent::Started { rest: vec![] }]);
    }

    #[test]
    fn nonces_differ() {
        assert_ne!(nonce(), nonce());
        assert_eq!(nonce().len(), 32);
    }
}
