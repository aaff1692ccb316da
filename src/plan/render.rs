//! Plans for people (Terraform-style text with unified diffs), for pull requests (Markdown)
//! and for programs (versioned JSON).

use std::fmt::Write as _;

use similar::TextDiff;

use super::model::{FactsOrigin, HostFactsOrigin, HostStatus, Outcome, Plan, Step};
use crate::resources::{Action, AttributeChange, Change, ContentChange};

/// What a change shows instead of a diff when the file's current content was not recorded
/// in the facts snapshot the plan was made from (the file is secret or looks it).
pub const CONTENT_NOT_RECORDED: &str = "changes (content not recorded)";

/// Diffs longer than this many lines are collapsed in Markdown.
const MARKDOWN_COLLAPSE_LINES: usize = 15;
/// GitHub rejects comments over 65536 characters; leave room for the rest of the comment.
const MARKDOWN_LIMIT: usize = 60_000;

struct Style {
    color: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
    }

    fn action(&self, a: Action) -> String {
        let code = match a {
            Action::Create => "32",
            Action::Update => "33",
            Action::Delete => "31",
            Action::Run | Action::Restart | Action::Reboot => "36",
        };
        self.paint(code, a.sign())
    }
}

pub fn unified_diff(c: &ContentChange) -> String {
    let old = c.old.as_deref().unwrap_or("");
    let diff = TextDiff::from_lines(old, &c.new);
    let old_name = if c.old.is_some() { c.path.clone() } else { "/dev/null".into() };
    diff.unified_diff().context_radius(3).header(&old_name, &c.path).to_string()
}

fn headline(step: &Step, c: &Change) -> String {
    let mut s = format!("{}/{}: {}", step.role, step.resource, c.summary);
    if c.sensitive {
        s.push_str(" (sensitive)");
    }
    s
}

fn summary_line(plan: &Plan) -> String {
    let s = &plan.summary;
    format!("Plan: {} to add, {} to change, {} to destroy, {} to run. {} unchanged.", s.add, s.change, s.destroy, s.run, s.unchanged)
}

/// The lines that head a plan made from a facts snapshot: when and by whom the facts were
/// recorded, and how old each host's are.
fn facts_header(origin: &FactsOrigin) -> Vec<String> {
    let mut lines = vec![format!(
        "Planned from facts recorded at {} by kprov {} ({}); no host was contacted.",
        origin.recorded_at, origin.kprov_version, origin.file
    )];
    for h in &origin.hosts {
        lines.push(format!("  {}: {}", h.name, host_facts_note(h)));
    }
    if origin.inventory_changed {
        lines.push("The inventory or the roles changed since the facts were recorded.".to_string());
    }
    lines
}

fn host_facts_note(h: &HostFactsOrigin) -> String {
    let mut note = match (&h.recorded_at, h.age_seconds) {
        (Some(at), Some(age)) => format!("facts recorded at {at} ({} old)", crate::facts::snapshot::age_text(age)),
        (Some(at), None) => format!("facts recorded at {at}"),
        (None, _) => "not in the snapshot, planned as an empty host (nothing installed, OS unknown)".to_string(),
    };
    if !h.unrecorded.is_empty() {
        note.push_str(&format!("; not recorded, planned as absent: {}", h.unrecorded.join(", ")));
    }
    note
}

fn attribute_text(a: &AttributeChange) -> String {
    if a.old.is_none() && a.new.as_deref() == Some(CONTENT_NOT_RECORDED) {
        return CONTENT_NOT_RECORDED.to_string();
    }
    format!("{} → {}", a.old.as_deref().unwrap_or("(none)"), a.new.as_deref().unwrap_or("(none)"))
}

