//! `kprov sandbox`: local hosts to try kprov on without hardware. N Docker containers running
//! systemd and OpenSSH (as kind and Molecule do), from an image built on this machine from
//! Debian packages by the test nodes' recipe ([`recipe`]; no registry pull), a key of the
//! sandbox's own, their host keys in a known_hosts file of its own, and a ready inventory.
//!
//! To kprov the sandbox hosts are ordinary hosts: nothing outside this module and
//! `cli/sandbox.rs` knows about them.
//!
//! This file holds the decisions, pure and tested from values: the state file (what `up` has
//! created, each thing recorded before it is created, so `down` removes exactly that, also
//! after a crash), the refusal of a second `up`, the nodes' names and addresses, the inventory
//! and what `down` removes. [`docker`] carries them out.

pub mod docker;
pub mod recipe;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The state file's name in the sandbox directory.
pub const STATE_FILE: &str = "sandbox.json";
/// The label on every container and network of a sandbox; the value is the sandbox's id.
pub const LABEL: &str = "kprov-sandbox";
/// Most nodes one sandbox starts.
pub const MAX_NODES: usize = 9;
/// Files kprov itself writes beside an inventory when it is used (`kprov apply`'s facts
/// snapshot): removed by `down` too when they are there.
pub const DERIVED_FILES: &[&str] = &["inventory.facts.json"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Flavour {
    /// Ubuntu 24.04's release files and swap on Debian's packages (amd64).
    Ubuntu,
    /// Debian 12 (amd64).
    Debian,
    /// Raspberry Pi OS bookworm's files on a Debian arm64 userland (under qemu-user).
    Rpi,
}

impl Flavour {
    /// The test nodes' name for it (tests/nodes/flavour-NAME.sh).
    pub fn name(self) -> &'static str {
        match self {
            Flavour::Ubuntu => "ubuntu",
            Flavour::Debian => "debian",
            Flavour::Rpi => "rpi",
        }
    }

    /// Who kprov logs in as: `deploy` (sudo without a password) on the amd64 flavours, as on
    /// a real host; root on the emulated one, where qemu-user ignores setuid (sudo cannot run).
    pub fn login_user(self) -> &'static str {
        match self {
            Flavour::Rpi => "root",
            _ => "deploy",
        }
    }

    /// How long a node may take to boot to sshd (emulated arm64 is slow).
    pub fn boot_limit_secs(self) -> u64 {
        match self {
            Flavour::Rpi => 300,
            _ => 120,
        }
    }
}

/// What `up` has created, or is about to: each entry is written here before the thing exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub id: String,
    pub flavour: Flavour,
    /// The sandbox directory, absolute.
    pub dir: PathBuf,
    /// Whether `up` created the directory (then `down` removes it once it is empty).
    pub created_dir: bool,
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub network: Option<Network>,
    #[serde(default)]
    pub nodes: Vec<Node>,
    /// Files written in the directory, by name (the state file aside).
    #[serde(default)]
    pub files: Vec<String>,
    /// `up` finished: every node runs and the inventory is written.
    #[serde(default)]
    pub complete: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    pub name: String,
    pub subnet: String,
    pub gateway: Ipv4Addr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// The host's name in the inventory.
    pub host: String,
    pub container: String,
    pub address: Ipv4Addr,
    pub role: String,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SandboxError {
    #[error("a sandbox is already up in {} (id {id})", dir.display())]
    #[diagnostic(code(kprov::sandbox::exists))]
    AlreadyUp {
        dir: PathBuf,
        id: String,
        #[help]
        help: String,
    },

    #[error("{} already holds {file}, which kprov sandbox up would write", dir.display())]
    #[diagnostic(code(kprov::sandbox::dir_in_use), help("choose another directory with --dir"))]
    DirInUse { dir: PathBuf, file: String },

    #[error("no sandbox in {} (no sandbox.json)", dir.display())]
    #[diagnostic(code(kprov::sandbox::none))]
    NoSandbox {
        dir: PathBuf,
        #[help]
        help: String,
    },

    #[error("--nodes {0}: a sandbox has 1 to {max} nodes", max = MAX_NODES)]
    #[diagnostic(code(kprov::sandbox::nodes))]
    Nodes(usize),

    #[error("the state file {} cannot be read: {message}", path.display())]
    #[diagnostic(code(kprov::sandbox::state), help("remove the sandbox's containers and network by hand: docker ps -a --filter label=kprov-sandbox"))]
    State { path: PathBuf, message: String },

    #[error("{what}: {message}")]
    #[diagnostic(code(kprov::sandbox::failed))]
    Failed {
        what: String,
        message: String,
        #[help]
        help: String,
    },
}

