//! Typed resources: the desired state of one thing on one host.
//!
//! Each resource type lives in its own file and implements [`Resource`]:
//! - [`Resource::facts`] names the fact queries its check needs (gathered in one round trip);
//! - [`Resource::check`] compares the desired state with the facts and returns either a no-op
//!   with the reason, or a [`Change`] that the plan shows (pure: no I/O);
//! - [`Resource::apply_script`] returns the POSIX sh text that makes the change. Every value in
//!   it is quoted with [`crate::shell::quote`], and files are written atomically (temp + rename).
//!
//! Roles declare resources in YAML as `kind: {fields}` (externally tagged), e.g.
//! `sysctl: { file: /etc/sysctl.d/k8s.conf, values: { net.ipv4.ip_forward: "1" } }`.

pub mod apt_packages;
mod apt_repository;
pub mod capture;
mod command;
mod file;
mod kernel_cmdline;
mod kernel_module;
mod line;
mod preflight;
mod reboot;
mod refuse;
mod service;
mod swap_off;
mod sysctl;

pub use apt_packages::AptPackages;
pub use apt_repository::{AptRepository, keyring_fingerprints};
pub use capture::Capture;
pub use command::Command;
pub use file::File;
pub use kernel_cmdline::KernelCmdline;
pub use kernel_module::KernelModule;
pub use line::Line;
pub use preflight::Preflight;
pub use reboot::{MemoryCgroup, Reboot, Verify, memory_cgroup_check};
pub use refuse::Refuse;
pub use service::Service;
pub use swap_off::{Provider as SwapProvider, SwapOff};
pub use sysctl::Sysctl;

use serde::{Deserialize, Serialize};

use crate::facts::{FactQuery, HostFacts};
use crate::shell::QuoteError;

/// What every resource type can do.
pub trait Resource {
    /// The fact queries [`Resource::check`] reads.
    fn facts(&self) -> Vec<FactQuery>;
    /// Desired state against facts: a no-op with its reason, or the change to make.
    fn check(&self, ctx: &CheckContext<'_>) -> Result<Check, CheckError>;
    /// The shell text that makes `change` happen. Runs under `set -e` as root (become).
    fn apply_script(&self, ctx: &CheckContext<'_>, change: &Change) -> Result<String, QuoteError>;
    /// What the apply script downloads onto the host and how the host checks it before use
    /// (shown in plans: nothing is trusted by its URL alone).
    fn fetches(&self) -> Vec<Fetch> {
        Vec::new()
    }
}

/// A download a resource makes on the host, with the check the host runs before using it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fetch {
    pub url: String,
    #[serde(flatten)]
    pub check: FetchCheck,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "check", rename_all = "snake_case")]
pub enum FetchCheck {
    /// The file's SHA-256 must be this.
    Sha256 { sha256: String },
    /// The file must hold exactly one OpenPGP primary key with one of these fingerprints.
    KeyFingerprint { fingerprints: Vec<String> },
    /// Trusted by its URL alone, and why (plans flag it on every run).
    Unverified { reason: String },
}

/// What a check may read: the host's facts, and whether anything this resource is declared to
/// follow (`notify`-style dependencies such as a service's config file) changes in this run.
pub struct CheckContext<'a> {
    pub facts: &'a HostFacts,
    pub dependency_changed: bool,
    /// Values captured earlier in this apply (join commands...). Empty while planning.
    pub captures: &'a Captures,
}

/// Captured values by capture name. Always secret: they never reach a plan or a log.
pub type Captures = std::collections::BTreeMap<String, crate::secret::Secret>;

#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    NoOp { reason: String },
    Change(Change),
}

/// Why a check could not decide: a fact it needed is missing or the host is unsuitable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error("fact {0} was not gathered")]
    MissingFact(String),
    #[error("{0}")]
    Unsupported(String),
    /// An earlier run of a command stopped half-way (see `command`'s `unfinished_if`).
    #[error("{0}")]
    Unfinished(String),
}

/// Every resource type, as declared in roles (externally tagged: `file: {...}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ResourceSpec {
    File(File),
    Line(Line),
    Preflight(Preflight),
    Sysctl(Sysctl),
    KernelModule(KernelModule),
    KernelCmdline(KernelCmdline),
    SwapOff(SwapOff),
    AptRepository(AptRepository),
    AptPackages(AptPackages),
    Service(Service),
    Command(Command),
    Capture(Capture),
    Reboot(Reboot),
    Refuse(Refuse),
}

