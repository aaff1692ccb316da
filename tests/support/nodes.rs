//! Real test nodes: Docker containers running systemd as PID 1 and OpenSSH, built from Debian
//! packages (tests/nodes/build-image.sh), each with its own address on a network the test
//! creates, its own host keys, and the test key in authorized_keys for root, ops (sudo with a
//! password) and deploy (sudo without).
//!
//! A test that cannot start its nodes fails with the reason; it never skips.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    Debian,
    Ubuntu,
    RaspberryPi,
}

impl Flavour {
    fn name(self) -> &'static str {
        match self {
            Flavour::Debian => "debian",
            Flavour::Ubuntu => "ubuntu",
            Flavour::RaspberryPi => "rpi",
        }
    }
}

pub struct Node {
    pub name: String,
    pub container: String,
    pub ip: Ipv4Addr,
    pub flavour: Flavour,
}

pub struct NodeSet {
    pub network: String,
    pub gateway: Ipv4Addr,
    pub nodes: Vec<Node>,
    /// The private test key (ed25519, no passphrase).
    pub key_path: PathBuf,
    /// A known_hosts file holding every node's real host key, by IP.
    pub known_hosts_path: PathBuf,
    pub workdir: tempfile::TempDir,
    _slots: Slots,
}

pub const SUDO_PASSWORD: &str = "ops-sudo-pw";

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn cache_dir() -> PathBuf {
    std::env::var_os("KPROV_TEST_CACHE").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/var/cache/kprov-test"))
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().unwrap_or_else(|e| panic!("cannot run docker: {e}; install Docker (scripts/test.sh does)"))
}

fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(out.status.success(), "docker {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The image for a flavour, built or loaded once per test process.
fn image(flavour: Flavour) -> String {
    static IMAGES: Mutex<Vec<(Flavour, String)>> = Mutex::new(Vec::new());
    let mut images = IMAGES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, tag)) = images.iter().find(|(f, _)| *f == flavour) {
        return tag.clone();
    }
    let out = Command::new("bash").arg(repo_root().join("tests/nodes/build-image.sh")).arg(flavour.name()).output().expect("bash runs");
    assert!(
        out.status.success(),
        "building the {} test-node image failed (run scripts/test.sh, which installs debootstrap and Docker):\n{}",
        flavour.name(),
        String::from_utf8_lossy(&out.stderr)
    );
    let tag = String::from_utf8_lossy(&out.stdout).trim().lines().last().unwrap_or_default().to_string();
    images.push((flavour, tag.clone()));
    tag
}

/// At most this many nodes run at once in one test process (2 cores).
const MAX_LIVE_NODES: usize = 12;

struct Slots(usize);

fn slots() -> &'static (Mutex<usize>, Condvar) {
    static S: OnceLock<(Mutex<usize>, Condvar)> = OnceLock::new();
    S.get_or_init(|| (Mutex::new(0), Condvar::new()))
}

impl Slots {
    fn take(n: usize) -> Slots {
        let (m, cv) = slots();
        let mut live = m.lock().unwrap_or_else(|p| p.into_inner());
        while *live + n > MAX_LIVE_NODES.max(n) {
            live = cv.wait(live).unwrap_or_else(|p| p.into_inner());
        }
        *live += n;
        Slots(n)
    }
}

impl Drop for Slots {
    fn drop(&mut self) {
        let (m, cv) = slots();
        *m.lock().unwrap_or_else(|p| p.into_inner()) -= self.0;
        cv.notify_all();
    }
}

fn random_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
    h.write_u32(std::process::id());
    format!("{:08x}", h.finish() as u32)
}

/// Machine settings systemd containers need, once per process.
fn prepare_machine() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        for (key, min) in [("fs/inotify/max_user_instances", 8192u64), ("fs/inotify/max_user_watches", 524288)] {
            let p = Path::new("/proc/sys").join(key);
            let cur: u64 = std::fs::read_to_string(&p).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
            if cur < min {
                let _ = std::fs::write(&p, min.to_string());
            }
        }
        cleanup_stale();
    });
}

/// Remove containers and networks left by crashed runs (older than an hour).
pub fn cleanup_stale() {
    let out = docker(&["ps", "-a", "--filter", "label=kprov-test=1", "--format", "{{.ID}} {{.CreatedAt}}"]);
    let now = std::time::SystemTime::now();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some((id, _)) = line.split_once(' ') else { continue };
        let created = docker(&["inspect", "-f", "{{.Created}}", id]);
        let created = String::from_utf8_lossy(&created.stdout).trim().to_string();
        let stale = chrono_like_age(&created, now).is_some_and(|age| age > Duration::from_secs(3600));
        if stale {
            docker(&["rm", "-f", id]);
        }
    }
    let _ = docker(&["network", "prune", "-f", "--filter", "label=kprov-test=1", "--filter", "until=1h"]);
}

