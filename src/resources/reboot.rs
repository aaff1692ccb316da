//! A reboot of the host when a resource it follows changed (a kernel command line edit), then a
//! wait until the host is back with a new boot id. The executor does the waiting; this resource
//! only decides and says how to reboot.

use serde::{Deserialize, Serialize};

use super::{Action, Change, Check, CheckContext, CheckError, Resource};
use crate::facts::FactQuery;
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
}

fn default_timeout() -> u64 {
    600
}

impl Resource for Reboot {
    fn facts(&self) -> Vec<FactQuery> {
        vec![]
    }

    fn check(&self, ctx: &CheckContext<'_>) -> Result<Check, CheckError> {
        if !ctx.dependency_changed {
            return Ok(Check::NoOp { reason: "nothing that needs a reboot changed".into() });
        }
        Ok(Check::Change(Change::new(Action::Reboot, format!("reboot ({})", self.reason.as_deref().unwrap_or(&self.after_change_of.join(", "))))))
    }

    fn apply_script(&self, _ctx: &CheckContext<'_>, _change: &Change) -> Result<String, QuoteError> {
        // Detached so the SSH command returns before the connection drops.
        Ok("nohup sh -c 'sleep 1; systemctl reboot' >/dev/null 2>&1 &\n".to_string())
    }
}
