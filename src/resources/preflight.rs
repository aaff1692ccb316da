//! Preflight as a resource: the host's facts checked against what a Kubernetes node needs
//! (see [`crate::preflight`]). It never changes anything; a failed check is an error that
//! stops this host's roles (they all come after it) and names every problem.

use serde::{Deserialize, Deserializer, Serialize};

use super::{Check, CheckContext, CheckError, Resource};
use crate::facts::FactQuery;
use crate::preflight::{NodeRole, Policy, check_host};
use crate::shell::QuoteError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preflight {
    #[serde(deserialize_with = "flag")]
    pub control_plane: bool,
    #[serde(deserialize_with = "flag")]
    pub worker: bool,
    pub cni: String,
    #[serde(deserialize_with = "number")]
    pub min_cpus: u64,
    #[serde(deserialize_with = "number")]
    pub min_memory_mib: u64,
    #[serde(default)]
    pub ignore: Vec<String>,
}

/// Templates render everything as text: accept `true` and `"true"`.
fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum F {
        B(bool),
        S(String),
    }
    match F::deserialize(d)? {
        F::B(b) => Ok(b),
        F::S(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" | "" => Ok(false),
            other => Err(serde::de::Error::custom(format!("expected true or false, found {other:?}"))),
        },
    }
}

fn number<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        N(u64),
        S(String),
    }
    match N::deserialize(d)? {
        N::N(n) => Ok(n),
        N::S(s) => s.trim().parse().map_err(|_| serde::de::Error::custom(format!("expected a number, found {s:?}"))),
    }
}

/// The parameter kprov's raspberry-pi role adds to cmdline.txt to turn the memory cgroup on.
const ENABLE_MEMORY: &str = "cgroup_enable=memory";

/// A node that already joined has its ports rightly in use.
const KUBELET_CONF: &str = "/etc/kubernetes/kubelet.conf";

impl Resource for Preflight {
    fn facts(&self) -> Vec<FactQuery> {
        vec![FactQuery::Os, FactQuery::Boot, FactQuery::File { path: KUBELET_CONF.into() }]
    }

    fn check(&self, ctx: &CheckContext<'_>) -> Result<Check, CheckError> {
        let os = ctx.facts.os().ok_or_else(|| super::missing(&FactQuery::Os))?;
        let joined = ctx.facts.file(KUBELET_CONF).is_some_and(|f| f.exists);
        let policy = Policy { min_cpus: self.min_cpus as u32, min_memory_mib: self.min_memory_mib, ignore: self.ignore.clone() };
        let role = NodeRole { control_plane: self.control_plane, worker: self.worker, joined };
        let mut problems = check_host(os, role, &self.cni, &policy);
        // Raspberry Pi OS lacks the memory cgroup until kprov's cmdline change and reboot. Once
        // the kernel booted with cgroup_enable=memory and the controller is still off (the
        // firmware's own cgroup_disable=memory, raspberrypi/linux#6980), a reboot will not help:
        // say why now rather than let kubeadm's preflight fail later.
        if os.raspberry_pi_os {
            let boot = match ctx.facts.get(&FactQuery::Boot) {
                Some(crate::facts::FactValue::Boot(b)) => Some(b),
                _ => None,
            };
            let booted_with_fix = boot.is_some_and(|b| b.cmdline.split_whitespace().any(|w| w == ENABLE_MEMORY));
            match boot {
                Some(b) if booted_with_fix => {
                    for p in problems.iter_mut().filter(|p| p.code == "cgroup") {
                        if let Err(why) = super::memory_cgroup_check(b, &[ENABLE_MEMORY.to_string()], None) {
                            p.message = why;
                        }
                    }
                }
                _ => problems.retain(|p| p.code != "cgroup"),
            }
        }
        if problems.is_empty() {
            return Ok(Check::NoOp { reason: format!("{} {} {}, {} CPUs, {} MiB", os.id, os.version_id, os.arch, os.cpus, os.memory_kib / 1024) });
        }
        let list: Vec<String> = problems.iter().map(|p| format!("[{}] {}", p.code, p.message)).collect();
        Err(CheckError::Unsupported(format!(
            "preflight failed: {} (skip a check with cluster.preflight.ignore: [{}])",
            list.join("; "),
            problems[0].code
        )))
    }

    fn apply_script(&self, _ctx: &CheckContext<'_>, _change: &super::Change) -> Result<String, QuoteError> {
        Ok(String::new())
    }
}
