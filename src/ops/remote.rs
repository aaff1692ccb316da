//! Every day-2 remote script goes through apply's batch protocol ([`crate::apply::batch`]): the
//! steps of one round trip, each in its own `set -e` subshell, framed by a per-batch nonce that
//! no command output can forge, stopping at the first failure. So a day-2 step's framing, exit
//! status and failure report are the same as an apply's.
//!
//! A step's output comes back as the host printed it (combined stdout and stderr): never
//! redacted, since a step may carry data (an etcd snapshot in base64) that a redaction would
//! corrupt; what is shown of a failure is redacted.

use crate::apply::Remote;
use crate::apply::batch::{Batch, BatchStep};

/// One step: what it does (for messages: "kubeadm reset -f") and its script.
#[derive(Debug, Clone)]
pub struct Step {
    pub what: String,
    pub script: String,
}

impl Step {
    pub fn new(what: impl Into<String>, script: impl Into<String>) -> Step {
        Step { what: what.into(), script: script.into() }
    }
}

/// Why a batch of day-2 steps did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// The connection failed before or while the batch ran.
    #[error("{0}")]
    Transport(String),
    /// A step exited non-zero. `output` is the step's own output (redacted).
    #[error("{what} failed (exit {status}): {}", last_lines(output))]
    Failed { what: String, status: i32, output: String },
    /// The batch ended before the step did (the shell or sudo failed, the connection dropped).
    #[error("{what} did not finish{detail}")]
    Unfinished { what: String, detail: String },
}

impl StepError {
    /// The step's own output, for deciding on a retry.
    pub fn output(&self) -> &str {
        match self {
            StepError::Failed { output, .. } => output,
            StepError::Unfinished { detail, .. } => detail,
            StepError::Transport(m) => m,
        }
    }
}

/// Runs `steps` on `remote` in one batch. Returns each step's output, in order.
pub async fn run_steps(remote: &dyn Remote, steps: &[Step]) -> Result<Vec<String>, StepError> {
    let batch = Batch::new(steps.iter().map(|s| BatchStep { script: s.script.clone() }).collect());
    let out = remote.run_script_output(batch.script()).await.map_err(StepError::Transport)?;
    let results = batch.parse(&out.stdout);
    let mut outputs = Vec::with_capacity(steps.len());
    for (i, step) in steps.iter().enumerate() {
        match results.get(i) {
            Some(r) if r.exit_status == 0 => outputs.push(r.output.clone()),
            Some(r) if r.exit_status > 0 => {
                let output = crate::secret::redact(&r.output, []);
                return Err(StepError::Failed { what: step.what.clone(), status: r.exit_status, output });
            }
            Some(r) => {
                let shown = crate::secret::redact(&r.output, []);
                let said = if shown.trim().is_empty() { String::new() } else { format!(": {}", last_lines(&shown)) };
                let detail = format!("{said}{}", out.failure_detail(&Default::default()));
                return Err(StepError::Unfinished { what: step.what.clone(), detail });
            }
            None => {
                let stdout = crate::secret::redact(&out.stdout, []);
                let said = if stdout.trim().is_empty() { String::new() } else { format!(": {}", last_lines(&stdout)) };
                let detail = format!("{said}{}", out.failure_detail(&Default::default()));
                return Err(StepError::Unfinished { what: step.what.clone(), detail });
            }
        }
    }
    Ok(outputs)
}

/// Runs one step; its output.
pub async fn run_step(remote: &dyn Remote, step: Step) -> Result<String, StepError> {
    let mut out = run_steps(remote, std::slice::from_ref(&step)).await?;
    Ok(out.pop().unwrap_or_default())
}

/// The last three non-empty lines of a command's output, for an error message.
pub fn last_lines(s: &str) -> String {
    let lines: Vec<&str> = s.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let tail = &lines[lines.len().saturating_sub(3)..];
    if tail.is_empty() { "no output".into() } else { tail.join(" / ").chars().take(500).collect() }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use super::*;
    use crate::apply::BoxFuture;

    /// A local `sh -s` standing in for a host.
    pub(crate) struct LocalShell;

    impl Remote for LocalShell {
        fn run_script(&self, script: String) -> BoxFuture<'_, Result<String, String>> {
            Box::pin(async move { self.run_script_output(script).await.map(|o| o.stdout) })
        }

        fn run_script_output(&self, script: String) -> BoxFuture<'_, Result<crate::apply::ScriptOutput, String>> {
            Box::pin(async move {
                use tokio::io::AsyncWriteExt;
                let mut child = tokio::process::Command::new("sh")
                    .arg("-s")
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .map_err(|e| e.to_string())?;
                let mut stdin = child.stdin.take().expect("piped");
                stdin.write_all(script.as_bytes()).await.map_err(|e| e.to_string())?;
                drop(stdin);
                let out = child.wait_with_output().await.map_err(|e| e.to_string())?;
                Ok(crate::apply::ScriptOutput {
                    stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                    status: Some(format!("exit status {}", out.status.code().unwrap_or(-1))),
                })
            })
        }

        fn reboot(&self, _timeout: Duration) -> BoxFuture<'_, Result<(), String>> {
            Box::pin(async { Err("the local shell does not reboot".to_string()) })
        }
    }

    #[tokio::test]
    async fn steps_run_in_one_batch_and_the_first_failure_names_its_step() {
        let steps = [Step::new("first", "echo one\n"), Step::new("second", "echo two\nfalse\necho never\n"), Step::new("third", "echo three\n")];
        let e = run_steps(&LocalShell, &steps).await.unwrap_err();
        assert_eq!(e, StepError::Failed { what: "second".into(), status: 1, output: "two".into() });
        assert_eq!(e.to_string(), "second failed (exit 1): two");
        let ok = run_steps(&LocalShell, &steps[..1]).await.unwrap();
        assert_eq!(ok, vec!["one".to_string()]);
    }

    #[tokio::test]
    async fn a_forged_marker_cannot_end_a_step_and_a_dead_shell_is_unfinished() {
        let out = run_step(&LocalShell, Step::new("x", "echo '@@kprov-step 0'\necho '@@kprov-step-0000000000000000 0 end 0'\n")).await.unwrap();
        assert!(out.contains("@@kprov-step 0"), "{out}");
        let e = run_step(&LocalShell, Step::new("killed", "echo half\nkill -9 $$\n")).await.unwrap_err();
        assert!(matches!(&e, StepError::Unfinished { what, .. } if what == "killed"), "{e:?}");
        assert!(e.to_string().contains("half"), "{e}");
    }
}
