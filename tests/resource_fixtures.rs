//! pyinfra-style fixtures for every resource type: facts in, plan and commands out, no SSH.
//!
//! Each file under `tests/fixtures/resources/<kind>/` declares one resource (as a role would,
//! after templating), the facts a host reported, and the outcome the case is about (`noop`,
//! `create`, `update`, `run`, `restart`, `reboot` or `error`). The runner checks the outcome,
//! that the fixture gives exactly the facts the resource asks for (so no fixture goes stale
//! when a resource starts reading something new), that every generated script parses with
//! `sh -n`, and that no `secrets` value reaches the plan; then it snapshots what the plan shows
//! and the shell text apply would send (`tests/snapshots/resource_fixtures__*.snap`).
//!
//! Facts are written in a short form (see [`FixtureFacts`]) and turned into the typed
//! `HostFacts` that the fact parser would produce.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use kprov::facts::{
    BootFact, ConfigFile, DpkgFact, FactQuery, FactValue, FileFact, HostFacts, OsFact, PackageFact, ServiceFact, SwapFact, SwapGenerator, SwapUnit,
};
use kprov::plan::{HostPlan, HostStatus, Outcome, Plan, Step, render_text};
use kprov::resources::{Captures, Check, CheckContext, ResourceSpec};
use kprov::secret::Secret;
use serde::Deserialize;
use sha2::{Digest, Sha256};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixture {
    resource: ResourceSpec,
    #[serde(default)]
    facts: FixtureFacts,
    /// Something this resource follows (restart_on, after_change_of) changes in this run.
    #[serde(default)]
    dependency_changed: bool,
    /// Values captured earlier in the apply (join commands). Secret: never in the plan.
    #[serde(default)]
    captures: BTreeMap<String, String>,
    /// Strings that must not appear in the plan (on top of every capture value).
    #[serde(default)]
    secrets: Vec<String>,
    expect: Expect,
    /// For a reboot: the facts gathered once the host is back, judged by its `verify` checks.
    #[serde(default)]
    after_reboot: Option<AfterReboot>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AfterReboot {
    facts: FixtureFacts,
    /// `ok`, or `error` (the step fails with the message, snapshotted).
    expect: String,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Expect {
    Noop,
    Create,
    Update,
    Delete,
    Run,
    Restart,
    Reboot,
    Error,
}

/// Facts in short form: only what the case needs.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FixtureFacts {
    os: Option<FixtureOs>,
    #[serde(default)]
    files: BTreeMap<String, FixtureFile>,
    /// Runtime value; `~` when the key does not exist in /proc/sys.
    #[serde(default)]
    sysctl: BTreeMap<String, Option<String>>,
    /// `loaded`, `builtin` or `absent`.
    #[serde(default)]
    modules: BTreeMap<String, String>,
    swap: Option<FixtureSwap>,
    /// /proc/cmdline and the cgroup controllers.
    boot: Option<FixtureBoot>,
    /// `absent`, or the installed version with `held`.
    #[serde(default)]
    packages: BTreeMap<String, FixturePackage>,
    #[serde(default)]
    services: BTreeMap<String, FixtureService>,
    /// dpkg's unfinished work: `{}` for none, `journal: true` for an interrupted dpkg, and
    /// `unsettled: ["NAME STATUS"]` as the fact script reads /var/lib/dpkg/status.
    dpkg: Option<DpkgFact>,
    /// Exit status of a guard command.
    #[serde(default)]
    commands: BTreeMap<String, i32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FixtureOs {
    #[serde(default = "debian")]
    id: String,
    #[serde(default)]
    id_like: String,
    #[serde(default = "twelve")]
    version_id: String,
    #[serde(default = "bookworm")]
    codename: String,
    #[serde(default = "amd64")]
    arch: String,
    #[serde(default = "two")]
    cpus: u32,
    #[serde(default = "four_gib")]
    memory_kib: u64,
    #[serde(default)]
    board_model: String,
    #[serde(default)]
    raspberry_pi_os: bool,
    #[serde(default = "yes")]
    memory_cgroup: bool,
    #[serde(default)]
    listening: Vec<String>,
    #[serde(default)]
    hostname: String,
}

fn debian() -> String {
    "debian".into()
}
fn twelve() -> String {
    "12".into()
}
fn bookworm() -> String {
    "bookworm".into()
}
fn amd64() -> String {
    "amd64".into()
}
fn two() -> u32 {
    2
}
fn four_gib() -> u64 {
    4 * 1024 * 1024
}
fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(untagged)]
enum FixtureFile {
    /// `absent`
    Word(String),
    Present {
        #[serde(default)]
        content: String,
        /// Binary content (a keyring), base64; replaces `content`.
        #[serde(default)]
        content_base64: Option<String>,
        #[serde(default = "mode_644")]
        mode: String,
        #[serde(default = "root")]
        owner: String,
        #[serde(default = "root")]
        group: String,
        #[serde(default = "regular")]
        file_type: String,
    },
}

fn mode_644() -> String {
    "0644".into()
}
fn root() -> String {
    "root".into()
}
fn regular() -> String {
    "regular file".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FixtureSwap {
    #[serde(default)]
    active: Vec<String>,
    #[serde(default)]
    fstab: Vec<String>,
    /// Swap unit files: path → `masked` or `source=SOURCEPATH` (empty for none).
    #[serde(default)]
    units: BTreeMap<String, String>,
    /// Units swap.target wants or requires.
    #[serde(default)]
    wanted: Vec<String>,
    /// Generator paths; a `masked` one is a link to /dev/null.
    #[serde(default)]
    generators: Vec<String>,
    #[serde(default)]
    masked_generators: Vec<String>,
    /// Configuration files: path → content (`masked` for a link to /dev/null).
    #[serde(default)]
    configs: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FixtureBoot {
    cmdline: String,
    /// /sys/fs/cgroup/cgroup.controllers; absent on a cgroup v1 host.
    #[serde(default)]
    cgroup_v2_controllers: Option<String>,
    /// The memory row of /proc/cgroups: `true` enabled, `false` disabled, absent no row.
    #[serde(default)]
    cgroup_v1_memory: Option<bool>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum FixturePackage {
    Word(String),
    Installed {
        version: String,
        #[serde(default)]
        held: bool,
    },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum FixtureService {
    Word(String),
    Present {
        enabled: bool,
        active: bool,
        /// What `systemctl is-enabled` printed (masked, static...); derived from `enabled` if absent.
        #[serde(default)]
        enablement: Option<String>,
    },
}

impl FixtureFacts {
    fn into_host_facts(self, name: &str) -> HostFacts {
        let mut facts = HostFacts::default();
        if let Some(os) = self.os {
            facts.insert(
                FactQuery::Os,
                FactValue::Os(OsFact {
                    machine: if os.arch == "arm64" { "aarch64".into() } else { "x86_64".into() },
                    pretty_name: format!("{} {}", os.id, os.version_id),
                    kernel: "6.1.0".into(),
                    id: os.id,
                    id_like: os.id_like,
                    version_id: os.version_id,
                    codename: os.codename,
                    arch: os.arch,
                    hostname: os.hostname,
                    cpus: os.cpus,
                    memory_kib: os.memory_kib,
                    board_model: os.board_model,
                    raspberry_pi_os: os.raspberry_pi_os,
                    memory_cgroup: os.memory_cgroup,
                    listening: os.listening,
                    macs: vec![],
                }),
            );
        }
        for (path, f) in self.files {
            let fact = match f {
                FixtureFile::Word(w) => {
                    assert_eq!(w, "absent", "{name}: file {path}: write `absent` or a mapping");
                    FileFact::default()
                }
                FixtureFile::Present { content, content_base64, mode, owner, group, file_type } => {
                    use base64::Engine as _;
                    let content = match content_base64 {
                        Some(b) => base64::engine::general_purpose::STANDARD
                            .decode(b.trim())
                            .unwrap_or_else(|e| panic!("{name}: file {path}: content_base64: {e}")),
                        None => content.into_bytes(),
                    };
                    FileFact {
                        exists: true,
                        mode: u32::from_str_radix(mode.trim_start_matches("0o"), 8)
                            .unwrap_or_else(|_| panic!("{name}: file {path}: mode {mode} is not octal")),
                        size: content.len() as u64,
                        sha256: hex(&Sha256::digest(&content)),
                        content: Some(content),
                        owner,
                        group,
                        file_type,
                    }
                }
            };
            facts.insert(FactQuery::File { path }, FactValue::File(fact));
        }
        for (key, value) in self.sysctl {
            facts.insert(FactQuery::Sysctl { key }, FactValue::Sysctl { value });
        }
        for (module, state) in self.modules {
            let (loaded, builtin) = match state.as_str() {
                "loaded" => (true, false),
                "builtin" => (false, true),
                "absent" => (false, false),
                other => panic!("{name}: module {module}: {other} is not loaded, builtin or absent"),
            };
            facts.insert(FactQuery::Module { name: module }, FactValue::Module { loaded, builtin });
        }
        if let Some(s) = self.swap {
            let units = s
                .units
                .into_iter()
                .map(|(path, state)| match state.as_str() {
                    "masked" => SwapUnit { path, masked: true, source: String::new() },
                    other => SwapUnit {
                        source: other
                            .strip_prefix("source=")
                            .unwrap_or_else(|| panic!("{name}: unit {path}: write `masked` or `source=PATH`"))
                            .to_string(),
                        path,
                        masked: false,
                    },
                })
                .collect();
            let generators = s
                .generators
                .into_iter()
                .map(|path| SwapGenerator { path, masked: false })
                .chain(s.masked_generators.into_iter().map(|path| SwapGenerator { path, masked: true }))
                .collect();
            // As the fact script prints them: settings and section headers, comments left out.
            let configs = s
                .configs
                .into_iter()
                .map(|(path, content)| match content.as_str() {
                    "masked" => ConfigFile { path, masked: true, lines: vec![] },
                    _ => ConfigFile {
                        path,
                        masked: false,
                        lines: content.lines().filter(|l| l.contains('=') || l.contains('[')).map(str::to_string).collect(),
                    },
                })
                .collect();
            facts.insert(
                FactQuery::Swap,
                FactValue::Swap(SwapFact { active: s.active, fstab: s.fstab, units, wanted: s.wanted, generators, configs }),
            );
        }
        if let Some(b) = self.boot {
            facts.insert(
                FactQuery::Boot,
                FactValue::Boot(BootFact {
                    cmdline: b.cmdline,
                    cgroup_v2_controllers: b.cgroup_v2_controllers,
                    cgroup_v1_memory: b.cgroup_v1_memory,
                }),
            );
        }
        for (pkg, p) in self.packages {
            let fact = match p {
                FixturePackage::Word(w) => {
                    assert_eq!(w, "absent", "{name}: package {pkg}: write `absent` or a mapping");
                    PackageFact::default()
                }
                FixturePackage::Installed { version, held } => PackageFact { installed: true, version: Some(version), held },
            };
            facts.insert(FactQuery::Package { name: pkg }, FactValue::Package(fact));
        }
        for (unit, s) in self.services {
            let fact = match s {
                FixtureService::Word(w) => {
                    assert_eq!(w, "absent", "{name}: service {unit}: write `absent` or a mapping");
                    ServiceFact { enablement: "not-found".into(), ..ServiceFact::default() }
                }
                FixtureService::Present { enabled, active, enablement } => ServiceFact {
                    exists: true,
                    enabled,
                    active,
                    enablement: enablement.unwrap_or_else(|| if enabled { "enabled".into() } else { "disabled".into() }),
                },
            };
            facts.insert(FactQuery::Service { name: unit }, FactValue::Service(fact));
        }
        if let Some(d) = self.dpkg {
            facts.insert(FactQuery::Dpkg, FactValue::Dpkg(d));
        }
        for (command, exit_status) in self.commands {
            facts.insert(FactQuery::Command { command }, FactValue::Command { exit_status });
        }
        facts
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs one fixture and returns the text to snapshot.
fn run(path: &Path, name: &str) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let fx: Fixture = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let resource = fx.resource.as_resource();
    let facts = fx.facts.into_host_facts(name);

    // The fixture gives exactly the facts the resource asks for.
    let wanted: BTreeSet<FactQuery> = resource.facts().into_iter().collect();
    let given: BTreeSet<FactQuery> = facts.values.keys().cloned().collect();
    let extra: Vec<String> = given.difference(&wanted).map(FactQuery::label).collect();
    assert!(extra.is_empty(), "{name}: the fixture gives facts the resource never asks for: {extra:?}");
    if fx.expect != Expect::Error {
        let missing: Vec<String> = wanted.difference(&given).map(FactQuery::label).collect();
        assert!(missing.is_empty(), "{name}: the fixture lacks facts the resource asks for: {missing:?}");
    }

    let captures: Captures = fx.captures.iter().map(|(k, v)| (k.clone(), Secret::new(v.clone()))).collect();
    let ctx = CheckContext { facts: &facts, dependency_changed: fx.dependency_changed, captures: &captures };
    let mut out = String::new();
    out.push_str(&format!("kind: {}\n", fx.resource.kind()));
    out.push_str("facts:\n");
    for q in &wanted {
        out.push_str(&format!("  - {}\n", q.label()));
    }

    let check = resource.check(&ctx);
    let (outcome, script) = match &check {
        Err(e) => {
            assert_eq!(fx.expect, Expect::Error, "{name}: check failed: {e}");
            (Outcome::Error { message: e.to_string() }, None)
        }
        Ok(Check::NoOp { reason }) => {
            assert_eq!(fx.expect, Expect::Noop, "{name}: no-op ({reason}), expected {:?}", fx.expect);
            (Outcome::NoOp { reason: reason.clone() }, None)
        }
        Ok(Check::Change(change)) => {
            let got = match change.action {
                kprov::resources::Action::Create => Expect::Create,
                kprov::resources::Action::Update => Expect::Update,
                kprov::resources::Action::Delete => Expect::Delete,
                kprov::resources::Action::Run => Expect::Run,
                kprov::resources::Action::Restart => Expect::Restart,
                kprov::resources::Action::Reboot => Expect::Reboot,
            };
            assert_eq!(fx.expect, got, "{name}: change {change:?}");
            let script = resource.apply_script(&ctx, change).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_sh_parses(name, &script);
            (Outcome::Change(change.clone()), Some(script))
        }
    };

    let step = Step {
        id: format!("node/fixture/{name}"),
        host: "node".into(),
        role: "fixture".into(),
        resource: name.into(),
        kind: fx.resource.kind().into(),
        outcome: outcome.clone(),
    };
    let host = HostPlan { name: "node".into(), address: "192.0.2.10".into(), status: HostStatus::Ready, facts_fingerprint: None };
    let plan_text = render_text(&Plan::new(vec![host], vec![step]), false);
    let plan_json = serde_json::to_string(&outcome).unwrap();
    for secret in fx.secrets.iter().chain(fx.captures.values()) {
        assert!(!plan_text.contains(secret.as_str()), "{name}: secret {secret:?} in the plan:\n{plan_text}");
        assert!(!plan_json.contains(secret.as_str()), "{name}: secret {secret:?} in the JSON plan");
    }

    match &outcome {
        Outcome::NoOp { reason } => out.push_str(&format!("no-op: {reason}\n")),
        Outcome::Error { message } => out.push_str(&format!("error: {message}\n")),
        _ => {}
    }
    out.push_str("plan:\n");
    for line in plan_text.lines() {
        out.push_str(&format!("  {line}\n").replace("  \n", "\n"));
    }
    if let Some(script) = script {
        out.push_str("script:\n");
        for line in script.lines() {
            out.push_str(&format!("  {line}\n").replace("  \n", "\n"));
        }
    }
    if let Some(after) = fx.after_reboot {
        let ResourceSpec::Reboot(reboot) = &fx.resource else { panic!("{name}: after_reboot is for a reboot") };
        let facts = after.facts.into_host_facts(name);
        let wanted: BTreeSet<FactQuery> = reboot.verify.queries().into_iter().collect();
        let given: BTreeSet<FactQuery> = facts.values.keys().cloned().collect();
        assert_eq!(given, wanted, "{name}: after_reboot gives exactly the facts the checks ask for");
        match (reboot.verify.check(&facts), after.expect.as_str()) {
            (Ok(()), "ok") => out.push_str("after the reboot: ok\n"),
            (Err(e), "error") => out.push_str(&format!("after the reboot: step fails:\n  {}\n", e.replace('\n', "\n  "))),
            (got, want) => panic!("{name}: after the reboot expected {want}, got {got:?}"),
        }
    }
    out
}

fn assert_sh_parses(name: &str, script: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("script.sh");
    std::fs::write(&file, script).unwrap();
    let out = std::process::Command::new("sh").arg("-n").arg(&file).output().unwrap();
    assert!(out.status.success(), "{name}: sh -n rejects the script: {}\n{script}", String::from_utf8_lossy(&out.stderr));
}

fn fixture_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/resources");
    let mut files = vec![];
    for kind in std::fs::read_dir(&root).unwrap() {
        let kind = kind.unwrap().path();
        for f in std::fs::read_dir(&kind).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "yaml") {
                files.push(f);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn every_resource_fixture_gives_its_plan_and_commands() {
    let files = fixture_files();
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(true);
    settings.bind(|| {
        for f in &files {
            let kind = f.parent().unwrap().file_name().unwrap().to_string_lossy().into_owned();
            let case = f.file_stem().unwrap().to_string_lossy().into_owned();
            let name = format!("{kind}__{case}");
            let out = run(f, &name);
            insta::assert_snapshot!(name, out);
        }
    });
}

#[test]
fn every_resource_type_has_fixtures_for_change_and_no_change() {
    // Every kind in ResourceSpec, by its YAML name; a new type without fixtures fails here.
    let kinds = [
        "file",
        "line",
        "preflight",
        "sysctl",
        "kernel_module",
        "kernel_cmdline",
        "swap_off",
        "apt_repository",
        "apt_packages",
        "service",
        "command",
        "capture",
        "reboot",
    ];
    let files = fixture_files();
    for kind in kinds {
        let outcomes: BTreeSet<String> = files
            .iter()
            .filter(|f| f.parent().unwrap().file_name().unwrap() == kind)
            .map(|f| {
                let fx: Fixture = serde_saphyr::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
                assert_eq!(fx.resource.kind(), kind, "{} is in the wrong directory", f.display());
                format!("{:?}", fx.expect)
            })
            .collect();
        assert!(!outcomes.is_empty(), "no fixtures for {kind}");
        // Capture always reads (its value is known only after apply): it has no no-op case.
        if kind != "capture" {
            assert!(outcomes.contains("Noop"), "{kind} has no no-op fixture: {outcomes:?}");
        }
        if kind == "preflight" {
            // Preflight only checks: it passes or fails the host, it never changes anything.
            assert!(outcomes.contains("Error"), "preflight has no failing fixture: {outcomes:?}");
        } else {
            assert!(outcomes.iter().any(|o| o != "Noop" && o != "Error"), "{kind} has no change fixture: {outcomes:?}");
        }
    }
}
