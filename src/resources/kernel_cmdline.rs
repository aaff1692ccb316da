//! Parameters on the kernel command line of a Raspberry Pi (`cmdline.txt`: one line of
//! space-separated parameters). Raspberry Pi OS bookworm keeps it in /boot/firmware; older
//! releases in /boot. The first existing path of the list is the file.

use serde::{Deserialize, Serialize};

use super::{Action, Change, Check, CheckContext, CheckError, ContentChange, Resource};
use crate::facts::FactQuery;
use crate::shell::QuoteError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelCmdline {
    /// Candidate paths, in order of preference.
    pub paths: Vec<String>,
    /// `key=value` or bare `flag` parameters that must be present.
    pub params: Vec<String>,
}

fn key(param: &str) -> &str {
    param.split_once('=').map_or(param, |(k, _)| k)
}

impl KernelCmdline {
    /// The edited line, or None when every parameter is already there. A parameter with the
    /// same key and another value is replaced in place; others keep their order.
    pub fn edit(&self, old: &str) -> Option<String> {
        let mut words: Vec<String> = old.split_whitespace().map(str::to_string).collect();
        let mut changed = false;
        for p in &self.params {
            let positions: Vec<usize> = words.iter().enumerate().filter(|(_, w)| key(w) == key(p)).map(|(i, _)| i).collect();
            if positions.len() == 1 && words[positions[0]] == *p {
                continue;
            }
            changed = true;
            match positions.first() {
                Some(&first) => {
                    words[first] = p.clone();
                    for &i in positions[1..].iter().rev() {
                        words.remove(i);
                    }
                }
                None => words.push(p.clone()),
            }
        }
        changed.then(|| format!("{}\n", words.join(" ")))
    }

    fn file<'a>(&'a self, ctx: &'a CheckContext<'_>) -> Result<(&'a str, &'a crate::facts::FileFact), CheckError> {
        for p in &self.paths {
            let f = ctx.facts.file(p).ok_or_else(|| super::missing(&FactQuery::File { path: p.clone() }))?;
            if f.exists {
                return Ok((p, f));
            }
        }
        Err(CheckError::Unsupported(format!("no kernel command line file: none of {} exists", self.paths.join(", "))))
    }
}

impl Resource for KernelCmdline {
    fn facts(&self) -> Vec<FactQuery> {
        self.paths.iter().map(|p| FactQuery::File { path: p.clone() }).collect()
    }

    fn check(&self, ctx: &CheckContext<'_>) -> Result<Check, CheckError> {
        let (path, f) = self.file(ctx)?;
        let old = f.content.as_deref().and_then(super::as_text).ok_or_else(|| CheckError::Unsupported(format!("{path} is not a small text file")))?;
        match self.edit(&old) {
            None => Ok(Check::NoOp { reason: format!("{} present in {path}", self.params.join(" ")) }),
            Some(new) => {
                let mut c = Change::new(Action::Update, format!("kernel command line {path}: {}", self.params.join(" ")));
                c.content = Some(ContentChange { path: path.to_string(), old: Some(old), new });
                Ok(Check::Change(c))
            }
        }
    }

    fn apply_script(&self, ctx: &CheckContext<'_>, change: &Change) -> Result<String, QuoteError> {
        let Ok((path, f)) = self.file(ctx) else { return Ok("echo 'no kernel command line file' >&2; exit 1\n".into()) };
        let new = change.content.as_ref().map(|c| c.new.clone()).unwrap_or_default();
        super::write_file_script(path, new.as_bytes(), f.mode, &f.owner, &f.group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k() -> KernelCmdline {
        KernelCmdline { paths: vec!["/boot/firmware/cmdline.txt".into()], params: vec!["cgroup_memory=1".into(), "cgroup_enable=memory".into()] }
    }

    #[test]
    fn adds_replaces_and_keeps_order() {
        assert_eq!(
            k().edit("console=tty1 root=PARTUUID=x rootwait\n").as_deref(),
            Some("console=tty1 root=PARTUUID=x rootwait cgroup_memory=1 cgroup_enable=memory\n")
        );
        assert_eq!(k().edit("a cgroup_enable=cpuset cgroup_memory=1 b").as_deref(), Some("a cgroup_enable=memory cgroup_memory=1 b\n"));
        assert_eq!(k().edit("a cgroup_memory=1 cgroup_enable=memory\n"), None);
        assert_eq!(k().edit("cgroup_memory=1 x cgroup_memory=1 cgroup_enable=memory").as_deref(), Some("cgroup_memory=1 x cgroup_enable=memory\n"));
    }
}
