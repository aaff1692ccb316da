//! One round trip for many resources: the apply scripts of a batch of tasks on one host joined
//! into one POSIX sh script, sent on standard input (never in argv, so no secret shows in `ps`).
//!
//! Each step runs in its own `set -e` subshell with stdin from /dev/null; the batch stops at
//! the first failing step. Markers carry a per-batch nonce so no command output can forge them.
//!
//! # A batch outlives its connection
//!
//! The script sent is a *launcher*. As root, it
//! 1. takes the host's batch lock (`flock` on [`LOCK`]); when another kprov holds it, it says
//!    so and waits up to [`LOCK_WAIT_SECS`], then gives up naming the holder (host, pid, start
//!    time, batch, controller: the `holder` file);
//! 2. reports the batches nobody collected ([`RecoveredBatch`]: a kprov that was cut off, paused
//!    or killed), with their status (`died` when the runner never finished) and the end of their
//!    log, removes the temp files their writes recorded (`tmpfiles`), then their directory;
//! 3. stores the steps in `/var/lib/kprov/batches/NONCE/steps.sh` (root only) and starts them
//!    with `setsid` in a session of their own, output to `log` (the runner stays the launcher's
//!    child while the launcher lives, so it is reaped even where PID 1 reaps nothing); the runner removes its
//!    script once it has it open, holds the lock until it ends (the steps run without it) and
//!    writes its status to `rc` on the way out;
//! 4. streams the log while the runner lives (`tail --pid`), then reports `rc` and removes the
//!    directory. The launcher holds the lock too until it has collected the result, so no
//!    other batch takes a finished batch for an uncollected one.
//!
//! A cut connection, a paused host or a killed kprov ends only the launcher: the runner goes
//! on, and the next batch on the host reports what it did.

use std::collections::BTreeMap;

use crate::resources::capture::CAPTURE_MARKER;

/// kprov's state directory on a host (root only): `batches/NONCE/` for each batch not yet
/// collected, `batch.lock` (the per-host lock a batch's runner holds for its whole run) and
/// `holder` (who holds it, written by each runner when it starts). `KPROV_STATE_DIR` in the
/// environment of the remote shell overrides it (the local unit tests use a temp directory).
pub const STATE_DIR: &str = "/var/lib/kprov";
/// The lock, as named in messages.
pub const LOCK: &str = "/var/lib/kprov/batch.lock";
/// How long a batch waits for another kprov's batch on the same host.
pub const LOCK_WAIT_SECS: u32 = 600;
/// Exit status of a launcher that gave up waiting for the lock.
pub const BUSY_STATUS: i32 = 75;
/// Lines of an uncollected batch's log reported by the next batch.
const RECOVERED_TAIL_LINES: usize = 20;

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

/// A batch that ran on the host without a kprov to collect it, found by a later batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredBatch {
    /// Its nonce (its directory's name).
    pub batch: String,
    /// `exit status N` when its runner finished (its steps' own statuses are in the log), or
    /// `died` when the runner never did (killed, or the host went down).
    pub status: String,
    /// The last lines of its log, as the host wrote them (not redacted).
    pub log_tail: String,
}

impl Batch {
    pub fn new(steps: Vec<BatchStep>) -> Batch {
        Batch { nonce: nonce(), steps }
    }