pub fn render_text(plan: &Plan, color: bool) -> String {
    let st = Style { color };
    let mut out = String::new();
    if let Some(origin) = &plan.from_facts {
        for line in facts_header(origin) {
            let _ = writeln!(out, "{line}");
        }
        out.push('\n');
    }
    for host in &plan.hosts {
        let steps: Vec<&Step> =
            plan.steps.iter().filter(|s| s.host == host.name && !matches!(s.outcome, Outcome::NoOp { .. } | Outcome::Skipped { .. })).collect();
        match &host.status {
            HostStatus::Ready => {}
            HostStatus::Unreachable { message } | HostStatus::FactsFailed { message } => {
                let _ = writeln!(out, "{} {} ({}): {}", st.paint("31", "✗"), st.paint("1", &host.name), host.address, message);
                continue;
            }
        }
        if steps.is_empty() {
            continue;
        }
        let _ = writeln!(out, "{} ({})", st.paint("1", &host.name), host.address);
        for step in steps {
            match &step.outcome {
                Outcome::Change(c) => {
                    let _ = writeln!(out, "  {} {}", st.action(c.action), headline(step, c));
                    for a in &c.attributes {
                        let _ = writeln!(out, "      {}: {}", a.name, attribute_text(a));
                    }
                    if let Some(content) = &c.content {
                        for line in unified_diff(content).lines() {
                            let painted = match line.chars().next() {
                                Some('+') if !line.starts_with("+++") => st.paint("32", line),
                                Some('-') if !line.starts_with("---") => st.paint("31", line),
                                Some('@') => st.paint("36", line),
                                _ => line.to_string(),
                            };
                            let _ = writeln!(out, "      {painted}");
                        }
                    }
                }
                Outcome::Error { message } => {
                    let _ = writeln!(out, "  {} {}/{}: {}", st.paint("31", "!"), step.role, step.resource, message);
                }
                Outcome::Blocked { reason } => {
                    let _ = writeln!(out, "  {} {}/{}: {}", st.paint("31", "✗"), step.role, step.resource, reason);
                }
                Outcome::NoOp { .. } | Outcome::Skipped { .. } => {}
            }
        }
        out.push('\n');
    }
    fetches_text(plan, &st, &mut out);
    if !plan.has_changes() && !plan.has_errors() {
        out.push_str(if plan.from_facts.is_some() {
            "No changes. The hosts' recorded facts match the inventory.\n"
        } else {
            "No changes. The hosts match the inventory.\n"
        });
    } else {
        out.push_str(&summary_line(plan));
        out.push('\n');
        if plan.has_errors() {
            let _ = writeln!(
                out,
                "{}",
                st.paint("31", &format!("{} errors, {} steps blocked: this plan is incomplete.", plan.summary.errors, plan.summary.blocked))
            );
        }
    }
    out
}

/// The hosts of a download, at most a few by name.
fn host_list(hosts: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut s = hosts.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if hosts.len() > SHOWN {
        let _ = write!(s, " and {} more", hosts.len() - SHOWN);
    }
    s
}

/// What this apply downloads and how each host checks it; downloads trusted by their URL alone
/// are shown on every run, whether or not they are fetched this time.
fn fetches_text(plan: &Plan, st: &Style, out: &mut String) {
    let shown: Vec<_> = plan.fetches.iter().filter(|f| f.planned || !f.verified()).collect();
    if shown.is_empty() {
        return;
    }
    out.push_str("Downloads, each checked on the host before use:\n");
    for f in shown {
        let check = if f.verified() { f.check_text() } else { st.paint("31", &f.check_text()) };
        let _ = writeln!(out, "  {}\n      {check} ({})", f.url, host_list(&f.hosts));
    }
    out.push('\n');
}

pub fn render_json(plan: &Plan) -> String {
    let mut s = serde_json::to_string_pretty(plan).expect("plans always serialize");
    s.push('\n');
    s
}

