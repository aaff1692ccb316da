//! Running the kprov binary against test nodes: an inventory written for a NodeSet, HOME set
//! to a temporary directory so nothing of the machine's own SSH set-up leaks in.

use std::path::{Path, PathBuf};
use std::process::Output;

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
        let mut y = format!("cluster:\n{cluster}ssh:\n  user: {user}\n  private_key: {}\n  known_hosts: {}\n  agent: false\n  connect_timeout: 5s\nhosts:\n",
            set.key_path.display(), set.known_hosts_path.display());
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

pub fn text(o: &Output) -> String {
    format!("--- stdout\n{}--- stderr\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}
