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

/// Secrets every [`redact`] call takes out, whoever calls it: the sudo password and key
/// passphrases (from the connection settings) and every captured value (join commands,
/// certificate keys), remembered once when they are read.
static REMEMBERED: std::sync::Mutex<Vec<Secret>> = std::sync::Mutex::new(Vec::new());

/// Remember `secret` for the rest of the process: from now on every output, error and log
/// line that goes through [`redact`] has its value taken out, even a place that was not handed
/// the secret itself (a sudo message, a failed step's output on another host).
pub fn remember(secret: &Secret) {
    if secret.0.len() < MIN_REDACTED_LEN {
        return;
    }
    let mut all = REMEMBERED.lock().unwrap_or_else(|p| p.into_inner());
    if !all.contains(secret) {
        all.push(secret.clone());
    }
}

/// Values shorter than this are not replaced by value (a two-letter password would eat every
/// word that holds it); the patterns below still apply.
const MIN_REDACTED_LEN: usize = 4;

/// `text` with every known secret value (those given and those [remembered](remember)), every
/// kubeadm bootstrap token and every certificate key replaced by [`REDACTED`]. Used on any
/// remote output kprov shows or logs.
///
/// Certificate keys are 32-byte AES keys printed as 64 hex digits: after `--certificate-key`,
/// and alone on the line after `[upload-certs] Using certificate key:` (kubeadm's
/// `runUploadCerts`). Any bare run of 64 hex digits is taken out, so the key goes whatever
/// line it is on; a SHA-256 (the CA hash) goes too, which costs nothing.
pub fn redact<'a>(text: &str, secrets: impl IntoIterator<Item = &'a Secret>) -> String {
    use std::sync::OnceLock;
    static PATTERNS: OnceLock<[regex::Regex; 3]> = OnceLock::new();
    let [token, cert_key, hex64] = PATTERNS.get_or_init(|| {
        [
            // kubeadm bootstrap token: [a-z0-9]{6}.[a-z0-9]{16}
            regex::Regex::new(r"\b[a-z0-9]{6}\.[a-z0-9]{16}\b").expect("valid"),
            regex::Regex::new(r"(--certificate-key[ =]+)[0-9a-fA-F]{64}").expect("valid"),
            regex::Regex::new(r"\b[0-9a-fA-F]{64}\b").expect("valid"),
        ]
    });
    let mut out = text.to_string();
    let remembered = REMEMBERED.lock().unwrap_or_else(|p| p.into_inner()).clone();
    // Longest first, so a secret that contains another is replaced whole.
    let mut values: Vec<&str> = secrets.into_iter().map(Secret::expose).collect();
    values.extend(remembered.iter().map(Secret::expose));
    values.retain(|v| v.len() >= MIN_REDACTED_LEN);
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    values.dedup();
    for v in values {
        out = out.replace(v, REDACTED);
        // Multi-line secrets (a join command) may also leak line by line.
        for line in v.lines().map(str::trim).filter(|l| l.len() >= 8) {
            out = out.replace(line, REDACTED);
        }
    }
    let out = token.replace_all(&out, REDACTED);
    let out = cert_key.replace_all(&out, format!("${{1}}{REDACTED}"));
    hex64.replace_all(&out, REDACTED).into_owned()
}

/// [`redact`], and more, for the output of a step marked `sensitive` (kubeadm init and join):
/// such a step can print secrets kprov never learned the value of, so every long run of key
/// material (32 or more hex digits, or 40 or more base64 characters with a digit in them: a
/// PEM body line, an encoded key) is taken out as well, wherever it is.
pub fn redact_sensitive<'a>(text: &str, secrets: impl IntoIterator<Item = &'a Secret>) -> String {
    use std::sync::OnceLock;
    static PATTERNS: OnceLock<[regex::Regex; 2]> = OnceLock::new();
    let [hex, b64] = PATTERNS
        .get_or_init(|| [regex::Regex::new(r"\b[0-9a-fA-F]{32,}\b").expect("valid"), regex::Regex::new(r"[A-Za-z0-9+/]{40,}={0,2}").expect("valid")]);
    let out = redact(text, secrets);
    let out = hex.replace_all(&out, REDACTED);
    b64.replace_all(&out, |c: &regex::Captures<'_>| {
        let m = &c[0];
        if m.bytes().any(|b| b.is_ascii_digit()) { REDACTED.to_string() } else { m.to_string() }
    })
    .into_owned()
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
    fn the_bare_certificate_key_line_of_kubeadm_upload_certs_is_redacted() {
        // What kubeadm init --upload-certs prints (runUploadCerts: "[upload-certs] Using
        // certificate key:\n%s\n"): the key alone on the next line, a value kprov never saw.
        let key = "0f3c2a1b9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b";
        let text = format!(
            "[upload-certs] Storing the certificates in Secret \"kubeadm-certs\" in the \"kube-system\" Namespace\n[upload-certs] Using certificate key:\n{key}\n[mark-control-plane] Marking the node\nerror execution phase mark-control-plane: timed out\n"
        );
        for out in [redact(&text, []), redact_sensitive(&text, [])] {
            assert!(!out.contains(key), "{out}");
            assert!(out.contains("[upload-certs] Using certificate key:\n<redacted>\n"), "{out}");
            assert!(out.contains("error execution phase mark-control-plane: timed out"), "the host's words stay: {out}");
        }
    }

    #[test]
    fn sensitive_output_loses_key_material_but_keeps_words_and_paths() {
        let pem = "MIIEpAIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw";
        let text = format!(
            "-----BEGIN RSA PRIVATE KEY-----\n{pem}\nopen /etc/kubernetes/pki/apiserver-kubelet-client.crt: no such file or directory\nkey 0123456789abcdef0123456789abcdef\n"
        );
        let out = redact_sensitive(&text, []);
        assert!(!out.contains(pem), "{out}");
        assert!(!out.contains("0123456789abcdef0123456789abcdef"), "{out}");
        assert!(out.contains("open /etc/kubernetes/pki/apiserver-kubelet-client.crt: no such file or directory"), "{out}");
    }

    #[test]
    fn remembered_secrets_are_redacted_everywhere() {
        let pw = Secret::new("remembered-sudo-pw-7f3a");
        assert!(redact("sudo said remembered-sudo-pw-7f3a", []).contains("remembered-sudo-pw-7f3a"));
        remember(&pw);
        let out = redact("sudo said remembered-sudo-pw-7f3a", []);
        assert_eq!(out, "sudo said <redacted>");
        // Too short to take out by value without eating ordinary words.
        remember(&Secret::new("pi"));
        assert_eq!(redact("pi@raspberrypi", []), "pi@raspberrypi");
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
