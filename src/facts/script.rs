//! Builds the one fact-gathering script for a host.

use std::collections::BTreeSet;

use super::query::{FILE_CONTENT_LIMIT, FactQuery};
use crate::shell::{QuoteError, quote};

/// Marker that opens each query's block of output.
pub(crate) const MARKER: &str = "@@kprov-fact";

/// The deduplicated queries for one host and the script that answers them all at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FactScript {
    queries: Vec<FactQuery>,
}

impl FactScript {
    /// The OS query is always included: every plan needs it (distribution, architecture).
    pub fn new(queries: impl IntoIterator<Item = FactQuery>) -> Self {
        let mut set: BTreeSet<FactQuery> = queries.into_iter().collect();
        set.insert(FactQuery::Os);
        FactScript { queries: set.into_iter().collect() }
    }

    pub fn queries(&self) -> &[FactQuery] {
        &self.queries
    }

    /// The POSIX sh script. It never fails part-way: each block reports what it found, and a
    /// missing tool shows up as an empty or absent answer rather than aborting the rest.
    pub fn render(&self) -> Result<String, QuoteError> {
        let mut s = String::from(PRELUDE);
        for (i, q) in self.queries.iter().enumerate() {
            s.push_str(&format!("printf '\\n{MARKER} {i}\\n'\n"));
            s.push_str(&query_script(q)?);
            s.push('\n');
        }
        s.push_str(&format!("printf '\\n{MARKER} end\\n'\n"));
        Ok(s)
    }
}

const PRELUDE: &str = "\
export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
";

fn query_script(q: &FactQuery) -> Result<String, QuoteError> {
    Ok(match q {
        FactQuery::Os => OS_SCRIPT.to_string(),
        FactQuery::File { path } => {
            let p = quote(path)?;
            format!(
                "if [ -e {p} ] || [ -L {p} ]; then \
stat --printf 'type=%F\\nmode=%a\\nowner=%U\\ngroup=%G\\nsize=%s\\n' {p}; \
if [ -f {p} ]; then printf 'sha256=%s\\n' \"$(sha256sum < {p} | cut -d' ' -f1)\"; \
if [ \"$(stat -c %s {p})\" -le {FILE_CONTENT_LIMIT} ]; then printf 'content=%s\\n' \"$(base64 -w0 < {p})\"; fi; fi; \
else echo absent; fi"
            )
        }
        FactQuery::Sysctl { key } => {
            let path = format!("/proc/sys/{}", key.replace('.', "/"));
            let p = quote(&path)?;
            format!("if [ -r {p} ]; then printf 'value=%s\\n' \"$(cat {p} 2>/dev/null)\"; else echo absent; fi")
        }
        FactQuery::Module { name } => {
            let n = quote(name)?;
            // /proc/modules and modules.builtin spell module names with underscores.
            format!(
                "m=$(printf %s {n} | tr - _); \
if cut -d' ' -f1 /proc/modules 2>/dev/null | grep -qx \"$m\"; then echo loaded; fi; \
if [ -d \"/sys/module/$m\" ] && [ ! -e \"/sys/module/$m/initstate\" ]; then echo builtin; fi; \
if tr - _ < \"/lib/modules/$(uname -r)/modules.builtin\" 2>/dev/null | grep -q \"/$m\\.ko\"; then echo builtin; fi"
            )
        }
        FactQuery::Swap => "\
tail -n +2 /proc/swaps 2>/dev/null | while read -r dev rest; do printf 'active=%s\\n' \"$dev\"; done; \
grep -E '^[[:space:]]*[^#[:space:]]+[[:space:]]+[^[:space:]]+[[:space:]]+swap[[:space:]]' /etc/fstab 2>/dev/null | sed 's/^/fstab=/'"
            .to_string(),
        FactQuery::Package { name } => {
            let n = quote(name)?;
            // A hold is dpkg's selection, the `h` of Status-Abbrev (what `apt-mark showhold`
            // lists); asking apt-mark costs a full apt cache load (about 0.1-0.7 s) per package.
            format!("dpkg-query -W -f='status=${{db:Status-Abbrev}}\\nversion=${{Version}}\\n' {n} 2>/dev/null")
        }
        FactQuery::Service { name } => {
            let n = quote(name)?;
            format!(
                "printf 'enabled=%s\\n' \"$(systemctl is-enabled {n} 2>/dev/null)\"; \
printf 'active=%s\\n' \"$(systemctl is-active {n} 2>/dev/null)\"; \
printf 'load=%s\\n' \"$(systemctl show -p LoadState --value {n} 2>/dev/null)\""
            )
        }
        FactQuery::Command { command } => {
            // The guard runs in its own shell with no stdin, so it cannot eat the rest of the script.
            let c = quote(command)?;
            format!("sh -c {c} </dev/null >/dev/null 2>&1; printf 'rc=%s\\n' \"$?\"")
        }
    })
}

const OS_SCRIPT: &str = r#"if [ -r /etc/os-release ]; then sed -n 's/^\(ID\|ID_LIKE\|VERSION_ID\|VERSION_CODENAME\|PRETTY_NAME\)=/os.\1=/p' /etc/os-release; fi
printf 'arch=%s\n' "$(dpkg --print-architecture 2>/dev/null)"
printf 'machine=%s\n' "$(uname -m)"
printf 'kernel=%s\n' "$(uname -r)"
printf 'hostname=%s\n' "$(hostname 2>/dev/null || cat /etc/hostname)"
printf 'cpus=%s\n' "$(nproc 2>/dev/null || grep -c ^processor /proc/cpuinfo)"
printf 'memory_kib=%s\n' "$(sed -n 's/^MemTotal:[[:space:]]*\([0-9]*\).*/\1/p' /proc/meminfo)"
if [ -r /proc/device-tree/model ]; then printf 'board=%s\n' "$(tr -d '\0' < /proc/device-tree/model)"; fi
if [ -e /etc/rpi-issue ]; then echo rpi=1; fi
if grep -q '^memory[[:space:]].*[[:space:]]1$' /proc/cgroups 2>/dev/null || grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then echo memory_cgroup=1; fi
ss -Htlnu 2>/dev/null | while read -r proto state rq sq local rest; do printf 'listen=%s/%s\n' "$proto" "${local##*:}"; done
for i in /sys/class/net/*; do [ "${i##*/}" = lo ] || [ ! -r "$i/address" ] || printf 'mac=%s\n' "$(cat "$i/address")"; done"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_deduplicated_and_os_is_always_first() {
        let s = FactScript::new([
            FactQuery::Package { name: "kubelet".into() },
            FactQuery::Swap,
            FactQuery::Package { name: "kubelet".into() },
        ]);
        assert_eq!(
            s.queries(),
            &[FactQuery::Os, FactQuery::Swap, FactQuery::Package { name: "kubelet".into() }]
        );
    }

    #[test]
    fn hostile_paths_are_quoted() {
        let s = FactScript::new([FactQuery::File { path: "/tmp/$(touch pwned)".into() }]);
        let text = s.render().unwrap();
        assert!(text.contains("'/tmp/$(touch pwned)'"), "{text}");
    }
}
