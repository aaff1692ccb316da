//! The inventory: every example validates, and every kind of bad inventory gets a diagnostic
//! that points at the right place with a useful hint (insta snapshots of the rendered output,
//! reviewed by eye).

use std::path::Path;

use kprov::inventory::{self, Severity};

fn render(path: &Path) -> (String, bool) {
    let loaded = inventory::load(path);
    let mut out = String::new();
    let handler = miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor()).with_width(100).with_context_lines(1);
    for d in &loaded.diagnostics {
        handler.render_report(&mut out, d).unwrap();
        out.push('\n');
    }
    (out, loaded.inventory.is_some())
}

#[test]
fn examples_validate() {
    for f in ["rpi-homelab", "ubuntu-ha", "mixed-arch"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("inventory-examples/{f}.yaml"));
        let loaded = inventory::load(&path);
        assert!(loaded.errors().next().is_none(), "{f}: {:?}", loaded.diagnostics);
        let inv = loaded.inventory.unwrap();
        assert!(inv.control_planes().count() >= 1);
    }
}

#[test]
fn the_homelab_example_reads_as_the_guide() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("inventory-examples/rpi-homelab.yaml");
    let inv = inventory::load(&path).inventory.unwrap();
    assert_eq!(inv.hosts.len(), 4);
    assert_eq!(inv.cluster.pod_cidr.to_string(), "10.10.0.0/16");
    assert_eq!((inv.cluster.cni.as_str(), inv.cluster.kubernetes_version.as_str()), ("weave", "1.34"));
    assert_eq!(inv.first_control_plane().address, "192.168.0.150");
    assert_eq!(inv.endpoint(), "192.168.0.150:6443");
    assert_eq!(inv.hosts[1].ssh.user, "pi");
    // The 15-line promise: count the lines that are not comments.
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.lines().filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')).count() <= 15);
}

#[test]
fn per_host_ssh_overrides_merge_with_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("inventory-examples/mixed-arch.yaml");
    let inv = inventory::load(&path).inventory.unwrap();
    let nuc = &inv.hosts[0].ssh;
    let pi1 = &inv.hosts[1].ssh;
    assert_eq!((nuc.user.as_str(), nuc.port), ("ubuntu", 22));
    assert_eq!((pi1.user.as_str(), pi1.port), ("pi", 2222));
    assert_eq!(pi1.identity_files, nuc.identity_files, "the key is inherited");
    assert!(inv.hosts[1].raspberry_pi.watchdog);
}

#[test]
fn bad_inventories_render_clear_diagnostics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-inventories");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 14);
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    // Paths differ between machines; keep the file name.
    settings.add_filter(&regex_escape(&dir.display().to_string()), "tests/bad-inventories");
    settings.bind(|| {
        for f in &files {
            let name = f.file_stem().unwrap().to_string_lossy().into_owned();
            let (out, valid) = render(f);
            // Only the even-control-planes case is valid (a warning); every other file is invalid.
            assert_eq!(valid, name == "even-control-planes", "{name}:\n{out}");
            assert!(!out.is_empty(), "{name} produced no diagnostic");
            insta::assert_snapshot!(name, out);
        }
    });
}

fn regex_escape(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '/' || c == '_' || c == '-' { c.to_string() } else { format!("\\{c}") }).collect()
}

#[test]
fn all_problems_are_collected_in_one_run() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-inventories/many-problems.yaml");
    let loaded = inventory::load(&path);
    let codes: Vec<&str> = loaded.diagnostics.iter().map(|d| d.code).collect();
    for c in [
        "kprov::inventory::duplicate_host",
        "kprov::inventory::host_name",
        "kprov::inventory::address",
        "kprov::inventory::no_roles",
        "kprov::inventory::no_control_plane",
        "kprov::inventory::cni",
        "kprov::inventory::kubernetes_version",
    ] {
        assert!(codes.contains(&c), "{c} missing from {codes:?}");
    }
    assert!(loaded.diagnostics.iter().all(|d| d.severity == Severity::Error));
    assert!(loaded.diagnostics.iter().all(|d| d.line_column().is_some()), "every problem has a line and column");
}

#[test]
fn diagnostics_carry_line_and_column() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-inventories/duplicate-host-name.yaml");
    let loaded = inventory::load(&path);
    let d = &loaded.diagnostics[0];
    assert_eq!(d.line_column(), Some((4, 13)));
    let json = d.to_json();
    assert_eq!(json["line"], 4);
    assert_eq!(json["column"], 13);
    assert!(json["file"].as_str().unwrap().ends_with("duplicate-host-name.yaml"));
}

#[test]
fn limits_on_size_and_depth() {
    let deep = format!("hosts: {}{}", "[".repeat(200), "]".repeat(200));
    let loaded = inventory::parse(&deep, "deep.yaml");
    assert!(loaded.inventory.is_none());
    assert!(loaded.diagnostics[0].message.len() < 300);
    let big = "#".repeat(inventory::MAX_SIZE + 1);
    let loaded = inventory::parse(&big, "big.yaml");
    assert_eq!(loaded.diagnostics[0].code, "kprov::inventory::too_large");
}

