//! A value read from one host for others: the output of a command (e.g. `kubeadm token create
//! --print-join-command` on the first control plane), kept as a secret in memory for the rest
//! of the apply and handed to commands on other hosts through `env_from_capture`.
//!
//! A capture runs only when some change in the plan needs it, so a no-op run never runs it.

use serde::{Deserialize, Serialize};

use super::{Action, Change, Check, CheckContext, CheckError, Resource};
use crate::facts::FactQuery;
use crate::shell::QuoteError;

/// Marker line before the base64 of a capture's output in a batch's output.
pub const CAPTURE_MARKER: &str = "@@kprov-capture";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capture {
    /// The name other resources use in `env_from_capture`.
    pub name: String,
    /// Shell text whose standard output (trimmed) is the value.
    pub run: String,
    #[serde(default)]
    pub description: Option<String>,
}

impl Resource for Capture {
    fn facts(&self) -> Vec<FactQuery> {
        vec![]
    }

    fn check(&self, _ctx: &CheckContext<'_>) -> Result<Check, CheckError> {
        let mut change = Change::new(Action::Run, format!("read {} (known after apply)", self.description.as_deref().unwrap_or(&self.name)));
        change.sensitive = true;
        Ok(Check::Change(change))
    }

    fn apply_script(&self, _ctx: &CheckContext<'_>, _change: &Change) -> Result<String, QuoteError> {
        // Output goes through base64 so nothing in it can be taken for a marker.
        Ok(format!("kprov_value=$( {run}\n)\nprintf '\\n{CAPTURE_MARKER} %s\\n' \"$(printf %s \"$kprov_value\" | base64 -w0)\"\n", run = self.run))
    }
}
