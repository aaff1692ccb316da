//! Settings a running cluster cannot take in place (its name, pod and service networks, DNS
//! domain, CNI): once the cluster exists, a different value in the inventory is an error in the
//! plan for the host, with the reason, and nothing after it runs there; it is never half-applied.
//!
//! The values the cluster was made with are read from the kubeadm configuration file kprov wrote
//! for `kubeadm init` (parsed as YAML, so a quoted value compares as YAML reads it), and the
//! CNI from the manifest file kprov applied.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::{Change, Check, CheckContext, CheckError, Resource};
use crate::facts::FactQuery;
use crate::shell::QuoteError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refuse {
    /// A file that exists once the settings are baked in (kprov's record that kubeadm init
    /// finished); before that, nothing is refused.
    pub once: String,
    /// The YAML file (one or more documents) holding the values the cluster was made with.
    pub file: String,
    /// Settings that must keep their value.
    #[serde(default)]
    pub settings: Vec<Fixed>,
    /// Files whose presence means another choice was made earlier.
    #[serde(default)]
    pub absent: Vec<Absent>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixed {
    /// The inventory key, for the message.
    pub name: String,
    /// The document's `kind` in `file`.
    pub kind: String,
    /// Dotted path in that document.
    pub path: String,
    /// The inventory's value.
    pub want: String,
    /// The value when the document does not have the field (kubeadm's default).
    #[serde(default)]
    pub default: Option<String>,
    /// Why it cannot change in place, and what to do instead.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Absent {
    pub path: String,
    pub message: String,
}

/// The documents of a YAML file with several (`---` on a line of its own between them).
fn documents(text: &str) -> Result<Vec<Json>, String> {
    let mut docs = vec![];
    let mut current = String::new();
    for line in text.split_inclusive('\n') {
        if line.trim_end() == "---" {
            docs.push(std::mem::take(&mut current));
        } else {
            current.push_str(line);
        }
    }
    docs.push(current);
    docs.iter()
        .filter(|d| d.lines().any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')))
        .map(|d| serde_saphyr::from_str::<Json>(d).map_err(|e| e.to_string()))
        .collect()
}

fn scalar_text(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Resource for Refuse {
    fn facts(&self) -> Vec<FactQuery> {
        let mut q = vec![FactQuery::File { path: self.once.clone() }, FactQuery::File { path: self.file.clone() }];
        q.extend(self.absent.iter().map(|a| FactQuery::File { path: a.path.clone() }));
        q
    }

    fn check(&self, ctx: &CheckContext<'_>) -> Result<Check, CheckError> {
        let once = ctx.facts.file(&self.once).ok_or_else(|| super::missing(&FactQuery::File { path: self.once.clone() }))?;
        if !once.exists {
            return Ok(Check::NoOp { reason: "the cluster is not set up yet: every setting may still change".into() });
        }
        let mut problems = vec![];
        for a in &self.absent {
            let f = ctx.facts.file(&a.path).ok_or_else(|| super::missing(&FactQuery::File { path: a.path.clone() }))?;
            if f.exists {
                problems.push(a.message.clone());
            }
        }
        if !self.settings.is_empty() {
            let file = ctx.facts.file(&self.file).ok_or_else(|| super::missing(&FactQuery::File { path: self.file.clone() }))?;
            let text = match (&file.exists, &file.content) {
                (true, Some(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
                _ => {
                    return Err(CheckError::Unsupported(format!(
                        "{} is missing or unreadable, so kprov cannot tell which settings this cluster was made with",
                        self.file
                    )));
                }
            };
            let docs = documents(&text).map_err(|e| CheckError::Unsupported(format!("{} is not YAML kprov can read: {e}", self.file)))?;
            for s in &self.settings {
                let doc = docs.iter().find(|d| d.get("kind").and_then(Json::as_str) == Some(s.kind.as_str()));
                let found = doc.and_then(|d| s.path.split('.').try_fold(d, |v, k| v.get(k))).and_then(scalar_text).or_else(|| s.default.clone());
                match found {
                    Some(have) if have == s.want => {}
                    Some(have) => {
                        problems.push(format!("{}: the cluster was made with {have:?}, the inventory says {:?}: {}", s.name, s.want, s.reason))
                    }
                    None => problems.push(format!("{}: {} holds no {} {}", s.name, self.file, s.kind, s.path)),
                }
            }
        }
        if problems.is_empty() {
            return Ok(Check::NoOp { reason: "as the cluster was made".into() });
        }
        Err(CheckError::Unsupported(format!(
            "refused: a running cluster cannot take these changes in place, and kprov changes nothing on this host: {}",
            problems.join("; ")
        )))
    }

    fn apply_script(&self, _ctx: &CheckContext<'_>, _change: &Change) -> Result<String, QuoteError> {
        // A refusal never plans a change.
        Ok("true\n".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{FactValue, FileFact, HostFacts};

    fn file(content: Option<&str>) -> FactValue {
        FactValue::File(match content {
            Some(c) => FileFact { exists: true, file_type: "regular file".into(), content: Some(c.as_bytes().to_vec()), ..Default::default() },
            None => FileFact::default(),
        })
    }

    const INIT: &str = "# Managed by kprov\napiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nclusterName: \"lab \\\"one\\\": two\"\nnetworking:\n  podSubnet: \"10.244.0.0/16\"\n";

    fn refuse(name: &str, pod: &str, domain: &str) -> Refuse {
        let fixed = |n: &str, path: &str, want: &str, default: Option<&str>| Fixed {
            name: n.into(),
            kind: "ClusterConfiguration".into(),
            path: path.into(),
            want: want.into(),
            default: default.map(str::to_string),
            reason: "kubeadm cannot change it".into(),
        };
        Refuse {
            once: "/done".into(),
            file: "/init.yaml".into(),
            settings: vec![
                fixed("cluster.name", "clusterName", name, None),
                fixed("cluster.pod_cidr", "networking.podSubnet", pod, None),
                fixed("cluster.kubeadm.dns_domain", "networking.dnsDomain", domain, Some("cluster.local")),
            ],
            absent: vec![Absent { path: "/cni-calico.yaml".into(), message: "cluster.cni: the cluster runs calico".into() }],
        }
    }

    fn check(r: &Refuse, done: bool, calico: bool) -> Result<Check, CheckError> {
        let mut f = HostFacts::default();
        f.insert(FactQuery::File { path: "/done".into() }, file(done.then_some("x")));
        f.insert(FactQuery::File { path: "/init.yaml".into() }, file(Some(INIT)));
        f.insert(FactQuery::File { path: "/cni-calico.yaml".into() }, file(calico.then_some("x")));
        r.check(&CheckContext { facts: &f, dependency_changed: false, captures: &Default::default() })
    }

    #[test]
    fn settings_as_the_cluster_was_made_pass_and_a_quoted_name_compares_as_yaml_reads_it() {
        assert!(matches!(check(&refuse("lab \"one\": two", "10.244.0.0/16", "cluster.local"), true, false), Ok(Check::NoOp { .. })));
    }

    #[test]
    fn a_changed_network_name_domain_or_cni_is_refused_with_the_reason() {
        let Err(CheckError::Unsupported(m)) = check(&refuse("other", "10.30.0.0/16", "k8s.internal"), true, true) else { panic!("refused") };
        assert!(m.contains("cluster.name: the cluster was made with \"lab \\\"one\\\": two\", the inventory says \"other\""), "{m}");
        assert!(
            m.contains(
                "cluster.pod_cidr: the cluster was made with \"10.244.0.0/16\", the inventory says \"10.30.0.0/16\": kubeadm cannot change it"
            ),
            "{m}"
        );
        assert!(m.contains("cluster.kubeadm.dns_domain: the cluster was made with \"cluster.local\""), "{m}");
        assert!(m.contains("cluster.cni: the cluster runs calico"), "{m}");
    }

    #[test]
    fn before_the_cluster_exists_everything_may_change() {
        assert!(matches!(check(&refuse("other", "10.30.0.0/16", "x"), false, true), Ok(Check::NoOp { .. })));
    }
}
