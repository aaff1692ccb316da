//! A reboot of the host when a resource it follows changed (a kernel command line edit), then a
//! wait until the host is back with a new boot id, then the checks of [`Verify`] on facts
//! gathered again after the boot: swap is really off (/proc/swaps empty, else the step fails
//! naming what brought it back) and the memory cgroup controller is really there (else the step
//! fails with what /proc/cmdline shows and the known fix, before kubeadm's preflight would fail
//! with "missing required cgroups: memory"). The executor does the waiting and the gathering;
//! this resource decides, says how to reboot and judges the facts (pure).

use serde::{Deserialize, Serialize};

use super::swap_off::SwapOff;
use super::{Action, Change, Check, CheckContext, CheckError, Resource};
use crate::facts::{BootFact, FactQuery, FactValue, HostFacts};
use crate::shell::QuoteError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reboot {
    /// Names of resources on the same host whose change requires the reboot.
    pub after_change_of: Vec<String>,
    /// Why, for the plan.
    #[serde(default)]
    pub reason: Option<String>,
    /// How long to wait for the host to come back, in seconds.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// What must hold once the host is back.
    #[serde(default)]
    pub verify: Verify,
}

/// Checks run on the facts gathered after the reboot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    /// /proc/swaps is empty; when not, the providers this swap_off knows are named.
    #[serde(default)]
    pub swap_off: Option<SwapOff>,
    /// The memory cgroup controller is available; these are the kernel parameters kprov wrote
    /// (compared with /proc/cmdline when it is not).
    #[serde(default)]
    pub memory_cgroup: Option<MemoryCgroup>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryCgroup {
    pub params: Vec<String>,
    /// The file kprov wrote them to, for the message.
    #[serde(default)]
    pub file: Option<String>,
}

fn default_timeout() -> u64 {
    600
}

impl Verify {
    pub fn is_empty(&self) -> bool {
        self.swap_off.is_none() && self.memory_cgroup.is_none()
    }

    /// The facts the checks read.
    pub fn queries(&self) -> Vec<FactQuery> {
        let mut q = vec![];
        if let Some(s) = &self.swap_off {
            q.extend(s.facts());
        }
        if self.memory_cgroup.is_some() {
            q.push(FactQuery::Boot);
        }
        q
    }

    /// Every check that fails, in one message; Ok when all hold.
    pub fn check(&self, facts: &HostFacts) -> Result<(), String> {
        let mut problems = vec![];
        if let Some(s) = &self.swap_off {
            match facts.get(&FactQuery::Swap) {
                Some(FactValue::Swap(swap)) if !swap.active.is_empty() => {
                    let named = match s.providers(swap, facts) {
                        Ok(p) if !p.is_empty() => p.iter().map(|p| p.label()).collect::<Vec<_>>().join("; "),
                        Ok(_) => "no provider kprov knows (look for what runs swapon at boot)".into(),
                        Err(e) => e.to_string(),
                    };
                    problems.push(format!("swap is back after the reboot: /proc/swaps lists {}; brought back by {named}", swap.active.join(", ")));
                }
                Some(FactValue::Swap(_)) => {}
                _ => problems.push("the swap facts were not gathered after the reboot".into()),
            }
        }
        if let Some(m) = &self.memory_cgroup {
            match facts.get(&FactQuery::Boot) {
                Some(FactValue::Boot(boot)) => {
                    if let Err(e) = memory_cgroup_check(boot, &m.params, m.file.as_deref()) {
                        problems.push(e);
                    }
                }
                _ => problems.push("the boot facts were not gathered after the reboot".into()),
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(problems.join("\n")) }
    }
}

/// Whether `param` (a cmdline word) names `controller` in a `cgroup_enable=`/`cgroup_disable=`
/// list (`cgroup_disable=memory` or `cgroup_disable=cpuset,memory`).
fn lists(word: &str, key: &str, controller: &str) -> bool {
    word.strip_prefix(key).and_then(|r| r.strip_prefix('=')).is_some_and(|v| v.split(',').any(|c| c == controller))
}

/// The memory controller is there, or why not, from what the kernel booted with. The kernel
/// applies `cgroup_enable=`/`cgroup_disable=` in the order they appear in /proc/cmdline, and a
/// Raspberry Pi's firmware puts its own parameters (from the device tree) before cmdline.txt's:
/// raspberrypi/linux#5933 and #6980.
pub fn memory_cgroup_check(boot: &BootFact, wrote: &[String], file: Option<&str>) -> Result<(), String> {
    if boot.memory_controller() {
        return Ok(());
    }
    let words: Vec<&str> = boot.cmdline.split_whitespace().collect();
    let file = file.unwrap_or("cmdline.txt");
    let found = match (boot.cgroup_v2_controllers.as_deref(), boot.cgroup_v1_memory) {
        (Some(c), _) => format!("cgroup v2 controllers: {c:?}"),
        (None, Some(false)) => "/proc/cgroups: memory disabled".into(),
        (None, _) => "/proc/cgroups has no memory row".into(),
    };
    let missing: Vec<&str> = wrote.iter().map(String::as_str).filter(|p| !words.contains(p)).collect();
    let last_enable = words.iter().rposition(|w| lists(w, "cgroup_enable", "memory"));
    let last_disable = words.iter().rposition(|w| lists(w, "cgroup_disable", "memory"));
    let why = if !missing.is_empty() {
        format!(
            "the kernel did not boot with what kprov wrote to {file}: /proc/cmdline lacks {}. Fix: check that the firmware reads {file} (`cmdline=` in config.txt, the boot partition mounted at /boot/firmware) and that the file is one line",
            missing.join(" ")
        )
    } else if let (Some(d), Some(e)) = (last_disable, last_enable) {
        if d > e {
            format!(
                "cgroup_disable=memory comes after cgroup_enable=memory in /proc/cmdline, so it wins (the parameters apply in order). Fix: remove it from {file} or from whatever adds it after (raspberrypi/linux#5933, #6980)"
            )
        } else {
            "/proc/cmdline has cgroup_enable=memory after the firmware's cgroup_disable=memory, and the kernel still keeps the controller off: it does not honour cgroup_enable=memory. Fix: update the kernel and firmware (`apt full-upgrade`, then reboot; raspberrypi/linux#6980)".to_string()
        }
    } else {
        "/proc/cmdline has kprov's parameters but the kernel keeps the memory controller off (built without it, or it ignores cgroup_enable=memory). Fix: update the kernel (`apt full-upgrade`, then reboot; raspberrypi/linux#6980)".to_string()
    };
    Err(format!("the memory cgroup controller is still off after the reboot ({found}; /proc/cmdline: {:?}): {why}", boot.cmdline))
}

impl Resource for Reboot {
    fn facts(&self) -> Vec<FactQuery> {
        vec![]
    }