impl SandboxError {
    pub fn already_up(dir: &Path, id: &str) -> SandboxError {
        let d = shell_path(dir);
        SandboxError::AlreadyUp {
            dir: dir.to_path_buf(),
            id: id.to_string(),
            help: format!("use it (kprov sandbox status --dir {d}), or remove it first: kprov sandbox down --dir {d}"),
        }
    }

    pub fn no_sandbox(dir: &Path) -> SandboxError {
        SandboxError::NoSandbox { dir: dir.to_path_buf(), help: format!("start one with kprov sandbox up --dir {}", shell_path(dir)) }
    }
}

fn shell_path(p: &Path) -> String {
    let s = p.display().to_string();
    crate::shell::quote(&s).map(|c| c.into_owned()).unwrap_or(s.clone())
}

impl State {
    pub fn new(id: &str, flavour: Flavour, dir: &Path, created_dir: bool) -> State {
        State {
            id: id.to_string(),
            flavour,
            dir: dir.to_path_buf(),
            created_dir,
            image: None,
            network: None,
            nodes: vec![],
            files: vec![],
            complete: false,
        }
    }

    pub fn path(dir: &Path) -> PathBuf {
        dir.join(STATE_FILE)
    }

    pub fn parse(path: &Path, text: &str) -> Result<State, SandboxError> {
        serde_json::from_str(text).map_err(|e| SandboxError::State { path: path.to_path_buf(), message: e.to_string() })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the state serializes") + "\n"
    }

    /// The network's name for this sandbox.
    pub fn network_name(&self) -> String {
        format!("kprov-sandbox-{}", self.id)
    }

    /// Record a file before it is written.
    pub fn record_file(&mut self, name: &str) {
        if !self.files.iter().any(|f| f == name) {
            self.files.push(name.to_string());
        }
    }
}

/// Whether `up` may start in `dir`: not over a sandbox that is there (complete or half made),
/// nor over files of the user's that it would write.
pub fn check_up(existing: Option<&State>, dir: &Path, present: &[String]) -> Result<(), SandboxError> {
    if let Some(s) = existing {
        return Err(SandboxError::already_up(dir, &s.id));
    }
    if let Some(file) = WRITTEN.iter().find(|f| present.iter().any(|p| p == *f)) {
        return Err(SandboxError::DirInUse { dir: dir.to_path_buf(), file: file.to_string() });
    }
    Ok(())
}

/// The files `up` writes in the directory.
pub const WRITTEN: &[&str] = &["id_ed25519", "id_ed25519.pub", "known_hosts", "inventory.yaml"];

pub fn check_nodes(n: usize) -> Result<(), SandboxError> {
    if (1..=MAX_NODES).contains(&n) { Ok(()) } else { Err(SandboxError::Nodes(n)) }
}

/// Subnets to try for the sandbox's network, in order: /24s of 10.216.0.0/16 (the test suite
/// uses 10.213 and 10.214), starting at one the id picks so that two sandboxes rarely collide.
pub fn subnet_candidates(id: &str) -> Vec<(String, Ipv4Addr, u8)> {
    let start = u32::from_str_radix(id.get(..4).unwrap_or("0"), 16).unwrap_or(0);
    (0..64u32)
        .map(|attempt| {
            let third = ((start + attempt * 37) % 250 + 1) as u8;
            (format!("10.216.{third}.0/24"), Ipv4Addr::new(10, 216, third, 1), third)
        })
        .collect()
}

/// The nodes of a sandbox on the network's /24: node1 the control plane, the others workers,
/// at .11, .12, ...
pub fn nodes(id: &str, third: u8, n: usize) -> Vec<Node> {
    (1..=n)
        .map(|i| Node {
            host: format!("node{i}"),
            container: format!("kprov-sandbox-{id}-node{i}"),
            address: Ipv4Addr::new(10, 216, third, 10 + i as u8),
            role: if i == 1 { "control-plane".into() } else { "worker".into() },
        })
        .collect()
}

