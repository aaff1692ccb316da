//! A command with a guard, for steps that are not state but events (kubeadm init, join, CNI
//! apply). The guard makes it idempotent: `creates` (a path that exists once the command ran),
//! `unless` (a read-only command that succeeds when nothing is to do) or `only_if`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Action, Change, Check, CheckContext, CheckError, Resource};
use crate::facts::{FactQuery, FactValue};
use crate::shell::{QuoteError, quote};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Command {
    /// Shell text, run with `sh -e` as root.
    pub run: String,
    /// What the plan shows instead of the command text.
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub creates: Option<String>,
    #[serde(default)]
    pub unless: Option<String>,
    #[serde(default)]
    pub only_if: Option<String>,
    /// Environment variables set from captured values: `{ JOIN: join_command }`. Their values
    /// are secrets, so the command text refers to them as "$JOIN" and never holds them.
    #[serde(default)]
    pub env_from_capture: BTreeMap<String, String>,
    /// The command's text or output is secret.
    #[serde(default)]
    pub sensitive: bool,
}

impl Command {
    /// A command without any guard would run on every apply; roles must say when it is done.
    pub fn has_guard(&self) -> bool {
        self.creates.is_some() || self.unless.is_some() || self.only_if.is_some()
    }

    fn guard_rc(&self, ctx: &CheckContext<'_>, cmd: &str) -> Result<i32, CheckError> {
        let q = FactQuery::Command { command: cmd.to_string() };
        match ctx.facts.get(&q) {
            Some(FactValue::Command { exit_status }) => Ok(*exit_status),
            _ => Err(super::missing(&q)),
        }
    }
}

impl Resource for Command {
    fn facts(&self) -> Vec<FactQuery> {
        let mut q = vec![];
        if let Some(p) = &self.creates {
            q.push(FactQuery::File { path: p.clone() });
        }
        for c in self.unless.iter().chain(self.only_if.iter()) {
            q.push(FactQuery::Command { command: c.clone() });
        }
        q
    }

    fn check(&self, ctx: &CheckContext<'_>) -> Result<Check, CheckError> {
        if let Some(p) = &self.creates {
            let f = ctx.facts.file(p).ok_or_else(|| super::missing(&FactQuery::File { path: p.clone() }))?;
            if f.exists {
                return Ok(Check::NoOp { reason: format!("{p} exists") });
            }
        }
        if let Some(c) = &self.unless
            && self.guard_rc(ctx, c)? == 0
        {
            return Ok(Check::NoOp { reason: format!("`{c}` succeeded") });
        }
        if let Some(c) = &self.only_if
            && self.guard_rc(ctx, c)? != 0
        {
            return Ok(Check::NoOp { reason: format!("`{c}` failed") });
        }
        let shown = match (&self.description, self.sensitive) {
            (Some(d), _) => d.clone(),
            (None, true) => "(sensitive command)".to_string(),
            (None, false) => self.run.lines().next().unwrap_or_default().to_string(),
        };
        let mut change = Change::new(Action::Run, shown);
        change.sensitive = self.sensitive || !self.env_from_capture.is_empty();
        Ok(Check::Change(change))
    }

    fn apply_script(&self, ctx: &CheckContext<'_>, _change: &Change) -> Result<String, QuoteError> {
        let mut s = String::new();
        for (var, capture) in &self.env_from_capture {
            // A missing capture is an empty value; the command's own checks then fail loudly.
            let value = ctx.captures.get(capture).map(|v| v.expose().to_string()).unwrap_or_default();
            s.push_str(&format!("{var}={}\nexport {var}\n", quote(&value)?));
        }
        s.push_str(&self.run);
        if !self.run.ends_with('\n') {
            s.push('\n');
        }
        Ok(s)
    }
}