    fn check(&self, ctx: &CheckContext<'_>) -> Result<Check, CheckError> {
        if !ctx.dependency_changed {
            return Ok(Check::NoOp { reason: "nothing that needs a reboot changed".into() });
        }
        let mut c = Change::new(Action::Reboot, format!("reboot ({})", self.reason.as_deref().unwrap_or(&self.after_change_of.join(", "))));
        if self.verify.swap_off.is_some() {
            c = c.attribute("after the reboot", None, Some("/proc/swaps empty".into()));
        }
        if let Some(m) = &self.verify.memory_cgroup {
            c = c.attribute("after the reboot", None, Some(format!("memory cgroup controller available, /proc/cmdline has {}", m.params.join(" "))));
        }
        Ok(Check::Change(c))
    }

    fn apply_script(&self, _ctx: &CheckContext<'_>, _change: &Change) -> Result<String, QuoteError> {
        // Detached so the SSH command returns before the connection drops.
        Ok("nohup sh -c 'sleep 1; systemctl reboot' >/dev/null 2>&1 &\n".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrote() -> Vec<String> {
        vec!["cgroup_memory=1".into(), "cgroup_enable=memory".into()]
    }

    #[test]
    fn enabled_controller_passes() {
        let boot = BootFact { cmdline: "root=x".into(), cgroup_v2_controllers: Some("cpuset cpu io memory pids".into()), cgroup_v1_memory: None };
        assert_eq!(memory_cgroup_check(&boot, &wrote(), None), Ok(()));
        let v1 = BootFact { cmdline: "root=x".into(), cgroup_v2_controllers: None, cgroup_v1_memory: Some(true) };
        assert_eq!(memory_cgroup_check(&v1, &wrote(), None), Ok(()));
    }

    #[test]
    fn a_disable_after_the_enable_wins() {
        let boot = BootFact {
            cmdline: "cgroup_memory=1 cgroup_enable=memory console=tty1 cgroup_disable=cpuset,memory".into(),
            cgroup_v2_controllers: Some("cpuset cpu io pids".into()),
            cgroup_v1_memory: None,
        };
        let e = memory_cgroup_check(&boot, &wrote(), Some("/boot/firmware/cmdline.txt")).unwrap_err();
        assert!(e.contains("comes after cgroup_enable=memory"), "{e}");
    }

    #[test]
    fn parameters_missing_from_the_boot() {
        let boot = BootFact { cmdline: "console=tty1 root=x".into(), cgroup_v2_controllers: Some("cpu".into()), cgroup_v1_memory: None };
        let e = memory_cgroup_check(&boot, &wrote(), Some("/boot/firmware/cmdline.txt")).unwrap_err();
        assert!(e.contains("lacks cgroup_memory=1 cgroup_enable=memory"), "{e}");
    }
}
