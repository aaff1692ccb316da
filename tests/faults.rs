//! Faults on real nodes: a host down before the run, a host paused mid-apply, a network cut
//! mid-apply, Ctrl-C during apply, and a hostile inventory value. After each, a plain re-run
//! converges every host, with no half-written file and no broken package left behind.
//!
//! A role overlay adds one slow step (a guarded command that sleeps, then leaves a marker) so
//! that a fault can land while commands are in flight.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::apt_repo::AptRepo;
use support::cli::{Kprov, code, finish, p, text, wait_for};
use support::nodes::{Flavour, NodeSet};

const SLOW_ROLE: &str = "name: slow\n\
description: A slow step for the fault tests\n\
hosts: all\n\
after: [kernel]\n\
tags: [prepare]\n\
resources:\n  - name: slow-step\n    command:\n      run: sleep 8; touch /var/tmp/kprov-slow-done\n      description: a slow step (8 s)\n      creates: /var/tmp/kprov-slow-done\n";

fn slow_roles(k: &Kprov) -> String {
    let dir = k.path("roles");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("99-slow.yaml"), SLOW_ROLE).unwrap();
    p(&dir).to_string()
}

/// What a converged host looks like, and that nothing was left half-done.
fn assert_converged(set: &NodeSet, i: usize) {
    assert_eq!(set.sh(i, "cat /proc/sys/net/ipv4/ip_forward").trim(), "1", "node {i}");
    assert_eq!(set.sh(i, "cat /etc/modules-load.d/k8s.conf"), "# Managed by kprov.\noverlay\nbr_netfilter\n", "node {i}");
    assert!(set.exec(i, "test -f /var/tmp/kprov-slow-done").status.success(), "node {i}: slow step done");
    assert_clean(set, i);
}

/// No temp file of an atomic write left behind anywhere on the host, and dpkg has nothing half-configured.
fn assert_clean(set: &NodeSet, i: usize) {
    let leftovers =
        set.sh(i, "find / \\( -path /proc -o -path /sys -o -path /dev \\) -prune -o -name '.kprov.*' -print 2>/dev/null; dpkg --audit 2>&1");
    assert_eq!(leftovers.trim(), "", "node {i}: leftovers or broken packages");
}

/// The numbers of a host's row in the apply summary: ok, changed, failed, blocked, not run.
fn summary_row(all: &str, host: &str) -> Vec<usize> {
    let line = all
        .lines()
        .rev()
        .find(|l| l.starts_with(&format!("{host} ")) && !l.contains('('))
        .unwrap_or_else(|| panic!("{host} is not in the summary:\n{all}"));
    let row: Vec<usize> = line.split_whitespace().filter_map(|w| w.parse().ok()).take(5).collect();
    assert_eq!(row.len(), 5, "not a summary row: {line}");
    row
}

fn reset_slow(set: &NodeSet, n: usize) {
    for i in 0..n {
        set.sh(i, "rm -f /var/tmp/kprov-slow-done; sysctl -qw net.ipv4.ip_forward=0");
    }
}

/// Start an apply, hit `victim` with `fault` once its slow batch runs, heal it after the run.
fn fault_mid_apply(set: &NodeSet, k: &Kprov, apply_args: &[&str], victim: usize, fault: impl Fn(&NodeSet), heal: impl Fn(&NodeSet)) {
    reset_slow(set, 3);
    let name = format!("h{}", victim + 1);
    let (child, rx) = k.spawn(apply_args);
    let mut seen = vec![];
    wait_for(&rx, &format!("{name}: running"), &mut seen);
    std::thread::sleep(Duration::from_secs(1));
    fault(set);
    let (out, took) = finish(child, rx, seen, Duration::from_secs(90));
    heal(set);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(took < Duration::from_secs(60), "ended {took:?} after the fault");
    let all = text(&out);
    let row = summary_row(&all, &name);
    assert!(row[2] + row[3] + row[4] > 0, "{name} is reported failed, blocked or not run: {row:?}\n{all}");
    assert!(all.contains("Apply finished with failures"), "{all}");
    for i in (0..3).filter(|&i| i != victim) {
        assert_eq!(summary_row(&all, &format!("h{}", i + 1))[2..5], [0, 0, 0], "{all}");
        assert_converged(set, i);
    }
    let out = k.run(apply_args);
    assert_eq!(code(&out), 0, "{}", text(&out));
    for i in 0..3 {
        assert_converged(set, i);
    }
}

