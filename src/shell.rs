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

/// The signals that can end a write script before it finishes, with the exit status the shell
/// would report for each. A trap on each removes the temp file; only SIGKILL (and a power cut)
/// can leave one, and those are removed by the next batch from the batch's record.
const SIGNALS: [(&str, u8); 4] = [("HUP", 129), ("INT", 130), ("PIPE", 141), ("TERM", 143)];

/// Shell text that writes what `producer` prints on standard output to `path`, crash-safely:
///
/// 1. the traps (EXIT, HUP, INT, TERM, PIPE) are set *before* the temp file exists, and the
///    temp file's name is chosen before it is created (`mktemp -u`, then an exclusive create
///    under `set -C`), so no signal can leave a temp file the traps do not know;
/// 2. when the script runs inside a batch (`$KPROV_BATCH` names its directory), the temp
///    file's name is recorded there, so a temp file left by SIGKILL is removed by the next batch;
/// 3. content, mode and owner go to the temp file in the same directory, which is then fsynced
///    (`sync FILE`, coreutils 8.24 and later), renamed over `path`, and the directory fsynced:
///    after a power cut the file is the old one or the new one, never empty (vfat included,
///    such as a Pi's /boot/firmware).
///
/// `owner` is `user:group` (or `user`); None leaves the owner alone. `also_remove` names a shell
/// variable (such as `gnupg`) holding one more path the traps remove, for a script that stages
/// its content in a temp directory of its own.
pub fn atomic_write_script(path: &str, producer: &str, mode: u32, owner: Option<&str>, also_remove: Option<&str>) -> Result<String, QuoteError> {
    let p = quote(path)?;
    let dir = quote(parent_dir(path))?;
    let extra = match also_remove {
        Some(var) if !var.is_empty() && var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => format!(" ${{{var}:+\"${var}\"}}"),
        Some(var) => return Err(QuoteError { value: format!("not a shell variable name: {var}") }),
        None => String::new(),
    };
    let mut s = format!("mkdir -p {dir}\ntmp=\ntrap 'rm -rf ${{tmp:+\"$tmp\"}}{extra}' EXIT\n");
    for (sig, status) in SIGNALS {
        s.push_str(&format!("trap 'rm -rf ${{tmp:+\"$tmp\"}}{extra}; trap - EXIT; exit {status}' {sig}\n"));
    }
    s.push_str(&format!(
        "tmp=$(mktemp -u {dir}/.kprov.XXXXXX)\n\
[ -z \"${{KPROV_BATCH:-}}\" ] || printf '%s\\n' \"$tmp\" >> \"$KPROV_BATCH/tmpfiles\"\n\
(set -C; : > \"$tmp\")\n\
{producer} > \"$tmp\"\n\
chmod {mode:o} \"$tmp\"\n"
    ));
    if let Some(og) = owner {
        s.push_str(&format!("chown {} \"$tmp\"\n", quote(og)?));
    }
    s.push_str(&format!(
        "sync \"$tmp\"\n\
mv -f \"$tmp\" {p}\n\
tmp=\n\
sync {dir}\n\
trap - EXIT HUP INT TERM PIPE\n"
    ));
    Ok(s)
}

