//! Debian packages installed at a pinned version and optionally held (apt-mark hold), so a
//! routine `apt upgrade` cannot move kubelet or kubeadm under a running cluster.

use serde::{Deserialize, Serialize};

use super::{Action, Change, Check, CheckContext, CheckError, Resource};
use crate::facts::{FactQuery, FactValue, PackageFact};
use crate::shell::QuoteError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AptPackages {
    pub names: Vec<String>,
    /// A version, or an apt version glob such as `1.34.*`; None accepts any installed version.
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub hold: bool,
}

/// apt's version globs: `*` matches any run of characters.
pub(crate) fn version_matches(pattern: &str, version: &str) -> bool {
    fn go(p: &[u8], v: &[u8]) -> bool {
        match (p.first(), v.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], v) || (!v.is_empty() && go(p, &v[1..])),
            (Some(a), Some(b)) if a == b => go(&p[1..], &v[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), version.as_bytes())
}

impl AptPackages {
    fn state<'a>(&self, ctx: &'a CheckContext<'_>, name: &str) -> Result<&'a PackageFact, CheckError> {
        let q = FactQuery::Package { name: name.to_string() };
        match ctx.facts.get(&q) {
            Some(FactValue::Package(p)) => Ok(p),
            _ => Err(super::missing(&q)),
        }
    }

    fn wrong_version(&self, p: &PackageFact) -> bool {
        match (&self.version, &p.version) {
            (None, _) => !p.installed,
            (Some(_), None) => true,
            (Some(want), Some(have)) => !p.installed || !version_matches(want, have),
        }
    }
}

impl Resource for AptPackages {
    fn facts(&self) -> Vec<FactQuery> {
        self.names.iter().map(|n| FactQuery::Package { name: n.clone() }).collect()
    }

    fn check(&self, ctx: &CheckContext<'_>) -> Result<Check, CheckError> {
        let mut change = Change::new(Action::Update, String::new());
        let mut installs = vec![];
        let mut any_installed = false;
        for n in &self.names {
            let p = self.state(ctx, n)?;
            any_installed |= p.installed;
            if self.wrong_version(p) {
                installs.push(n.as_str());
                change = change.attribute(
                    n,
                    p.version.clone().or(Some("absent".into())),
                    Some(self.version.clone().unwrap_or_else(|| "installed".into())),
                );
            }
            if self.hold && !p.held {
                change = change.attribute(&format!("{n} hold"), Some("no".into()), Some("held".into()));
            }
        }
        if change.attributes.is_empty() {
            return Ok(Check::NoOp { reason: format!("{} installed{}", self.names.join(", "), if self.hold { " and held" } else { "" }) });
        }
        if !any_installed {
            change.action = Action::Create;
        }
        change.summary = if installs.is_empty() {
            format!("hold {}", self.names.join(", "))
        } else {
            format!("install {}{}", installs.join(", "), self.version.as_ref().map(|v| format!(" = {v}")).unwrap_or_default())
        };
        Ok(Check::Change(change))
    }

    fn apply_script(&self, ctx: &CheckContext<'_>, _change: &Change) -> Result<String, QuoteError> {
        let mut targets = vec![];
        for n in &self.names {
            if let Ok(p) = self.state(ctx, n) {
                if self.wrong_version(p) {
                    targets.push(match &self.version {
                        Some(v) => format!("{n}={v}"),
                        None => n.clone(),
                    });
                }
            }
        }
        let mut s = String::from("export DEBIAN_FRONTEND=noninteractive\n");
        if !targets.is_empty() {
            s.push_str("apt-get -q -o DPkg::Lock::Timeout=300 update\n");
            s.push_str(&format!(
                "apt-get -q -y -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
--allow-change-held-packages --allow-downgrades install {}\n",
                crate::shell::join(targets.iter().map(String::as_str))?
            ));
        }
        if self.hold {
            s.push_str(&format!("apt-mark hold {} >/dev/null\n", crate::shell::join(self.names.iter().map(String::as_str))?));
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::version_matches;

    #[test]
    fn globs() {
        assert!(version_matches("1.34.*", "1.34.2-1.1"));
        assert!(!version_matches("1.34.*", "1.33.6-1.1"));
        assert!(version_matches("1.34.2-1.1", "1.34.2-1.1"));
        assert!(!version_matches("1.34.2", "1.34.2-1.1"));
        assert!(version_matches("*", ""));
    }
}