#[test]
fn faults_mid_run_end_cleanly_and_a_re_run_converges() {
    let set = NodeSet::start(&[Flavour::Debian, Flavour::Debian, Flavour::Debian]);
    let k = Kprov::new();
    let roles = slow_roles(&k);
    let inv = k.inventory(&set, "root", &[(0, "control-plane"), (1, "worker"), (2, "worker")], "  cni: flannel\n", "");
    let inv = p(&inv).to_string();
    let apply_args = ["apply", inv.as_str(), "--tags", "prepare", "--roles", roles.as_str()];

    // 1. A host down before the run. With --max-fail 0 nothing starts anywhere; with --limit
    //    the operator finishes the run on the healthy hosts; a plain run converges the others,
    //    names the host down and exits non-zero.
    set.stop(2);
    let mut strict = apply_args.to_vec();
    strict.extend(["--max-fail", "0"]);
    let out = k.run(&strict);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let all = text(&out);
    for h in ["h1", "h2"] {
        let row = summary_row(&all, h);
        assert_eq!(row[1], 0, "{h} changed nothing: {all}");
        assert!(row[4] > 0, "{h} has steps not run: {all}");
    }
    let mut limited = apply_args.to_vec();
    limited.extend(["--limit", "h1,h2"]);
    let out = k.run(&limited);
    assert_eq!(code(&out), 0, "{}", text(&out));
    for i in 0..2 {
        assert_converged(&set, i);
        set.sh(i, "rm -f /var/tmp/kprov-slow-done");
    }
    let out = k.run(&apply_args);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("h3 (unreachable)"), "{}", text(&out));
    for i in 0..2 {
        assert_converged(&set, i);
    }
    set.start_again(2);
    let out = k.run(&apply_args);
    assert_eq!(code(&out), 0, "{}", text(&out));
    for i in 0..3 {
        assert_converged(&set, i);
    }

    // 2. A host paused while its slow step runs, and 3. a network cut (docker network
    //    disconnect) of another: each time the run ends within the keepalive limit (3 × 5 s),
    //    the summary names that host failed and the others done, and a re-run converges.
    fault_mid_apply(&set, &k, &apply_args, 1, |s| s.pause(1), |s| s.unpause(1));
    fault_mid_apply(&set, &k, &apply_args, 2, |s| s.disconnect(2), |s| s.connect(2));

    // 4. Ctrl-C while the slow steps run: the commands in flight finish, nothing new starts,
    //    the summary says the run was interrupted, and the exit is non-zero.
    reset_slow(&set, 3);
    let (child, rx) = k.spawn(&apply_args);
    let mut seen = vec![];
    wait_for(&rx, "running", &mut seen);
    std::thread::sleep(Duration::from_secs(1));
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let (out, _) = finish(child, rx, seen, Duration::from_secs(60));
    assert_ne!(code(&out), 0, "{}", text(&out));
    let all = text(&out);
    assert!(all.contains("Interrupted"), "{all}");
    assert!(all.contains("run apply again to finish"), "{all}");
    for i in 0..3 {
        assert_clean(&set, i);
    }
    let out = k.run(&apply_args);
    assert_eq!(code(&out), 0, "{}", text(&out));
    for i in 0..3 {
        assert_converged(&set, i);
    }
    let again = k.run(&["plan", inv.as_str(), "--tags", "prepare", "--roles", roles.as_str()]);
    assert_eq!(code(&again), 0, "{}", text(&again));
}

