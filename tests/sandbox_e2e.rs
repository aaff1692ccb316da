//! `kprov sandbox` end to end: up, status, a second up refused, `apply --tags prepare` on the
//! sandbox's own inventory (ordinary hosts to kprov), the plan of what remains, down, and
//! nothing left behind (containers, network, directory); an `up` SIGKILLed half-way is
//! removed by `down`.
//!
//! The image cache is the test suite's (KPROV_CACHE), so the sandbox's image is the test
//! nodes' debian image (the same recipe, embedded in kprov, and the same tag).

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::cli::{Kprov, code, p, text};
use support::nodes::cache_dir;

fn docker(args: &[&str]) -> String {
    let o = Command::new("docker").args(args).output().unwrap();
    assert!(o.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// The sandbox's id, from its state file.
fn sandbox_id(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("sandbox.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["id"].as_str().map(str::to_string)
}

/// Containers and networks labelled with the sandbox's id.
fn left_behind(id: &str) -> (String, String) {
    let filter = format!("label=kprov-sandbox={id}");
    (docker(&["ps", "-a", "-q", "--filter", &filter]), docker(&["network", "ls", "-q", "--filter", &filter]))
}

fn env() -> [(&'static str, String); 1] {
    [("KPROV_CACHE", cache_dir().display().to_string())]
}

fn run(k: &Kprov, args: &[&str]) -> std::process::Output {
    let e = env();
    k.run_env(args, &[(e[0].0, e[0].1.as_str())])
}

#[test]
fn up_apply_prepare_plan_and_down_leave_nothing_behind() {
    let k = Kprov::new();
    let dir = k.path("sb");
    let up = run(&k, &["sandbox", "up", "--nodes", "2", "--flavour", "debian", "--dir", p(&dir)]);
    let id = sandbox_id(&dir);
    // Whatever happens below, the sandbox goes.
    struct Down<'a>(&'a Kprov, &'a Path);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            let _ = run(self.0, &["sandbox", "down", "--dir", p(self.1)]);
        }
    }
    let _down = Down(&k, &dir);
    assert_eq!(code(&up), 0, "{}", text(&up));
    let id = id.expect("a state file with the sandbox's id");
    let inv = dir.join("inventory.yaml");
    let inv_text = std::fs::read_to_string(&inv).unwrap();
    assert!(inv_text.contains("user: deploy") && inv_text.contains("host_key_policy: strict"), "{inv_text}");
    assert_eq!(std::fs::read_to_string(dir.join("known_hosts")).unwrap().lines().filter(|l| l.contains(" ssh-ed25519 ")).count(), 2);

    let status = run(&k, &["sandbox", "status", "--dir", p(&dir)]);
    assert_eq!(code(&status), 0, "{}", text(&status));
    let out = String::from_utf8_lossy(&status.stdout).to_string();
    assert!(out.contains(&format!("Sandbox {id} in {}", dir.display())), "{out}");
    assert_eq!(out.lines().filter(|l| l.contains(" running ")).count(), 2, "{out}");
    assert!(out.lines().any(|l| l.starts_with("node1 ") && l.contains("control-plane")), "{out}");

    let again = run(&k, &["sandbox", "up", "--dir", p(&dir)]);
    assert_eq!(code(&again), 1, "{}", text(&again));
    assert!(text(&again).contains(&format!("a sandbox is already up in {} (id {id})", dir.display())), "{}", text(&again));
    assert_eq!(left_behind(&id).0.lines().count(), 2, "the refused up started nothing");

    // The sandbox hosts are ordinary hosts: validate, apply the preparation, plan what remains.
    let validate = run(&k, &["validate", p(&inv)]);
    assert_eq!(code(&validate), 0, "{}", text(&validate));
    let apply = run(&k, &["apply", p(&inv), "--tags", "prepare", "--no-progress"]);
    assert_eq!(code(&apply), 0, "{}", text(&apply));
    assert!(String::from_utf8_lossy(&apply.stdout).contains("Apply complete."), "{}", text(&apply));
    let prepared = run(&k, &["plan", p(&inv), "--tags", "prepare"]);
    assert_eq!(code(&prepared), 0, "the preparation is done: {}", text(&prepared));
    let rest = run(&k, &["plan", p(&inv)]);
    assert_eq!(code(&rest), 2, "{}", text(&rest));
    let rest_out = String::from_utf8_lossy(&rest.stdout).to_string();
    assert!(rest_out.contains("kubeadm"), "the plan of what remains: {rest_out}");

    let down = run(&k, &["sandbox", "down", "--dir", p(&dir)]);
    assert_eq!(code(&down), 0, "{}", text(&down));
    assert_eq!(left_behind(&id), (String::new(), String::new()), "containers or network left");
    assert!(!dir.exists(), "the directory is gone");
    let again = run(&k, &["sandbox", "down", "--dir", p(&dir)]);
    assert_eq!(code(&again), 1, "a second down says there is no sandbox: {}", text(&again));
    assert!(text(&again).contains("no sandbox in"), "{}", text(&again));
}

#[test]
fn an_up_killed_half_way_is_removed_by_down() {
    let k = Kprov::new();
    let dir = k.path("sb-killed");
    let (key, value) = env()[0].clone();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kprov"))
        .args(["sandbox", "up", "--nodes", "3", "--flavour", "debian", "--dir", p(&dir)])
        .env("HOME", k.home.path())
        .env(key, value)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once its first container exists: the others are not made yet, or still booting.
    let deadline = Instant::now() + Duration::from_secs(300);
    let id = loop {
        if let Some(id) = sandbox_id(&dir)
            && !left_behind(&id).0.is_empty()
        {
            break id;
        }
        assert!(child.try_wait().unwrap().is_none(), "up ended before it was killed");
        assert!(Instant::now() < deadline, "no container within 300 s");
        std::thread::sleep(Duration::from_millis(100));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    // A `docker run` kprov had started may still be finishing (the client outlives kprov):
    // `down` comes after it, as a user's would.
    let deadline = Instant::now() + Duration::from_secs(60);
    while Command::new("pgrep").args(["-f", &format!("docker run -d --name kprov-sandbox-{id}-")]).stdout(Stdio::null()).status().unwrap().success() {
        assert!(Instant::now() < deadline, "docker run still running after 60 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    let state = std::fs::read_to_string(dir.join("sandbox.json")).unwrap();
    assert!(state.contains("\"complete\": false"), "{state}");
    assert!(!dir.join("inventory.yaml").exists(), "killed before the inventory");

    let down = run(&k, &["sandbox", "down", "--dir", p(&dir)]);
    assert_eq!(code(&down), 0, "{}", text(&down));
    assert_eq!(left_behind(&id), (String::new(), String::new()), "containers or network left");
    assert!(!dir.exists(), "the directory is gone");
}