impl ResourceSpec {
    pub fn as_resource(&self) -> &dyn Resource {
        match self {
            ResourceSpec::File(r) => r,
            ResourceSpec::Line(r) => r,
            ResourceSpec::Preflight(r) => r,
            ResourceSpec::Sysctl(r) => r,
            ResourceSpec::KernelModule(r) => r,
            ResourceSpec::KernelCmdline(r) => r,
            ResourceSpec::SwapOff(r) => r,
            ResourceSpec::AptRepository(r) => r,
            ResourceSpec::AptPackages(r) => r,
            ResourceSpec::Service(r) => r,
            ResourceSpec::Command(r) => r,
            ResourceSpec::Capture(r) => r,
            ResourceSpec::Reboot(r) => r,
            ResourceSpec::Refuse(r) => r,
        }
    }

    /// The type name as written in roles and shown in plans.
    pub fn kind(&self) -> &'static str {
        match self {
            ResourceSpec::File(_) => "file",
            ResourceSpec::Line(_) => "line",
            ResourceSpec::Preflight(_) => "preflight",
            ResourceSpec::Sysctl(_) => "sysctl",
            ResourceSpec::KernelModule(_) => "kernel_module",
            ResourceSpec::KernelCmdline(_) => "kernel_cmdline",
            ResourceSpec::SwapOff(_) => "swap_off",
            ResourceSpec::AptRepository(_) => "apt_repository",
            ResourceSpec::AptPackages(_) => "apt_packages",
            ResourceSpec::Service(_) => "service",
            ResourceSpec::Command(_) => "command",
            ResourceSpec::Capture(_) => "capture",
            ResourceSpec::Reboot(_) => "reboot",
            ResourceSpec::Refuse(_) => "refuse",
        }
    }
}

/// A planned change, as the plan shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub action: Action,
    /// One line: what will happen, e.g. `write /etc/sysctl.d/k8s.conf (3 lines)`.
    pub summary: String,
    /// Attribute-level differences (`mode: 0600 -> 0644`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<AttributeChange>,
    /// Old and new text of a file, for a unified diff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<ContentChange>,
    /// The change involves a secret: plans show that it happens, never the values.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
}

impl Change {
    pub fn new(action: Action, summary: impl Into<String>) -> Self {
        Change { action, summary: summary.into(), attributes: vec![], content: None, sensitive: false }
    }

    pub fn attribute(mut self, name: &str, old: Option<String>, new: Option<String>) -> Self {
        self.attributes.push(AttributeChange { name: name.to_string(), old, new });
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Delete,
    /// A command runs (kubeadm init, apt-get update...).
    Run,
    Restart,
    Reboot,
}

impl Action {
    /// Terraform-style sign shown before each change.
    pub fn sign(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Delete => "-",
            Action::Run => ">",
            Action::Restart => "↻",
            Action::Reboot => "⟳",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeChange {
    pub name: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentChange {
    pub path: String,
    /// None when the file does not exist, or is too large or binary to show.
    pub old: Option<String>,
    pub new: String,
}

/// Shell text that writes `content` to `path` atomically and crash-safely (see
/// [`crate::shell::atomic_write_script`]: traps on every signal, fsync of the file, rename,
/// fsync of the directory). The content travels base64-encoded so no byte can break out.
pub(crate) fn write_file_script(path: &str, content: &[u8], mode: u32, owner: &str, group: &str) -> Result<String, QuoteError> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(content);
    crate::shell::atomic_write_script(path, &format!("printf %s '{b64}' | base64 -d"), mode, Some(&format!("{owner}:{group}")), None)
}

pub(crate) fn parent_dir(path: &str) -> &str {
    crate::shell::parent_dir(path)
}

/// Show a file's bytes as text for a diff, or None when it is not UTF-8.
pub(crate) fn as_text(bytes: &[u8]) -> Option<String> {
    String::from_utf8(bytes.to_vec()).ok()
}

pub(crate) fn missing(q: &FactQuery) -> CheckError {
    CheckError::MissingFact(format!("{q:?}"))
}