mod fuzz {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Any text at all: a result, never a panic, and an invalid result always says why.
        #[test]
        fn parser_never_panics(s in "\\PC{0,300}") {
            let loaded = kprov::inventory::parse(&s, "fuzz.yaml");
            prop_assert!(loaded.inventory.is_some() || loaded.errors().next().is_some());
        }

        /// Structured noise around a valid inventory.
        #[test]
        fn mutated_inventories_never_panic(name in "[a-zA-Z0-9_ .-]{0,20}", addr in "[0-9a-z.:/ -]{0,20}", cidr in "[0-9./]{0,20}", roles in "[a-z, -]{0,30}") {
            let text = format!("cluster:\n  pod_cidr: {cidr}\nhosts:\n  - {{ name: '{name}', address: '{addr}', roles: [{roles}] }}\n");
            let loaded = kprov::inventory::parse(&text, "fuzz.yaml");
            prop_assert!(loaded.inventory.is_some() || loaded.errors().next().is_some());
        }
    }
}

/// `internal_address`: the node's IP on the cluster network, apart from the SSH `address`.
#[test]
fn internal_address_defaults_and_diagnostics() {
    let ok = "cluster:\n  control_plane_endpoint: api.lan:6443\nhosts:\n  - { name: cp-1, address: 203.0.113.11, internal_address: 10.10.0.11, roles: [control-plane] }\n  - { name: cp-2, address: cp-2.example.net, internal_address: 10.10.0.12, roles: [control-plane] }\n  - { name: cp-3, address: 10.10.0.13, roles: [control-plane] }\n  - { name: w-1, address: w-1.example.net, roles: [worker] }\n";
    let loaded = inventory::parse(ok, "ok.yaml");
    assert!(loaded.errors().next().is_none(), "{:?}", loaded.diagnostics);
    let inv = loaded.inventory.unwrap();
    let internal: Vec<Option<&str>> = inv.hosts.iter().map(|h| h.internal_address.as_deref()).collect();
    // Given; given; the address, an IP; none for a worker reached by name (its kubelet picks).
    assert_eq!(internal, [Some("10.10.0.11"), Some("10.10.0.12"), Some("10.10.0.13"), None]);
    assert_eq!(inv.hosts[0].address, "203.0.113.11", "SSH keeps the address");
    assert_eq!(inv.advertise_address(), "10.10.0.11");
    // Without an endpoint (one control plane), the default endpoint is the cluster address.
    let one =
        inventory::parse("hosts:\n  - { name: cp-1, address: 203.0.113.11, internal_address: 10.10.0.11, roles: [control-plane] }\n", "one.yaml");
    assert_eq!(one.inventory.unwrap().endpoint(), "10.10.0.11:6443");
    // advertise_address may name a control plane's internal address.
    let adv = inventory::parse(
        "cluster:\n  advertise_address: 10.10.0.11\nhosts:\n  - { name: cp-1, address: 203.0.113.11, internal_address: 10.10.0.11, roles: [control-plane] }\n",
        "adv.yaml",
    );
    assert!(adv.errors().next().is_none(), "{:?}", adv.diagnostics);

    let bad = "cluster:\n  control_plane_endpoint: api.lan:6443\nhosts:\n  - { name: cp-1, address: cp-1.example.net, roles: [control-plane] }\n  - { name: cp-2, address: 203.0.113.12, internal_address: cp-2.lan, roles: [control-plane] }\n  - { name: cp-3, address: 203.0.113.13, internal_address: 10.10.0.13, roles: [control-plane] }\n  - { name: w-1, address: 203.0.113.21, internal_address: 10.10.0.13, roles: [worker] }\n";
    let loaded = inventory::parse(bad, "bad.yaml");
    assert!(loaded.inventory.is_none());
    type Found<'a> = (&'a str, Option<(usize, usize)>, &'a str);
    let found: Vec<Found> = loaded.errors().map(|d| (d.code, d.line_column(), d.help.as_deref().unwrap_or(""))).collect();
    let find = |code: &str| found.iter().find(|(c, ..)| *c == code).unwrap_or_else(|| panic!("{code} in {found:?}"));
    let (_, at, help) = find("kprov::inventory::internal_address_required");
    assert_eq!(*at, Some((4, 28)), "at cp-1's address");
    assert!(help.contains("internal_address: 10.0.0.11"), "{help}");
    let (_, at, help) = find("kprov::inventory::internal_address");
    assert_eq!(*at, Some((5, 60)), "at cp-2's internal_address");
    assert!(help.contains("a DNS name belongs in address"), "{help}");
    let (_, at, _) = find("kprov::inventory::duplicate_internal_address");
    assert_eq!(*at, Some((7, 59)), "at w-1's internal_address");
    // A worker reached by name needs none.
    assert!(!loaded.errors().any(|d| d.message.contains("w-1") && d.code == "kprov::inventory::internal_address_required"));
}
