//! A typed secret: join tokens, certificate keys, sudo passwords, key passphrases.
//!
//! `Debug` and `Display` never show the value, so a secret that ends up in a log line, an
//! error message or a plan prints as `<redacted>`. The value is reachable only through
//! [`Secret::expose`], which makes every place that needs the clear text easy to audit.

use std::fmt;

/// The text shown wherever a secret would otherwise be printed.
pub const REDACTED: &str = "<redacted>";

#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The clear text. Callers must not log or print it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_redact() {
        let s = Secret::new("abcdef.0123456789abcdef");
        assert_eq!(format!("{s}"), REDACTED);
        assert_eq!(format!("{s:?}"), REDACTED);
        assert_eq!(format!("{:?}", Some(&s)), format!("Some({REDACTED})"));
        assert_eq!(s.expose(), "abcdef.0123456789abcdef");
    }
}