#[derive(Serialize)]
struct Inventory<'a> {
    cluster: InvCluster,
    ssh: InvSsh,
    hosts: Vec<InvHost<'a>>,
}

#[derive(Serialize)]
struct InvCluster {
    name: String,
    cni: String,
}

#[derive(Serialize)]
struct InvSsh {
    user: String,
    private_key: String,
    known_hosts: String,
    agent: bool,
    host_key_policy: String,
}

#[derive(Serialize)]
struct InvHost<'a> {
    name: &'a str,
    address: String,
    roles: Vec<&'a str>,
}

/// The sandbox's inventory: its hosts, its key and known_hosts (strict host-key checking),
/// written through the YAML serializer.
pub fn inventory(state: &State) -> String {
    let inv = Inventory {
        cluster: InvCluster { name: "sandbox".into(), cni: "flannel".into() },
        ssh: InvSsh {
            user: state.flavour.login_user().into(),
            private_key: state.dir.join("id_ed25519").display().to_string(),
            known_hosts: state.dir.join("known_hosts").display().to_string(),
            agent: false,
            host_key_policy: "strict".into(),
        },
        hosts: state.nodes.iter().map(|n| InvHost { name: &n.host, address: n.address.to_string(), roles: vec![n.role.as_str()] }).collect(),
    };
    let body = serde_saphyr::to_string(&inv).expect("the inventory serializes");
    format!(
        "# A kprov sandbox ({} {} node{}, id {}), written by `kprov sandbox up`; removed by\n# `kprov sandbox down`. Without Internet access only `--tags prepare` runs; see\n# docs/troubleshooting.md and docs/inventory.md (mirrors:) to point the package\n# repositories at a local mirror.\n{body}",
        state.nodes.len(),
        state.flavour.name(),
        if state.nodes.len() == 1 { "" } else { "s" },
        state.id
    )
}

/// One thing `down` removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    Container(String),
    Network(String),
    File(PathBuf),
    /// The directory, when `up` created it and nothing else is left in it.
    Dir(PathBuf),
}

/// What `down` removes, in order: the containers (last made first), the network, the files
/// `up` wrote (and kprov's own snapshot beside the inventory), the state file, the directory.
/// Everything recorded is listed, made or not: `down` after a crash does not know how far
/// `up` got, and removing what is not there is no error.
pub fn removals(state: &State) -> Vec<Removal> {
    let mut out: Vec<Removal> = state.nodes.iter().rev().map(|n| Removal::Container(n.container.clone())).collect();
    if let Some(n) = &state.network {
        out.push(Removal::Network(n.name.clone()));
    }
    for f in state.files.iter().map(String::as_str).chain(DERIVED_FILES.iter().copied()) {
        out.push(Removal::File(state.dir.join(f)));
    }
    out.push(Removal::File(State::path(&state.dir)));
    if state.created_dir {
        out.push(Removal::Dir(state.dir.clone()));
    }
    out
}

