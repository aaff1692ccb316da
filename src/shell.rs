//! Quoting for every value that reaches a remote shell.
//!
//! All remote commands are POSIX `sh` text. Any value that comes from an inventory, a role, a
//! template or a fact is passed through [`quote`] before it is spliced into a command, so a
//! hostile value (quotes, `$()`, backticks, newlines, semicolons) stays one literal word.

use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
#[error("a value meant for a remote shell contains a NUL byte: {value:?}")]
#[diagnostic(code(kprov::shell::nul_byte), help("NUL bytes cannot be passed to a shell; remove it from the inventory or role"))]
pub struct QuoteError {
    pub value: String,
}

/// Quote one word for POSIX sh.
pub fn quote(value: &str) -> Result<Cow<'_, str>, QuoteError> {
    shlex::try_quote(value).map_err(|_| QuoteError { value: value.replace('\0', "\\0") })
}

/// Quote each word and join them with spaces.
pub fn join<'a>(words: impl IntoIterator<Item = &'a str>) -> Result<String, QuoteError> {
    let mut out = String::new();
    for (i, w) in words.into_iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&quote(w)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    use proptest::prelude::*;

    fn echo_through_sh(word: &str) -> String {
        let script = format!("printf %s {}", quote(word).unwrap());
        let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn hostile_values_stay_one_word() {
        for v in ["a b", "$(touch /tmp/x)", "`id`", "x;rm -rf /", "it's", "line\nbreak", "", "-n"] {
            assert_eq!(echo_through_sh(v), v);
        }
    }

    #[test]
    fn nul_is_an_error() {
        assert!(quote("a\0b").is_err());
    }

    proptest! {
        #[test]
        fn any_string_round_trips_through_sh(s in "[^\u{0}]{0,40}") {
            prop_assert_eq!(echo_through_sh(&s), s);
        }
    }
}