    /// The launcher (see the module documentation), to run with `sh -s` as root.
    pub fn script(&self) -> String {
        let n = &self.nonce;
        let marker = format!("@@kprov-batch-{n}");
        let controller = crate::shell::quote(&controller()).map(|c| c.into_owned()).unwrap_or_else(|_| "unknown".into());
        let mut s = String::from("export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\numask 077\n");
        s.push_str(&format!(
            "kst=${{KPROV_STATE_DIR:-{STATE_DIR}}}\n\
kb=\"$kst/batches\"\n\
mkdir -p \"$kb\"\n\
chmod 0700 \"$kst\" \"$kb\"\n\
exec 9>>\"$kst/batch.lock\"\n\
if ! flock -n 9; then\n\
  kholder=$(cat \"$kst/holder\" 2>/dev/null)\n\
  echo \"kprov: another kprov runs a batch on this host (${{kholder:-holder unknown}}); waiting up to {LOCK_WAIT_SECS}s\" >&2\n\
  if ! flock -w {LOCK_WAIT_SECS} 9; then\n\
    kholder=$(cat \"$kst/holder\" 2>/dev/null)\n\
    printf '\\n{marker} busy %s\\n' \"${{kholder:-holder unknown}}\"\n\
    exit {BUSY_STATUS}\n\
  fi\n\
fi\n\
kprov_forget() {{\n\
  if [ -f \"$1/tmpfiles\" ]; then\n\
    while IFS= read -r kf; do case $kf in */.kprov.*) rm -rf -- \"$kf\";; esac; done < \"$1/tmpfiles\"\n\
  fi\n\
  rm -rf -- \"$1\"\n\
}}\n\
for kd in \"$kb\"/*; do\n\
  [ -d \"$kd\" ] || continue\n\
  if [ -s \"$kd/rc\" ]; then ks=\"exit status $(cat \"$kd/rc\")\"; else ks=died; fi\n\
  kt=$(tail -n {RECOVERED_TAIL_LINES} \"$kd/log\" 2>/dev/null | base64 -w0)\n\
  printf '\\n{marker} recovered %s %s %s\\n' \"${{kd##*/}}\" \"$(printf %s \"$ks\" | tr ' ' _)\" \"$kt\"\n\
  kprov_forget \"$kd\"\n\
done\n\
d=\"$kb/{n}\"\n\
mkdir -m 0700 \"$d\"\n\
cat > \"$d/steps.sh\" <<'KPROV_STEPS_{n}'\n"
        ));
        // The runner: records itself, removes its script (it has it open), holds the lock
        // until it ends, writes its status on the way out.
        s.push_str(&format!(
            "printf '%s\\n' \"$$\" > \"$KPROV_BATCH/pid\"\n\
rm -f \"$KPROV_BATCH/steps.sh\"\n\
kh=; read -r kh < /proc/sys/kernel/hostname || true\n\
printf 'host %s, pid %s, started %s, batch %s, controller %s\\n' \"$kh\" \"$$\" \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\" {n} {controller} > \"$KPROV_STATE/holder\"\n\
trap 'printf \"%s\\n\" \"$?\" > \"$KPROV_BATCH/rc.tmp\" && mv -f \"$KPROV_BATCH/rc.tmp\" \"$KPROV_BATCH/rc\"' EXIT\n\
umask 022\n"
        ));
        for (i, step) in self.steps.iter().enumerate() {
            s.push_str(&format!("printf '\\n@@kprov-step-{n} {i} begin\\n'\n"));
            s.push_str("( set -e\n");
            s.push_str(&step.script);
            if !step.script.ends_with('\n') {
                s.push('\n');
            }
            // The steps run without the lock's descriptor: a daemon a step leaves behind must
            // not hold the host's batch lock.
            s.push_str(") </dev/null 9>&- 2>&1\n");
            s.push_str(&format!("rc=$?\nprintf '\\n@@kprov-step-{n} {i} end %s\\n' \"$rc\"\n[ \"$rc\" -eq 0 ] || exit 0\n"));
        }
        s.push_str(&format!("KPROV_STEPS_{n}\n"));
        s.push_str(&format!(
            // The log exists before the runner and tail start: the background job opens its
            // redirection only once it is scheduled, and a tail that finds no file gives up, so
            // the controller would see none of the steps (seen under load in cluster_e2e).
            ": > \"$d/log\"\n\
KPROV_STATE=\"$kst\" KPROV_BATCH=\"$d\" setsid -w sh \"$d/steps.sh\" >> \"$d/log\" 2>&1 < /dev/null &\n\
kr=$!\n\
tail -s 0.1 -n +1 -f --pid=\"$kr\" \"$d/log\" &\n\
kt=$!\n\
wait \"$kr\" || true\n\
wait \"$kt\" || true\n\
if [ -s \"$d/rc\" ]; then printf '\\n{marker} rc %s\\n' \"$(cat \"$d/rc\")\"; else printf '\\n{marker} died\\n'; fi\n\
kprov_forget \"$d\"\n\
exec 9>&-\n"
        ));
        s
    }

    /// The batches nobody collected that this batch found and cleaned up before it ran.
    pub fn recovered(&self, output: &str) -> Vec<RecoveredBatch> {
        let prefix = format!("@@kprov-batch-{} recovered ", self.nonce);
        output
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .filter_map(|rest| {
                let mut w = rest.split(' ');
                let batch = w.next()?.to_string();
                let status = w.next()?.replace('_', " ");
                use base64::Engine as _;
                let tail = base64::engine::general_purpose::STANDARD.decode(w.next().unwrap_or("").trim()).unwrap_or_default();
                Some(RecoveredBatch { batch, status, log_tail: String::from_utf8_lossy(&tail).trim_end().to_string() })
            })
            .collect()
    }

