//! The plan as data: what `kprov plan -o plan.json` saves and `--json` prints.

use serde::{Deserialize, Serialize};

use crate::resources::{Action, Change, FetchCheck};

/// Bumped whenever the JSON shape changes incompatibly; readers refuse other versions.
pub const PLAN_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    pub kprov_version: String,
    /// Digest of the inventory and roles the plan was made from; a saved plan is refused
    /// when they changed.
    #[serde(default)]
    pub inputs_sha256: String,
    /// The inventory file the plan was made from, so `kprov apply plan.json` finds it.
    #[serde(default)]
    pub inventory: String,
    /// `--limit` hosts and `--tags` the plan was made with; applying it uses the same.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limit: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    pub hosts: Vec<HostPlan>,
    pub steps: Vec<Step>,
    pub summary: Summary,
    /// What the steps download onto the hosts and how each host checks it before use, one
    /// entry per URL and check.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fetches: Vec<PlannedFetch>,
    /// Set when the plan was made from a facts snapshot (`kprov plan --facts FILE`) rather
    /// than from the hosts themselves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_facts: Option<FactsOrigin>,
}

/// One download: its URL, the check the host runs on it, the hosts and steps that make it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedFetch {
    pub url: String,
    #[serde(flatten)]
    pub check: FetchCheck,
    /// True when a step that makes this download changes in this plan (it will be fetched).
    pub planned: bool,
    pub hosts: Vec<String>,
    /// `role/resource` of the steps.
    pub steps: Vec<String>,
}

impl PlannedFetch {
    /// What the host checks, in words.
    pub fn check_text(&self) -> String {
        match &self.check {
            FetchCheck::Sha256 { sha256 } => format!("sha256 {sha256}"),
            FetchCheck::KeyFingerprint { fingerprints } => {
                format!("OpenPGP key fingerprint {}", fingerprints.join(" or "))
            }
            FetchCheck::Unverified { reason } => format!("NOT VERIFIED ({reason})"),
        }
    }

    pub fn verified(&self) -> bool {
        !matches!(self.check, FetchCheck::Unverified { .. })
    }
}

/// Where the facts of a plan made with `kprov plan --facts FILE` came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactsOrigin {
    /// The snapshot file.
    pub file: String,
    /// When the snapshot was last written (RFC 3339, UTC) and by which kprov.
    pub recorded_at: String,
    pub kprov_version: String,
    /// The inventory and roles differ from those the snapshot was recorded with (expected
    /// in a pull request that changes them).
    pub inventory_changed: bool,
    pub hosts: Vec<HostFactsOrigin>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFactsOrigin {
    pub name: String,
    /// When this host's facts were recorded; None for a host the snapshot does not know,
    /// planned as an empty host.
    pub recorded_at: Option<String>,
    /// Seconds between the recording and the plan.
    pub age_seconds: Option<u64>,
    /// Facts the plan needed that the snapshot does not hold (planned as absent).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unrecorded: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostPlan {
    pub name: String,
    pub address: String,
    pub status: HostStatus,
    /// Digest of the host's facts (see `HostFacts::fingerprint`), None when not gathered.
    pub facts_fingerprint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum HostStatus {
    Ready,
    Unreachable { message: String },
    FactsFailed { message: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// `host/role/resource`.
    pub id: String,
    pub host: String,
    pub role: String,
    pub resource: String,
    pub kind: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    NoOp {
        reason: String,
    },
    Change(Change),
    /// `when` was false for this host.
    Skipped {
        reason: String,
    },
    /// The resource could not be rendered or checked.
    Error {
        message: String,
    },
    /// The host could not be reached or read.
    Blocked {
        reason: String,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
    /// Commands, restarts, reboots.
    pub run: usize,
    pub unchanged: usize,
    pub errors: usize,
    pub blocked: usize,
}

impl Summary {
    pub fn of(steps: &[Step]) -> Summary {
        let mut s = Summary::default();
        for step in steps {
            match &step.outcome {
                Outcome::Change(c) => match c.action {
                    Action::Create => s.add += 1,
                    Action::Update => s.change += 1,
                    Action::Delete => s.destroy += 1,
                    Action::Run | Action::Restart | Action::Reboot => s.run += 1,
                },
                Outcome::NoOp { .. } | Outcome::Skipped { .. } => s.unchanged += 1,
                Outcome::Error { .. } => s.errors += 1,
                Outcome::Blocked { .. } => s.blocked += 1,
            }
        }
        s
    }

    pub fn changes(&self) -> usize {
        self.add + self.change + self.destroy + self.run
    }
}

impl Plan {
    pub fn new(hosts: Vec<HostPlan>, steps: Vec<Step>) -> Plan {
        Plan {
            format_version: PLAN_FORMAT_VERSION,
            kprov_version: env!("CARGO_PKG_VERSION").to_string(),
            inputs_sha256: String::new(),
            inventory: String::new(),
            limit: vec![],
            tags: vec![],
            summary: Summary::of(&steps),
            hosts,
            steps,
            fetches: vec![],
            from_facts: None,
        }
    }

    pub fn has_changes(&self) -> bool {
        self.summary.changes() > 0
    }

    /// Errors or unreachable hosts: the plan cannot be trusted as complete.
    pub fn has_errors(&self) -> bool {
        self.summary.errors > 0 || self.summary.blocked > 0 || self.hosts.iter().any(|h| h.status != HostStatus::Ready)
    }
}
