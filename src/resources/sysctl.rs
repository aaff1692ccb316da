//! Kernel parameters, persisted in one file under /etc/sysctl.d and applied from that file only.
//!
//! kprov never runs `sysctl --system`: it would re-apply every other package's settings too, and
//! on some hosts (containers with /proc/sys shared) reach beyond the host.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Action, Change, Check, CheckContext, CheckError, ContentChange, Resource};
use crate::facts::{FactQuery, FactValue};
use crate::shell::{QuoteError, quote};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sysctl {
    /// The persisted file, e.g. /etc/sysctl.d/k8s.conf.
    pub file: String,
    /// Parameter name (dotted) → value.
    pub values: BTreeMap<String, String>,
}

impl Sysctl {
    fn content(&self) -> String {
        let width = self.values.keys().map(String::len).max().unwrap_or(0);
        let mut s = String::from("# Managed by kprov; local edits are overwritten.\n");
        for (k, v) in &self.values {
            s.push_str(&format!("{k:<width$} = {v}\n"));
        }
        s
    }

    fn runtime_drift(&self, ctx: &CheckContext<'_>) -> Result<Vec<(String, Option<String>, String)>, CheckError> {
        let mut drift = vec![];
        for (key, want) in &self.values {
            let q = FactQuery::Sysctl { key: key.clone() };
            let current = match ctx.facts.get(&q) {
                Some(FactValue::Sysctl { value }) => value.clone(),
                _ => return Err(super::missing(&q)),
            };
            let want = crate::facts::normalize_sysctl(want);
            if current.as_deref() != Some(want.as_str()) {
                drift.push((key.clone(), current, want));
            }
        }
        Ok(drift)
    }
}

impl Resource for Sysctl {
    fn facts(&self) -> Vec<FactQuery> {
        let mut q = vec![FactQuery::File { path: self.file.clone() }];
        q.extend(self.values.keys().map(|k| FactQuery::Sysctl { key: k.clone() }));
        q
    }

    fn check(&self, ctx: &CheckContext<'_>) -> Result<Check, CheckError> {
        let file = ctx.facts.file(&self.file).ok_or_else(|| super::missing(&FactQuery::File { path: self.file.clone() }))?;
        let want = self.content();
        let file_ok = file.exists && file.content.as_deref() == Some(want.as_bytes());
        let drift = self.runtime_drift(ctx)?;
        if file_ok && drift.is_empty() {
            return Ok(Check::NoOp { reason: format!("{} set and persisted", self.values.len()) });
        }
        let action = if file.exists { Action::Update } else { Action::Create };
        let mut change = Change::new(action, format!("sysctl {} ({} values)", self.file, self.values.len()));
        for (key, old, new) in drift {
            change = change.attribute(&key, old, Some(new));
        }
        if !file_ok {
            change.content = Some(ContentChange { path: self.file.clone(), old: file.content.as_deref().and_then(super::as_text), new: want });
        }
        Ok(Check::Change(change))
    }

    fn apply_script(&self, _ctx: &CheckContext<'_>, _change: &Change) -> Result<String, QuoteError> {
        let mut s = super::write_file_script(&self.file, self.content().as_bytes(), 0o644, "root", "root")?;
        // Only this file: see the module comment.
        s.push_str(&format!("sysctl -q -p {}\n", quote(&self.file)?));
        Ok(s)
    }
}
