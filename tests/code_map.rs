//! ARCHITECTURE.md's code map stays true: every path it names exists. A path is a backticked
//! word of the "Code map" section that starts with a top-level directory of the repository
//! (`src/`, `tests/`, ...), or a bare file name (`batch.rs`) in a row whose first cell is a
//! directory, where it is looked up.

use std::path::{Path, PathBuf};

const TOP: [&str; 8] = ["src/", "tests/", "roles/", "templates/", "bench/", "docs/", "scripts/", ".ci/"];

/// The backticked words of `text`.
fn ticked(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// Every path the code map names, with the row it is in (for the message).
fn code_map_paths(doc: &str) -> Vec<(PathBuf, String)> {
    let section = doc.split("\n## Code map").nth(1).expect("ARCHITECTURE.md has a \"## Code map\" section");
    let section = section.split("\n## ").next().unwrap_or_default();
    let mut paths = vec![];
    for row in section.lines().filter(|l| l.starts_with('|') && !l.starts_with("|---") && !l.starts_with("| path")) {
        let mut cells = row.split(" | ");
        let first = cells.next().unwrap_or_default();
        let dirs: Vec<&str> = ticked(first).into_iter().filter(|p| p.ends_with('/')).collect();
        for word in ticked(row) {
            // Patterns and placeholders are not paths.
            if word.contains(['*', '<', ' ', '{']) || word.starts_with("..") {
                continue;
            }
            if TOP.iter().any(|t| word.starts_with(t)) || ["README.md", "ARCHITECTURE.md", "Cargo.toml"].contains(&word) {
                paths.push((PathBuf::from(word), row.chars().take(60).collect()));
            } else if !word.contains('/') && (word.ends_with(".rs") || word.ends_with(".sh")) && !dirs.is_empty() {
                // A file of the row's directory (or of one of them).
                let found = dirs.iter().map(|d| Path::new(d).join(word)).find(|p| p.exists());
                paths.push((found.unwrap_or_else(|| Path::new(dirs[0]).join(word)), row.chars().take(60).collect()));
            }
        }
    }
    paths
}

#[test]
fn every_path_in_the_code_map_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let paths = code_map_paths(&doc);
    assert!(paths.len() > 30, "the code map names few paths; is the section there? {paths:?}");
    let missing: Vec<String> =
        paths.iter().filter(|(p, _)| !root.join(p).exists()).map(|(p, row)| format!("{} (in the row {row}...)", p.display())).collect();
    assert!(missing.is_empty(), "ARCHITECTURE.md's code map names paths that do not exist:\n{}", missing.join("\n"));
}

#[test]
fn a_missing_path_is_found() {
    let doc = "# x\n\n## Code map\n\n| path | what |\n|---|---|\n| `src/ops/` | `drive.rs` and `src/nowhere.rs` |\n\n## Next\n`src/later.rs`\n";
    let paths: Vec<PathBuf> = code_map_paths(doc).into_iter().map(|(p, _)| p).collect();
    assert_eq!(paths, vec![PathBuf::from("src/ops/"), PathBuf::from("src/ops/drive.rs"), PathBuf::from("src/nowhere.rs")]);
}
