//! The typed fact queries and their typed answers.

use serde::{Deserialize, Serialize};

/// What a resource needs to know about a host. Ordered and hashable so that the queries of
/// all resources on a host collapse into one deduplicated, deterministic set.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FactQuery {
    /// OS release, architecture, kernel, CPUs, memory, hostname, board model.
    Os,
    /// Existence, metadata, SHA-256 and (up to [`FILE_CONTENT_LIMIT`] bytes) content.
    File { path: String },
    /// Runtime value from /proc/sys.
    Sysctl { key: String },
    /// Loaded (/proc/modules) or built into the kernel (modules.builtin).
    Module { name: String },
    /// Active swap devices, swap lines in /etc/fstab, and what brings swap back at boot:
    /// systemd `.swap` units, swap generators (rpi-swap, zram-generator) and their
    /// configuration.
    Swap,
    /// The command line the running kernel booted with (/proc/cmdline) and which cgroup
    /// controllers it made available.
    Boot,
    /// dpkg status, installed version and hold mark.
    Package { name: String },
    /// Package work left half-done: an interrupted dpkg (/var/lib/dpkg/updates not empty) and
    /// the packages whose status is not settled (unpacked, half-configured, half-installed,
    /// awaiting triggers, or marked reinst-required), as `dpkg --audit` would list them.
    Dpkg,
    /// systemd unit enablement and activity.
    Service { name: String },
    /// Exit status of a read-only guard command (`unless`/`only_if`).
    Command { command: String },
}

impl FactQuery {
    /// A short name for messages: `file /etc/x`, `package kubelet`, `command "test -f /x"`.
    pub fn label(&self) -> String {
        match self {
            FactQuery::Os => "os".into(),
            FactQuery::File { path } => format!("file {path}"),
            FactQuery::Sysctl { key } => format!("sysctl {key}"),
            FactQuery::Module { name } => format!("module {name}"),
            FactQuery::Swap => "swap".into(),
            FactQuery::Boot => "boot".into(),
            FactQuery::Dpkg => "dpkg".into(),
            FactQuery::Package { name } => format!("package {name}"),
            FactQuery::Service { name } => format!("service {name}"),
            FactQuery::Command { command } => format!("command {command:?}"),
        }
    }
}

