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

/// `text` with every known secret value, every kubeadm bootstrap token and every certificate
/// key replaced by [`REDACTED`]. Used on any remote output kprov shows or logs.
pub fn redact<'a>(text: &str, secrets: impl IntoIterator<Item = &'a Secret>) -> String {
    use std::sync::OnceLock;
    static PATTERNS: OnceLock<[regex::Regex; 2]> = OnceLock::new();
    let [token, cert_key] = PATTERNS.get_or_init(|| {
        [
            // kubeadm bootstrap token: [a-z0-9]{6}.[a-z0-9]{16}
            regex::Regex::new(r"\b[a-z0-9]{6}\.[a-z0-9]{16}\b").expect("valid"),
            regex::Regex::new(r"(--certificate-key[ =]+)[0-9a-fA-F]{64}").expect("valid"),
        ]
    });
    let mut out = text.to_string();
    // Longest first, so a secret that contains another is replaced whole.
    let mut values: Vec<&str> = secrets.into_iter().map(Secret::expose).filter(|v| v.len() >= 4).collect();
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    for v in values {
        out = out.replace(v, REDACTED);
        // Multi-line secrets (a join command) may also leak line by line.
        for line in v.lines().map(str::trim).filter(|l| l.len() >= 8) {
            out = out.replace(line, REDACTED);
        }
    }
    let out = token.replace_all(&out, REDACTED);
    cert_key.replace_all(&out, format!("${{1}}{REDACTED}")).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_removes_values_tokens_and_certificate_keys() {
        let join = Secret::new("kubeadm join 10.0.0.1:6443 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash sha256:00");
        let text =
            format!("ran {}\nother token: zyxwvu.9876543210zyxwvu\n--certificate-key {}\nsudo password hunter22\n", join.expose(), "a".repeat(64));
        let out = redact(&text, [&join, &Secret::new("hunter22")]);
        assert!(!out.contains("abcdef.0123456789abcdef"), "{out}");
        assert!(!out.contains("zyxwvu.9876543210zyxwvu"), "{out}");
        assert!(!out.contains(&"a".repeat(64)), "{out}");
        assert!(!out.contains("hunter22"), "{out}");
        assert!(out.contains("--certificate-key <redacted>"), "{out}");
    }

    #[test]
    fn debug_and_display_redact() {
        let s = Secret::new("abcdef.0123456789abcdef");
        assert_eq!(format!("{s}"), REDACTED);
        assert_eq!(format!("{s:?}"), REDACTED);
        assert_eq!(format!("{:?}", Some(&s)), format!("Some({REDACTED})"));
        assert_eq!(s.expose(), "abcdef.0123456789abcdef");
    }
}
