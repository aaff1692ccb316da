//! docs/troubleshooting.md quotes what kprov prints: every ```text block of it must be text
//! kprov produces. A quoted line is cut at its `{placeholders}`; each piece must appear in
//! kprov's code (src/, roles/, templates/), its plan snapshots, or a capture its tests assert
//! (a `contains(...)` line of tests/). A piece the code builds from several strings may be
//! matched as consecutive runs of at least [`MIN_RUN`] characters each.
//! The page also keeps its ten failures, each with a quoted message or "Not detected yet".

use std::path::Path;

/// Shortest run of a piece matched on its own (but the piece's last).
const MIN_RUN: usize = 20;

fn collect(dir: &Path, exts: &[&str], keep: &dyn Fn(&str) -> String, out: &mut String) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, exts, keep, out);
        } else if exts.iter().any(|e| p.extension().is_some_and(|x| x == *e))
            && let Ok(text) = std::fs::read_to_string(&p)
        {
            out.push_str(&keep(&text));
            out.push('\n');
        }
    }
}

/// Everything a quoted message may come from, with Rust's string escapes read.
fn corpus() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut c = String::new();
    let all = |t: &str| t.to_string();
    collect(&root.join("src"), &["rs", "snap"], &all, &mut c);
    // Insta snapshots: outputs the tests capture and compare.
    collect(&root.join("tests/snapshots"), &["snap"], &all, &mut c);
    collect(&root.join("roles"), &["yaml"], &all, &mut c);
    collect(&root.join("templates"), &["j2", "yaml", "sh"], &all, &mut c);
    // Captures the tests assert, and only those: this file's own quotes do not count.
    let asserted = |t: &str| t.lines().filter(|l| l.contains("contains(") && !l.contains("corpus")).collect::<Vec<_>>().join("\n");
    collect(&root.join("tests"), &["rs"], &asserted, &mut c);
    c.replace("\\\"", "\"").replace("\\n", "\n").replace("{{", "{").replace("}}", "}")
}

/// The literal pieces of a quoted line, between its `{placeholders}`.
fn pieces(line: &str) -> Vec<&str> {
    let mut out = vec![];
    let mut rest = line;
    while let Some(open) = rest.find('{') {
        out.push(&rest[..open]);
        rest = rest[open..].find('}').map(|close| &rest[open + close + 1..]).unwrap_or("");
    }
    out.push(rest);
    out.into_iter().map(str::trim).filter(|p| p.chars().any(|c| c.is_alphanumeric()) && p.len() >= 4).collect()
}

/// Whether `piece` is in the corpus, whole or as consecutive runs of at least MIN_RUN bytes
/// (a last run shorter than that must be found with the MIN_RUN bytes before it).
fn covered(piece: &str, corpus: &str) -> Result<(), String> {
    let mut rest = piece;
    let mut first = true;
    while !rest.is_empty() {
        if first && corpus.contains(rest) {
            return Ok(());
        }
        if !first && rest.len() < MIN_RUN {
            let start = (0..=piece.len() - MIN_RUN).rev().find(|&i| piece.is_char_boundary(i)).unwrap_or(0);
            return if corpus.contains(&piece[start..]) { Ok(()) } else { Err(rest.to_string()) };
        }
        if !first && corpus.contains(rest) {
            return Ok(());
        }
        first = false;
        let mut end = 0;
        for (i, ch) in rest.char_indices() {
            let e = i + ch.len_utf8();
            if corpus.contains(&rest[..e]) {
                end = e;
            } else {
                break;
            }
        }
        if end < MIN_RUN {
            return Err(rest.to_string());
        }
        rest = &rest[end..];
    }
    Ok(())
}

/// The ```text blocks of a markdown page.
fn text_blocks(md: &str) -> Vec<String> {
    let mut out = vec![];
    let mut cur: Option<Vec<&str>> = None;
    for line in md.lines() {
        match (&mut cur, line.trim()) {
            (None, "```text") => cur = Some(vec![]),
            (Some(b), "```") => {
                out.push(b.join("\n"));
                cur = None;
            }
            (Some(b), _) => b.push(line),
            _ => {}
        }
    }
    out
}

fn page() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/troubleshooting.md")).unwrap()
}

#[test]
fn every_quoted_message_is_one_kprov_prints() {
    let corpus = corpus();
    let blocks = text_blocks(&page());
    assert!(blocks.len() >= 9, "{} quoted blocks", blocks.len());
    let mut missing = vec![];
    for block in &blocks {
        for line in block.lines() {
            for piece in pieces(line) {
                if let Err(rest) = covered(piece, &corpus) {
                    missing.push(format!("{piece:?}\n    (not found from: {rest:?})"));
                }
            }
        }
    }
    assert!(missing.is_empty(), "quoted in docs/troubleshooting.md but not printed by kprov:\n{}", missing.join("\n"));
}

#[test]
fn the_checker_refuses_a_message_kprov_does_not_print() {
    let corpus = corpus();
    // A real message passes; one word changed, or words strung together from elsewhere, fail.
    assert!(covered("ports needed by Kubernetes are in use:", &corpus).is_ok());
    assert!(covered("ports needed by Kubernetes are busy:", &corpus).is_err());
    assert!(covered("kprov detected a clock skew of", &corpus).is_err());
    assert_eq!(
        pieces("{host} (stage: sudo): sudo did not run the command as {user} ({status}); it said:"),
        vec!["(stage: sudo): sudo did not run the command as", "); it said:"]
    );
}

#[test]
fn the_ten_failures_are_there_each_quoted_or_said_to_be_undetected() {
    let page = page();
    let sections: Vec<&str> = page.split("\n## ").skip(1).collect();
    let titles = ["sudo", "host key changed", "memory cgroup", "swap is back", "token expired", "notready", "port", "apt lock", "clock", "firewall"];
    for (i, t) in titles.iter().enumerate() {
        let s = sections.iter().find(|s| s.starts_with(&format!("{}. ", i + 1))).unwrap_or_else(|| panic!("no section {}", i + 1));
        let title = s.lines().next().unwrap().to_lowercase();
        assert!(title.contains(t), "section {} is {title:?}, expected {t:?}", i + 1);
        assert!(s.contains("**kprov prints") || s.contains("**Not detected"), "section {title:?} neither quotes kprov nor says it is not detected");
        assert!(s.contains("**What to do:**"), "section {title:?} says what to do");
    }
}