    /// When another kprov's batch held the host past the wait: who holds it.
    pub fn busy(&self, output: &str) -> Option<String> {
        let prefix = format!("@@kprov-batch-{} busy ", self.nonce);
        output.lines().find_map(|l| l.strip_prefix(&prefix)).map(|h| h.trim().to_string())
    }

    /// Results of the steps that ran, in order; steps after a failure are absent. When the
    /// host was held by another kprov past the wait, the first step fails with
    /// [`BUSY_STATUS`] and names the holder.
    pub fn parse(&self, output: &str) -> Vec<StepResult> {
        if let Some(holder) = self.busy(output) {
            return vec![StepResult {
                exit_status: BUSY_STATUS,
                output: format!(
                    "kprov: another kprov held this host's batch lock ({LOCK}) for more than {LOCK_WAIT_SECS}s: {holder}; \
nothing ran here; run apply again once it is done"
                ),
                capture: None,
            }];
        }
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

/// Who runs this kprov, for the holder line another kprov shows: `HOSTNAME pid PID`.
fn controller() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "unknown".into());
    format!("{host} pid {}", std::process::id())
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

    /// Run a launcher with `sh -s`, with kprov's state directory in `state`.
    fn run_in(state: &std::path::Path, script: &str) -> std::process::Output {
        use std::io::Write;
        let mut child = std::process::Command::new("sh")
            .arg("-s")
            .env("KPROV_STATE_DIR", state)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    fn run_local(script: &str) -> String {
        let state = tempfile::tempdir().unwrap();
        String::from_utf8(run_in(state.path(), script).stdout).unwrap()
    }

    /// Start a launcher in its own process group (as sshd starts a session's command).
    fn spawn_in(state: &std::path::Path, script: &str) -> std::process::Child {
        use std::io::Write;
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("sh")
            .arg("-s")
            .env("KPROV_STATE_DIR", state)
            .process_group(0)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
        child
    }

    fn wait_until(what: &str, f: impl Fn() -> bool) {
        let t0 = std::time::Instant::now();
        while !f() {
            assert!(t0.elapsed() < std::time::Duration::from_secs(20), "timed out waiting for {what}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    fn batch_dirs(state: &std::path::Path) -> Vec<std::path::PathBuf> {
        std::fs::read_dir(state.join("batches")).map(|d| d.map(|e| e.unwrap().path()).collect()).unwrap_or_default()
    }

    fn kill(sig: &str, target: &str) {
        assert!(std::process::Command::new("kill").args([sig, "--", target]).status().unwrap().success());
    }

    /// The connection is cut (the launcher's process group is killed) while a step runs: the
    /// runner, in a session of its own, finishes the batch; the next batch waits for it on the
    /// host's lock, reports it with its status and log, and removes it.
    #[test]
    fn a_batch_outlives_its_launcher_and_the_next_batch_reports_it() {
        let state = tempfile::tempdir().unwrap();
        let done = state.path().join("done");
        let first = Batch::new(vec![BatchStep {
            script: format!("echo started\nsleep 1\necho finished-alone\ntouch {}\n", crate::shell::quote(done.to_str().unwrap()).unwrap()),
        }]);
        let mut launcher = spawn_in(state.path(), &first.script());
        wait_until("the step to start", || {
            batch_dirs(state.path()).iter().any(|d| std::fs::read_to_string(d.join("log")).is_ok_and(|l| l.contains("started")))
        });
        let dir = batch_dirs(state.path()).remove(0);
        assert!(!dir.join("steps.sh").exists(), "the stored steps are removed once the runner has them open");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        kill("-KILL", &format!("-{}", launcher.id()));
        launcher.wait().unwrap();
        assert!(!done.exists(), "the fault landed mid-step");

        let second = Batch::new(vec![BatchStep { script: "echo second\n".into() }]);
        let out = run_in(state.path(), &second.script());
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(done.exists(), "the first batch finished without its launcher");
        let rec = second.recovered(&stdout);
        assert_eq!(rec.len(), 1, "{stdout}");
        assert_eq!(rec[0].batch, first.nonce);
        assert_eq!(rec[0].status, "exit status 0");
        assert!(rec[0].log_tail.contains("finished-alone"), "{rec:?}");
        assert_eq!(first.parse(&rec[0].log_tail)[0].exit_status, 0, "the log holds the step's own result");
        let r = second.parse(&stdout);
        assert_eq!((r.len(), r[0].exit_status, r[0].output.as_str()), (1, 0, "second"));
        assert_eq!(batch_dirs(state.path()), Vec::<std::path::PathBuf>::new(), "collected batches are removed");
    }

    /// The runner itself is killed (a host stopped, an OOM kill) mid-write: the next batch
    /// reports it as `died` and removes the temp file its write recorded.
    #[test]
    fn a_runner_killed_mid_write_is_reported_died_and_its_temp_file_removed() {
        let state = tempfile::tempdir().unwrap();
        let target = state.path().join("managed.conf");
        std::fs::write(&target, "old\n").unwrap();
        let write = crate::shell::atomic_write_script(target.to_str().unwrap(), "{ printf partial; sleep 30; }", 0o644, None, None).unwrap();
        let first = Batch::new(vec![BatchStep { script: write }]);
        let mut launcher = spawn_in(state.path(), &first.script());
        let temp_files = || -> Vec<String> {
            std::fs::read_dir(state.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".kprov."))
                .collect()
        };
        wait_until("the temp file", || !temp_files().is_empty());
        let pid = std::fs::read_to_string(batch_dirs(state.path())[0].join("pid")).unwrap();
        // Everything dies at once, as when the host stops: the launcher, then the runner's
        // session (the runner and its steps).
        kill("-KILL", &format!("-{}", launcher.id()));
        launcher.wait().unwrap();
        kill("-KILL", &format!("-{}", pid.trim()));
        // Gone, or a zombie left to whoever reaps orphans here.
        wait_until("the runner to die", || std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).map_or(true, |st| st.contains(") Z ")));
        assert_eq!(temp_files().len(), 1, "SIGKILL leaves the temp file");
        let second = Batch::new(vec![BatchStep { script: "true\n".into() }]);
        let stdout = String::from_utf8(run_in(state.path(), &second.script()).stdout).unwrap();
        let rec = second.recovered(&stdout);
        assert_eq!(rec.len(), 1, "{stdout}");
        assert_eq!(rec[0].status, "died");
        assert_eq!(temp_files(), Vec::<String>::new(), "the recorded temp file is removed");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old\n");
    }

    /// Another kprov's batch holds the host: this one says so and waits, then runs.
    #[test]
    fn a_second_batch_waits_for_the_hosts_lock() {
        let state = tempfile::tempdir().unwrap();
        let first = Batch::new(vec![BatchStep { script: "sleep 2\n".into() }]);
        let mut launcher = spawn_in(state.path(), &first.script());
        wait_until("the first batch", || state.path().join("holder").exists());
        let holder = std::fs::read_to_string(state.path().join("holder")).unwrap();
        assert!(holder.contains(&format!("batch {}", first.nonce)) && holder.contains("controller ") && holder.contains("started "), "{holder}");
        let second = Batch::new(vec![BatchStep { script: "echo second\n".into() }]);
        let t0 = std::time::Instant::now();
        let out = run_in(state.path(), &second.script());
        assert!(t0.elapsed() > std::time::Duration::from_millis(800), "it waited for the first batch");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.contains("another kprov runs a batch on this host (host "), "{stderr}");
        assert_eq!(second.parse(&String::from_utf8(out.stdout).unwrap())[0].output, "second");
        launcher.wait().unwrap();
    }

