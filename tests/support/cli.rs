//! Running the kprov binary against test nodes: an inventory written for a NodeSet, HOME set
//! to a temporary directory so nothing of the machine's own SSH set-up leaks in.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::nodes::NodeSet;

pub struct Kprov {
    pub home: tempfile::TempDir,
    pub dir: tempfile::TempDir,
}

impl Kprov {
    pub fn new() -> Kprov {
        Kprov { home: tempfile::tempdir().unwrap(), dir: tempfile::tempdir().unwrap() }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Write an inventory: `hosts` are (node index, name, roles); `extra` is YAML appended
    /// under `cluster:` (indented by the caller), and `tail` is appended at the top level.
    pub fn inventory(&self, set: &NodeSet, user: &str, hosts: &[(usize, &str)], cluster: &str, tail: &str) -> PathBuf {
        let mut y = format!(
            "cluster:\n{cluster}ssh:\n  user: {user}\n  private_key: {}\n  known_hosts: {}\n  agent: false\n  connect_timeout: 5s\nhosts:\n",
            set.key_path.display(),
            set.known_hosts_path.display()
        );
        for (i, (node, roles)) in hosts.iter().enumerate() {
            y.push_str(&format!("  - {{ name: h{}, address: {}, roles: [{roles}] }}\n", i + 1, set.node(*node).ip));
        }
        y.push_str(tail);
        let p = self.path("inventory.yaml");
        std::fs::write(&p, y).unwrap();
        p
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_env(args, &[])
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = assert_cmd::Command::cargo_bin("kprov").unwrap();
        cmd.args(args).env("HOME", self.home.path()).env("NO_COLOR", "1").env_remove("SSH_AUTH_SOCK").current_dir(self.dir.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }
}

impl Kprov {
    /// Run kprov on a pseudo-terminal (util-linux `script`), with `input` typed at it: what
    /// an operator at a terminal sees and does. Standard output holds the whole screen.
    pub fn run_tty(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        let mut line = shlex::try_quote(env!("CARGO_BIN_EXE_kprov")).unwrap().into_owned();
        for a in args {
            line.push(' ');
            line.push_str(&shlex::try_quote(a).unwrap());
        }
        let mut child = std::process::Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .env("HOME", self.home.path())
            .env("NO_COLOR", "1")
            .env_remove("SSH_AUTH_SOCK")
            .current_dir(self.dir.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("script (util-linux) runs");
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }
}

impl Kprov {
    /// Start kprov in the background and return it with a channel of its stderr lines (for a
    /// fault or a Ctrl-C timed to a line of its progress; see [`wait_for`] and [`finish`]).
    pub fn spawn(&self, args: &[&str]) -> (std::process::Child, mpsc::Receiver<String>) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kprov"))
            .args(args)
            .env("HOME", self.home.path())
            .env("NO_COLOR", "1")
            .env_remove("SSH_AUTH_SOCK")
            .current_dir(self.dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        (child, rx)
    }
}

/// Wait until a stderr line contains `needle`; returns every line seen so far.
pub fn wait_for(rx: &mpsc::Receiver<String>, needle: &str, seen: &mut Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            let hit = line.contains(needle);
            seen.push(line);
            if hit {
                return;
            }
        }
    }
    panic!("no line with {needle:?} within 120 s:\n{}", seen.join("\n"));
}

/// Wait for the process to end (bounded), then gather its output.
pub fn finish(mut child: std::process::Child, rx: mpsc::Receiver<String>, mut seen: Vec<String>, limit: Duration) -> (Output, Duration) {
    let started = Instant::now();
    loop {
        if let Some(_status) = child.try_wait().unwrap() {
            break;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("kprov did not end within {limit:?} after the fault:\n{}", seen.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let took = started.elapsed();
    let out = child.wait_with_output().unwrap();
    while let Ok(l) = rx.recv_timeout(Duration::from_millis(500)) {
        seen.push(l);
    }
    let mut out = out;
    out.stderr = seen.join("\n").into_bytes();
    (out, took)
}

pub fn text(o: &Output) -> String {
    format!("--- stdout\n{}--- stderr\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}
