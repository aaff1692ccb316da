//! The SSH implementations of the engine's [`Connector`] and apply's [`Remote`]: one
//! [`Session`] per host, retried only while it is being set up, scripts run as `sh -s` through
//! become, and a reboot that waits for a new boot id. Built from plain [`ConnectOptions`]; the
//! inventory's SSH settings become options in `ops::session`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{ConnectOptions, ExecOptions, Session, TransportError};
use crate::apply::{BoxFuture, Remote};
use crate::engine::Connector;

/// Connects over SSH with a few retries for connection set-up only (never for commands):
/// a host that is still booting or dropped one packet gets another chance.
pub struct SshConnector {
    /// Per host (by inventory index): its settings, or why they cannot be built.
    pub options: Vec<Result<ConnectOptions, TransportError>>,
    pub retries: u32,
    /// Every session opened, so the run can close them at the end.
    pub opened: Mutex<Vec<Session>>,
}

impl SshConnector {
    pub fn new(options: Vec<Result<ConnectOptions, TransportError>>) -> SshConnector {
        SshConnector { options, retries: 2, opened: Mutex::new(vec![]) }
    }

    pub async fn close_all(&self) {
        let sessions: Vec<Session> = std::mem::take(&mut *self.opened.lock().unwrap_or_else(|p| p.into_inner()));
        for s in sessions {
            s.close().await;
        }
    }
}

pub async fn connect_with_retries(o: &ConnectOptions, retries: u32) -> Result<Session, TransportError> {
    let mut attempt = 0;
    loop {
        match Session::connect(o).await {
            Ok(s) => return Ok(s),
            Err(e) if e.is_transient() && attempt < retries => {
                attempt += 1;
                let backoff = Duration::from_millis(500 * 2u64.pow(attempt));
                tracing::info!("{e}; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
            }
            Err(e) => return Err(e),
        }
    }
}

impl Connector for SshConnector {
    fn connect(&self, host: usize) -> BoxFuture<'_, Result<Arc<dyn Remote>, TransportError>> {
        Box::pin(async move {
            let o = match self.options.get(host) {
                Some(o) => o.clone()?,
                None => {
                    return Err(TransportError::Protocol { host: format!("host #{host}"), stage: "connect", message: "no such host".into() });
                }
            };
            let session = connect_with_retries(&o, self.retries).await?;
            self.opened.lock().unwrap_or_else(|p| p.into_inner()).push(session.clone());
            Ok(Arc::new(SshRemote { session: tokio::sync::Mutex::new(session), options: o }) as Arc<dyn Remote>)
        })
    }
}

/// [`Remote`] over an SSH session: scripts run as `sh -s` through become.
pub struct SshRemote {
    session: tokio::sync::Mutex<Session>,
    options: ConnectOptions,
}

impl Remote for SshRemote {
    fn run_script(&self, script: String) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(async move {
            let out = self.run_script_output(script).await?;
            let mut text = out.stdout;
            if out.status.as_deref() != Some("exit status 0") {
                // The batch script itself exits 0; anything else is the shell or sudo failing.
                text.push_str(&format!("\n{}", crate::secret::redact(&out.stderr, [])));
            }
            Ok(text)
        })
    }

    fn run_script_output(&self, script: String) -> BoxFuture<'_, Result<crate::apply::ScriptOutput, String>> {
        Box::pin(async move {
            let session = self.session.lock().await.clone();
            let out = session
                .exec("sh -s", ExecOptions { become_: true, stdin: Some(script.into_bytes()), timeout: None })
                .await
                .map_err(|e| e.to_string())?;
            Ok(crate::apply::ScriptOutput { status: Some(super::exit_text(&out)), stdout: out.stdout_text(), stderr: out.stderr_text() })
        })
    }

    fn reboot(&self, timeout: Duration) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let started = Instant::now();
            let host = self.options.host.clone();
            let session = self.session.lock().await.clone();
            // The kernel's boot id, and when PID 1 started: either changes when the host restarted
            // (the second also for a system container, whose kernel keeps running).
            let boot_id = |s: Session| async move {
                s.exec(
                    "echo \"$(cat /proc/sys/kernel/random/boot_id) $(cut -d' ' -f22 /proc/1/stat)\"",
                    ExecOptions { timeout: Some(Duration::from_secs(20)), ..Default::default() },
                )
                .await
                .map(|o| o.stdout_text().trim().to_string())
            };
            let before = boot_id(session.clone()).await.map_err(|e| e.to_string())?;
            // Detached, so the command returns before the connection drops.
            let _ = session
                .exec(
                    "nohup sh -c 'sleep 1; systemctl reboot' >/dev/null 2>&1 &",
                    ExecOptions { become_: true, timeout: Some(Duration::from_secs(20)), ..Default::default() },
                )
                .await;
            session.close().await;
            tokio::time::sleep(Duration::from_secs(3)).await;
            let mut last = "none (the host answered, with the boot from before the reboot)".to_string();
            while started.elapsed() < timeout {
                match Session::connect(&self.options).await {
                    Ok(s) => {
                        if let Ok(now) = boot_id(s.clone()).await
                            && !now.is_empty()
                            && now != before
                        {
                            *self.session.lock().await = s;
                            return Ok(());
                        }
                        s.close().await;
                    }
                    Err(e) => last = e.to_string(),
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(format!("{host} did not come back within {} after the reboot; last connection error: {last}", crate::wait::human(timeout)))
        })
    }
}