/// Age of an RFC 3339 timestamp, parsed just enough (date and time, UTC).
fn chrono_like_age(ts: &str, now: std::time::SystemTime) -> Option<Duration> {
    let out = Command::new("date").args(["-d", ts, "+%s"]).output().ok()?;
    let secs: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    now.duration_since(std::time::UNIX_EPOCH + Duration::from_secs(secs)).ok()
}

impl NodeSet {
    /// Start one node per flavour, in parallel, and wait until each runs systemd and sshd.
    pub fn start(flavours: &[Flavour]) -> NodeSet {
        prepare_machine();
        let slots = Slots::take(flavours.len());
        let images: Vec<String> = flavours.iter().map(|f| image(*f)).collect();
        let id = random_suffix();
        let network = format!("kprov-test-{id}");
        // Docker only allows fixed container addresses on networks with a subnet of our own:
        // pick a free /24 in 10.213.0.0/16 (the test's own private network, nothing else).
        let mut created = None;
        for attempt in 0..64u32 {
            let third = (u32::from_str_radix(&id[..4], 16).unwrap_or(0) + attempt * 37) % 250 + 1;
            let subnet = format!("10.213.{third}.0/24");
            let gw = format!("10.213.{third}.1");
            let out = docker(&["network", "create", "--label", "kprov-test=1", "--subnet", &subnet, "--gateway", &gw, &network]);
            if out.status.success() {
                created = Some(third as u8);
                break;
            }
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("overlap") || err.contains("in use"), "docker network create failed: {err}");
        }
        let third = created.expect("no free /24 in 10.213.0.0/16 for a test network");
        let base = Ipv4Addr::new(10, 213, third, 0);
        let gateway = Ipv4Addr::new(10, 213, third, 1);
        let workdir = tempfile::tempdir().expect("tempdir");
        let mut set = NodeSet {
            network: network.clone(),
            gateway,
            nodes: vec![],
            key_path: workdir.path().join("id_ed25519"),
            known_hosts_path: workdir.path().join("known_hosts"),
            workdir,
            _slots: slots,
        };
        std::fs::copy(cache_dir().join("id_ed25519"), &set.key_path).expect("the test key exists once an image is built");
        for (i, f) in flavours.iter().enumerate() {
            let o = base.octets();
            let ip = Ipv4Addr::new(o[0], o[1], o[2], o[3] + 10 + i as u8);
            let name = format!("kn-{id}-{}", i + 1);
            set.nodes.push(Node { name: name.clone(), container: name, ip, flavour: *f });
        }
        // Start in parallel: each `docker run` takes about a second.
        let results: Vec<Result<(), String>> = std::thread::scope(|s| {
            let handles: Vec<_> = set
                .nodes
                .iter()
                .zip(&images)
                .map(|(n, img)| {
                    let network = network.as_str();
                    s.spawn(move || run_node(network, n, img))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("thread panicked".into()))).collect()
        });
        for r in results {
            if let Err(e) = r {
                panic!("test nodes did not start: {e}");
            }
        }
        let mut known = String::new();
        for n in &set.nodes {
            let key = set.wait_ready(n);
            known.push_str(&format!("{} {}\n", n.ip, key));
        }
        std::fs::write(&set.known_hosts_path, known).unwrap();
        set
    }

    fn wait_ready(&self, n: &Node) -> String {
        let deadline = Instant::now() + Duration::from_secs(if n.flavour == Flavour::RaspberryPi { 180 } else { 60 });
        loop {
            let out = docker(&[
                "exec",
                &n.container,
                "sh",
                "-c",
                "systemctl is-system-running 2>/dev/null; cat /etc/ssh/ssh_host_ed25519_key.pub 2>/dev/null; systemctl is-active ssh",
            ]);
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            let lines: Vec<&str> = text.lines().collect();
            let state = lines.first().copied().unwrap_or("");
            let key = lines.iter().find(|l| l.starts_with("ssh-ed25519")).map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "));
            let ssh_active = lines.last() == Some(&"active");
            if matches!(state, "running" | "degraded")
                && ssh_active
                && let Some(key) = key
                && std::net::TcpStream::connect_timeout(&(n.ip, 22).into(), Duration::from_secs(1)).is_ok()
            {
                return key;
            }
            if Instant::now() > deadline {
                let logs = docker(&["logs", "--tail", "30", &n.container]);
                panic!(
                    "node {} ({}) not ready: system state {state:?}, ssh active {ssh_active}\n{}{}",
                    n.name,
                    n.ip,
                    String::from_utf8_lossy(&logs.stdout),
                    String::from_utf8_lossy(&logs.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i]
    }

    /// Run a shell command on node `i` with docker exec (for setting up and asserting, not
    /// through kprov).
    pub fn exec(&self, i: usize, cmd: &str) -> Output {
        docker(&["exec", &self.nodes[i].container, "sh", "-c", cmd])
    }

    /// Like exec, but panics unless it succeeds; returns stdout.
    pub fn sh(&self, i: usize, cmd: &str) -> String {
        let out = self.exec(i, cmd);
        assert!(
            out.status.success(),
            "`{cmd}` on {} failed: {}{}",
            self.nodes[i].name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    pub fn pause(&self, i: usize) {
        docker_ok(&["pause", &self.nodes[i].container]);
    }

    pub fn unpause(&self, i: usize) {
        docker_ok(&["unpause", &self.nodes[i].container]);
    }

    pub fn stop(&self, i: usize) {
        docker_ok(&["stop", "-t", "5", &self.nodes[i].container]);
    }

    pub fn start_again(&self, i: usize) {
        docker_ok(&["start", &self.nodes[i].container]);
        self.wait_ready(&self.nodes[i]);
    }

    pub fn disconnect(&self, i: usize) {
        docker_ok(&["network", "disconnect", &self.network, &self.nodes[i].container]);
    }

    pub fn connect(&self, i: usize) {
        let ip = self.nodes[i].ip.to_string();
        docker_ok(&["network", "connect", "--ip", &ip, &self.network, &self.nodes[i].container]);
    }

    /// The node's ed25519 host key line (`ssh-ed25519 AAAA...`).
    pub fn host_key(&self, i: usize) -> String {
        self.sh(i, "cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub").trim().to_string()
    }

    /// Connections sshd accepted so far (counted from its own log, not from kprov).
    pub fn accepted_connections(&self, i: usize) -> usize {
        self.sh(i, "journalctl -u ssh --no-pager -o cat | grep -c 'Accepted publickey' || true").trim().parse().unwrap_or(0)
    }
}

fn run_node(network: &str, n: &Node, image: &str) -> Result<(), String> {
    let ip = n.ip.to_string();
    let out = docker(&[
        "run",
        "-d",
        "--name",
        &n.container,
        "--hostname",
        &n.name,
        "--label",
        "kprov-test=1",
        "--network",
        network,
        "--ip",
        &ip,
        "--restart",
        "unless-stopped",
        "--cap-add",
        "ALL",
        "--cap-drop",
        "SYS_RESOURCE",
        "--security-opt",
        "seccomp=unconfined",
        "--security-opt",
        "apparmor=unconfined",
        "--security-opt",
        "systempaths=unconfined",
        "--cgroupns=host",
        "-v",
        "/sys/fs/cgroup:/sys/fs/cgroup:rw",
        "--tmpfs",
        "/run",
        "--tmpfs",
        "/run/lock",
        "--tmpfs",
        "/tmp",
        image,
        "/sbin/init",
    ]);
    if out.status.success() { Ok(()) } else { Err(format!("docker run {}: {}", n.name, String::from_utf8_lossy(&out.stderr))) }
}

impl Drop for NodeSet {
    fn drop(&mut self) {
        let names: Vec<&str> = self.nodes.iter().map(|n| n.container.as_str()).collect();
        if !names.is_empty() {
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(names);
            docker(&args);
        }
        docker(&["network", "rm", &self.network]);
    }
}

/// A second network the test creates and attaches every node of a set to: a cluster network
/// apart from the SSH network (hosts[].internal_address). Removed when dropped (declare it
/// after its NodeSet, so that it goes first).
pub struct SecondNetwork {
    pub name: String,
    /// Each node's address on it, by node index.
    pub ips: Vec<Ipv4Addr>,
    containers: Vec<String>,
}

impl NodeSet {
    /// Create a second network (a free /24 in 10.214.0.0/16, the test's own) and connect every
    /// node to it with a fixed address.
    pub fn second_network(&self) -> SecondNetwork {
        let id = random_suffix();
        let name = format!("kprov-test-cl-{id}");
        let mut third = None;
        for attempt in 0..64u32 {
            let t = (u32::from_str_radix(&id[..4], 16).unwrap_or(0) + attempt * 37) % 250 + 1;
            let out = docker(&[
                "network",
                "create",
                "--label",
                "kprov-test=1",
                "--subnet",
                &format!("10.214.{t}.0/24"),
                "--gateway",
                &format!("10.214.{t}.1"),
                &name,
            ]);
            if out.status.success() {
                third = Some(t as u8);
                break;
            }
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("overlap") || err.contains("in use"), "docker network create failed: {err}");
        }
        let third = third.expect("no free /24 in 10.214.0.0/16 for a second test network");
        let ips: Vec<Ipv4Addr> = (0..self.nodes.len()).map(|i| Ipv4Addr::new(10, 214, third, 10 + i as u8)).collect();
        for (n, ip) in self.nodes.iter().zip(&ips) {
            docker_ok(&["network", "connect", "--ip", &ip.to_string(), &name, &n.container]);
        }
        SecondNetwork { name, ips, containers: self.nodes.iter().map(|n| n.container.clone()).collect() }
    }
}

impl Drop for SecondNetwork {
    fn drop(&mut self) {
        for c in &self.containers {
            docker(&["network", "disconnect", "-f", &self.name, c]);
        }
        docker(&["network", "rm", &self.name]);
    }
}