    #[test]
    fn a_host_held_past_the_wait_fails_the_first_step_naming_the_holder() {
        let b = Batch::new(vec![BatchStep { script: "true\n".into() }]);
        let out = format!("\n@@kprov-batch-{} busy host h1, pid 42, started 2026-01-01T00:00:00Z, batch abc, controller ctl pid 7\n", b.nonce);
        let r = b.parse(&out);
        assert_eq!(r[0].exit_status, BUSY_STATUS);
        assert!(r[0].output.contains("host h1, pid 42, started 2026-01-01T00:00:00Z, batch abc, controller ctl pid 7"), "{}", r[0].output);
        // A forged line with another nonce is step output, not a holder.
        assert_eq!(b.busy("@@kprov-batch-0000 busy x"), None);
    }

    #[test]
    fn the_log_exists_before_the_runner_and_its_tail_start() {
        // The runner's redirection is opened by a background job whenever it is scheduled; a
        // tail started first finds no file and gives up, and the controller sees no step (a
        // join failed so under load). The launcher creates the log itself, first.
        let script = Batch::new(vec![BatchStep { script: "true\n".into() }]).script();
        let launcher = &script[script.rfind("KPROV_STEPS_").expect("steps end")..];
        let line = |needle: &str| launcher.lines().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("no {needle:?} in {launcher}"));
        assert!(line(": > \"$d/log\"") < line("setsid -w"), "{launcher}");
        assert!(launcher.contains(">> \"$d/log\""), "the runner appends to the log it was given: {launcher}");
        assert!(line("setsid -w") < line("tail -s"), "{launcher}");
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