#[test]
fn hostile_inventory_values_create_nothing_on_the_node() {
    let set = NodeSet::start(&[Flavour::Debian]);
    let repo = AptRepo::serve(set.gateway);
    let k = Kprov::new();
    // Every URL points at the test's own repository server, so whatever is fetched stays on
    // the test network; the rest of each value is shell syntax that must stay inert.
    // No whitespace: a URL with a space or a line break is refused before anything runs
    // (checked below); `${IFS}` is the shell's own way to split words without one.
    let evil = "x$(touch${IFS}/tmp/pwned1)`touch${IFS}/tmp/pwned2`';touch${IFS}/tmp/pwned3;'\"$(touch${IFS}/tmp/pwned4)\"";
    let tail = format!(
        "mirrors:\n  kubernetes_apt: '{u}/{e}/{{minor}}/'\n  kubernetes_apt_key_fingerprint: {f}\n  docker_apt: '{u}/{e}'\n  docker_apt_key_fingerprint: {f}\n",
        u = repo.url,
        f = repo.fingerprint,
        e = evil.replace('\'', "''")
    );
    let cluster = format!(
        "  cni: flannel\n  cni_manifest: '{}/{}'\n  cni_manifest_sha256: {}\n",
        repo.url,
        evil.replace('\'', "''"),
        repo.manifest_sha256("kube-flannel.yml")
    );
    let inv = k.inventory(&set, "root", &[(0, "control-plane")], &cluster, &tail);
    let validate = k.run(&["validate", p(&inv)]);
    assert_eq!(code(&validate), 0, "the values are valid URLs: {}", text(&validate));
    // The same values with spaces are refused by validation, naming each key.
    let spaced = std::fs::read_to_string(&inv).unwrap().replace("${IFS}", " ");
    let spaced_inv = inv.with_file_name("spaced.yaml");
    std::fs::write(&spaced_inv, spaced).unwrap();
    let refused = k.run(&["validate", p(&spaced_inv)]);
    assert_eq!(code(&refused), 1, "{}", text(&refused));
    for key in ["kubernetes_apt", "docker_apt", "cni_manifest"] {
        assert!(text(&refused).contains(&format!("{key} `")), "{key}: {}", text(&refused));
    }
    let plan = k.run(&["plan", p(&inv)]);
    assert_ne!(code(&plan), 1, "{}", text(&plan));
    let apply = k.run(&["apply", p(&inv)]);
    // The repository does not exist at that path: the apply fails, cleanly and by name.
    assert_eq!(code(&apply), 1, "{}", text(&apply));
    assert!(text(&apply).contains("FAILED"), "{}", text(&apply));
    let pwned = set.sh(0, "ls /tmp/pwned* 2>/dev/null || true");
    assert_eq!(pwned.trim(), "", "a hostile value ran on the node");
    assert_clean(&set, 0);
}