/// The directory part of a remote path (`/` for `/x`, `.` for a bare name).
pub fn parent_dir(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => ".",
    }
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

    /// Run `script` with `sh` in its own process group, with `KPROV_BATCH` set to `batch`.
    fn spawn_sh(script: &str, batch: &std::path::Path) -> std::process::Child {
        use std::os::unix::process::CommandExt;
        Command::new("sh").arg("-c").arg(script).env("KPROV_BATCH", batch).process_group(0).spawn().unwrap()
    }

    fn temp_files(dir: &std::path::Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".kprov."))
            .collect();
        v.sort();
        v
    }

    /// Wait until the write's temp file exists and holds some bytes: the script is mid-write.
    fn wait_mid_write(dir: &std::path::Path) {
        let t0 = std::time::Instant::now();
        loop {
            if let Some(n) = temp_files(dir).first()
                && std::fs::metadata(dir.join(n)).is_ok_and(|m| m.len() > 0)
            {
                return;
            }
            assert!(t0.elapsed() < std::time::Duration::from_secs(20), "the temp file never appeared");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    #[test]
    fn an_atomic_write_writes_content_and_mode_and_records_its_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a b's file");
        let script = atomic_write_script(target.to_str().unwrap(), "printf 'new\\n'", 0o640, None, None).unwrap();
        let st = spawn_sh(&format!("set -e\n{script}"), dir.path()).wait().unwrap();
        assert!(st.success());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new\n");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&target).unwrap().permissions().mode() & 0o7777, 0o640);
        assert_eq!(temp_files(dir.path()), Vec::<String>::new());
        let recorded = std::fs::read_to_string(dir.path().join("tmpfiles")).unwrap();
        assert!(recorded.trim().starts_with(&format!("{}/.kprov.", dir.path().display())), "{recorded}");
        // The traps are gone once the write is done: a later failure keeps the new file.
        assert!(script.ends_with("trap - EXIT HUP INT TERM PIPE\n"));
    }

    /// Each signal that can end the script mid-write removes the temp file, leaves the target
    /// as it was and ends the script with the signal's status. SIGKILL cannot be trapped: the
    /// temp file stays, and its name is in the batch's record for the next batch to remove.
    #[test]
    fn a_write_killed_mid_write_leaves_the_old_file_and_no_temp_file() {
        for (sig, status) in SIGNALS.iter().copied().chain([("KILL", 0)]) {
            let dir = tempfile::tempdir().unwrap();
            let target = dir.path().join("managed.conf");
            std::fs::write(&target, "old\n").unwrap();
            let gnupg = dir.path().join("stage");
            std::fs::create_dir(&gnupg).unwrap();
            // The producer writes some bytes, then stalls: the fault lands mid-write.
            let producer = "{ printf 'partial'; sleep 30; printf 'rest'; }";
            let script = format!(
                "set -e\ngnupg={}\n{}",
                quote(gnupg.to_str().unwrap()).unwrap(),
                atomic_write_script(target.to_str().unwrap(), producer, 0o644, None, Some("gnupg")).unwrap()
            );
            let mut child = spawn_sh(&script, dir.path());
            wait_mid_write(dir.path());
            let st = Command::new("kill").args([format!("-{sig}"), "--".into(), format!("-{}", child.id())]).status().unwrap();
            assert!(st.success());
            let st = child.wait().unwrap();
            assert_eq!(std::fs::read_to_string(&target).unwrap(), "old\n", "SIG{sig}: the target is untouched");
            if sig == "KILL" {
                let left = temp_files(dir.path());
                assert_eq!(left.len(), 1, "SIGKILL leaves the temp file");
                let recorded = std::fs::read_to_string(dir.path().join("tmpfiles")).unwrap();
                assert_eq!(recorded.trim(), dir.path().join(&left[0]).to_str().unwrap());
            } else {
                use std::os::unix::process::ExitStatusExt;
                assert_eq!(st.code().or(st.signal().map(|s| 128 + s)), Some(status as i32), "SIG{sig}");
                assert_eq!(temp_files(dir.path()), Vec::<String>::new(), "SIG{sig}: no temp file left");
                assert!(!gnupg.exists(), "SIG{sig}: the staging directory is removed too");
            }
        }
    }

    #[test]
    fn the_extra_path_to_remove_must_be_a_variable_name() {
        assert!(atomic_write_script("/etc/x", "true", 0o644, None, Some("a;b")).is_err());
        assert!(atomic_write_script("/etc/x", "true", 0o644, None, Some("")).is_err());
    }

    proptest! {
        #[test]
        fn any_string_round_trips_through_sh(s in "[^\u{0}]{0,40}") {
            prop_assert_eq!(echo_through_sh(&s), s);
        }
    }
}
