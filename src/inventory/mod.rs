//! The inventory: the YAML an operator writes (hosts, roles, SSH settings, cluster settings).
//!
//! "Parsing never fails": [`parse`] returns the validated inventory when there is one, and
//! every diagnostic it found, errors and warnings, all at once. [`load`] reads a file first.
//! Every diagnostic names the file, line and column and carries a hint (see [`Diagnostic`]).

mod diagnostic;
pub mod model;
mod settings;
mod structure;
mod trust;
mod validate;

pub use diagnostic::{Diagnostic, Place, Severity, did_you_mean};
pub use validate::{Cluster, Host, Inventory, SshSettings, expand_home, parse_duration};
pub(crate) use validate::{place, place_from_line_column};

use std::path::Path;
use std::sync::Arc;

/// Inventories larger than this are refused before parsing.
pub const MAX_SIZE: usize = 4 * 1024 * 1024;
/// Deeper nesting than this is refused (a real inventory is 5 levels deep).
pub const MAX_DEPTH: usize = 64;

/// The result of loading: the inventory if it is valid, and everything worth saying.
#[derive(Debug)]
pub struct Loaded {
    pub inventory: Option<Inventory>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| !d.is_error())
    }
}

/// Read and validate an inventory file.
pub fn load(path: &Path) -> Loaded {
    let name = path.display().to_string();
    match std::fs::metadata(path) {
        Ok(m) if m.len() as usize > MAX_SIZE => {
            return Loaded {
                inventory: None,
                diagnostics: vec![
                    Diagnostic::error(
                        "kprov::inventory::too_large",
                        format!("{name} is {} bytes; inventories are limited to {MAX_SIZE} bytes", m.len()),
                    )
                    .help("an inventory this large is almost certainly not an inventory; check the path")
                    .in_file(&name, &Arc::new(String::new())),
                ],
            };
        }
        _ => {}
    }
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => parse(&text, &name),
            Err(e) => Loaded {
                inventory: None,
                diagnostics: vec![
                    Diagnostic::error(
                        "kprov::inventory::encoding",
                        format!("{name} is not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to()),
                    )
                    .help("save the inventory as UTF-8")
                    .in_file(&name, &Arc::new(String::new())),
                ],
            },
        },
        Err(e) => Loaded {
            inventory: None,
            diagnostics: vec![
                Diagnostic::error("kprov::inventory::io", format!("cannot read {name}: {e}"))
                    .help("check the path and its permissions")
                    .in_file(&name, &Arc::new(String::new())),
            ],
        },
    }
}

/// Parse and validate inventory text; `name` is shown in diagnostics.
pub fn parse(source: &str, name: &str) -> Loaded {
    validate::parse_and_validate(source, name)
}

/// The JSON Schema of the inventory.
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(model::InventoryFile)).expect("schemas serialize")
}
