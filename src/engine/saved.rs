//! Saved plans (`kprov plan -o plan.json`, then `kprov apply plan.json`), Terraform-style: the
//! plan is applied only if nothing it was computed from has changed since: the inventory and
//! roles (a digest), and every host's facts (a fingerprint per host, re-gathered at apply).
//!
//! A plan made from a facts snapshot (`kprov plan --facts FILE -o plan.json`) holds the
//! fingerprints recorded in the snapshot, so the same check refuses it once a host changed
//! since its facts were recorded, and always for a host the snapshot did not know (planned
//! as an empty host). Its steps are compared with the fresh plan's with the diffs it could
//! not show (content not recorded) masked the same way.

use std::path::Path;

use crate::plan::{CONTENT_NOT_RECORDED, FactsOrigin, Outcome, PLAN_FORMAT_VERSION, Plan, Step};
use crate::roles::RoleSet;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum SavedPlanError {
    #[error("{path} is not a kprov plan: {message}")]
    #[diagnostic(code(kprov::plan::unreadable))]
    Unreadable { path: String, message: String },
    #[error("{path} is a plan in format {found}; this kprov reads format {PLAN_FORMAT_VERSION}")]
    #[diagnostic(code(kprov::plan::version), help("make a new plan with this kprov: kprov plan INVENTORY -o plan.json"))]
    Version { path: String, found: u32 },
    #[error("the saved plan is stale: {}", reasons.join("; "))]
    #[diagnostic(
        code(kprov::plan::stale),
        help("the hosts or the inventory changed since the plan was made; review a new one: kprov plan INVENTORY -o plan.json")
    )]
    Stale { reasons: Vec<String> },
    #[error("the saved plan was made from recorded facts that are no longer the hosts' state: {}", reasons.join("; "))]
    #[diagnostic(
        code(kprov::plan::stale_facts),
        help(
            "it was planned from a facts snapshot (kprov plan --facts); the hosts named changed since their facts were recorded. Review a fresh plan made from the hosts themselves: kprov plan INVENTORY -o plan.json, then kprov apply plan.json"
        )
    )]
    StaleFacts { reasons: Vec<String> },
}

/// Digest of everything a plan is computed from besides facts.
pub fn inputs_digest(inventory_text: &str, roles: &RoleSet) -> String {
    let mut all = String::from(inventory_text);
    for (_, role) in &roles.roles {
        all.push('\0');
        all.push_str(&serde_json::to_string(role).unwrap_or_default());
    }
    for (name, text) in &roles.templates {
        all.push('\0');
        all.push_str(name);
        all.push('\0');
        all.push_str(text);
    }
    all.push('\0');
    all.push_str(env!("CARGO_PKG_VERSION"));
    crate::digest::sha256_hex(all.as_bytes())
}

/// True when `text` looks like a saved plan rather than an inventory.
pub fn is_plan_file(text: &str) -> bool {
    text.trim_start().starts_with('{') && text.contains("\"format_version\"")
}

pub fn read(path: &Path) -> Result<Plan, SavedPlanError> {
    let p = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| SavedPlanError::Unreadable { path: p.clone(), message: e.to_string() })?;
    let probe: serde_json::Value = serde_json::from_str(&text).map_err(|e| SavedPlanError::Unreadable { path: p.clone(), message: e.to_string() })?;
    let found = probe.get("format_version").and_then(|v| v.as_u64()).unwrap_or(0) as u32;
    if found != PLAN_FORMAT_VERSION {
        return Err(SavedPlanError::Version { path: p, found });
    }
    serde_json::from_value(probe).map_err(|e| SavedPlanError::Unreadable { path: p, message: e.to_string() })
}

/// Refuse `saved` unless `fresh` (computed now from re-gathered facts) is the same plan.
pub fn check(saved: &Plan, fresh: &Plan) -> Result<(), SavedPlanError> {
    if let Some(origin) = &saved.from_facts {
        return check_from_facts(saved, origin, fresh);
    }
    let mut reasons = vec![];
    if saved.inputs_sha256 != fresh.inputs_sha256 {
        reasons.push("the inventory or the roles changed".to_string());
    }
    for h in &saved.hosts {
        match fresh.hosts.iter().find(|f| f.name == h.name) {
            None => reasons.push(format!("host {} is no longer planned", h.name)),
            Some(f) if f.facts_fingerprint != h.facts_fingerprint => {
                reasons.push(format!("host {} changed since the plan was made", h.name));
            }
            Some(_) => {}
        }
    }
    for f in &fresh.hosts {
        if !saved.hosts.iter().any(|h| h.name == f.name) {
            reasons.push(format!("host {} was not in the saved plan", f.name));
        }
    }
    if reasons.is_empty() && saved.steps != fresh.steps {
        reasons.push("the planned steps differ".to_string());
    }
    if reasons.is_empty() { Ok(()) } else { Err(SavedPlanError::Stale { reasons }) }
}

/// [`check`] for a plan made from a facts snapshot: the reasons name each host that changed
/// since its facts were recorded.
fn check_from_facts(saved: &Plan, origin: &FactsOrigin, fresh: &Plan) -> Result<(), SavedPlanError> {
    let mut reasons = vec![];
    if saved.inputs_sha256 != fresh.inputs_sha256 {
        reasons.push("the inventory or the roles changed since the plan was made".to_string());
    }
    for h in &saved.hosts {
        let recorded_at = origin.hosts.iter().find(|o| o.name == h.name).and_then(|o| o.recorded_at.clone());
        match (fresh.hosts.iter().find(|f| f.name == h.name), &h.facts_fingerprint) {
            (None, _) => reasons.push(format!("host {} is no longer planned", h.name)),
            (Some(_), None) => reasons.push(format!("host {} was not in the facts snapshot (it was planned as an empty host)", h.name)),
            (Some(f), Some(recorded)) if f.facts_fingerprint.as_ref() != Some(recorded) => {
                reasons.push(format!(
                    "host {} changed since its facts were recorded at {}",
                    h.name,
                    recorded_at.as_deref().unwrap_or("an unknown time")
                ));
            }
            (Some(_), Some(_)) => {}
        }
    }
    for f in &fresh.hosts {
        if !saved.hosts.iter().any(|h| h.name == f.name) {
            reasons.push(format!("host {} was not in the saved plan", f.name));
        }
    }
    if reasons.is_empty() {
        let same = saved.steps.len() == fresh.steps.len() && saved.steps.iter().zip(&fresh.steps).all(|(s, f)| same_step(s, f));
        if !same {
            reasons.push("the planned steps differ".to_string());
        }
    }
    if reasons.is_empty() { Ok(()) } else { Err(SavedPlanError::StaleFacts { reasons }) }
}

/// Equal, or equal once the fresh step's diff is masked as the saved one's was.
fn same_step(saved: &Step, fresh: &Step) -> bool {
    if saved == fresh {
        return true;
    }
    let (Outcome::Change(s), Outcome::Change(f)) = (&saved.outcome, &fresh.outcome) else {
        return false;
    };
    let masked =
        s.content.is_none() && s.attributes.iter().any(|a| a.name == "content" && a.old.is_none() && a.new.as_deref() == Some(CONTENT_NOT_RECORDED));
    if !masked || f.content.is_none() {
        return false;
    }
    let mut f = f.clone();
    f.content = None;
    f.attributes.push(crate::resources::AttributeChange { name: "content".into(), old: None, new: Some(CONTENT_NOT_RECORDED.into()) });
    Step { outcome: Outcome::Change(f), ..fresh.clone() } == *saved
}
