//! One line in a file that kprov does not otherwise own (like Ansible's lineinfile).
//!
//! The new content is computed locally from the fact's copy of the file, so the plan shows the
//! exact diff, and the write keeps the file's mode and owner.

use serde::{Deserialize, Serialize};

use super::{Action, Change, Check, CheckContext, CheckError, ContentChange, Resource};
use crate::facts::FactQuery;
use crate::shell::QuoteError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Line {
    pub path: String,
    /// The line that must be present.
    pub line: String,
    /// A regular expression: the last line matching it is replaced by `line` (and other
    /// matching lines removed), instead of appending.
    #[serde(default, rename = "match")]
    pub matches: Option<String>,
    /// Create the file (mode 0644, root) when it does not exist.
    #[serde(default)]
    pub create: bool,
}

impl Line {
    /// The file's new text, or None when it already holds the line.
    pub fn edit(&self, old: &str) -> Result<Option<String>, CheckError> {
        let lines: Vec<&str> = old.lines().collect();
        let re = match &self.matches {
            Some(m) => Some(regex::Regex::new(m).map_err(|e| CheckError::Unsupported(format!("bad match pattern {m:?}: {e}")))?),
            None => None,
        };
        let matching: Vec<usize> = match &re {
            Some(re) => lines.iter().enumerate().filter(|(_, l)| re.is_match(l)).map(|(i, _)| i).collect(),
            None => vec![],
        };
        if matching.is_empty() || re.is_none() {
            if lines.contains(&self.line.as_str()) {
                return Ok(None);
            }
            let mut new = old.to_string();
            if !new.is_empty() && !new.ends_with('\n') {
                new.push('\n');
            }
            new.push_str(&self.line);
            new.push('\n');
            return Ok(Some(new));
        }
        let last = *matching.last().expect("not empty");
        if matching.len() == 1 && lines[last] == self.line {
            return Ok(None);
        }
        let mut out = String::new();
        for (i, l) in lines.iter().enumerate() {
            if i == last {
                out.push_str(&self.line);
                out.push('\n');
            } else if !matching.contains(&i) {
                out.push_str(l);
                out.push('\n');
            }
        }
        if !old.ends_with('\n') && !old.is_empty() && last != lines.len() - 1 {
            // Keep a file that had no final newline as it was, but for the edited line.
            out.pop();
        }
        Ok(Some(out))
    }
}

impl Resource for Line {
    fn facts(&self) -> Vec<FactQuery> {
        vec![FactQuery::File { path: self.path.clone() }]
    }

    fn check(&self, ctx: &CheckContext<'_>) -> Result<Check, CheckError> {
        let f = ctx.facts.file(&self.path).ok_or_else(|| super::missing(&FactQuery::File { path: self.path.clone() }))?;
        if !f.exists && !self.create {
            return Err(CheckError::Unsupported(format!("{} does not exist", self.path)));
        }
        let old = match (&f.content, f.exists) {
            (_, false) => String::new(),
            (Some(bytes), true) => super::as_text(bytes).ok_or_else(|| CheckError::Unsupported(format!("{} is not UTF-8 text", self.path)))?,
            (None, true) => {
                return Err(CheckError::Unsupported(format!("{} is too large to edit line by line", self.path)));
            }
        };
        match self.edit(&old)? {
            None => Ok(Check::NoOp { reason: "line present".into() }),
            Some(new) => {
                let action = if f.exists { Action::Update } else { Action::Create };
                let mut change = Change::new(action, format!("line in {}", self.path));
                change.content = Some(ContentChange { path: self.path.clone(), old: f.exists.then_some(old), new });
                Ok(Check::Change(change))
            }
        }
    }

    fn apply_script(&self, ctx: &CheckContext<'_>, change: &Change) -> Result<String, QuoteError> {
        let new = change.content.as_ref().map(|c| c.new.clone()).unwrap_or_default();
        let (mode, owner, group) = match ctx.facts.file(&self.path) {
            Some(f) if f.exists => (f.mode, f.owner.clone(), f.group.clone()),
            _ => (0o644, "root".to_string(), "root".to_string()),
        };
        super::write_file_script(&self.path, new.as_bytes(), mode, &owner, &group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(l: &str, m: Option<&str>) -> Line {
        Line { path: "/f".into(), line: l.into(), matches: m.map(Into::into), create: false }
    }

    #[test]
    fn appends_when_absent_and_keeps_present() {
        assert_eq!(line("b", None).edit("a\n").unwrap(), Some("a\nb\n".into()));
        assert_eq!(line("b", None).edit("a").unwrap(), Some("a\nb\n".into()));
        assert_eq!(line("a", None).edit("a\nb\n").unwrap(), None);
    }

    #[test]
    fn replaces_the_last_match_and_drops_other_matches() {
        let l = line("SystemdCgroup = true", Some(r"^\s*SystemdCgroup\s*="));
        assert_eq!(l.edit("x\nSystemdCgroup = false\ny\nSystemdCgroup = false\n").unwrap(), Some("x\ny\nSystemdCgroup = true\n".into()));
        assert_eq!(l.edit("SystemdCgroup = true\n").unwrap(), None);
    }
}