#[test]
fn the_sudo_password_never_reaches_any_output() {
    let set = NodeSet::start(&[Flavour::Debian]);
    let k = Kprov::new();
    let inv = k.inventory(&set, "ops", &[(0, "control-plane")], "  cni: flannel\n", "");
    let text_inv = std::fs::read_to_string(&inv).unwrap().replace("  agent: false\n", "  agent: false\n  become_password_env: KPROV_TEST_SUDO\n");
    std::fs::write(&inv, text_inv).unwrap();
    let pw = support::nodes::SUDO_PASSWORD;
    let env = [("KPROV_TEST_SUDO", pw)];
    let mut outputs = vec![];
    for args in [
        vec!["plan", p(&inv), "--tags", "prepare", "-vv"],
        vec!["plan", p(&inv), "--tags", "prepare", "--json"],
        vec!["apply", p(&inv), "--tags", "prepare", "-vv"],
        vec!["apply", p(&inv), "--tags", "prepare", "--output", "json", "-vv"],
    ] {
        let o = k.run_env(&args, &env);
        assert_ne!(code(&o), 1, "{}", text(&o));
        outputs.push(text(&o));
    }
    assert_eq!(set.sh(0, "cat /proc/sys/net/ipv4/ip_forward").trim(), "1", "applied through sudo");
    // A wrong password fails by name, without echoing either password.
    let o = k.run_env(&["plan", p(&inv), "--tags", "prepare", "-vv"], &[("KPROV_TEST_SUDO", "wrong-pw-1234")]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    assert!(text(&o).contains("h1"), "{}", text(&o));
    assert!(!text(&o).contains("wrong-pw-1234"), "{}", text(&o));
    outputs.push(text(&o));
    for out in &outputs {
        assert!(!out.contains(pw), "the sudo password reached an output:\n{out}");
    }
}

// ---------------------------------------------------------------------------------------------
// Faults that land mid-install and mid-write (issue 15). The overlay role installs
// `kprov-fault-slow` (tests/doubles/build-repo.sh: its preinst sleeps 12 s) from the local
// repository and writes a large managed file. Each fault is triggered by watching the node
// (its process list for the preinst, its /etc for the write's temp file), never by a sleep.

const BIG_FILE: &str = "/etc/kprov-fault/big.conf";

/// The large managed file's content: about 2.7 MB of numbered lines.
fn big_content() -> String {
    (0..40_000).map(|i| format!("{i:06} the quick brown fox jumps over the lazy dog, a kprov fault test line\n")).collect()
}

fn fault_roles(k: &Kprov) -> String {
    let dir = k.path("fault-roles");
    std::fs::create_dir_all(&dir).unwrap();
    let mut role = String::from(
        "name: fault\ndescription: A slow package and a large managed file, for the fault tests\nhosts: all\nafter: [apt]\ntags: [fault]\nresources:\n  - name: big-file\n    file:\n      path: /etc/kprov-fault/big.conf\n      content: |\n",
    );
    for line in big_content().lines() {
        role.push_str("        ");
        role.push_str(line);
        role.push('\n');
    }
    role.push_str("  - name: slow-package\n    apt_packages:\n      names: [kprov-fault-slow]\n");
    std::fs::write(dir.join("99-fault.yaml"), role).unwrap();
    p(&dir).to_string()
}

/// kprov running in the background with both outputs drained as they come (the plan of a
/// 2.7 MB file would fill a pipe nobody reads and block kprov).
struct Running {
    child: std::process::Child,
    out: std::thread::JoinHandle<Vec<u8>>,
    err: std::thread::JoinHandle<Vec<u8>>,
}

impl Running {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait (bounded) for kprov to end: its exit code, stdout, stderr, and how long it took.
    fn end(mut self, limit: Duration) -> (i32, String, String, Duration) {
        let t0 = Instant::now();
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            if t0.elapsed() > limit {
                let _ = self.child.kill();
                panic!("kprov did not end within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let out = String::from_utf8_lossy(&self.out.join().unwrap()).into_owned();
        let err = String::from_utf8_lossy(&self.err.join().unwrap()).into_owned();
        (status.code().unwrap_or(-1), out, err, t0.elapsed())
    }
}

struct FaultLab {
    set: NodeSet,
    _repo: AptRepo,
    k: Kprov,
    inv: String,
    roles: String,
}

impl FaultLab {
    fn start() -> FaultLab {
        let set = NodeSet::start(&[Flavour::Debian]);
        let repo = AptRepo::serve(set.gateway);
        let k = Kprov::new();
        let roles = fault_roles(&k);
        let inv = k.inventory(&set, "root", &[(0, "control-plane")], "  cni: flannel\n", &repo.mirrors_yaml());
        let inv = p(&inv).to_string();
        FaultLab { set, _repo: repo, k, inv, roles }
    }

    fn spawn(&self, extra: &[&str]) -> Running {
        use std::io::Read;
        let mut child = Command::new(env!("CARGO_BIN_EXE_kprov"))
            .args(self.args(extra))
            .env("HOME", self.k.home.path())
            .env("NO_COLOR", "1")
            .env_remove("SSH_AUTH_SOCK")
            .current_dir(self.k.dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut o = child.stdout.take().unwrap();
        let mut e = child.stderr.take().unwrap();
        let out = std::thread::spawn(move || {
            let mut v = vec![];
            let _ = o.read_to_end(&mut v);
            v
        });
        let err = std::thread::spawn(move || {
            let mut v = vec![];
            let _ = e.read_to_end(&mut v);
            v
        });
        Running { child, out, err }
    }

    fn args<'a>(&'a self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec!["apply", self.inv.as_str(), "--tags", "apt,fault", "--roles", self.roles.as_str()];
        a.extend_from_slice(extra);
        a
    }

    /// The package and the file gone again, so the next apply has both to do.
    fn reset(&self) {
        self.set.sh(0, "dpkg --purge kprov-fault-slow >/dev/null 2>&1 || true; rm -f /etc/kprov-fault/big.conf");
    }

    /// Poll the node (docker exec) until `cond` holds; panics after `limit`.
    fn wait_node(&self, what: &str, cond: &str, limit: Duration) {
        let t0 = Instant::now();
        while !self.set.exec(0, cond).status.success() {
            assert!(t0.elapsed() < limit, "{what}: not seen on the node within {limit:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// dpkg is running the slow package's preinst: the install is under way.
    fn wait_mid_install(&self) {
        // `[.]` keeps grep's own command line from matching.
        // Facts, a plan with a 2.7 MB diff and apt's updates come first: slow on a loaded machine.
        self.wait_node("the preinst of kprov-fault-slow", "grep -qsa 'tmp[.]ci/preinst' /proc/[0-9]*/cmdline", Duration::from_secs(600));
    }

    /// The second apply after a fault: exit 0, and how long it took.
    fn recover(&self, fault: &str) -> Duration {
        let t0 = Instant::now();
        let out = self.k.run(&self.args(&["--output", "json"]));
        let took = t0.elapsed();
        assert_eq!(code(&out), 0, "{fault}: the apply after the fault converges: {}", text(&out));
        eprintln!("recovery after {fault}: {:.1} s", took.as_secs_f64());
        let shown: String = String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.contains("\"event\":\"plan\"")).collect::<Vec<_>>().join("\n");
        self.assert_whole(&format!("{fault} (apply output: {shown})"));
        took
    }

    /// Converged, and nothing half-done anywhere.
    fn assert_whole(&self, fault: &str) {
        let s = &self.set;
        assert_eq!(s.sh(0, "dpkg-query -W -f='${db:Status-Abbrev}' kprov-fault-slow").trim(), "ii", "{fault}: the package is installed");
        assert_eq!(s.sh(0, "dpkg --audit 2>&1").trim(), "", "{fault}: dpkg --audit is empty");
        let want = kprov::digest::sha256_hex(big_content().as_bytes());
        assert_eq!(s.sh(0, &format!("sha256sum {BIG_FILE} | cut -d' ' -f1")).trim(), want, "{fault}: the managed file is whole");
        let keyring = s.sh(0, "stat -c %s /etc/apt/keyrings/docker.gpg").trim().parse::<u64>().unwrap_or(0);
        assert!(keyring > 0, "{fault}: the keyring is not empty");
        let temps = s.sh(0, "find / \\( -path /proc -o -path /sys -o -path /dev \\) -prune -o -name '.kprov.*' -print 2>/dev/null || true");
        assert_eq!(temps.trim(), "", "{fault}: no kprov temp file anywhere on the host");
    }
}

/// The six faults of issue 15, one after another on one node; after each, a second apply
/// converges with nothing half-done. Recovery times are printed (docs/reliability.md).
#[test]
fn faults_that_land_mid_install_and_mid_write() {
    let lab = FaultLab::start();
    let s = &lab.set;
    let mut times = vec![];

    // 1. The connection cut (docker network disconnect) while dpkg runs the preinst.
    lab.reset();
    let run = lab.spawn(&[]);
    lab.wait_mid_install();
    s.disconnect(0);
    let (rc, out, err, _) = run.end(Duration::from_secs(120));
    assert_eq!(rc, 1, "the cut apply fails: {out}{err}");
    s.connect(0);
    times.push(("connection cut mid-install", lab.recover("a connection cut mid-install")));

    // 2. The host paused mid-install, unpaused once the apply gave up on it.
    lab.reset();
    let run = lab.spawn(&[]);
    lab.wait_mid_install();
    // The freezer can refuse while a process is mid-syscall ("unable to freeze"): try again.
    let paused = (0..20).any(|_| {
        let ok = Command::new("docker").args(["pause", &s.node(0).container]).output().unwrap().status.success();
        if !ok {
            std::thread::sleep(Duration::from_millis(250));
        }
        ok
    });
    assert!(paused, "docker pause kept failing");
    let (rc, out, err, _) = run.end(Duration::from_secs(120));
    s.unpause(0);
    assert_eq!(rc, 1, "the apply gives up on the paused host: {out}{err}");
    times.push(("host paused mid-install", lab.recover("a pause mid-install")));

    // 3. The host stopped mid-write of the large file: when the write's temp file appears,
    //    the batch's process group is frozen (so the write cannot finish first), then stopped.
    lab.reset();
    s.sh(0, "mkdir -p /etc/kprov-fault");
    let watcher = "for i in $(seq 1 30000); do for f in /etc/kprov-fault/.kprov.*; do if [ -e \"$f\" ]; then \
for p in /var/lib/kprov/batches/*/pid; do kill -STOP -\"$(cat \"$p\")\" 2>/dev/null; done; touch /run/kprov-frozen; exit 0; fi; done; sleep 0.01; done";
    let w = Command::new("docker").args(["exec", "-d", &s.node(0).container, "sh", "-c", watcher]).status().unwrap();
    assert!(w.success());
    let run = lab.spawn(&[]);
    lab.wait_node("the frozen mid-write batch", "test -e /run/kprov-frozen", Duration::from_secs(600));
    assert_ne!(s.sh(0, "ls -a /etc/kprov-fault | grep -c '^[.]kprov[.]' || true").trim(), "0", "frozen mid-write");
    s.stop(0);
    let (rc, out, err, _) = run.end(Duration::from_secs(120));
    assert_eq!(rc, 1, "{out}{err}");
    s.start_again(0);
    let t0 = Instant::now();
    let out = lab.k.run(&lab.args(&["--output", "json"]));
    assert_eq!(code(&out), 0, "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(stdout.contains("\"event\":\"batch_recovered\"") && stdout.contains("\"status\":\"died\""), "the stopped batch is reported: {stdout}");
    eprintln!("recovery after a stop mid-write: {:.1} s", t0.elapsed().as_secs_f64());
    lab.assert_whole("a stop mid-write");
    times.push(("host stopped mid-write", t0.elapsed()));

    // 4. kprov killed (SIGKILL) mid-batch: the batch finishes on the host alone.
    lab.reset();
    let mut run = lab.spawn(&[]);
    lab.wait_mid_install();
    run.child.kill().unwrap();
    run.child.wait().unwrap();
    times.push(("kprov killed mid-batch", lab.recover("kprov killed mid-batch")));

    // 5. Two applies at once on the same inventory: one runs, the other waits for it; both
    //    end well and nothing is corrupted.
    lab.reset();
    let (r1, r2) = (lab.spawn(&[]), lab.spawn(&[]));
    let t0 = Instant::now();
    let (c1, o1, e1, _) = r1.end(Duration::from_secs(900));
    let (c2, o2, e2, _) = r2.end(Duration::from_secs(900));
    assert_eq!((c1, c2), (0, 0), "{o1}{e1}\n{o2}{e2}");
    lab.assert_whole("two applies at once");
    times.push(("two applies at once (both)", t0.elapsed()));

    // 6. apt's lock held by another program (a stand-in for unattended-upgrades: apt-get
    //    installing the slow package, mid-preinst): kprov waits for it, never breaks it.
    lab.reset();
    s.sh(0, "apt-get -q update >/dev/null 2>&1 || true");
    let holder = Command::new("docker")
        .args([
            "exec",
            "-d",
            &s.node(0).container,
            "sh",
            "-c",
            "DEBIAN_FRONTEND=noninteractive apt-get install -y kprov-fault-slow >/var/tmp/holder.log 2>&1",
        ])
        .status()
        .unwrap();
    assert!(holder.success());
    lab.wait_mid_install();
    let t0 = Instant::now();
    let out = lab.k.run(&lab.args(&["--output", "json"]));
    assert_eq!(code(&out), 0, "kprov waited for the holder: {}", text(&out));
    lab.assert_whole("an apt lock held by another program");
    times.push(("apt lock held by another program", t0.elapsed()));

    for (fault, t) in &times {
        eprintln!("RECOVERY {fault}: {:.1} s", t.as_secs_f64());
    }
}

/// dpkg killed mid-unpack (during the preinst) leaves the package half-installed and
/// dpkg's journal behind; the plan shows the repair and the apply makes dpkg whole.
#[test]
#[ignore = "fails: the apply exits 0 but the package stays half-installed (iHR); see docs/reliability.md"]
fn a_dpkg_killed_mid_unpack_is_repaired() {
    let lab = FaultLab::start();
    let s = &lab.set;
    lab.reset();
    s.sh(0, "mkdir -p /etc/kprov-fault");
    // The repositories first, then an install killed in its preinst.
    let out = lab.k.run(&["apply", lab.inv.as_str(), "--tags", "apt", "--roles", lab.roles.as_str()]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    s.sh(0, "apt-get -q update >/dev/null 2>&1");
    let inst = Command::new("docker")
        .args([
            "exec",
            "-d",
            &s.node(0).container,
            "sh",
            "-c",
            "DEBIAN_FRONTEND=noninteractive apt-get install -y kprov-fault-slow >/var/tmp/killed.log 2>&1",
        ])
        .status()
        .unwrap();
    assert!(inst.success());
    lab.wait_mid_install();
    s.sh(0, "for p in /proc/[0-9]*; do case \"$(cat $p/comm 2>/dev/null)\" in dpkg|apt-get) kill -9 ${p#/proc/};; esac; done");
    lab.wait_node("dpkg to report the damage", "dpkg --audit 2>&1 | grep -q kprov-fault-slow", Duration::from_secs(30));
    let plan = lab.k.run(&["plan", lab.inv.as_str(), "--tags", "apt,fault", "--roles", lab.roles.as_str()]);
    assert_eq!(code(&plan), 2, "{}", text(&plan));
    let shown = String::from_utf8_lossy(&plan.stdout).to_string();
    assert!(shown.contains("dpkg") && shown.contains("interrupted") && shown.contains("configured"), "the plan shows the repair: {shown}");
    lab.recover("dpkg killed mid-unpack");
}

/// Ctrl-C mid-install. Once: the running batch finishes, nothing new starts, the last JSON
/// event is the report with `interrupted: true`. Twice: kprov exits 130 at once, and the
/// detached batch still finishes on the host.
#[test]
fn ctrl_c_once_and_twice_mid_install() {
    let lab = FaultLab::start();
    let s = &lab.set;
    let sigint = |pid: u32| assert!(Command::new("kill").args(["-INT", &pid.to_string()]).status().unwrap().success());

    lab.reset();
    let run = lab.spawn(&["--output", "json"]);
    lab.wait_mid_install();
    sigint(run.pid());
    let (rc, stdout, err, _) = run.end(Duration::from_secs(300));
    assert_ne!(rc, 0, "{stdout}{err}");
    assert_ne!(rc, 130, "one press lets the batch finish: {err}");
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}")).unwrap();
    assert_eq!(last["event"], "report", "{stdout}");
    assert_eq!(last["interrupted"], true, "{stdout}");
    assert_eq!(s.sh(0, "dpkg-query -W -f='${db:Status-Abbrev}' kprov-fault-slow").trim(), "ii", "the running batch finished");
    assert_eq!(s.sh(0, "dpkg --audit 2>&1").trim(), "");

    lab.reset();
    let run = lab.spawn(&["--output", "json"]);
    lab.wait_mid_install();
    sigint(run.pid());
    std::thread::sleep(Duration::from_millis(500));
    sigint(run.pid());
    let (rc, out, err, took) = run.end(Duration::from_secs(30));
    assert_eq!(rc, 130, "{out}{err}");
    assert!(took < Duration::from_secs(5), "the second press exits at once ({took:?})");
    // The batch finishes on the host without kprov.
    lab.wait_node("the detached install to finish", "dpkg-query -W -f='${db:Status-Abbrev}' kprov-fault-slow | grep -q ii", Duration::from_secs(60));
    lab.recover("Ctrl-C twice");
}
