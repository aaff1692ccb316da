//! Kernel modules loaded now and at every boot (modules-load.d).
//!
//! A module built into the kernel counts as loaded: `modprobe` of a built-in module fails on a
//! kernel without loadable modules, and there is nothing to load.

use serde::{Deserialize, Serialize};

use super::{Action, Change, Check, CheckContext, CheckError, ContentChange, Resource};
use crate::facts::{FactQuery, FactValue};
use crate::shell::{QuoteError, quote};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelModule {
    pub names: Vec<String>,
    /// Persisted list, e.g. /etc/modules-load.d/k8s.conf.
    pub file: String,
}

impl KernelModule {
    fn content(&self) -> String {
        let mut s = String::from("# Managed by kprov.\n");
        for n in &self.names {
            s.push_str(n);
            s.push('\n');
        }
        s
    }

    /// Modules neither loaded nor built in.
    fn to_load(&self, ctx: &CheckContext<'_>) -> Result<Vec<&str>, CheckError> {
        let mut out = vec![];
        for n in &self.names {
            let q = FactQuery::Module { name: n.clone() };
            match ctx.facts.get(&q) {
                Some(FactValue::Module { loaded, builtin }) => {
                    if !loaded && !builtin {
                        out.push(n.as_str());
                    }
                }
                _ => return Err(super::missing(&q)),
            }
        }
        Ok(out)
    }
}

impl Resource for KernelModule {
    fn facts(&self) -> Vec<FactQuery> {
        let mut q = vec![FactQuery::File { path: self.file.clone() }];
        q.extend(self.names.iter().map(|n| FactQuery::Module { name: n.clone() }));
        q
    }

    fn check(&self, ctx: &CheckContext<'_>) -> Result<Check, CheckError> {
        let f = ctx.facts.file(&self.file).ok_or_else(|| super::missing(&FactQuery::File { path: self.file.clone() }))?;
        let want = self.content();
        let file_ok = f.exists && f.content.as_deref() == Some(want.as_bytes());
        let to_load = self.to_load(ctx)?;
        if file_ok && to_load.is_empty() {
            return Ok(Check::NoOp { reason: format!("{} loaded and persisted", self.names.join(", ")) });
        }
        let action = if f.exists || !to_load.is_empty() && file_ok { Action::Update } else { Action::Create };
        let mut change = Change::new(action, format!("kernel modules {}", self.names.join(", ")));
        for m in to_load {
            change = change.attribute(&format!("module {m}"), Some("not loaded".into()), Some("loaded".into()));
        }
        if !file_ok {
            change.content = Some(ContentChange { path: self.file.clone(), old: f.content.as_deref().and_then(super::as_text), new: want });
        }
        Ok(Check::Change(change))
    }

    fn apply_script(&self, ctx: &CheckContext<'_>, change: &Change) -> Result<String, QuoteError> {
        let mut s = String::new();
        if change.content.is_some() {
            s.push_str(&super::write_file_script(&self.file, self.content().as_bytes(), 0o644, "root", "root")?);
        }
        let to_load = self.to_load(ctx).unwrap_or_default();
        for m in to_load {
            s.push_str(&format!("modprobe {}\n", quote(m)?));
        }
        Ok(s)
    }
}
