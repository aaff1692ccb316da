//! Long waits made visible: a wait says what it awaits and its limit when it starts, then
//! "still waiting … 30s of up to 10m" every [`EVERY`], so a host that does not come back is
//! never ten silent minutes. [`watched`] drives any future and reports while it is pending; a
//! [`Waiting`] is shown by `cli::progress` on the bar, as a plain line, or as a JSON `waiting`
//! event. The reboot wait of apply uses it; any other long wait (nodes Ready, a rollout) can.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;

/// How often a pending wait says it is still waiting.
pub const EVERY: Duration = Duration::from_secs(30);

/// One report of a wait: at its start (`waited_secs` 0), then every [`EVERY`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Waiting {
    pub host: String,
    /// What is awaited, to follow "waiting for": `h1 to come back after the reboot`.
    pub what: String,
    pub waited_secs: u64,
    pub limit_secs: u64,
}

impl Waiting {
    /// `waiting up to 10m for h1 to come back after the reboot`, then
    /// `still waiting for h1 to come back after the reboot: 30s of up to 10m`.
    pub fn line(&self) -> String {
        let limit = human(Duration::from_secs(self.limit_secs));
        if self.waited_secs == 0 {
            format!("waiting up to {limit} for {}", self.what)
        } else {
            format!("still waiting for {}: {} of up to {limit}", self.what, human(Duration::from_secs(self.waited_secs)))
        }
    }
}

/// A duration as people write it: `35s`, `10m`, `1m30s`, `2h`, `1h5m`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    let (h, m, sec) = (s / 3600, s % 3600 / 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if sec > 0 || out.is_empty() {
        out.push_str(&format!("{sec}s"));
    }
    out
}

/// Run `fut` to completion; call `on` with zero at once, then with the time waited every
/// `every` while it is still pending.
pub async fn watched<F: Future>(fut: F, every: Duration, mut on: impl FnMut(Duration)) -> F::Output {
    let started = tokio::time::Instant::now();
    on(Duration::ZERO);
    tokio::pin!(fut);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            out = &mut fut => return out,
            _ = tick.tick() => on(started.elapsed()),
        }
    }
}

/// What to check when a host did not come back after its reboot, added to the wait's error.
pub fn reboot_timeout_help(host: &str) -> String {
    format!(
        "what to check: that {host} powers up and boots (its console or monitor shows why not), that it kept its address (a new DHCP lease moves it), and that sshd starts at boot; then run kprov apply again, which resumes after the reboot (a slow host needs a longer timeout_secs on the reboot resource)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(human(Duration::from_secs(600)), "10m");
        assert_eq!(human(Duration::from_secs(35)), "35s");
        assert_eq!(human(Duration::from_secs(90)), "1m30s");
        assert_eq!(human(Duration::from_secs(3900)), "1h5m");
        assert_eq!(human(Duration::ZERO), "0s");
    }

    #[test]
    fn a_wait_says_what_and_its_limit_then_how_long_so_far() {
        let mut w = Waiting { host: "pi1".into(), what: "pi1 to come back after the reboot".into(), waited_secs: 0, limit_secs: 600 };
        assert_eq!(w.line(), "waiting up to 10m for pi1 to come back after the reboot");
        w.waited_secs = 30;
        assert_eq!(w.line(), "still waiting for pi1 to come back after the reboot: 30s of up to 10m");
        let v = serde_json::to_value(&w).unwrap();
        assert_eq!(v["waited_secs"], 30);
        assert_eq!(v["limit_secs"], 600);
    }

    #[tokio::test]
    async fn a_pending_wait_reports_every_interval_until_it_ends() {
        let mut seen = vec![];
        let every = Duration::from_millis(300);
        let out = watched(
            async {
                tokio::time::sleep(Duration::from_millis(1000)).await;
                7
            },
            every,
            |d| seen.push(d.as_millis() / 300),
        )
        .await;
        assert_eq!(out, 7);
        // At once, then after 300, 600 and 900 ms (later on a loaded machine, never earlier).
        assert_eq!(seen[0], 0, "{seen:?}");
        assert!((2..=4).contains(&seen.len()), "{seen:?}");
        assert!(seen.iter().enumerate().all(|(i, &s)| s >= i as u128), "{seen:?}");
        let mut quick = vec![];
        watched(async {}, EVERY, |d| quick.push(d.as_secs())).await;
        assert_eq!(quick, vec![0], "a wait that ends at once says only that it started");
    }
}
