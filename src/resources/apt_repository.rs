//! An apt repository with its signing key in a dedicated keyring (`signed-by`), as the
//! Kubernetes and Docker install guides do it: never apt-key, never a global trust.

use serde::{Deserialize, Serialize};

use super::{Action, Change, Check, CheckContext, CheckError, ContentChange, Resource};
use crate::facts::FactQuery;
use crate::shell::{QuoteError, quote};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AptRepository {
    /// Name of the list file: /etc/apt/sources.list.d/NAME.list.
    pub name: String,
    /// Where the signing key is fetched (ASCII-armoured or binary).
    pub key_url: String,
    /// Keyring path, e.g. /etc/apt/keyrings/kubernetes-apt-keyring.gpg.
    pub keyring: String,
    /// Repository URI, e.g. https://pkgs.k8s.io/core:/stable:/v1.34/deb/
    pub uri: String,
    /// Suite ("bookworm", or "/" for a flat repository).
    pub suite: String,
    #[serde(default)]
    pub components: Vec<String>,
    /// dpkg architecture to restrict the entry to (Docker's guide sets it).
    #[serde(default)]
    pub arch: Option<String>,
}

impl AptRepository {
    pub fn list_path(&self) -> String {
        format!("/etc/apt/sources.list.d/{}.list", self.name)
    }

    pub fn list_content(&self) -> String {
        let mut opts = vec![];
        if let Some(a) = &self.arch {
            opts.push(format!("arch={a}"));
        }
        opts.push(format!("signed-by={}", self.keyring));
        let mut line = format!("deb [{}] {} {}", opts.join(" "), self.uri, self.suite);
        for c in &self.components {
            line.push(' ');
            line.push_str(c);
        }
        format!("# Managed by kprov.\n{line}\n")
    }
}

impl Resource for AptRepository {
    fn facts(&self) -> Vec<FactQuery> {
        vec![FactQuery::File { path: self.keyring.clone() }, FactQuery::File { path: self.list_path() }]
    }

    fn check(&self, ctx: &CheckContext<'_>) -> Result<Check, CheckError> {
        let key = ctx.facts.file(&self.keyring).ok_or_else(|| super::missing(&FactQuery::File { path: self.keyring.clone() }))?;
        let list_path = self.list_path();
        let list = ctx.facts.file(&list_path).ok_or_else(|| super::missing(&FactQuery::File { path: list_path.clone() }))?;
        let want = self.list_content();
        let list_ok = list.exists && list.content.as_deref() == Some(want.as_bytes());
        if key.exists && key.size > 0 && list_ok {
            return Ok(Check::NoOp { reason: "key and source present".into() });
        }
        let action = if key.exists || list.exists { Action::Update } else { Action::Create };
        let mut change = Change::new(action, format!("apt repository {} ({})", self.name, self.uri));
        if !(key.exists && key.size > 0) {
            change = change.attribute("keyring", None, Some(format!("{} from {}", self.keyring, self.key_url)));
        }
        if !list_ok {
            change.content = Some(ContentChange { path: list_path, old: list.content.as_deref().and_then(super::as_text), new: want });
        }
        Ok(Check::Change(change))
    }

    fn apply_script(&self, _ctx: &CheckContext<'_>, change: &Change) -> Result<String, QuoteError> {
        let mut s = String::new();
        if change.attributes.iter().any(|a| a.name == "keyring") {
            let ring = quote(&self.keyring)?;
            let dir = quote(super::parent_dir(&self.keyring))?;
            s.push_str(&format!(
                "install -d -m 0755 {dir}\n\
key=$(mktemp {dir}/.kprov.XXXXXX)\n\
trap 'rm -f \"$key\" \"$key.gpg\"' EXIT\n\
curl -fsSL --retry 3 --connect-timeout 20 {url} -o \"$key\"\n\
if grep -q 'BEGIN PGP PUBLIC KEY BLOCK' \"$key\"; then gpg --batch --yes --dearmor -o \"$key.gpg\" \"$key\"; else cp \"$key\" \"$key.gpg\"; fi\n\
chmod 0644 \"$key.gpg\"\n\
mv -f \"$key.gpg\" {ring}\n\
rm -f \"$key\"\n\
trap - EXIT\n",
                url = quote(&self.key_url)?,
            ));
        }
        if change.content.is_some() {
            s.push_str(&super::write_file_script(&self.list_path(), self.list_content().as_bytes(), 0o644, "root", "root")?);
        }
        Ok(s)
    }
}
