//! Swap off now and after every boot, whatever provides it. Each provider is found from the
//! swap facts and turned off in its own supported way:
//! - a swap line in /etc/fstab (Ubuntu's `/swap.img`; systemd-fstab-generator makes
//!   `swap.img.swap` of it at every boot): commented out;
//! - rpi-swap (Raspberry Pi OS trixie: `rpi-swap-generator` makes zram and/or file swap units at
//!   every boot from swap.conf(5)): a drop-in `/etc/rpi/swap.conf.d/99-kprov-swap-off.conf`
//!   with `[Main] Mechanism=none`, the package's documented way to have no swap;
//! - systemd's zram-generator (zram-generator.conf(5)): a drop-in
//!   `/etc/systemd/zram-generator.conf.d/99-kprov-swap-off.conf` giving each configured device
//!   `host-memory-limit=0` (the device is not created on a host with more memory than that),
//!   the same way rpi-swap's own vendor drop-in keeps zram0 off;
//! - another `.swap` unit that swap.target pulls in: disabled and masked;
//! - services that create swap at boot (dphys-swapfile on Raspberry Pi OS bookworm, or any
//!   unit the role names): stopped, disabled and masked.
//!
//! Then `swapoff -a`, and a `systemctl daemon-reload` so the generators run again with the new
//! configuration. The same provider list names what brought swap back when the reboot step
//! finds /proc/swaps not empty after a reboot ([`SwapOff::providers`]).

use serde::{Deserialize, Serialize};

use super::{Action, Change, Check, CheckContext, CheckError, Resource};
use crate::facts::{ConfigFile, FactQuery, FactValue, ServiceFact, SwapFact};
use crate::shell::{QuoteError, quote};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwapOff {
    /// Units that create swap at boot; each is stopped and masked when present.
    #[serde(default)]
    pub services: Vec<String>,
}

/// kprov's drop-in for rpi-swap. Drop-ins are read sorted by file name, the last one wins:
/// `99-` sorts after the two-digit names swap.conf(5) recommends.
pub const RPI_SWAP_DROP_IN: &str = "/etc/rpi/swap.conf.d/99-kprov-swap-off.conf";
const RPI_SWAP_DROP_IN_TEXT: &str = "# Written by kprov: kubelet needs swap off (see swap.conf(5)).\n[Main]\nMechanism=none\n";
/// kprov's drop-in for zram-generator.
pub const ZRAM_DROP_IN: &str = "/etc/systemd/zram-generator.conf.d/99-kprov-swap-off.conf";

/// rpi-swap's configuration directories, highest precedence first (swap.conf(5)).
const RPI_SWAP_DIRS: [&str; 4] = ["/etc/rpi", "/run/rpi", "/usr/local/lib/rpi", "/usr/lib/rpi"];
/// zram-generator's, without /run (see the fact script).
const ZRAM_DIRS: [&str; 3] = ["/etc/systemd", "/usr/local/lib/systemd", "/usr/lib/systemd"];

/// Something that makes swap now or at the next boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    /// An uncommented swap line in /etc/fstab.
    Fstab { line: String },
    /// rpi-swap's generator with a mechanism other than `none`.
    RpiSwap {
        mechanism: String,
        /// The file whose `Mechanism=` decided it, or None for the package default (auto).
        from: Option<String>,
        /// The units it generated in this boot (their SourcePath is its swap.conf).
        units: Vec<String>,
    },
    /// zram-generator with devices configured.
    ZramGenerator { devices: Vec<String>, files: Vec<String> },
    /// A swap unit pulled in by swap.target that no other provider accounts for.
    Unit { name: String, path: String },
    /// A service that creates swap at boot (dphys-swapfile...).
    Service { name: String },
}

impl Provider {
    /// How the provider is named in messages.
    pub fn label(&self) -> String {
        match self {
            Provider::Fstab { line } => format!("the /etc/fstab line {line:?}"),
            Provider::RpiSwap { mechanism, from, .. } => match from {
                Some(f) => format!("rpi-swap (Mechanism={mechanism} in {f})"),
                None => format!("rpi-swap (Mechanism={mechanism}, the package default)"),
            },
            Provider::ZramGenerator { devices, files } => format!("zram-generator ({} in {})", devices.join(", "), files.join(", ")),
            Provider::Unit { name, path } => format!("the swap unit {name} ({path})"),
            Provider::Service { name } => format!("the service {name}"),
        }
    }
}

