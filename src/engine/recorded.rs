//! Plans from recorded facts (`kprov plan --facts FILE`) and the recording itself: which
//! facts of a host may be written down (from the resources planned on it), the snapshot of a
//! gathering, and a plan made from a snapshot with no connection at all.
//!
//! A plan from a snapshot is the plan live facts would give, with three differences, each
//! shown: a host the snapshot does not know is planned as an empty host (its preflight is
//! left to apply), a fact the snapshot lacks is planned as absent (named in the plan), and a
//! diff that needs a file whose content was not recorded reads "changes (content not
//! recorded)". Every host carries the fingerprint recorded for it, so applying the saved plan
//! is refused once a host changed since (see [`super::saved`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::task::JoinSet;

use super::{Engine, Gathered};
use crate::apply::Remote;
use crate::facts::snapshot::{self, Disclosure, HostSnapshot, Snapshot};
use crate::facts::{FactQuery, parse};
use crate::plan::{CONTENT_NOT_RECORDED, FactsOrigin, HostFactsOrigin, HostStatus, Outcome, Planned, Summary};
use crate::resources::ResourceSpec;

/// What may be recorded of each host, from the resources rendered for it. Every resource type
/// is named here, so a new one must decide whether a file's content is needed to plan it.
pub fn disclosures(engine: &Engine, planned: &Planned) -> Vec<Disclosure> {
    let mut out = vec![Disclosure::default(); engine.hosts.len()];
    for (n, r) in &planned.rendered {
        let d = &mut out[engine.graph.task(*n).host];
        match &r.spec {
            ResourceSpec::File(f) if f.sensitive => {
                d.sensitive_files.insert(f.path.clone());
            }
            ResourceSpec::File(f) => {
                d.content_needed.insert(f.path.clone());
            }
            ResourceSpec::Line(l) => {
                d.content_needed.insert(l.path.clone());
            }
            ResourceSpec::KernelCmdline(k) => d.content_needed.extend(k.paths.iter().cloned()),
            ResourceSpec::Sysctl(s) => {
                d.content_needed.insert(s.file.clone());
            }
            ResourceSpec::KernelModule(m) => {
                d.content_needed.insert(m.file.clone());
            }
            // The keyring is public key material, read for its fingerprint (a keyring holding
            // another key is replaced).
            ResourceSpec::AptRepository(a) => {
                d.content_needed.insert(a.list_path());
                d.content_needed.insert(a.keyring.clone());
            }
            ResourceSpec::Command(c) if c.sensitive => {
                d.sensitive_commands.extend(c.unless.iter().chain(c.only_if.iter()).cloned());
                d.sensitive_files.extend(c.creates.iter().cloned());
            }
            // Existence, packages, services, guards: no file content needed.
            ResourceSpec::Command(_)
            | ResourceSpec::Preflight(_)
            | ResourceSpec::SwapOff(_)
            | ResourceSpec::AptPackages(_)
            | ResourceSpec::Service(_)
            | ResourceSpec::Capture(_)
            | ResourceSpec::Reboot(_) => {}
            // The values a cluster was made with (kprov's own kubeadm file, no secret in it).
            ResourceSpec::Refuse(r) => {
                d.content_needed.insert(r.file.clone());
            }
        }
    }
    out
}

/// The snapshot entries of every active host whose facts were gathered.
pub fn record(engine: &Engine, gathered: &Gathered, planned: &Planned, recorded_at: &str) -> Vec<HostSnapshot> {
    let disclosures = disclosures(engine, planned);
    engine
        .active_hosts()
        .into_iter()
        .filter_map(|h| {
            let facts = gathered.facts[h].as_ref().ok()?;
            Some(HostSnapshot::record(&engine.hosts[h].name, &engine.addresses[h], facts, &disclosures[h], recorded_at))
        })
        .collect()
}

