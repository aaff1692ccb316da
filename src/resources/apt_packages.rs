//! Debian packages installed at a pinned version and optionally held (apt-mark hold), so a
//! routine `apt upgrade` cannot move kubelet or kubeadm under a running cluster.
//!
//! `keep_minor_if: PATH`: while PATH exists on the host (for the Kubernetes packages,
//! /etc/kubernetes/kubelet.conf: the host is a node of a cluster), an installed package is never
//! moved to another minor version (`1.33.x` to `1.34.*`); the check fails and says that a
//! cluster changes minor with `kprov upgrade`, which runs kubeadm's upgrade in its order. Patch
//! releases within the minor are still installed.
//!
//! Package work left half-done by an earlier run (a cut connection, a power cut, a killed dpkg)
//! is its own change in the plan, `dpkg: interrupted -> configured`, repaired before anything
//! is installed: `dpkg --configure -a`, then the half-installed packages installed again.
//! apt's and dpkg's locks held by another program (unattended-upgrades) are waited for, up to
//! [`LOCK_WAIT_SECS`], naming the holder; never broken.

use serde::{Deserialize, Serialize};

use super::{Action, Change, Check, CheckContext, CheckError, Resource};
use crate::facts::{DpkgFact, FactQuery, FactValue, PackageFact};
use crate::shell::QuoteError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AptPackages {
    pub names: Vec<String>,
    /// A version, or an apt version glob such as `1.34.*`; None accepts any installed version.
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub hold: bool,
    #[serde(default)]
    pub keep_minor_if: Option<String>,
}

/// `1.34` of `1.34.2-1.1`, `1.34.*` or `v1.34.2`; None when the version does not start with a
/// major and a minor.
pub(crate) fn minor_of(version: &str) -> Option<&str> {
    let v = version.trim_start_matches('v');
    let mut dots = v.match_indices('.').map(|(i, _)| i);
    let first = dots.next()?;
    let end = dots.next().unwrap_or(v.len());
    let (major, minor) = (&v[..first], &v[first + 1..end]);
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (numeric(major) && numeric(minor)).then_some(&v[..end])
}

/// How long package work waits for apt's and dpkg's locks held by another program.
pub const LOCK_WAIT_SECS: u32 = 300;

/// The locks apt and dpkg take, in the order they take them.
const PACKAGE_LOCKS: [&str; 4] = ["/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock", "/var/lib/apt/lists/lock", "/var/cache/apt/archives/lock"];

/// Shell that waits, up to [`LOCK_WAIT_SECS`], until no other process holds apt's or dpkg's
/// locks. The holder is found in /proc/locks (the lock file's inode, then the pid, then its
/// `comm`) and named when the wait starts, every 30 s and in the failure. The lock is never
/// broken: after the bound the step fails and says what to do.
pub fn lock_wait_script() -> String {
    let locks = PACKAGE_LOCKS.join(" ");
    format!(
        "kprov_lock_holder() {{\n\
  for kl in {locks}; do\n\
    [ -e \"$kl\" ] || continue\n\
    ki=$(stat -c %i \"$kl\") || continue\n\
    kh=$(awk -v ino=\"$ki\" '{{ for (i = 2; i <= NF; i++) if ($i ~ /^[0-9a-f]+:[0-9a-f]+:[0-9]+$/) {{ split($i, a, \":\"); if (a[3] == ino) {{ print $(i - 1); exit }} }} }}' /proc/locks)\n\
    [ -n \"$kh\" ] || continue\n\
    if [ \"$kh\" -gt 0 ] 2>/dev/null; then kc=$(cat \"/proc/$kh/comm\" 2>/dev/null) || kc=unknown; kholder=\"$kl, held by $kc (pid $kh)\"; \
else kholder=\"$kl, held by a process kprov cannot see\"; fi\n\
    return 0\n\
  done\n\
  return 1\n\
}}\n\
kw=0\n\
while kprov_lock_holder; do\n\
  if [ \"$kw\" -ge {LOCK_WAIT_SECS} ]; then\n\
    echo \"kprov: $kholder, still after {LOCK_WAIT_SECS}s; kprov never breaks another program's lock: let it finish (or stop it), then run apply again\" >&2\n\
    exit 1\n\
  fi\n\
  if [ $((kw % 30)) -eq 0 ]; then echo \"kprov: waiting for $kholder (waited ${{kw}}s of up to {LOCK_WAIT_SECS}s)\" >&2; fi\n\
  sleep 1\n\
  kw=$((kw + 1))\n\
done\n"
    )
}