/// A systemd-style configuration: the main file (the first that exists in `dirs`), then the
/// `NAME.d/*.conf` drop-ins sorted by file name, each name taken from the first of `dirs` that
/// has it; a link to /dev/null hides its name. Returns the files in the order they are read.
fn layered<'a>(configs: &'a [ConfigFile], dirs: &[&str], name: &str) -> Vec<&'a ConfigFile> {
    let find = |path: &str| configs.iter().find(|c| c.path == path);
    let mut out = vec![];
    if let Some(main) = dirs.iter().find_map(|d| find(&format!("{d}/{name}")))
        && !main.masked
    {
        out.push(main);
    }
    let mut names: Vec<&str> = configs
        .iter()
        .filter_map(|c| {
            let (dir, file) = c.path.rsplit_once('/')?;
            let base = dir.strip_suffix(&format!("/{name}.d"))?;
            (dirs.contains(&base) && file.ends_with(".conf")).then_some(file)
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    for n in names {
        if let Some(f) = dirs.iter().find_map(|d| find(&format!("{d}/{name}.d/{n}")))
            && !f.masked
        {
            out.push(f);
        }
    }
    out
}

/// `(section, key, value)` of each setting line, comments dropped.
fn settings(file: &ConfigFile) -> Vec<(String, String, String)> {
    settings_with(file, true)
}

/// [`settings`], with section names trimmed inside the brackets or, as libsystemd's parser
/// reads them, taken as written (`[ Main ]` is the section " Main ").
fn settings_with(file: &ConfigFile, trim_sections: bool) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut out = vec![];
    for raw in &file.lines {
        let line = raw.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = if trim_sections { s.trim() } else { s }.to_string();
        } else if let Some((k, v)) = line.split_once('=') {
            out.push((section.clone(), k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

/// rpi-swap's effective mechanism over `files` (as swap.conf(5) and the generator resolve it:
/// the last `Mechanism=` wins, an unknown value counts as auto, auto is zram+file) and the
/// file that set it.
fn rpi_swap_mechanism(files: &[&ConfigFile]) -> (String, Option<String>) {
    let mut mechanism: Option<(String, String)> = None;
    for f in files {
        for (section, key, value) in settings_with(f, false) {
            if section == "Main" && key == "Mechanism" {
                mechanism = Some((value, f.path.clone()));
            }
        }
    }
    match mechanism {
        Some((m, from)) if matches!(m.as_str(), "swapfile" | "zram" | "zram+file" | "none") => (m, Some(from)),
        Some((_, from)) => ("zram+file".into(), Some(from)),
        None => ("zram+file".into(), None),
    }
}

/// The first line of rpi-swap's configuration that libsystemd's parser refuses (a section
/// header without its closing bracket), with its file. rpi-swap's generator reads its keys with
/// rpi-systemd-config, i.e. that parser over the main file and every drop-in at once: one such
/// line fails the whole parse, no value comes back, and the generator uses its defaults
/// (auto: zram+file swap) whatever any file says, kprov's drop-in included.
fn rpi_swap_parse_error(files: &[&ConfigFile]) -> Option<(String, String)> {
    files
        .iter()
        .find_map(|f| f.lines.iter().map(|l| l.trim()).find(|l| l.starts_with('[') && !l.ends_with(']')).map(|l| (f.path.clone(), l.to_string())))
}

/// zram-generator's configured devices over `files`: every `[zramN]` section, unless its last
/// `host-memory-limit` is 0 (the device is then never created).
fn zram_devices(files: &[&ConfigFile]) -> Vec<(String, String)> {
    // (device, configured, the file that decided it), in the order first seen.
    let mut devices: Vec<(String, bool, String)> = vec![];
    for f in files {
        for raw in &f.lines {
            let Some(section) = raw.trim().strip_prefix('[').and_then(|l| l.strip_suffix(']')) else {
                continue;
            };
            let section = section.trim();
            if section.starts_with("zram") && !devices.iter().any(|(d, _, _)| d == section) {
                devices.push((section.to_string(), true, f.path.clone()));
            }
        }
        for (section, key, value) in settings(f) {
            if key == "host-memory-limit"
                && let Some(d) = devices.iter_mut().find(|(d, _, _)| *d == section)
            {
                d.1 = value != "0";
                d.2 = f.path.clone();
            }
        }
    }
    devices.into_iter().filter(|(_, on, _)| *on).map(|(d, _, f)| (d, f)).collect()
}

fn generator_present(swap: &SwapFact, name: &str) -> bool {
    // The first directory in systemd's order that has the generator decides: a link to
    // /dev/null there masks it (systemd.generator(7)).
    const ORDER: [&str; 5] = ["/etc/", "/run/", "/usr/local/lib/", "/usr/lib/", "/lib/"];
    let rank = |path: &str| ORDER.iter().position(|d| path.starts_with(d)).unwrap_or(ORDER.len());
    swap.generators.iter().filter(|g| g.path.rsplit('/').next() == Some(name)).min_by_key(|g| rank(&g.path)).is_some_and(|g| !g.masked)
}

impl SwapOff {
    fn live_services<'a>(&'a self, facts: &crate::facts::HostFacts) -> Vec<&'a str> {
        self.services
            .iter()
            .filter(|s| match facts.get(&FactQuery::Service { name: (*s).clone() }) {
                // Stopped and either masked or disabled: it will not bring swap back.
                Some(FactValue::Service(ServiceFact { exists, active, enablement, .. })) => {
                    *exists && (*active || !matches!(enablement.as_str(), "masked" | "masked-runtime" | "disabled"))
                }
                _ => false,
            })
            .map(String::as_str)
            .collect()
    }

    /// Every provider that makes swap now or at the next boot, from facts.
    pub fn providers(&self, swap: &SwapFact, facts: &crate::facts::HostFacts) -> Result<Vec<Provider>, CheckError> {
        let mut out: Vec<Provider> = swap.fstab.iter().map(|l| Provider::Fstab { line: l.clone() }).collect();
        let rpi_files = layered(&swap.configs, &RPI_SWAP_DIRS, "swap.conf");
        let from_rpi_swap = |source: &str| source.ends_with("/rpi/swap.conf") || source.contains("/rpi/swap.conf.d/");
        if generator_present(swap, "rpi-swap-generator") {
            if let Some((file, line)) = rpi_swap_parse_error(&rpi_files) {
                return Err(CheckError::Unsupported(format!(
                    "rpi-swap: {file} has the line {line:?}, a section header systemd's configuration parser refuses; rpi-swap's generator then ignores its whole configuration (kprov's {RPI_SWAP_DROP_IN} included) and makes zram+file swap at every boot: fix or remove that line"
                )));
            }
            let (mechanism, from) = rpi_swap_mechanism(&rpi_files);
            if mechanism != "none" {
                // Our own drop-in is there and still loses: a drop-in sorted after it wins.
                if rpi_files.iter().any(|f| f.path == RPI_SWAP_DROP_IN) {
                    return Err(CheckError::Unsupported(format!(
                        "rpi-swap: {} sets Mechanism={mechanism} and is read after kprov's {RPI_SWAP_DROP_IN} (drop-ins are read sorted by file name, the last wins): set Mechanism=none there or remove it",
                        from.as_deref().unwrap_or("a drop-in")
                    )));
                }
                let units = swap.units.iter().filter(|u| !u.masked && from_rpi_swap(&u.source)).map(|u| u.name().to_string()).collect();
                out.push(Provider::RpiSwap { mechanism, from, units });
            }
        }
        let zram_files = layered(&swap.configs, &ZRAM_DIRS, "zram-generator.conf");
        if generator_present(swap, "zram-generator") {
            let devices = zram_devices(&zram_files);
            if !devices.is_empty() {
                if zram_files.iter().any(|f| f.path == ZRAM_DROP_IN) {
                    let files: Vec<&str> = devices.iter().map(|(_, f)| f.as_str()).collect();
                    return Err(CheckError::Unsupported(format!(
                        "zram-generator: {} still configures {} after kprov's {ZRAM_DROP_IN} (drop-ins are read sorted by file name, the last wins): set host-memory-limit=0 there or remove it",
                        files.join(", "),
                        devices.iter().map(|(d, _)| d.as_str()).collect::<Vec<_>>().join(", ")
                    )));
                }
                let mut files: Vec<String> = devices.iter().map(|(_, f)| f.clone()).collect();
                files.dedup();
                out.push(Provider::ZramGenerator { devices: devices.into_iter().map(|(d, _)| d).collect(), files });
            }
        }
        for u in &swap.units {
            let generated_by_known = u.source == "/etc/fstab" || from_rpi_swap(&u.source) || u.source.contains("zram-generator");
            if u.masked || generated_by_known || !swap.wanted.iter().any(|w| w == u.name()) {
                continue;
            }
            out.push(Provider::Unit { name: u.name().to_string(), path: u.path.clone() });
        }
        out.extend(self.live_services(facts).into_iter().map(|s| Provider::Service { name: s.to_string() }));
        Ok(out)
    }
}

impl Resource for SwapOff {
    fn facts(&self) -> Vec<FactQuery> {
        let mut q = vec![FactQuery::Swap];
        q.extend(self.services.iter().map(|s| FactQuery::Service { name: s.clone() }));
        q
    }

    fn check(&self, ctx: &CheckContext<'_>) -> Result<Check, CheckError> {
        let swap = match ctx.facts.get(&FactQuery::Swap) {
            Some(FactValue::Swap(s)) => s,
            _ => return Err(super::missing(&FactQuery::Swap)),
        };
        let providers = self.providers(swap, ctx.facts)?;
        if swap.active.is_empty() && providers.is_empty() {
            return Ok(Check::NoOp { reason: "no swap active, and nothing brings it back at boot".into() });
        }
        let mut change = Change::new(Action::Update, "swap off");
        if !swap.active.is_empty() {
            change = change.attribute("active swap", Some(swap.active.join(", ")), Some("none".into()));
        }
        for p in &providers {
            change = match p {
                Provider::Fstab { line } => change.attribute("fstab", Some(line.clone()), Some(format!("# {line}"))),
                Provider::RpiSwap { mechanism, from, units } => {
                    let mut old = format!("Mechanism={mechanism} ({})", from.as_deref().unwrap_or("default"));
                    if !units.is_empty() {
                        old.push_str(&format!(", units {}", units.join(", ")));
                    }
                    change.attribute("rpi-swap", Some(old), Some(format!("Mechanism=none ({RPI_SWAP_DROP_IN})")))
                }
                Provider::ZramGenerator { devices, files } => change.attribute(
                    "zram-generator",
                    Some(format!("{} ({})", devices.join(", "), files.join(", "))),
                    Some(format!("host-memory-limit=0 ({ZRAM_DROP_IN})")),
                ),
                Provider::Unit { name, .. } => {
                    change.attribute(&format!("swap unit {name}"), Some("enabled".into()), Some("stopped, disabled, masked".into()))
                }
                Provider::Service { name } => {
                    change.attribute(&format!("service {name}"), Some("enabled".into()), Some("stopped, disabled, masked".into()))
                }
            };
        }
        Ok(Check::Change(change))
    }

    fn apply_script(&self, ctx: &CheckContext<'_>, _change: &Change) -> Result<String, QuoteError> {
        let Some(FactValue::Swap(swap)) = ctx.facts.get(&FactQuery::Swap) else {
            return Ok("echo 'swap facts missing' >&2; exit 1\n".into());
        };
        let providers = self.providers(swap, ctx.facts).unwrap_or_default();
        let mut s = String::new();
        let mut reload = false;
        // Stop each provider first so it cannot recreate swap between swapoff and the change.
        for p in &providers {
            match p {
                Provider::Fstab { .. } => reload = true,
                Provider::RpiSwap { units, .. } => {
                    s.push_str(&super::write_file_script(RPI_SWAP_DROP_IN, RPI_SWAP_DROP_IN_TEXT.as_bytes(), 0o644, "root", "root")?);
                    for u in units {
                        s.push_str(&format!("systemctl stop {} || true\n", quote(u)?));
                    }
                    reload = true;
                }
                Provider::ZramGenerator { devices, .. } => {
                    let mut text = String::from("# Written by kprov: kubelet needs swap off (see zram-generator.conf(5)).\n");
                    for d in devices {
                        text.push_str(&format!("[{d}]\nhost-memory-limit=0\n"));
                    }
                    s.push_str(&super::write_file_script(ZRAM_DROP_IN, text.as_bytes(), 0o644, "root", "root")?);
                    for d in devices {
                        s.push_str(&format!("systemctl stop {} || true\n", quote(&format!("systemd-zram-setup@{d}.service"))?));
                    }
                    reload = true;
                }
                Provider::Unit { name, .. } | Provider::Service { name } => {
                    let q = quote(name)?;
                    // Masking fails for a unit file in /etc/systemd/system; disabled is enough then.
                    s.push_str(&format!("systemctl stop {q} || true\nsystemctl disable {q} 2>/dev/null || true\nsystemctl mask {q} 2>/dev/null || systemctl disable {q}\n"));
                }
            }
        }
        s.push_str("swapoff -a\n");
        // Comment out swap entries, keeping the file's mode and owner (sed -i renames a temp file).
        s.push_str(
            "if grep -qE '^[[:space:]]*[^#[:space:]]+[[:space:]]+[^[:space:]]+[[:space:]]+swap[[:space:]]' /etc/fstab; then \
sed -i.kprov-bak -E 's/^([[:space:]]*[^#[:space:]]+[[:space:]]+[^[:space:]]+[[:space:]]+swap[[:space:]].*)$/# \\1/' /etc/fstab; fi\n",
        );
        if reload {
            // The generators run again: fstab's swap units and rpi-swap's are gone.
            s.push_str("systemctl daemon-reload\n");
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(path: &str, lines: &[&str]) -> ConfigFile {
        ConfigFile { path: path.into(), masked: false, lines: lines.iter().map(|l| l.to_string()).collect() }
    }

    #[test]
    fn rpi_swap_resolves_main_file_then_drop_ins_by_name() {
        let configs = vec![
            conf("/etc/rpi/swap.conf", &["[Main]", "Mechanism=swapfile"]),
            conf("/usr/lib/rpi/swap.conf", &["[Main]", "Mechanism=none"]),
            conf("/etc/rpi/swap.conf.d/80-zram.conf", &["[Main]", "Mechanism=zram"]),
            conf("/usr/lib/rpi/swap.conf.d/50-vendor.conf", &["[Main]", "Mechanism=none"]),
        ];
        let files = layered(&configs, &RPI_SWAP_DIRS, "swap.conf");
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        // Only the first main file; drop-ins sorted by name whatever their directory.
        assert_eq!(paths, ["/etc/rpi/swap.conf", "/usr/lib/rpi/swap.conf.d/50-vendor.conf", "/etc/rpi/swap.conf.d/80-zram.conf"]);
        assert_eq!(rpi_swap_mechanism(&files), ("zram".into(), Some("/etc/rpi/swap.conf.d/80-zram.conf".into())));
    }

    #[test]
    fn rpi_swap_masked_drop_in_and_unknown_values() {
        let mut masked = conf("/etc/rpi/swap.conf.d/50-vendor.conf", &[]);
        masked.masked = true;
        let configs = vec![masked, conf("/usr/lib/rpi/swap.conf.d/50-vendor.conf", &["[Main]", "Mechanism=none"])];
        let files = layered(&configs, &RPI_SWAP_DIRS, "swap.conf");
        assert!(files.is_empty(), "the /etc link to /dev/null hides the vendor file");
        assert_eq!(rpi_swap_mechanism(&files), ("zram+file".into(), None));
        let odd = [conf("/etc/rpi/swap.conf", &["[Main]", "  Mechanism = zswap  "])];
        let files: Vec<&ConfigFile> = odd.iter().collect();
        assert_eq!(rpi_swap_mechanism(&files).0, "zram+file", "an unknown value counts as auto");
        let other_section = [conf("/etc/rpi/swap.conf", &["[File]", "Mechanism=none"])];
        let files: Vec<&ConfigFile> = other_section.iter().collect();
        assert_eq!(rpi_swap_mechanism(&files).0, "zram+file", "Mechanism belongs to [Main]");
        let spaced = [conf("/etc/rpi/swap.conf", &["[ Main ]", "Mechanism=none"])];
        let files: Vec<&ConfigFile> = spaced.iter().collect();
        assert_eq!(rpi_swap_mechanism(&files).0, "zram+file", "libsystemd reads \"[ Main ]\" as the section \" Main \"");
    }

    #[test]
    fn rpi_swap_one_malformed_header_voids_every_file() {
        let configs =
            vec![conf("/etc/rpi/swap.conf.d/10-mine.conf", &["[Main", "Mechanism=swapfile"]), conf(RPI_SWAP_DROP_IN, &["[Main]", "Mechanism=none"])];
        let files = layered(&configs, &RPI_SWAP_DIRS, "swap.conf");
        assert_eq!(rpi_swap_parse_error(&files), Some(("/etc/rpi/swap.conf.d/10-mine.conf".into(), "[Main".into())));
        let fine = [conf("/etc/rpi/swap.conf", &["[Main]", "Mechanism=none", "[File]", "Path=/var/[swap]"])];
        let files: Vec<&ConfigFile> = fine.iter().collect();
        assert_eq!(rpi_swap_parse_error(&files), None);
    }

    #[test]
    fn zram_devices_off_with_a_zero_host_memory_limit() {
        let configs = vec![
            conf("/usr/lib/systemd/zram-generator.conf", &["[zram0]", "zram-size = ram / 2"]),
            conf("/usr/lib/systemd/zram-generator.conf.d/20-rpi-swap-zram0-ctrl.conf", &["[zram1]", "host-memory-limit=0"]),
        ];
        let files = layered(&configs, &ZRAM_DIRS, "zram-generator.conf");
        assert_eq!(zram_devices(&files), [("zram0".to_string(), "/usr/lib/systemd/zram-generator.conf".to_string())]);
    }
}
