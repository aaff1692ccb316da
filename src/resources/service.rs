//! A systemd service: enabled, running, and restarted when something it depends on changed in
//! this run (its config file, its package).

use serde::{Deserialize, Serialize};

use super::{Action, Change, Check, CheckContext, CheckError, Resource};
use crate::facts::{FactQuery, FactValue};
use crate::shell::{QuoteError, quote};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "yes")]
    pub running: bool,
    /// Names of resources (on the same host) whose change restarts this service.
    #[serde(default)]
    pub restart_on: Vec<String>,
    /// Keep the service running only once this file exists; before, only its enablement is
    /// managed. The kubelet restarts in a loop by design until kubeadm writes its config, so
    /// insisting on "running" before then would never converge.
    #[serde(default)]
    pub running_requires: Option<String>,
}

fn yes() -> bool {
    true
}

impl Service {
    /// Whether the running state is managed now (see `running_requires`).
    fn manages_running(&self, ctx: &CheckContext<'_>) -> Result<bool, CheckError> {
        match &self.running_requires {
            None => Ok(true),
            Some(p) => ctx.facts.file(p).map(|f| f.exists).ok_or_else(|| super::missing(&FactQuery::File { path: p.clone() })),
        }
    }
}

impl Resource for Service {
    fn facts(&self) -> Vec<FactQuery> {
        let mut q = vec![FactQuery::Service { name: self.name.clone() }];
        if let Some(p) = &self.running_requires {
            q.push(FactQuery::File { path: p.clone() });
        }
        q
    }

    fn check(&self, ctx: &CheckContext<'_>) -> Result<Check, CheckError> {
        let q = FactQuery::Service { name: self.name.clone() };
        let s = match ctx.facts.get(&q) {
            Some(FactValue::Service(s)) => s,
            _ => return Err(super::missing(&q)),
        };
        let mut change = Change::new(Action::Update, format!("service {}", self.name));
        if !s.exists {
            // The unit arrives with a package installed earlier in this run.
            change.action = Action::Create;
        }
        if s.enabled != self.enabled {
            let show = |b| if b { "enabled" } else { "disabled" };
            let old = if s.exists { s.enablement.clone() } else { "absent".into() };
            change = change.attribute("enabled", Some(old), Some(show(self.enabled).into()));
        }
        let manage_running = self.manages_running(ctx)?;
        if !manage_running {
            // Enablement only, until the file it needs exists.
        } else if s.active != self.running {
            let show = |b| if b { "running" } else { "stopped" };
            change = change.attribute("state", Some(show(s.active).into()), Some(show(self.running).into()));
        } else if self.running && ctx.dependency_changed {
            change.action = Action::Restart;
            change.summary = format!("restart {} ({} changed)", self.name, self.restart_on.join(", "));
        }
        if change.attributes.is_empty() && change.action != Action::Restart {
            return Ok(Check::NoOp {
                reason: format!("{}, {}", if s.enabled { "enabled" } else { "disabled" }, if s.active { "running" } else { "stopped" }),
            });
        }
        Ok(Check::Change(change))
    }

    fn apply_script(&self, ctx: &CheckContext<'_>, change: &Change) -> Result<String, QuoteError> {
        let n = quote(&self.name)?;
        let mut s = String::from("systemctl daemon-reload\n");
        s.push_str(&format!("systemctl {} {n}\n", if self.enabled { "enable" } else { "disable" }));
        if !self.manages_running(ctx).unwrap_or(true) {
            return Ok(s);
        }
        if !self.running {
            s.push_str(&format!("systemctl stop {n}\n"));
        } else if change.action == Action::Restart || ctx.dependency_changed {
            s.push_str(&format!("systemctl restart {n}\n"));
        } else {
            s.push_str(&format!("systemctl start {n}\n"));
        }
        Ok(s)
    }
}