/// Shell that repairs package work left half-done: `dpkg --configure -a` (which cannot finish a
/// package marked half-installed or reinst-required, so its failure is only noted), those
/// packages installed again from fresh lists, then `dpkg --configure -a` again, which must succeed.
pub fn dpkg_repair_script(dpkg: &DpkgFact) -> Result<String, QuoteError> {
    let mut s = String::from("echo 'kprov: dpkg was interrupted; running dpkg --configure -a'\n");
    s.push_str("dpkg --configure -a || echo \"kprov: dpkg --configure -a ended with status $?; installing the half-installed packages again\"\n");
    let again = dpkg.to_reinstall();
    if !again.is_empty() {
        s.push_str("apt-get -q -o DPkg::Lock::Timeout=300 update\n");
        s.push_str(&format!(
            "apt-get -q -y -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold install --reinstall {}\n",
            crate::shell::join(again)?
        ));
    }
    s.push_str("dpkg --configure -a\n");
    Ok(s)
}

/// The script that installs `install` at `version` (an apt version or glob) from freshly updated
/// lists, then holds `hold`. Held packages are moved: the hold guards against `apt upgrade`, not
/// against kprov. Also used by `kprov upgrade`.
pub fn install_script(install: &[&str], version: Option<&str>, hold: &[&str]) -> Result<String, QuoteError> {
    install_script_repairing(install, version, hold, None)
}

/// [`install_script`], after repairing an interrupted dpkg when `repair` says so (one wait for
/// the locks covers both).
fn install_script_repairing(install: &[&str], version: Option<&str>, hold: &[&str], repair: Option<&DpkgFact>) -> Result<String, QuoteError> {
    let targets: Vec<String> = install.iter().map(|n| version.map(|v| format!("{n}={v}")).unwrap_or_else(|| n.to_string())).collect();
    let mut s = String::from("export DEBIAN_FRONTEND=noninteractive\n");
    if !targets.is_empty() || !hold.is_empty() || repair.is_some() {
        s.push_str(&lock_wait_script());
    }
    if let Some(d) = repair {
        s.push_str(&dpkg_repair_script(d)?);
    }
    if !targets.is_empty() {
        s.push_str("apt-get -q -o DPkg::Lock::Timeout=300 update\n");
        s.push_str(&format!(
            "apt-get -q -y -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
--allow-change-held-packages --allow-downgrades install {}\n",
            crate::shell::join(targets.iter().map(String::as_str))?
        ));
    }
    if !hold.is_empty() {
        s.push_str(&format!("apt-mark hold {} >/dev/null\n", crate::shell::join(hold.iter().copied())?));
    }
    Ok(s)
}

/// apt's version globs: `*` matches any run of characters.
pub(crate) fn version_matches(pattern: &str, version: &str) -> bool {
    fn go(p: &[u8], v: &[u8]) -> bool {
        match (p.first(), v.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], v) || (!v.is_empty() && go(p, &v[1..])),
            (Some(a), Some(b)) if a == b => go(&p[1..], &v[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), version.as_bytes())
}

impl AptPackages {
    fn state<'a>(&self, ctx: &'a CheckContext<'_>, name: &str) -> Result<&'a PackageFact, CheckError> {
        let q = FactQuery::Package { name: name.to_string() };
        match ctx.facts.get(&q) {
            Some(FactValue::Package(p)) => Ok(p),
            _ => Err(super::missing(&q)),
        }
    }

    /// The package would move to another minor on a host where that is refused.
    fn minor_change_refused(&self, ctx: &CheckContext<'_>, name: &str, p: &PackageFact) -> Option<String> {
        let guard = self.keep_minor_if.as_deref()?;
        let want = self.version.as_deref()?;
        let have = p.version.as_deref().filter(|_| p.installed)?;
        if !ctx.facts.file(guard).is_some_and(|f| f.exists) || minor_of(want) == minor_of(have) {
            return None;
        }
        Some(format!(
            "{name} {have} is installed and {guard} exists (this host is a node of a cluster): installing {want} would change its Kubernetes minor \
without kubeadm's upgrade; upgrade the cluster with `kprov upgrade INVENTORY` (control planes first, then workers, each drained and uncordoned)"
        ))
    }

