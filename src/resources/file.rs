//! A whole file: content, mode, owner and group, written atomically.

use serde::{Deserialize, Serialize};

use super::{Action, Change, Check, CheckContext, CheckError, ContentChange, Resource};
use crate::facts::FactQuery;
use crate::shell::{QuoteError, quote};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub path: String,
    /// The full content. Roles may give `template: NAME` instead; the role loader renders it
    /// into `content` before the resource exists.
    pub content: String,
    /// Octal mode as a string ("0644") or number.
    #[serde(default = "default_mode", with = "octal")]
    pub mode: u32,
    #[serde(default = "root")]
    pub owner: String,
    #[serde(default = "root")]
    pub group: String,
    /// The content is a secret (a kubeconfig, a key): plans show that it changes, not how.
    #[serde(default)]
    pub sensitive: bool,
}

fn default_mode() -> u32 {
    0o644
}

fn root() -> String {
    "root".to_string()
}

impl Resource for File {
    fn facts(&self) -> Vec<FactQuery> {
        vec![FactQuery::File { path: self.path.clone() }]
    }

    fn check(&self, ctx: &CheckContext<'_>) -> Result<Check, CheckError> {
        let q = FactQuery::File { path: self.path.clone() };
        let current = ctx.facts.file(&self.path).ok_or_else(|| super::missing(&q))?;
        if current.exists && current.file_type != "regular file" && !current.file_type.is_empty() {
            return Err(CheckError::Unsupported(format!("{} is a {}, not a regular file; kprov will not replace it", self.path, current.file_type)));
        }
        let want_hash = crate::digest::sha256_hex(self.content.as_bytes());
        let lines = self.content.lines().count();
        if !current.exists {
            let mut change = Change::new(
                Action::Create,
                format!("file {} ({lines} line{}, mode {:04o})", self.path, if lines == 1 { "" } else { "s" }, self.mode),
            );
            change.sensitive = self.sensitive;
            if !self.sensitive {
                change.content = Some(ContentChange { path: self.path.clone(), old: None, new: self.content.clone() });
            }
            return Ok(Check::Change(change));
        }
        let mut change = Change::new(Action::Update, format!("file {}", self.path));
        change.sensitive = self.sensitive;
        if current.sha256 != want_hash {
            if !self.sensitive {
                change.content = Some(ContentChange {
                    path: self.path.clone(),
                    old: current.content.as_deref().and_then(super::as_text),
                    new: self.content.clone(),
                });
            } else {
                change = change.attribute("content", Some("(sensitive)".into()), Some("(sensitive)".into()));
            }
        }
        if current.mode != self.mode {
            change = change.attribute("mode", Some(format!("{:04o}", current.mode)), Some(format!("{:04o}", self.mode)));
        }
        if current.owner != self.owner {
            change = change.attribute("owner", Some(current.owner.clone()), Some(self.owner.clone()));
        }
        if current.group != self.group {
            change = change.attribute("group", Some(current.group.clone()), Some(self.group.clone()));
        }
        if change.content.is_none() && change.attributes.is_empty() {
            return Ok(Check::NoOp { reason: "content, mode and owner match".into() });
        }
        Ok(Check::Change(change))
    }

    fn apply_script(&self, _ctx: &CheckContext<'_>, change: &Change) -> Result<String, QuoteError> {
        let content_changes = change.action == Action::Create || change.content.is_some() || change.attributes.iter().any(|a| a.name == "content");
        if content_changes {
            return super::write_file_script(&self.path, self.content.as_bytes(), self.mode, &self.owner, &self.group);
        }
        let p = quote(&self.path)?;
        Ok(format!("chmod {:o} {p}\nchown {} {p}\n", self.mode, quote(&format!("{}:{}", self.owner, self.group))?))
    }
}

/// Modes are written in roles as "0644" (string) or 0644/420 (number); YAML 1.2 reads 0644 as
/// decimal 644, so a number is taken as octal digits.
pub(crate) mod octal {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(mode: &u32, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{mode:04o}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Mode {
            Text(String),
            Number(u64),
        }
        let text = match Mode::deserialize(d)? {
            Mode::Text(t) => t,
            Mode::Number(n) => n.to_string(),
        };
        let digits = text.trim_start_matches("0o");
        match u32::from_str_radix(digits, 8) {
            Ok(m) if m <= 0o7777 => Ok(m),
            _ => Err(D::Error::custom(format!("mode {text:?} is not an octal file mode like \"0644\""))),
        }
    }
}