/// Plan from `snap` (the file `file`) at `now` (seconds since the epoch), with no I/O.
/// `inputs_sha256` is the digest of the current inventory and roles.
pub fn plan_from(engine: &Engine, snap: &Snapshot, file: &str, inputs_sha256: &str, now: u64) -> Planned {
    let n = engine.hosts.len();
    let mut facts: Vec<crate::plan::HostFactsResult> = (0..n).map(|_| Err("not selected".to_string())).collect();
    let mut statuses: Vec<HostStatus> = (0..n).map(|_| HostStatus::Unreachable { message: "not selected".into() }).collect();
    let mut origins = vec![];
    let mut recorded: BTreeMap<usize, &HostSnapshot> = BTreeMap::new();
    for h in engine.active_hosts() {
        let name = &engine.hosts[h].name;
        let queries = engine.fact_scripts[h].queries();
        let (host_facts, origin) = match snap.host(name) {
            Some(s) => {
                recorded.insert(h, s);
                let (f, unrecorded) = s.facts_for(queries);
                let age = snapshot::parse_rfc3339(&s.recorded_at).map(|t| now.saturating_sub(t));
                (f, HostFactsOrigin { name: name.clone(), recorded_at: Some(s.recorded_at.clone()), age_seconds: age, unrecorded })
            }
            None => (snapshot::empty_host(queries), HostFactsOrigin { name: name.clone(), recorded_at: None, age_seconds: None, unrecorded: vec![] }),
        };
        facts[h] = Ok(host_facts);
        statuses[h] = HostStatus::Ready;
        origins.push(origin);
    }
    let gathered = Gathered { remotes: vec![None; n], facts, statuses };
    let mut planned = engine.plan(&gathered);
    // The fingerprints of the facts as they were on the hosts; none for a host planned empty.
    for hp in &mut planned.plan.hosts {
        hp.facts_fingerprint = snap.host(&hp.name).map(|s| s.facts_fingerprint.clone());
    }
    let host_index: BTreeMap<&str, usize> = engine.hosts.iter().enumerate().map(|(i, h)| (h.name.as_str(), i)).collect();
    for step in &mut planned.plan.steps {
        let Some(&h) = host_index.get(step.host.as_str()) else {
            continue;
        };
        match recorded.get(&h) {
            Some(s) => {
                if let Outcome::Change(c) = &mut step.outcome {
                    let withheld = c.content.as_ref().is_some_and(|cc| s.content_not_recorded.contains(&cc.path));
                    if withheld {
                        c.content = None;
                        c.attributes.push(crate::resources::AttributeChange {
                            name: "content".into(),
                            old: None,
                            new: Some(CONTENT_NOT_RECORDED.into()),
                        });
                    }
                }
            }
            None => {
                // What the host is (OS, CPUs, memory, ports) is unknown until it is reached.
                if step.kind == "preflight" && matches!(step.outcome, Outcome::Error { .. }) {
                    step.outcome = Outcome::Skipped { reason: "checked at apply: the facts snapshot has nothing recorded for this host".into() };
                }
            }
        }
    }
    planned.plan.summary = Summary::of(&planned.plan.steps);
    planned.plan.from_facts = Some(FactsOrigin {
        file: file.to_string(),
        recorded_at: snap.recorded_at.clone(),
        kprov_version: snap.kprov_version.clone(),
        inventory_changed: snap.inventory_sha256 != inputs_sha256,
        hosts: origins,
    });
    planned
}