/// Files larger than this are compared by hash only; their content is not fetched.
pub const FILE_CONTENT_LIMIT: u64 = 128 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FactValue {
    Os(OsFact),
    File(FileFact),
    Sysctl { value: Option<String> },
    Module { loaded: bool, builtin: bool },
    Swap(SwapFact),
    Boot(BootFact),
    Package(PackageFact),
    Dpkg(DpkgFact),
    Service(ServiceFact),
    Command { exit_status: i32 },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsFact {
    /// `ID` from /etc/os-release: debian, ubuntu, raspbian...
    pub id: String,
    /// `ID_LIKE` from /etc/os-release.
    pub id_like: String,
    pub version_id: String,
    /// `VERSION_CODENAME`: bookworm, noble...
    pub codename: String,
    pub pretty_name: String,
    /// dpkg architecture: amd64, arm64, armhf.
    pub arch: String,
    /// `uname -m`: x86_64, aarch64.
    pub machine: String,
    pub kernel: String,
    pub hostname: String,
    pub cpus: u32,
    pub memory_kib: u64,
    /// /proc/device-tree/model when present (e.g. "Raspberry Pi 4 Model B Rev 1.4").
    pub board_model: String,
    /// /etc/rpi-issue exists (Raspberry Pi OS).
    pub raspberry_pi_os: bool,
    /// The memory cgroup controller is enabled (cgroup v1 or v2).
    pub memory_cgroup: bool,
    /// Listening sockets as `tcp/PORT` or `udp/PORT`, sorted and deduplicated.
    #[serde(default)]
    pub listening: Vec<String>,
    /// MAC addresses of the network interfaces other than loopback.
    #[serde(default)]
    pub macs: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileFact {
    pub exists: bool,
    /// `regular file`, `directory`, `symbolic link`... as stat prints it.
    pub file_type: String,
    /// Octal permission bits, e.g. 644.
    pub mode: u32,
    pub owner: String,
    pub group: String,
    pub size: u64,
    pub sha256: String,
    /// Present when the file is small enough; used for diffs in the plan.
    pub content: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwapFact {
    /// Active swap devices from /proc/swaps.
    pub active: Vec<String>,
    /// Uncommented /etc/fstab lines whose type is swap.
    pub fstab: Vec<String>,
    /// `.swap` unit files in systemd's unit search path (/etc, /run, the generator
    /// directories, /usr/local/lib, /usr/lib), in that order of precedence.
    #[serde(default)]
    pub units: Vec<SwapUnit>,
    /// Names of the units that swap.target wants or requires (its `.wants`/`.requires` links).
    #[serde(default)]
    pub wanted: Vec<String>,
    /// Swap generators found in systemd's generator directories, as (name, path); a path
    /// that is a link to /dev/null is a masked generator.
    #[serde(default)]
    pub generators: Vec<SwapGenerator>,
    /// Configuration files of the swap providers (rpi-swap's swap.conf and its drop-ins,
    /// zram-generator.conf and its drop-ins), in the order read.
    #[serde(default)]
    pub configs: Vec<ConfigFile>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwapUnit {
    /// The unit file's path, e.g. /run/systemd/generator/swap.img.swap.
    pub path: String,
    /// The file is a link to /dev/null: the unit is masked.
    #[serde(default)]
    pub masked: bool,
    /// Its `SourcePath=` (the file a generator made it from), or empty.
    #[serde(default)]
    pub source: String,
}

impl SwapUnit {
    /// The unit name: the file name.
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwapGenerator {
    pub path: String,
    #[serde(default)]
    pub masked: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigFile {
    pub path: String,
    /// A link to /dev/null (how systemd-style configuration masks a vendor file).
    #[serde(default)]
    pub masked: bool,
    /// Its section headers and `key=value` lines, as written (comments and blank lines left out).
    #[serde(default)]
    pub lines: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootFact {
    /// /proc/cmdline: what the kernel booted with, after the firmware and bootloader added
    /// their parameters (a Raspberry Pi's firmware puts its own before cmdline.txt's).
    pub cmdline: String,
    /// /sys/fs/cgroup/cgroup.controllers on a cgroup v2 host (None when there is no such file).
    #[serde(default)]
    pub cgroup_v2_controllers: Option<String>,
    /// The `enabled` column of the memory row of /proc/cgroups (None when there is no row:
    /// kernels from 6.12 built without CONFIG_MEMCG_V1 list no memory row there).
    #[serde(default)]
    pub cgroup_v1_memory: Option<bool>,
}

impl BootFact {
    /// The memory controller is available: in the v2 root's controllers, or enabled in v1.
    pub fn memory_controller(&self) -> bool {
        self.cgroup_v2_controllers.as_deref().is_some_and(|c| c.split_whitespace().any(|w| w == "memory")) || self.cgroup_v1_memory == Some(true)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageFact {
    /// Fully installed (dpkg status `ii` or `hi`).
    pub installed: bool,
    pub version: Option<String>,
    pub held: bool,
}

/// What an interrupted `dpkg` left behind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DpkgFact {
    /// /var/lib/dpkg/updates holds journal files: a dpkg run was cut before it recorded its work.
    #[serde(default)]
    pub journal: bool,
    /// Packages whose status is not settled, as `NAME STATUS` (`containerd.io unpacked`,
    /// `kubelet half-installed`, `kprov-fault-slow reinstreq`).
    #[serde(default)]
    pub unsettled: Vec<String>,
}

impl DpkgFact {
    /// dpkg's work was interrupted: `dpkg --configure -a` (and a reinstall) are needed.
    pub fn interrupted(&self) -> bool {
        self.journal || !self.unsettled.is_empty()
    }

    /// Packages that `dpkg --configure -a` cannot finish: half-installed or marked
    /// reinst-required; they are installed again.
    pub fn to_reinstall(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .unsettled
            .iter()
            .filter_map(|l| l.split_once(' '))
            .filter(|(_, st)| st.split(',').any(|s| s == "half-installed" || s == "reinstreq"))
            .map(|(n, _)| n)
            .collect();
        v.dedup();
        v
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceFact {
    /// The unit file exists.
    pub exists: bool,
    /// `systemctl is-enabled` said enabled (or static/alias counted as enabled).
    pub enabled: bool,
    /// `systemctl is-active` said active.
    pub active: bool,
    /// The raw is-enabled answer (masked, disabled, ...).
    pub enablement: String,
}