    fn dpkg<'a>(&self, ctx: &'a CheckContext<'_>) -> Result<&'a DpkgFact, CheckError> {
        match ctx.facts.get(&FactQuery::Dpkg) {
            Some(FactValue::Dpkg(d)) => Ok(d),
            _ => Err(super::missing(&FactQuery::Dpkg)),
        }
    }

    fn wrong_version(&self, p: &PackageFact) -> bool {
        match (&self.version, &p.version) {
            (None, _) => !p.installed,
            (Some(_), None) => true,
            (Some(want), Some(have)) => !p.installed || !version_matches(want, have),
        }
    }
}

impl Resource for AptPackages {
    fn facts(&self) -> Vec<FactQuery> {
        let mut q: Vec<FactQuery> = self.names.iter().map(|n| FactQuery::Package { name: n.clone() }).collect();
        q.extend(self.keep_minor_if.iter().map(|path| FactQuery::File { path: path.clone() }));
        q.push(FactQuery::Dpkg);
        q
    }

    fn check(&self, ctx: &CheckContext<'_>) -> Result<Check, CheckError> {
        let mut change = Change::new(Action::Update, String::new());
        let dpkg = self.dpkg(ctx)?;
        if dpkg.interrupted() {
            change = change.attribute("dpkg", Some("interrupted".into()), Some("configured".into()));
        }
        let mut installs = vec![];
        let mut any_installed = false;
        for n in &self.names {
            let p = self.state(ctx, n)?;
            any_installed |= p.installed;
            if let Some(refused) = self.minor_change_refused(ctx, n, p) {
                return Err(CheckError::Unsupported(refused));
            }
            if self.wrong_version(p) {
                installs.push(n.as_str());
                change = change.attribute(
                    n,
                    p.version.clone().or(Some("absent".into())),
                    Some(self.version.clone().unwrap_or_else(|| "installed".into())),
                );
            }
            if self.hold && !p.held {
                change = change.attribute(&format!("{n} hold"), Some("no".into()), Some("held".into()));
            }
        }
        if change.attributes.is_empty() {
            return Ok(Check::NoOp { reason: format!("{} installed{}", self.names.join(", "), if self.hold { " and held" } else { "" }) });
        }
        if !any_installed {
            change.action = Action::Create;
        }
        change.summary = if !installs.is_empty() {
            format!("install {}{}", installs.join(", "), self.version.as_ref().map(|v| format!(" = {v}")).unwrap_or_default())
        } else if change.attributes.iter().any(|a| a.name.ends_with(" hold")) {
            format!("hold {}", self.names.join(", "))
        } else {
            "repair the interrupted dpkg".to_string()
        };
        if dpkg.interrupted() && !installs.is_empty() {
            change.summary = format!("repair the interrupted dpkg, {}", change.summary);
        }
        Ok(Check::Change(change))
    }

    fn apply_script(&self, ctx: &CheckContext<'_>, _change: &Change) -> Result<String, QuoteError> {
        let wrong: Vec<&str> = self.names.iter().filter(|n| self.state(ctx, n).is_ok_and(|p| self.wrong_version(p))).map(String::as_str).collect();
        let hold: Vec<&str> = if self.hold { self.names.iter().map(String::as_str).collect() } else { vec![] };
        let repair = self.dpkg(ctx).ok().filter(|d| d.interrupted());
        install_script_repairing(&wrong, self.version.as_deref(), &hold, repair)
    }
}

#[cfg(test)]
mod tests {
    use super::version_matches;

    #[test]
    fn globs() {
        assert!(version_matches("1.34.*", "1.34.2-1.1"));
        assert!(!version_matches("1.34.*", "1.33.6-1.1"));
        assert!(version_matches("1.34.2-1.1", "1.34.2-1.1"));
        assert!(!version_matches("1.34.2", "1.34.2-1.1"));
        assert!(version_matches("*", ""));
    }

    #[test]
    fn minors() {
        use super::minor_of;
        assert_eq!(minor_of("1.34.2-1.1"), Some("1.34"));
        assert_eq!(minor_of("1.34.*"), Some("1.34"));
        assert_eq!(minor_of("v1.33.6"), Some("1.33"));
        assert_eq!(minor_of("1.34"), Some("1.34"));
        assert_eq!(minor_of("2:1.7.24"), None);
        assert_eq!(minor_of("*"), None);
        assert_eq!(minor_of("1."), None);
    }
}