impl Engine {
    /// Run every active host's fact script again over the connections an apply already holds
    /// (one round trip per host), for the snapshot written after an apply that changed things.
    pub async fn gather_again(&self, remotes: &[Option<Arc<dyn Remote>>]) -> Gathered {
        let n = self.hosts.len();
        let mut facts: Vec<crate::plan::HostFactsResult> = (0..n).map(|_| Err("not selected".to_string())).collect();
        let mut statuses: Vec<HostStatus> = (0..n).map(|_| HostStatus::Unreachable { message: "not selected".into() }).collect();
        let mut set = JoinSet::new();
        for h in self.active_hosts() {
            let Some(remote) = remotes[h].clone() else {
                continue;
            };
            let script = self.fact_scripts[h].clone();
            set.spawn(async move {
                let result = match script.render() {
                    Ok(text) => match remote.run_script(text).await {
                        Ok(out) => parse(&script, &out).map_err(|e| e.to_string()),
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(e.to_string()),
                };
                (h, result)
            });
        }
        while let Some(joined) = set.join_next().await {
            let Ok((h, result)) = joined else { continue };
            statuses[h] = match &result {
                Ok(_) => HostStatus::Ready,
                Err(e) => HostStatus::FactsFailed { message: e.clone() },
            };
            facts[h] = result;
        }
        Gathered { remotes: remotes.to_vec(), facts, statuses }
    }
}

/// The queries of a host, for tests and `kprov facts`.
pub fn queries_of(engine: &Engine, host: usize) -> &[FactQuery] {
    engine.fact_scripts[host].queries()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::plan_snapshots::{blank_facts, os, rpi_homelab};
    use crate::facts::{FactValue, HostFacts};

    fn live(engine: &Engine, facts: &[HostFacts]) -> (Gathered, Planned) {
        let n = facts.len();
        let gathered = Gathered { remotes: vec![None; n], statuses: vec![HostStatus::Ready; n], facts: facts.iter().cloned().map(Ok).collect() };
        let planned = engine.plan(&gathered);
        (gathered, planned)
    }

    fn snapshot_of(engine: &Engine, facts: &[HostFacts], hosts: &[usize]) -> Snapshot {
        let (gathered, planned) = live(engine, facts);
        let mut recorded = record(engine, &gathered, &planned, "2026-12-01T20:00:00Z");
        recorded.retain(|h| hosts.iter().any(|&i| engine.hosts[i].name == h.name));
        let names: Vec<&str> = engine.hosts.iter().map(|h| h.name.as_str()).collect();
        Snapshot::merge(None, &names, "inventory.yaml", "inputs", "2026-12-01T20:00:00Z", recorded)
    }

    /// A converged host: every file as the plan wants it is hard to fake, so the homelab's
    /// blank facts are used as they are, plus a Raspberry Pi cmdline (content needed) and an
    /// admin.conf holding a key (content never recorded).
    fn homelab_with_secrets() -> (Engine, Vec<HostFacts>) {
        let (engine, mut facts) = rpi_homelab();
        let admin = b"apiVersion: v1\nusers:\n- user:\n    client-key-data: S0VZTUFURVJJQUw=\n".to_vec();
        facts[0].insert(FactQuery::File { path: "/etc/kubernetes/admin.conf".into() }, crate::facts::snapshot::tests::file(&admin));
        (engine, facts)
    }

    #[test]
    fn a_plan_from_the_snapshot_is_the_plan_live_facts_give() {
        let (engine, facts) = homelab_with_secrets();
        let snap = Snapshot::parse("s", &snapshot_of(&engine, &facts, &[0, 1, 2, 3]).to_json()).unwrap();
        let (_, live_plan) = live(&engine, &facts);
        let from = plan_from(&engine, &snap, "s", "inputs", snapshot::parse_rfc3339("2026-12-01T23:00:00Z").unwrap());
        let origin = from.plan.from_facts.clone().unwrap();
        assert!(!origin.inventory_changed);
        assert_eq!(origin.hosts.iter().map(|h| h.age_seconds).collect::<Vec<_>>(), [Some(10_800); 4]);
        assert!(origin.hosts.iter().all(|h| h.unrecorded.is_empty()), "{origin:?}");
        let mut plain = from.plan.clone();
        plain.from_facts = None;
        assert_eq!(plain, live_plan.plan, "the same steps, summary and fingerprints");
        let json = crate::facts::snapshot::tests::readable(&snap.to_json());
        assert!(json.contains("cgroup") || json.contains("console="), "contents are decoded for the search: {json}");
        assert!(!json.contains("client-key-data") && !json.contains("S0VZTUFURVJJQUw"), "{json}");
        assert!(snap.hosts.iter().find(|h| h.name == "k8s-01").unwrap().content_not_recorded.contains(&"/etc/kubernetes/admin.conf".to_string()));
        // The Pi's cmdline is needed for its diff, and is kept.
        assert!(snap.hosts[0].facts.file("/boot/firmware/cmdline.txt").unwrap().content.is_some());
    }

    #[test]
    fn a_host_the_snapshot_does_not_know_is_planned_from_empty() {
        let (engine, facts) = rpi_homelab();
        // k8s-04 is new in the inventory.
        let snap = snapshot_of(&engine, &facts, &[0, 1, 2]);
        let from = plan_from(&engine, &snap, "s", "other inputs", 0);
        let plan = &from.plan;
        assert!(plan.from_facts.as_ref().unwrap().inventory_changed);
        let k4 = plan.from_facts.as_ref().unwrap().hosts.iter().find(|h| h.name == "k8s-04").unwrap().clone();
        assert_eq!((k4.recorded_at, k4.age_seconds), (None, None));
        assert!(!plan.has_errors(), "a new host's plan is complete: {}", crate::plan::render_text(plan, false));
        assert!(plan.has_changes());
        let steps: Vec<&crate::plan::Step> = plan.steps.iter().filter(|s| s.host == "k8s-04").collect();
        let changed = |id: &str| steps.iter().any(|s| s.id == format!("k8s-04/{id}") && matches!(s.outcome, Outcome::Change(_)));
        for id in ["kernel/modules", "kernel/sysctl", "containerd/package", "kubernetes-packages/packages", "worker-join/kubeadm-join"] {
            assert!(changed(id), "{id}: {steps:#?}");
        }
        let preflight = steps.iter().find(|s| s.kind == "preflight").unwrap();
        assert!(matches!(&preflight.outcome, Outcome::Skipped { reason } if reason.contains("checked at apply")), "{preflight:?}");
        assert_eq!(plan.hosts.iter().find(|h| h.name == "k8s-04").unwrap().facts_fingerprint, None);
        let text = crate::plan::render_text(plan, false);
        assert!(text.contains("k8s-04: not in the snapshot, planned as an empty host"), "{text}");
        // The same new host with an unknown OS but the known hosts' OS would fail preflight
        // live (no CPUs): only the host without facts has its preflight deferred.
        let mut broken = facts.clone();
        if let Some(FactValue::Os(o)) = broken[1].values.get_mut(&FactQuery::Os) {
            o.cpus = 1;
        }
        let from = plan_from(&engine, &snapshot_of(&engine, &broken, &[0, 1, 2]), "s", "inputs", 0);
        assert!(from.plan.has_errors(), "a recorded host's preflight still counts");
    }

    #[test]
    fn a_diff_of_content_not_recorded_says_so() {
        let (engine, mut facts) = rpi_homelab();
        // The control plane's kubeadm configuration (a plain `file` resource) was edited by
        // hand to hold a bootstrap token: it is recorded by digest only, so the plan says it
        // changes without showing how.
        let path = "/etc/kubernetes/kprov/kubeadm-init.yaml";
        let content = b"bootstrapTokens:\n- token: abcdef.0123456789abcdef\n".to_vec();
        facts[0].insert(FactQuery::File { path: path.into() }, crate::facts::snapshot::tests::file(&content));
        let (_, live_plan) = live(&engine, &facts);
        assert!(crate::plan::render_text(&live_plan.plan, false).contains("0123456789abcdef"), "live, the diff shows the old content");
        let snap = snapshot_of(&engine, &facts, &[0, 1, 2, 3]);
        assert!(!crate::facts::snapshot::tests::readable(&snap.to_json()).contains("0123456789abcdef"));
        let from = plan_from(&engine, &snap, "s", "inputs", 0);
        let text = crate::plan::render_text(&from.plan, false);
        assert!(text.contains(&format!("content: {CONTENT_NOT_RECORDED}")), "{text}");
        assert!(!text.contains("0123456789abcdef"), "{text}");
        let md = crate::plan::render_markdown(&from.plan);
        assert!(md.contains(CONTENT_NOT_RECORDED) && !md.contains("0123456789abcdef"), "{md}");
        // Only that step differs from the live plan.
        let differ: Vec<&str> = from.plan.steps.iter().zip(&live_plan.plan.steps).filter(|(a, b)| a != b).map(|(a, _)| a.id.as_str()).collect();
        assert_eq!(differ, ["k8s-01/control-plane-init/kubeadm-config"]);
        // Saved, that plan applies while the hosts are as recorded: the masked diff matches
        // the fresh plan's real one...
        let mut saved = from.plan.clone();
        saved.inputs_sha256 = "inputs".into();
        let mut fresh = live_plan.plan.clone();
        fresh.inputs_sha256 = "inputs".into();
        assert_eq!(crate::engine::saved::check(&saved, &fresh), Ok(()));
        // ...but not when the change itself is another one.
        for step in &mut fresh.steps {
            if let Outcome::Change(c) = &mut step.outcome
                && step.id == "k8s-01/control-plane-init/kubeadm-config"
            {
                c.summary.push_str(" (else)");
            }
        }
        let err = crate::engine::saved::check(&saved, &fresh).unwrap_err();
        assert!(err.to_string().contains("the planned steps differ"), "{err}");
    }

    #[test]
    fn a_plan_from_an_old_snapshot_is_refused_once_a_host_changed() {
        let (engine, facts) = rpi_homelab();
        let snap = snapshot_of(&engine, &facts, &[0, 1, 2, 3]);
        let mut from = plan_from(&engine, &snap, "s", "inputs", 0).plan;
        from.inputs_sha256 = "inputs".into();
        let (_, mut same) = live(&engine, &facts);
        same.plan.inputs_sha256 = "inputs".into();
        assert_eq!(crate::engine::saved::check(&from, &same.plan), Ok(()));
        // The Pi k8s-02 changed since: its swap was switched off by hand.
        let mut drifted = facts.clone();
        drifted[1].insert(FactQuery::Swap, FactValue::Swap(Default::default()));
        let (_, mut now) = live(&engine, &drifted);
        now.plan.inputs_sha256 = "inputs".into();
        let err = crate::engine::saved::check(&from, &now.plan).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("k8s-02 changed since its facts were recorded at 2026-12-01T20:00:00Z"), "{text}");
        assert!(!text.contains("k8s-01") && !text.contains("k8s-03"), "only the host that changed: {text}");
        let help = miette::Diagnostic::help(&err).map(|h| h.to_string()).unwrap_or_default();
        assert!(help.contains("kprov plan INVENTORY -o plan.json"), "suggests a fresh plan: {help}");
        // A host planned from empty is never applied from that plan.
        let partial = plan_from(&engine, &snapshot_of(&engine, &facts, &[0, 1, 2]), "s", "inputs", 0).plan;
        let mut partial = partial;
        partial.inputs_sha256 = "inputs".into();
        let err = crate::engine::saved::check(&partial, &same.plan).unwrap_err();
        assert!(err.to_string().contains("k8s-04 was not in the facts snapshot"), "{err}");
    }

    #[test]
    fn the_empty_host_matches_the_blank_fixture_where_nothing_is_installed() {
        // A sanity check of `empty_value` against the homelab's hand-written blank host: the
        // packages, files and services of an empty host are the blank host's, bar the base
        // packages the fixture installs.
        let (engine, _) = rpi_homelab();
        let blank = blank_facts(&engine.fact_scripts[1], &os("arm64", "debian", "bookworm", "12", "k8s-02", false), false);
        let empty = snapshot::empty_host(queries_of(&engine, 1));
        for (q, v) in &empty.values {
            if let FactQuery::File { .. } = q {
                assert_eq!(Some(v), blank.get(q), "{q:?}");
            }
        }
    }
}
