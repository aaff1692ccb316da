//! What kprov downloads onto hosts, tested by running the real generated shell locally against
//! files: the CNI digest check (good, one byte changed, truncated, empty, missing), the CNI
//! patches against the CNI projects' real manifests in ../shared/upstream/cni (the patched
//! manifest parses, has the cluster's pod network where the CNI reads it, and nothing else
//! changed), Cilium's Helm install for both architectures, and the apt key check with keys made
//! by the real gpg (right key, wrong key, two keys, truncated, empty).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value as Json, json};

use super::context::{self, ClusterValues, HostValues, MirrorValues};
use super::pins;
use crate::facts::{FactQuery, FactValue, FileFact, HostFacts, OsFact};
use crate::resources::{AptRepository, Check, CheckContext, Resource};
use crate::roles::{Pass, Renderer, RoleSet};

const POD_CIDR: &str = "10.10.0.0/16";

fn cluster(cni: &str) -> ClusterValues {
    ClusterValues {
        name: "lab".into(),
        kubernetes_version: "1.34".into(),
        kubernetes_patch_version: None,
        pod_cidr: POD_CIDR.into(),
        service_cidr: "10.96.0.0/12".into(),
        cni: cni.into(),
        control_plane_endpoint: "192.0.2.10:6443".into(),
        advertise_address: "192.0.2.10".into(),
        preflight: crate::preflight::Policy::default(),
        kube: Default::default(),
    }
}

fn default_mirrors() -> MirrorValues {
    MirrorValues { kubernetes_apt: context::DEFAULT_KUBERNETES_APT.into(), docker_apt: context::DEFAULT_DOCKER_APT.into(), ..MirrorValues::default() }
}

/// The first control plane's context, with its OS facts, as the planner renders it.
fn host_context(cni: &str, mirrors: &MirrorValues, local: Option<&[u8]>, arch: &str) -> minijinja::Value {
    let host = HostValues {
        name: "cp".into(),
        address: "192.0.2.10".into(),
        internal_address: "192.0.2.10".into(),
        roles: vec!["control-plane".into()],
        labels: BTreeMap::new(),
        taints: vec![],
        advertise_address: None,
        watchdog: false,
        ssh_user: "root".into(),
        kubelet: Default::default(),
    };
    let ctx = context::build(&cluster(cni), &[host], mirrors, local).remove(0);
    let mut facts = HostFacts::default();
    facts.insert(FactQuery::Os, FactValue::Os(OsFact { id: "debian".into(), codename: "bookworm".into(), arch: arch.into(), ..Default::default() }));
    crate::plan::with_facts(&ctx, &facts)
}

fn render(text: &str, ctx: &minijinja::Value) -> String {
    let roles = RoleSet::load(None).unwrap();
    match Renderer::new(&roles).render_value(Pass::Final, &Json::String(text.into()), ctx).unwrap() {
        Json::String(s) => s,
        other => panic!("not text: {other}"),
    }
}

/// The rendered `cni` resource of the control-plane-init role.
fn cni_resource(ctx: &minijinja::Value) -> crate::resources::Command {
    let roles = RoleSet::load(None).unwrap();
    let decl = roles.role("control-plane-init").unwrap().resources.iter().find(|r| r.name == "cni").unwrap().clone();
    let raw = Json::Object(decl.spec.into_iter().collect());
    let value = Renderer::new(&roles).render_value(Pass::Final, &raw, ctx).unwrap();
    match serde_json::from_value(value).unwrap() {
        crate::resources::ResourceSpec::Command(c) => c,
        other => panic!("{other:?}"),
    }
}

fn upstream(file: &str) -> PathBuf {
    pins::upstream_dir().join("cni").join(file)
}

fn sh(script: &str, path_prefix: Option<&Path>) -> std::process::Output {
    let mut c = Command::new("sh");
    c.arg("-e").arg("-c").arg(script);
    if let Some(p) = path_prefix {
        c.env("PATH", format!("{}:{}", p.display(), std::env::var("PATH").unwrap_or_default()));
    }
    c.output().expect("sh runs")
}

