//! Swap off now and after reboot: `swapoff -a`, swap lines in /etc/fstab commented out, and the
//! services that recreate swap at boot (Raspberry Pi OS's dphys-swapfile and
//! rpi-setup-loop@var-swap, or any unit the role names) stopped and masked.

use serde::{Deserialize, Serialize};

use super::{Action, Change, Check, CheckContext, CheckError, Resource};
use crate::facts::{FactQuery, FactValue, ServiceFact};
use crate::shell::{QuoteError, quote};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwapOff {
    /// Units that create swap at boot; each is stopped and masked when present.
    #[serde(default)]
    pub services: Vec<String>,
}

impl SwapOff {
    fn live_services(&self, ctx: &CheckContext<'_>) -> Vec<&str> {
        self.services
            .iter()
            .filter(|s| match ctx.facts.get(&FactQuery::Service { name: (*s).clone() }) {
                // Stopped and either masked or disabled: it will not bring swap back.
                Some(FactValue::Service(ServiceFact { exists, active, enablement, .. })) => {
                    *exists && (*active || !matches!(enablement.as_str(), "masked" | "masked-runtime" | "disabled"))
                }
                _ => false,
            })
            .map(String::as_str)
            .collect()
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
        let services = self.live_services(ctx);
        if swap.active.is_empty() && swap.fstab.is_empty() && services.is_empty() {
            return Ok(Check::NoOp { reason: "no swap active, none in fstab".into() });
        }
        let mut change = Change::new(Action::Update, "swap off");
        if !swap.active.is_empty() {
            change = change.attribute("active swap", Some(swap.active.join(", ")), Some("none".into()));
        }
        for line in &swap.fstab {
            change = change.attribute("fstab", Some(line.clone()), Some(format!("# {line}")));
        }
        for s in services {
            change = change.attribute(&format!("service {s}"), Some("enabled".into()), Some("stopped, disabled, masked".into()));
        }
        Ok(Check::Change(change))
    }

    fn apply_script(&self, ctx: &CheckContext<'_>, _change: &Change) -> Result<String, QuoteError> {
        let mut s = String::new();
        // Stop the units first so they cannot recreate swap between swapoff and the mask.
        for svc in self.live_services(ctx) {
            let q = quote(svc)?;
            // Masking fails for a unit file in /etc/systemd/system; disabled is enough then.
            s.push_str(&format!(
                "systemctl stop {q} || true\nsystemctl disable {q} 2>/dev/null || true\nsystemctl mask {q} 2>/dev/null || systemctl disable {q}\n"
            ));
        }
        s.push_str("swapoff -a\n");
        // Comment out swap entries, keeping the file's mode and owner (sed -i renames a temp file).
        s.push_str(
            "if grep -qE '^[[:space:]]*[^#[:space:]]+[[:space:]]+[^[:space:]]+[[:space:]]+swap[[:space:]]' /etc/fstab; then \
sed -i.kprov-bak -E 's/^([[:space:]]*[^#[:space:]]+[[:space:]]+[^[:space:]]+[[:space:]]+swap[[:space:]].*)$/# \\1/' /etc/fstab; fi\n",
        );
        Ok(s)
    }
}