pub fn render_markdown(plan: &Plan) -> String {
    let mut out = String::new();
    let title = if plan.has_changes() || plan.has_errors() { summary_line(plan) } else { "No changes.".to_string() };
    let _ = writeln!(out, "### kprov plan\n\n**{title}**\n");
    let origin = plan.from_facts.as_ref();
    if let Some(o) = origin {
        let _ = writeln!(
            out,
            "_Planned from facts recorded at {} by kprov {} (`{}`); no host was contacted.{}_\n",
            escape_md(&o.recorded_at),
            escape_md(&o.kprov_version),
            escape_md(&o.file),
            if o.inventory_changed { " The inventory or the roles changed since." } else { "" }
        );
        let _ = writeln!(out, "| Host | Address | Add | Change | Destroy | Run | Unchanged | Status | Facts |");
        let _ = writeln!(out, "|---|---|--:|--:|--:|--:|--:|---|---|");
    } else {
        let _ = writeln!(out, "| Host | Address | Add | Change | Destroy | Run | Unchanged | Status |");
        let _ = writeln!(out, "|---|---|--:|--:|--:|--:|--:|---|");
    }
    for host in &plan.hosts {
        let steps: Vec<&Step> = plan.steps.iter().filter(|st| st.host == host.name).collect();
        let hs = super::Summary::of(&steps.iter().map(|s| (*s).clone()).collect::<Vec<_>>());
        let status = match &host.status {
            HostStatus::Ready if hs.errors > 0 => format!("⚠️ {} errors", hs.errors),
            HostStatus::Ready => "ready".to_string(),
            HostStatus::Unreachable { message } | HostStatus::FactsFailed { message } => format!("❌ {}", escape_cell(message)),
        };
        let facts = origin
            .and_then(|o| o.hosts.iter().find(|h| h.name == host.name))
            .map(|h| format!(" {} |", escape_cell(&host_facts_note(h))))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |{facts}",
            escape_cell(&host.name),
            escape_cell(&host.address),
            hs.add,
            hs.change,
            hs.destroy,
            hs.run,
            hs.unchanged,
            status
        );
    }
    out.push('\n');
    for host in &plan.hosts {
        let steps: Vec<&Step> = plan
            .steps
            .iter()
            .filter(|st| st.host == host.name && matches!(st.outcome, Outcome::Change(_) | Outcome::Error { .. } | Outcome::Blocked { .. }))
            .collect();
        if steps.is_empty() {
            continue;
        }
        let _ = writeln!(out, "<details><summary><b>{}</b>: {} steps</summary>\n", escape_html(&host.name), steps.len());
        for step in steps {
            match &step.outcome {
                Outcome::Change(c) => {
                    let _ = writeln!(out, "- `{}` **{}/{}**: {}", c.action.sign(), step.role, step.resource, escape_md(&headline_tail(c)));
                    for a in &c.attributes {
                        if a.old.is_none() && a.new.as_deref() == Some(CONTENT_NOT_RECORDED) {
                            let _ = writeln!(out, "  - `{}`: {CONTENT_NOT_RECORDED}", a.name);
                            continue;
                        }
                        let _ = writeln!(
                            out,
                            "  - `{}`: `{}` → `{}`",
                            a.name,
                            a.old.as_deref().unwrap_or("(none)"),
                            a.new.as_deref().unwrap_or("(none)")
                        );
                    }
                    if let Some(content) = &c.content {
                        let diff = unified_diff(content);
                        let lines = diff.lines().count();
                        let fence = "```";
                        if lines > MARKDOWN_COLLAPSE_LINES {
                            let _ = writeln!(out, "\n  <details><summary>diff of {} ({lines} lines)</summary>\n", escape_html(&content.path));
                            let _ = writeln!(out, "{fence}diff\n{diff}{fence}\n\n  </details>\n");
                        } else {
                            let _ = writeln!(out, "\n{fence}diff\n{diff}{fence}\n");
                        }
                    }
                }
                Outcome::Error { message } => {
                    let _ = writeln!(out, "- ⚠️ **{}/{}**: {}", step.role, step.resource, escape_md(message));
                }
                Outcome::Blocked { reason } => {
                    let _ = writeln!(out, "- ❌ **{}/{}**: {}", step.role, step.resource, escape_md(reason));
                }
                _ => {}
            }
        }
        out.push_str("\n</details>\n\n");
    }
    let shown: Vec<_> = plan.fetches.iter().filter(|f| f.planned || !f.verified()).collect();
    if !shown.is_empty() {
        out.push_str("**Downloads**, each checked on the host before use:\n\n");
        for f in shown {
            let mark = if f.verified() { "" } else { "⚠️ " };
            let _ = writeln!(out, "- {mark}`{}`: {} ({})", escape_md(&f.url), escape_md(&f.check_text()), escape_md(&host_list(&f.hosts)));
        }
        out.push('\n');
    }
    if out.len() > MARKDOWN_LIMIT {
        let mut cut = MARKDOWN_LIMIT;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str("\n\n…plan truncated to fit a comment; run `kprov plan` for the whole of it.\n");
    }
    out
}

fn headline_tail(c: &Change) -> String {
    if c.sensitive { format!("{} (sensitive)", c.summary) } else { c.summary.clone() }
}

fn escape_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn escape_md(s: &str) -> String {
    escape_html(s).replace('\n', " ")
}
