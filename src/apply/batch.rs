//! One round trip for many resources: the apply scripts of a batch of tasks on one host joined
//! into one POSIX sh script, sent on standard input (never in argv, so no secret shows in `ps`).
//!
//! Each step runs in its own `set -e` subshell with stdin from /dev/null; the batch stops at
//! the first failing step. Markers carry a per-batch nonce so no command output can forge them.

use std::collections::BTreeMap;

use crate::resources::capture::CAPTURE_MARKER;

/// One step's script and whether its output may be shown (not for sensitive steps).
#[derive(Debug, Clone)]
pub struct BatchStep {
    pub script: String,
}

pub struct Batch {
    pub nonce: String,
    pub steps: Vec<BatchStep>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepResult {
    pub exit_status: i32,
    /// Combined stdout and stderr of the step, without markers.
    pub output: String,
    /// Captured value, for capture steps.
    pub capture: Option<String>,
}

impl Batch {
    pub fn new(steps: Vec<BatchStep>) -> Batch {
        Batch { nonce: nonce(), steps }
    }

    pub fn script(&self) -> String {
        let n = &self.nonce;
        let mut s = String::from("export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\numask 022\n");
        for (i, step) in self.steps.iter().enumerate() {
            s.push_str(&format!("printf '\\n@@kprov-step-{n} {i} begin\\n'\n"));
            s.push_str("( set -e\n");
            s.push_str(&step.script);
            if !step.script.ends_with('\n') {
                s.push('\n');
            }
            s.push_str(") </dev/null 2>&1\n");
            s.push_str(&format!("rc=$?\nprintf '\\n@@kprov-step-{n} {i} end %s\\n' \"$rc\"\n[ \"$rc\" -eq 0 ] || exit 0\n"));
        }
        s
    }

    /// Results of the steps that ran, in order; steps after a failure are absent.
    pub fn parse(&self, output: &str) -> Vec<StepResult> {
        let begin = format!("@@kprov-step-{} ", self.nonce);
        let mut results: BTreeMap<usize, StepResult> = BTreeMap::new();
        let mut current: Option<(usize, Vec<&str>, Option<String>)> = None;
        for line in output.lines() {
            if let Some(rest) = line.strip_prefix(&begin) {
                let mut words = rest.split_whitespace();
                let idx: Option<usize> = words.next().and_then(|w| w.parse().ok());
                match (idx, words.next(), words.next()) {
                    (Some(i), Some("begin"), _) => current = Some((i, vec![], None)),
                    (Some(i), Some("end"), rc) => {
                        let rc = rc.and_then(|r| r.parse().ok()).unwrap_or(-1);
                        if let Some((j, lines, capture)) = current.take()
                            && i == j
                        {
                            let output = lines.join("\n").trim().to_string();
                            results.insert(i, StepResult { exit_status: rc, output, capture });
                        }
                    }
                    _ => {}
                }
            } else if let Some((_, lines, capture)) = current.as_mut() {
                if let Some(b64) = line.strip_prefix(CAPTURE_MARKER).map(str::trim) {
                    use base64::Engine as _;
                    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).unwrap_or_default();
                    *capture = Some(String::from_utf8_lossy(&bytes).trim().to_string());
                } else {
                    lines.push(line);
                }
            }
        }
        // A step that began but never ended: the connection dropped or the host went away.
        if let Some((i, lines, _)) = current {
            results.insert(i, StepResult { exit_status: -1, output: lines.join("\n"), capture: None });
        }
        results.into_values().collect()
    }
}

/// Unique enough to tell our markers from any command output.
fn nonce() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    let seed = format!("{t}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
    crate::digest::sha256_hex(seed.as_bytes())[..16].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_local(script: &str) -> String {
        use std::io::Write;
        let mut child =
            std::process::Command::new("sh").arg("-s").stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
        String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()
    }

    #[test]
    fn steps_run_in_order_and_stop_at_the_first_failure() {
        let b = Batch::new(vec![
            BatchStep { script: "echo one\n".into() },
            BatchStep { script: "echo two >&2\nfalse\necho never\n".into() },
            BatchStep { script: "echo three\n".into() },
        ]);
        let r = b.parse(&run_local(&b.script()));
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].exit_status, r[0].output.as_str()), (0, "one"));
        assert_eq!((r[1].exit_status, r[1].output.as_str()), (1, "two"));
    }

    #[test]
    fn steps_cannot_read_the_script_from_stdin() {
        // A command that reads stdin would otherwise swallow the rest of the batch.
        let b = Batch::new(vec![BatchStep { script: "cat\n".into() }, BatchStep { script: "echo after\n".into() }]);
        let r = b.parse(&run_local(&b.script()));
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].output, "after");
    }

    #[test]
    fn captures_are_decoded_and_forged_markers_ignored() {
        let cap = crate::resources::Capture { name: "x".into(), run: "printf 'kubeadm join a:6443 --token t'".into(), description: None };
        use crate::resources::Resource;
        let facts = crate::facts::HostFacts::default();
        let caps = crate::resources::Captures::new();
        let ctx = crate::resources::CheckContext { facts: &facts, dependency_changed: false, captures: &caps };
        let change = crate::resources::Change::new(crate::resources::Action::Run, "");
        let b = Batch::new(vec![
            BatchStep { script: "echo '@@kprov-step-0000 0 end 0'\n".into() },
            BatchStep { script: cap.apply_script(&ctx, &change).unwrap() },
        ]);
        let r = b.parse(&run_local(&b.script()));
        assert_eq!(r[0].output, "@@kprov-step-0000 0 end 0");
        assert_eq!(r[1].capture.as_deref(), Some("kubeadm join a:6443 --token t"));
        assert_eq!(r[1].output, "");
    }

    #[test]
    fn a_cut_connection_is_a_failed_step() {
        let b = Batch::new(vec![BatchStep { script: "echo x\n".into() }]);
        let out = format!("@@kprov-step-{} 0 begin\npartial", b.nonce);
        let r = b.parse(&out);
        assert_eq!(r[0].exit_status, -1);
    }
}