/// One node's line of `kprov sandbox status`.
pub fn status_line(n: &Node, docker_state: &str) -> String {
    format!("{:<8} {:<15} {:<14} {:<10} {}", n.host, n.address, n.role, docker_state, n.container)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        let mut s = State::new("ab12cd34", Flavour::Debian, Path::new("/home/me/sb"), true);
        s.network = Some(Network { name: s.network_name(), subnet: "10.216.5.0/24".into(), gateway: Ipv4Addr::new(10, 216, 5, 1) });
        s.nodes = nodes("ab12cd34", 5, 3);
        for f in WRITTEN {
            s.record_file(f);
        }
        s
    }

    #[test]
    fn nodes_are_one_control_plane_and_workers_on_the_sandbox_subnet() {
        let n = nodes("ab12cd34", 5, 3);
        assert_eq!(
            n[0],
            Node {
                host: "node1".into(),
                container: "kprov-sandbox-ab12cd34-node1".into(),
                address: Ipv4Addr::new(10, 216, 5, 11),
                role: "control-plane".into()
            }
        );
        assert_eq!(n[2].role, "worker");
        assert_eq!(n[2].address, Ipv4Addr::new(10, 216, 5, 13));
        assert!(check_nodes(0).is_err() && check_nodes(10).is_err() && check_nodes(3).is_ok());
    }

    #[test]
    fn subnets_stay_in_the_sandbox_range_and_differ() {
        let c = subnet_candidates("ab12cd34");
        assert_eq!(c.len(), 64);
        assert!(c.iter().all(|(s, gw, t)| s == &format!("10.216.{t}.0/24") && *gw == Ipv4Addr::new(10, 216, *t, 1) && *t >= 1 && *t <= 250));
        let mut thirds: Vec<u8> = c.iter().map(|x| x.2).collect();
        thirds.dedup();
        assert_eq!(thirds.len(), 64);
    }

    #[test]
    fn a_second_up_is_refused_and_the_users_files_are_not_overwritten() {
        let s = state();
        let e = check_up(Some(&s), &s.dir, &[]).unwrap_err();
        assert!(e.to_string().contains("already up in /home/me/sb (id ab12cd34)"), "{e}");
        let e = check_up(None, Path::new("/x"), &["notes.txt".into(), "inventory.yaml".into()]).unwrap_err();
        assert!(matches!(e, SandboxError::DirInUse { ref file, .. } if file == "inventory.yaml"), "{e}");
        assert!(check_up(None, Path::new("/x"), &["notes.txt".into()]).is_ok());
    }

    #[test]
    fn down_removes_what_was_recorded_containers_first_and_the_dir_last() {
        let r = removals(&state());
        assert_eq!(r[0], Removal::Container("kprov-sandbox-ab12cd34-node3".into()));
        assert_eq!(r[3], Removal::Network("kprov-sandbox-ab12cd34".into()));
        assert!(r.contains(&Removal::File("/home/me/sb/inventory.facts.json".into())));
        assert_eq!(r[r.len() - 2], Removal::File("/home/me/sb/sandbox.json".into()));
        assert_eq!(r.last(), Some(&Removal::Dir("/home/me/sb".into())));
        // A directory up did not make stays.
        let mut s = state();
        s.created_dir = false;
        assert!(!removals(&s).iter().any(|x| matches!(x, Removal::Dir(_))));
        // After a crash before the network: only the state file (and the directory).
        let early = State::new("ab12cd34", Flavour::Rpi, Path::new("/tmp/sb"), true);
        assert_eq!(
            removals(&early),
            vec![Removal::File("/tmp/sb/inventory.facts.json".into()), Removal::File("/tmp/sb/sandbox.json".into()), Removal::Dir("/tmp/sb".into())]
        );
    }

    #[test]
    fn the_state_reads_back_and_a_broken_one_is_named() {
        let s = state();
        assert_eq!(State::parse(Path::new("/x/sandbox.json"), &s.to_json()).unwrap(), s);
        let e = State::parse(Path::new("/x/sandbox.json"), "{").unwrap_err();
        assert!(e.to_string().starts_with("the state file /x/sandbox.json cannot be read"), "{e}");
    }

    #[test]
    fn the_inventory_is_valid_and_names_the_sandbox_key_and_known_hosts() {
        let s = state();
        let text = inventory(&s);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inventory.yaml");
        std::fs::write(&path, &text).unwrap();
        let loaded = crate::inventory::load(&path);
        assert_eq!(loaded.errors().count(), 0, "{:?}\n{text}", loaded.diagnostics);
        let inv = loaded.inventory.expect("valid");
        assert_eq!(inv.hosts.len(), 3);
        assert_eq!(inv.hosts[0].name, "node1");
        assert_eq!(inv.hosts[1].address, "10.216.5.12");
        assert!(text.contains("private_key: /home/me/sb/id_ed25519"), "{text}");
        assert!(text.contains("known_hosts: /home/me/sb/known_hosts"), "{text}");
        assert!(text.contains("host_key_policy: strict"), "{text}");
        assert!(text.contains("user: deploy"), "{text}");
        // A directory with YAML's special characters still reads back as itself.
        let mut odd = state();
        odd.dir = PathBuf::from("/tmp/a: b #c");
        let text = inventory(&odd);
        let v: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(v["ssh"]["private_key"], "/tmp/a: b #c/id_ed25519");
    }
}
