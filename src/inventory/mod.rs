//! The inventory: YAML model, parsing with spans, validation, diagnostics, JSON schema.