fn yaml_docs(text: &str) -> Vec<Json> {
    let docs: Vec<Json> = serde_saphyr::from_multiple(text).unwrap_or_else(|e| panic!("the manifest parses as YAML: {e}"));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// Run the rendered patch step on a copy of `file` and return (original docs, patched docs).
fn patched(cni: &str, file: &str) -> (Vec<Json>, Vec<Json>) {
    let ctx = host_context(cni, &default_mirrors(), None, "amd64");
    let patch = render("{% include 'cni/patch.sh.j2' %}", &ctx);
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("m");
    let original = std::fs::read_to_string(upstream(file)).unwrap_or_else(|e| panic!("{}: {e}", upstream(file).display()));
    std::fs::write(dir.path().join("m.tmp"), &original).unwrap();
    let out = sh(&format!("manifest={}\n{patch}", manifest.display()), None);
    assert!(out.status.success(), "{cni}: the patch runs: {}", String::from_utf8_lossy(&out.stderr));
    let after = std::fs::read_to_string(dir.path().join("m.tmp")).unwrap();
    (yaml_docs(&original), yaml_docs(&after))
}

/// The object `kind/name` in the documents, or in the `items` of a `kind: List` (weave's form).
fn find<'a>(docs: &'a mut [Json], kind: &str, name: &str) -> &'a mut Json {
    docs.iter_mut()
        .flat_map(
            |d| {
                if d["kind"] == "List" { d["items"].as_array_mut().map(|a| a.iter_mut().collect::<Vec<_>>()).unwrap_or_default() } else { vec![d] }
            },
        )
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn container<'a>(ds: &'a mut Json, name: &str) -> &'a mut Json {
    ds["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

/// Remove the env entry `var` from a container, returning its value.
fn take_env(c: &mut Json, var: &str) -> Option<Json> {
    let env = c["env"].as_array_mut()?;
    let i = env.iter().position(|e| e["name"] == var)?;
    Some(env.remove(i)["value"].clone())
}

#[test]
fn the_fixtures_are_the_pinned_versions() {
    // If a pin moves away from the fixture's version, the patch tests below no longer test the
    // manifest kprov applies: say so here.
    let text = |f: &str| std::fs::read_to_string(upstream(f)).unwrap();
    for (name, file, marker) in [
        ("calico", "calico.yaml", "docker.io/calico/node:v3.30.7"),
        ("canal", "canal.yaml", "docker.io/calico/node:v3.30.7"),
        ("flannel", "kube-flannel.yml", "ghcr.io/flannel-io/flannel:v0.27.4"),
        ("weave", "weave-daemonset-k8s.yaml", "weaveworks/weave-kube:2.8.1"),
    ] {
        let pin = pins::cni(name).unwrap();
        assert!(marker.contains(pin.version.trim_start_matches('v')), "{name}: pinned {} but the fixture {file} is {marker}", pin.version);
        assert!(text(file).contains(marker), "{name}: {file} holds {marker}");
    }
    // kube-router's manifest names no version (the image is untagged): the fixture is the file
    // at tag v2.6.3, the pin's version (see ../shared/upstream/README.md).
    assert_eq!(pins::cni("kube-router").unwrap().version, "v2.6.3");
    // Cilium: the fixture is a pre-1.10 quick-install.yaml, which no longer exists; the pin is
    // the Helm chart 1.18.12, so there is no manifest to patch (see the cilium test below).
    assert!(text("cilium-quick-install.yaml").contains("cluster-pool-ipv4-cidr: \"10.0.0.0/8\""));
}

#[test]
fn flannel_and_canal_get_the_pod_network_in_net_conf_and_nothing_else() {
    for (cni, file, cm) in [("flannel", "kube-flannel.yml", "kube-flannel-cfg"), ("canal", "canal.yaml", "canal-config")] {
        let (mut before, mut after) = patched(cni, file);
        let conf: Json = serde_json::from_str(find(&mut after, "ConfigMap", cm)["data"]["net-conf.json"].as_str().unwrap()).unwrap();
        assert_eq!(conf["Network"], POD_CIDR, "{cni}: flannel reads the pod network from net-conf.json");
        let old = find(&mut before, "ConfigMap", cm)["data"]["net-conf.json"].as_str().unwrap().to_string();
        assert!(old.contains("\"Network\": \"10.244.0.0/16\""));
        find(&mut before, "ConfigMap", cm)["data"]["net-conf.json"] =
            json!(old.replace("\"Network\": \"10.244.0.0/16\"", &format!("\"Network\": \"{POD_CIDR}\"")));
        assert_eq!(before, after, "{cni}: nothing else changed");
    }
}

#[test]
fn calico_gets_its_pool_from_the_pod_network_and_nothing_else() {
    let (before, mut after) = patched("calico", "calico.yaml");
    let node = container(find(&mut after, "DaemonSet", "calico-node"), "calico-node");
    assert_eq!(take_env(node, "CALICO_IPV4POOL_CIDR"), Some(json!(POD_CIDR)), "calico-node reads its pool from CALICO_IPV4POOL_CIDR");
    assert_eq!(before, after, "nothing else changed");
}

#[test]
fn weave_allocates_from_the_pod_network_and_nothing_else_changed() {
    let (before, mut after) = patched("weave", "weave-daemonset-k8s.yaml");
    let weave = container(find(&mut after, "DaemonSet", "weave-net"), "weave");
    assert_eq!(take_env(weave, "IPALLOC_RANGE"), Some(json!(POD_CIDR)), "weave reads IPALLOC_RANGE");
    assert_eq!(before, after, "nothing else changed");
}

#[test]
fn kube_router_runs_the_pinned_image_tag() {
    let (mut before, after) = patched("kube-router", "kube-router.yaml");
    let ds = find(&mut before, "DaemonSet", "kube-router");
    let mut images = 0;
    for list in ["containers", "initContainers"] {
        for c in ds["spec"]["template"]["spec"][list].as_array_mut().unwrap() {
            assert_eq!(c["image"], "docker.io/cloudnativelabs/kube-router", "upstream leaves the tag off");
            c["image"] = json!("docker.io/cloudnativelabs/kube-router:v2.6.3");
            images += 1;
        }
    }
    assert_eq!(images, 2);
    assert_eq!(before, after, "only the image tags changed");
}

/// A pinned manifest whose layout no longer matches kprov's edit is refused, not applied
/// with the wrong network.
#[test]
fn a_patch_that_does_not_apply_to_the_pinned_manifest_fails() {
    let ctx = host_context("flannel", &default_mirrors(), None, "amd64");
    let patch = render("{% include 'cni/patch.sh.j2' %}", &ctx);
    let dir = tempfile::tempdir().unwrap();
    let text =
        std::fs::read_to_string(upstream("kube-flannel.yml")).unwrap().replace("\"Network\": \"10.244.0.0/16\"", "\"Network\": \"10.1.0.0/16\"");
    std::fs::write(dir.path().join("m.tmp"), text).unwrap();
    let out = sh(&format!("manifest={}/m\n{patch}", dir.path().display()), None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("has 0 lines matching"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The whole CNI script, run locally with /etc/kubernetes/kprov moved to a temp dir and a
/// kubectl that records its calls: returns (success, stderr, what kubectl was asked).
fn run_cni(cni: &str, mirrors: &MirrorValues, local: Option<&[u8]>) -> (bool, String, String) {
    let ctx = host_context(cni, mirrors, local, "amd64");
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let log = dir.path().join("kubectl.log");
    std::fs::write(bin.join("kubectl"), format!("#!/bin/sh\necho \"$*\" >> {}\n", log.display())).unwrap();
    Command::new("chmod").arg("755").arg(bin.join("kubectl")).status().unwrap();
    let run = cni_resource(&ctx).run.replace("/etc/kubernetes/kprov", &dir.path().join("kprov").display().to_string());
    assert!(!run.contains("/etc/kubernetes/kprov"));
    let out = sh(&run, Some(&bin));
    let calls = std::fs::read_to_string(&log).unwrap_or_default();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned(), calls)
}

fn own_manifest(path: &Path, sha256: &str) -> MirrorValues {
    MirrorValues { cni_manifest: Some(format!("file://{}", path.display())), cni_manifest_sha256: Some(sha256.into()), ..default_mirrors() }
}

#[test]
fn the_manifest_is_applied_only_with_the_right_digest() {
    let good = std::fs::read(upstream("kube-flannel.yml")).unwrap();
    let pinned = pins::cni("flannel").unwrap().sha256;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kube-flannel.yml");
    // The real manifest with the pinned digest: verified, patched, applied.
    std::fs::write(&file, &good).unwrap();
    let (ok, err, calls) = run_cni("flannel", &own_manifest(&file, pinned), None);
    assert!(ok, "{err}");
    assert!(calls.contains("apply -f"), "{calls}");
    // One byte changed, truncated, empty: refused with both digests, kubectl never called.
    let mut tampered = good.clone();
    let i = tampered.len() / 2;
    tampered[i] ^= 0x20;
    for (what, bytes) in [("one byte changed", tampered), ("truncated", good[..good.len() / 2].to_vec()), ("empty", vec![])] {
        std::fs::write(&file, &bytes).unwrap();
        let (ok, err, calls) = run_cni("flannel", &own_manifest(&file, pinned), None);
        assert!(!ok, "{what}: refused");
        let got = crate::digest::sha256_hex(&bytes);
        assert!(err.contains(&format!("expected sha256 {pinned}, got {got}; nothing applied")), "{what}: {err}");
        assert_eq!(calls, "", "{what}: nothing applied");
        assert!(!dir.path().join("kprov/cni-flannel.yaml").exists());
    }
    // A download that fails (no such file): refused, nothing applied.
    let (ok, err, calls) = run_cni("flannel", &own_manifest(&dir.path().join("missing.yml"), pinned), None);
    assert!(!ok && err.contains("cannot download") && calls.is_empty(), "{err}");
}

#[test]
fn a_local_manifest_is_hashed_by_kprov_and_checked_on_the_host() {
    let bytes = std::fs::read(upstream("kube-flannel.yml")).unwrap();
    let mirrors = MirrorValues { cni_manifest: Some("./kube-flannel.yml".into()), ..default_mirrors() };
    let ctx = host_context("flannel", &mirrors, Some(&bytes), "amd64");
    let c = cni_resource(&ctx);
    let digest = crate::digest::sha256_hex(&bytes);
    assert!(c.description.as_deref().unwrap().contains(&digest), "the plan shows the digest kprov computed");
    assert_eq!(c.fetches().len(), 1);
    let (ok, err, calls) = run_cni("flannel", &mirrors, Some(&bytes));
    assert!(ok, "{err}");
    assert!(calls.contains("apply -f"));
}

#[test]
fn cilium_is_installed_with_the_pinned_helm_and_chart_on_both_architectures() {
    for arch in ["amd64", "arm64"] {
        let ctx = host_context("cilium", &default_mirrors(), None, arch);
        let c = cni_resource(&ctx);
        let pin = pins::cni("cilium").unwrap();
        let helm_sha = pins::HELM.sha256.iter().find(|(a, _)| *a == arch).unwrap().1;
        let helm_url = format!("https://get.helm.sh/helm-{}-linux-{arch}.tar.gz", pins::HELM.version);
        let fetched: Vec<(String, String)> = c
            .fetches()
            .into_iter()
            .map(|f| match f.check {
                crate::resources::FetchCheck::Sha256 { sha256 } => (f.url, sha256),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(fetched, vec![(pin.url.to_string(), pin.sha256.to_string()), (helm_url.clone(), helm_sha.to_string())], "{arch}");
        let run = &c.run;
        assert!(run.contains(&format!("kprov_fetch {helm_url} \"$work/helm.tar.gz\" {helm_sha}")), "{run}");
        assert!(run.contains(&format!("kprov_fetch {} \"$work/cilium.tgz\" {}", pin.url, pin.sha256)), "{run}");
        assert!(run.contains(&format!("linux-{arch}/helm")));
        assert!(!run.contains("install/kubernetes/quick-install.yaml"));
        let n = Command::new("sh").arg("-n").arg("-c").arg(run).status().unwrap();
        assert!(n.success(), "the script parses");
        // The values file: YAML written by a serializer, the pod network as the cluster pool.
        let values = run.lines().find(|l| l.starts_with("printf '%s\\n' ")).unwrap();
        let quoted = values.trim_start_matches("printf '%s\\n' ").split(" > ").next().unwrap();
        let text = shlex::split(quoted).unwrap().remove(0);
        let v: Json = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(v["ipam"]["mode"], "cluster-pool");
        assert_eq!(v["ipam"]["operator"]["clusterPoolIPv4PodCIDRList"], json!([POD_CIDR]));
    }
    // Planning renders the step once without facts (to learn its guard's fact): that works too.
    let roles = RoleSet::load(None).unwrap();
    let host = HostValues {
        name: "cp".into(),
        address: "192.0.2.10".into(),
        internal_address: "192.0.2.10".into(),
        roles: vec!["control-plane".into()],
        labels: BTreeMap::new(),
        taints: vec![],
        advertise_address: None,
        watchdog: false,
        ssh_user: "root".into(),
        kubelet: Default::default(),
    };
    let bare = context::build(&cluster("cilium"), &[host], &default_mirrors(), None).remove(0);
    let decl = roles.role("control-plane-init").unwrap().resources.iter().find(|r| r.name == "cni").unwrap().clone();
    let raw = Json::Object(decl.spec.into_iter().collect());
    Renderer::new(&roles).render_value(Pass::Discover, &raw, &bare).expect("renders without facts");
    // A Helm mirror keeps the pinned digests.
    let mirrors = MirrorValues { helm: Some("http://mirror.lan/helm/".into()), ..default_mirrors() };
    let c = cni_resource(&host_context("cilium", &mirrors, None, "arm64"));
    assert!(c.run.contains(&format!("http://mirror.lan/helm/helm-{}-linux-arm64.tar.gz", pins::HELM.version)));
    assert!(c.run.contains(pins::HELM.sha256[1].1));
}

/// The Helm archive is checked before it is unpacked: a wrong one stops the script before
/// helm or kubectl runs.
#[test]
fn a_wrong_helm_archive_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("helm.tar.gz");
    std::fs::write(&fake, b"not helm").unwrap();
    let mirrors = MirrorValues { helm: Some(format!("file://{}", dir.path().display())), ..default_mirrors() };
    std::fs::copy(&fake, dir.path().join(format!("helm-{}-linux-amd64.tar.gz", pins::HELM.version))).unwrap();
    let (ok, err, calls) = run_cni("cilium", &mirrors, None);
    assert!(!ok);
    assert!(err.contains(&format!("expected sha256 {}", pins::HELM.sha256[0].1)) && err.contains(&crate::digest::sha256_hex(b"not helm")), "{err}");
    assert!(calls.is_empty());
}

// ---------------------------------------------------------------- apt keys

struct Keys {
    _home: tempfile::TempDir,
    dir: PathBuf,
}

impl Keys {
    /// Two fresh ed25519 keys made by the real gpg: (armoured file, fingerprint) each.
    fn new() -> (Keys, Vec<(PathBuf, String)>) {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().to_path_buf();
        let gpg = |args: &[&str]| {
            let out = Command::new("gpg")
                .env("GNUPGHOME", dir.join("g"))
                .args(["--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", ""])
                .args(args)
                .output()
                .expect("gpg runs");
            assert!(out.status.success(), "gpg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            out.stdout
        };
        std::fs::create_dir(dir.join("g")).unwrap();
        Command::new("chmod").arg("700").arg(dir.join("g")).status().unwrap();
        let mut keys = vec![];
        for who in ["one", "two"] {
            gpg(&["--quick-gen-key", &format!("kprov test {who} <{who}@kprov.invalid>"), "ed25519", "sign", "never"]);
            let listing = String::from_utf8(gpg(&["--with-colons", "--list-keys", &format!("{who}@kprov.invalid")])).unwrap();
            let fpr = listing.lines().find(|l| l.starts_with("fpr:")).unwrap().split(':').nth(9).unwrap().to_string();
            let file = dir.join(format!("{who}.asc"));
            std::fs::write(&file, gpg(&["--armor", "--export", &fpr])).unwrap();
            keys.push((file, fpr));
        }
        (Keys { _home: home, dir }, keys)
    }
}

fn repo(key: &Path, ring: &Path, fingerprints: &[&str]) -> AptRepository {
    AptRepository {
        name: "kubernetes".into(),
        key_url: format!("file://{}", key.display()),
        key_fingerprints: fingerprints.iter().map(|f| f.to_string()).collect(),
        insecure_skip_key_fingerprint: false,
        keyring: ring.display().to_string(),
        uri: "http://192.0.2.1/deb/".into(),
        suite: "/".into(),
        components: vec![],
        arch: None,
    }
}

fn facts_with(ring: &Path, content: Option<&[u8]>, list: &Path) -> HostFacts {
    let mut f = HostFacts::default();
    let file = |c: Option<&[u8]>| FileFact {
        exists: c.is_some(),
        size: c.map_or(0, |c| c.len() as u64),
        sha256: c.map(crate::digest::sha256_hex).unwrap_or_default(),
        content: c.map(<[u8]>::to_vec),
        mode: 0o644,
        owner: "root".into(),
        group: "root".into(),
        file_type: "regular file".into(),
    };
    f.insert(FactQuery::File { path: ring.display().to_string() }, FactValue::File(file(content)));
    f.insert(FactQuery::File { path: list.display().to_string() }, FactValue::File(file(None)));
    f
}

/// Plan and run the repository's key script locally: (success, stderr).
fn install_key(r: &AptRepository, existing: Option<&[u8]>) -> (bool, String) {
    let facts = facts_with(Path::new(&r.keyring), existing, Path::new(&r.list_path()));
    let captures = crate::resources::Captures::new();
    let ctx = CheckContext { facts: &facts, dependency_changed: false, captures: &captures };
    let Check::Change(mut change) = r.check(&ctx).unwrap() else { panic!("a key to install") };
    change.content = None; // only the key: the list file belongs under /etc/apt
    let script = r.apply_script(&ctx, &change).unwrap();
    let out = sh(&script, None);
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_repository_key_is_installed_only_with_a_pinned_fingerprint() {
    let (k, keys) = Keys::new();
    let (one, fp1) = &keys[0];
    let (two, fp2) = &keys[1];
    let ring = k.dir.join("keyrings/kubernetes.gpg");
    // The right key: installed, dearmoured, and the plan's own reading of it agrees with gpg.
    let (ok, err) = install_key(&repo(one, &ring, &[fp1]), None);
    assert!(ok, "{err}");
    let installed = std::fs::read(&ring).unwrap();
    assert_eq!(crate::resources::keyring_fingerprints(&installed), Some(vec![fp1.clone()]));
    std::fs::remove_file(&ring).unwrap();
    // The wrong key: refused with both fingerprints, nothing installed.
    let (ok, err) = install_key(&repo(two, &ring, &[fp1]), None);
    assert!(!ok);
    assert!(err.contains(&format!("expected {fp1}, got {fp2}; nothing installed")), "{err}");
    assert!(!ring.exists());
    // The right key with another one appended: refused (apt would trust both).
    let both = k.dir.join("both.asc");
    std::fs::write(&both, [std::fs::read(one).unwrap(), std::fs::read(two).unwrap()].concat()).unwrap();
    let (ok, err) = install_key(&repo(&both, &ring, &[fp1]), None);
    assert!(!ok && err.contains("holds 2 primary keys"), "{err}");
    assert!(!ring.exists());
    // Truncated and empty downloads: refused.
    let text = std::fs::read(one).unwrap();
    for (what, bytes) in [("truncated", text[..text.len() / 2].to_vec()), ("empty", vec![])] {
        let f = k.dir.join(format!("{what}.asc"));
        std::fs::write(&f, &bytes).unwrap();
        let (ok, err) = install_key(&repo(&f, &ring, &[fp1]), None);
        assert!(!ok, "{what}: refused");
        assert!(err.contains(&format!("expected fingerprint {fp1}")) || err.contains("holds 0 primary keys"), "{what}: {err}");
        assert!(!ring.exists(), "{what}: nothing installed");
    }
}

#[test]
fn an_installed_keyring_with_another_key_is_replaced() {
    let (k, keys) = Keys::new();
    let (one, fp1) = &keys[0];
    let (two, fp2) = &keys[1];
    let ring = k.dir.join("ring.gpg");
    let dearmor = |f: &Path| Command::new("gpg").args(["--dearmor", "-o", "-"]).arg(f).output().unwrap().stdout;
    let list_path = |r: &AptRepository| PathBuf::from(r.list_path());
    let r = repo(one, &ring, &[fp1]);
    let captures = crate::resources::Captures::new();
    // The pinned key installed: nothing to do for the key.
    let good = dearmor(one);
    let facts = facts_with(&ring, Some(&good), &list_path(&r));
    let Check::Change(c) = r.check(&CheckContext { facts: &facts, dependency_changed: false, captures: &captures }).unwrap() else { panic!() };
    assert!(!c.attributes.iter().any(|a| a.name == "keyring"), "{c:?}");
    // Another key in its place: replaced, and the plan names the fingerprint it found.
    let other = dearmor(two);
    let facts = facts_with(&ring, Some(&other), &list_path(&r));
    let Check::Change(c) = r.check(&CheckContext { facts: &facts, dependency_changed: false, captures: &captures }).unwrap() else { panic!() };
    let a = c.attributes.iter().find(|a| a.name == "keyring").expect("the keyring is replaced");
    assert!(a.old.as_deref().unwrap().contains(fp2.as_str()), "{a:?}");
    assert!(a.new.as_deref().unwrap().contains(fp1.as_str()), "{a:?}");
    // No fingerprint and no explicit skip: an error, never a silent trust.
    let unpinned = repo(one, &ring, &[]);
    assert!(unpinned.check(&CheckContext { facts: &facts, dependency_changed: false, captures: &captures }).is_err());
}

#[test]
fn the_roles_pin_the_projects_keys_unless_a_mirror_brings_its_own() {
    let roles = RoleSet::load(None).unwrap();
    let renderer = Renderer::new(&roles);
    let apt = roles.role("apt").unwrap();
    let repos = |mirrors: &MirrorValues| -> Vec<AptRepository> {
        let ctx = host_context("calico", mirrors, None, "amd64");
        apt.resources
            .iter()
            .filter_map(|r| {
                let raw = Json::Object(r.spec.clone().into_iter().collect());
                match serde_json::from_value(renderer.render_value(Pass::Final, &raw, &ctx).unwrap()).unwrap() {
                    crate::resources::ResourceSpec::AptRepository(a) => Some(a),
                    _ => None,
                }
            })
            .collect()
    };
    let built_in = repos(&default_mirrors());
    assert_eq!(built_in[0].key_fingerprints, pins::KUBERNETES_APT_KEY_FINGERPRINTS);
    assert_eq!(built_in[1].key_fingerprints, pins::DOCKER_APT_KEY_FINGERPRINTS);
    assert!(built_in.iter().all(|r| !r.insecure_skip_key_fingerprint));
    let mirror = MirrorValues {
        kubernetes_apt: "http://mirror.lan/k8s/{minor}/".into(),
        docker_apt: "http://mirror.lan/docker".into(),
        kubernetes_apt_key_fingerprint: Some("aaaa bbbb cccc dddd eeee ffff 0000 1111 2222 3333".into()),
        insecure_skip_key_fingerprint: true,
        ..default_mirrors()
    };
    let own = repos(&mirror);
    assert_eq!(own[0].key_fingerprints, ["AAAABBBBCCCCDDDDEEEEFFFF0000111122223333"]);
    assert!(!own[0].insecure_skip_key_fingerprint, "a pinned mirror key is checked");
    assert!(own[1].key_fingerprints.is_empty() && own[1].insecure_skip_key_fingerprint, "the skip applies to the mirror without a fingerprint only");
    // The skip never applies to the projects' own URLs.
    let skip_only = MirrorValues { insecure_skip_key_fingerprint: true, ..default_mirrors() };
    assert!(repos(&skip_only).iter().all(|r| !r.insecure_skip_key_fingerprint && !r.key_fingerprints.is_empty()));
}

/// scripts/pin-cni.sh rewrites exactly the CNI's own line with the new version, URL and the
/// digest of the file it was given, and refuses an empty or non-manifest file.
#[test]
fn pin_cni_rewrites_one_line_with_the_new_digest() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let pins_copy = dir.path().join("pins.rs");
    let original = std::fs::read_to_string(root.join("src/engine/pins.rs")).unwrap();
    std::fs::write(&pins_copy, &original).unwrap();
    let run = |args: &[&str]| Command::new("bash").arg(root.join("scripts/pin-cni.sh")).args(args).env("PINS", &pins_copy).output().unwrap();
    let mut newer = std::fs::read(upstream("kube-flannel.yml")).unwrap();
    newer.extend_from_slice(b"# a newer release\n");
    let file = dir.path().join("kube-flannel.yml");
    std::fs::write(&file, &newer).unwrap();
    let out = run(&["flannel", "v0.27.9", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let after = std::fs::read_to_string(&pins_copy).unwrap();
    let changed: Vec<(&str, &str)> = original.lines().zip(after.lines()).filter(|(a, b)| a != b).collect();
    assert_eq!(changed.len(), 1, "one line changed");
    let line = changed[0].1;
    assert!(line.contains("name: \"flannel\", version: \"v0.27.9\""), "{line}");
    assert!(line.contains("flannel-io/flannel/v0.27.9/Documentation/kube-flannel.yml"), "{line}");
    assert!(line.contains(&crate::digest::sha256_hex(&newer)), "{line}");
    assert_eq!(original.lines().count(), after.lines().count());
    // Empty, not a manifest, unknown CNI: refused, nothing rewritten.
    std::fs::write(&pins_copy, &original).unwrap();
    std::fs::write(&file, b"").unwrap();
    assert!(!run(&["calico", "v3.31.0", file.to_str().unwrap()]).status.success());
    std::fs::write(&file, b"<html>not found</html>\n").unwrap();
    assert!(!run(&["calico", "v3.31.0", file.to_str().unwrap()]).status.success());
    assert!(!run(&["cilantro", "v1", file.to_str().unwrap()]).status.success());
    assert_eq!(std::fs::read_to_string(&pins_copy).unwrap(), original);
}
