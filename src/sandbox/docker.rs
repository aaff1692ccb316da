//! Carrying out the sandbox's decisions with the `docker` client. Every container, the
//! network and every file is recorded in the state file (written atomically) *before* it is
//! created, so a `down` after a crash or a SIGKILL of `up` removes exactly what may exist.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Flavour, LABEL, Network, Removal, SandboxError, State};
use crate::wait::{EVERY, Waiting};

const DOWN_HINT: &str = "kprov sandbox down removes what was made so far";

fn failed(what: impl Into<String>, message: impl Into<String>, help: impl Into<String>) -> SandboxError {
    SandboxError::Failed { what: what.into(), message: message.into(), help: help.into() }
}

/// Run `docker ARGS`; its stdout, or its own words on failure.
fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run docker: {e} (is the Docker client installed? scripts/machine.sh installs it)"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// Write the state file atomically (a temporary file renamed over it).
fn save(state: &State) -> Result<(), SandboxError> {
    let path = State::path(&state.dir);
    let tmp = state.dir.join(format!(".{}.tmp", super::STATE_FILE));
    std::fs::write(&tmp, state.to_json())
        .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| failed(format!("writing {}", path.display()), e.to_string(), "check the directory's permissions and free space"))
}

pub fn load(dir: &Path) -> Result<Option<State>, SandboxError> {
    let path = State::path(dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => State::parse(&path, &text).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SandboxError::State { path, message: e.to_string() }),
    }
}

fn absolute(dir: &Path) -> PathBuf {
    if dir.is_absolute() { dir.to_path_buf() } else { std::env::current_dir().unwrap_or_default().join(dir) }
}

fn random_id() -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    crate::digest::sha256_hex(format!("{t}-{}", std::process::id()).as_bytes())[..8].to_string()
}

/// systemd in many containers needs more inotify instances than distributions allow by default.
fn raise_inotify_limits() {
    for (key, min) in [("fs/inotify/max_user_instances", 8192u64), ("fs/inotify/max_user_watches", 524288)] {
        let p = Path::new("/proc/sys").join(key);
        let cur: u64 = std::fs::read_to_string(&p).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
        if cur < min {
            match std::fs::write(&p, min.to_string()) {
                Ok(()) => eprintln!("raised {} from {cur} to {min} (systemd in containers needs it)", key.replace('/', ".")),
                Err(e) => eprintln!("warning: {} is {cur}; the nodes may not boot unless it is at least {min} ({e})", key.replace('/', ".")),
            }
        }
    }
}

/// `kprov sandbox up`: returns the state of the running sandbox.
pub fn up(dir: &Path, nodes: usize, flavour: Flavour) -> Result<State, SandboxError> {
    super::check_nodes(nodes)?;
    let dir = absolute(dir);
    let existing = load(&dir)?;
    let present: Vec<String> = std::fs::read_dir(&dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    super::check_up(existing.as_ref(), &dir, &present)?;
    docker(&["version", "--format", "{{.Server.Version}}"]).map_err(|e| {
        failed("no Docker engine answers", e, "start it (systemctl start docker), or run scripts/machine.sh, which installs and starts one")
    })?;
    let created_dir = !dir.exists();
    std::fs::create_dir_all(&dir).map_err(|e| failed(format!("creating {}", dir.display()), e.to_string(), "choose another --dir"))?;
    let mut state = State::new(&random_id(), flavour, &dir, created_dir);
    save(&state)?;
    eprintln!("sandbox {} in {}: {nodes} {} node{}", state.id, dir.display(), flavour.name(), if nodes == 1 { "" } else { "s" });

    eprintln!("node image: building or loading the {} image (the first build takes minutes)...", flavour.name());
    let image = super::recipe::build_image(flavour)?;
    state.image = Some(image.clone());
    save(&state)?;

    // The sandbox's own key.
    state.record_file("id_ed25519");
    state.record_file("id_ed25519.pub");
    save(&state)?;
    let key = dir.join("id_ed25519");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", &format!("kprov-sandbox-{}", state.id), "-f"])
        .arg(&key)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| failed("generating the sandbox's key", format!("cannot run ssh-keygen: {e}"), "install the OpenSSH client"))?;
    if !out.status.success() {
        return Err(failed("generating the sandbox's key", String::from_utf8_lossy(&out.stderr).trim().to_string(), "install the OpenSSH client"));
    }
    let public =
        std::fs::read_to_string(dir.join("id_ed25519.pub")).map_err(|e| failed("reading the sandbox's public key", e.to_string(), DOWN_HINT))?;

    // The network: a free /24 of the sandbox range.
    let name = state.network_name();
    let mut third = None;
    for (subnet, gateway, t) in super::subnet_candidates(&state.id) {
        state.network = Some(Network { name: name.clone(), subnet: subnet.clone(), gateway });
        save(&state)?;
        let label = format!("{LABEL}={}", state.id);
        match docker(&["network", "create", "--label", &label, "--subnet", &subnet, "--gateway", &gateway.to_string(), &name]) {
            Ok(_) => {
                third = Some(t);
                break;
            }
            Err(e) if e.contains("overlap") || e.contains("in use") => continue,
            Err(e) => return Err(failed(format!("creating the network {name}"), e, DOWN_HINT)),
        }
    }
    let third =
        third.ok_or_else(|| failed("creating the network", "no free /24 in 10.216.0.0/16", "remove unused Docker networks (docker network ls)"))?;

    // The containers: each recorded, then started.
    raise_inotify_limits();
    for node in super::nodes(&state.id, third, nodes) {
        state.nodes.push(node.clone());
        save(&state)?;
        run_node(&state, &node, &name, &image).map_err(|e| failed(format!("starting {}", node.host), e, DOWN_HINT))?;
    }

    // Each node booted, the key in its login user's authorized_keys, its host key recorded.
    let mut known = String::new();
    for node in &state.nodes {
        let host_key = wait_ready(node, flavour)?;
        authorize(node, flavour.login_user(), &public)?;
        known.push_str(&format!("{} {}\n", node.address, host_key));
    }
    state.record_file("known_hosts");
    state.record_file("inventory.yaml");
    save(&state)?;
    write(&dir.join("known_hosts"), &known)?;
    write(&dir.join("inventory.yaml"), &super::inventory(&state))?;
    state.complete = true;
    save(&state)?;
    Ok(state)
}

fn write(path: &Path, text: &str) -> Result<(), SandboxError> {
    std::fs::write(path, text).map_err(|e| failed(format!("writing {}", path.display()), e.to_string(), DOWN_HINT))
}

fn run_node(state: &State, node: &super::Node, network: &str, image: &str) -> Result<(), String> {
    let label = format!("{LABEL}={}", state.id);
    let ip = node.address.to_string();
    docker(&[
        "run",
        "-d",
        "--name",
        &node.container,
        "--hostname",
        &node.host,
        "--label",
        &label,
        "--network",
        network,
        "--ip",
        &ip,
        // A reboot (kprov reboots a Raspberry Pi for its kernel command line) restarts it.
        "--restart",
        "unless-stopped",
        "--cap-add",
        "ALL",
        "--cap-drop",
        "SYS_RESOURCE",
        "--security-opt",
        "seccomp=unconfined",
        "--security-opt",
        "apparmor=unconfined",
        "--security-opt",
        "systempaths=unconfined",
        "--cgroupns=host",
        "-v",
        "/sys/fs/cgroup:/sys/fs/cgroup:rw",
        "--tmpfs",
        "/run",
        "--tmpfs",
        "/run/lock",
        "--tmpfs",
        "/tmp",
        image,
        "/sbin/init",
    ])
    .map(|_| ())
}

/// Wait until the node runs systemd and sshd and answers on port 22; its ed25519 host key
/// (read inside the container, not over the network). Says what it waits for, then every 30 s.
fn wait_ready(node: &super::Node, flavour: Flavour) -> Result<String, SandboxError> {
    let limit = Duration::from_secs(flavour.boot_limit_secs());
    let started = Instant::now();
    let mut w =
        Waiting { host: node.host.clone(), what: format!("{} to boot (systemd and sshd)", node.host), waited_secs: 0, limit_secs: limit.as_secs() };
    eprintln!("{}: {}", node.host, w.line());
    let mut next = EVERY;
    loop {
        let out = docker(&[
            "exec",
            &node.container,
            "sh",
            "-c",
            "systemctl is-system-running 2>/dev/null; systemctl is-active ssh; cat /etc/ssh/ssh_host_ed25519_key.pub 2>/dev/null",
        ])
        .unwrap_or_else(|e| e);
        let lines: Vec<&str> = out.lines().collect();
        let running = matches!(lines.first().copied(), Some("running" | "degraded"));
        let ssh = lines.get(1) == Some(&"active");
        let key = lines.iter().find(|l| l.starts_with("ssh-ed25519 ")).map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "));
        if running
            && ssh
            && let Some(key) = key
            && std::net::TcpStream::connect_timeout(&(node.address, 22).into(), Duration::from_secs(1)).is_ok()
        {
            return Ok(key);
        }
        if started.elapsed() > limit {
            let failed_units = docker(&["exec", &node.container, "systemctl", "--failed", "--no-legend", "--plain"]).unwrap_or_else(|e| e);
            return Err(failed(
                format!("{} did not boot within {}", node.host, crate::wait::human(limit)),
                format!("system state {:?}, sshd active: {ssh}; failed units: {}", lines.first().copied().unwrap_or(""), failed_units.trim()),
                format!("see docker logs {}; kprov sandbox down removes the sandbox", node.container),
            ));
        }
        if started.elapsed() >= next {
            w.waited_secs = next.as_secs();
            eprintln!("{}: {}", node.host, w.line());
            next += EVERY;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Add the sandbox's public key to the login user's authorized_keys (inside the container; the
/// key arrives on standard input, the user's name is one of two constants).
fn authorize(node: &super::Node, user: &str, public: &str) -> Result<(), SandboxError> {
    let home = if user == "root" { "/root".to_string() } else { format!("/home/{user}") };
    let q = |v: &str| crate::shell::quote(v).map(|c| c.into_owned()).map_err(|e| failed("adding the sandbox's key", e.to_string(), DOWN_HINT));
    let (user, home) = (q(user)?, q(&home)?);
    let script = format!(
        "set -e; cd {home}; install -d -m 0700 -o {user} -g {user} .ssh; cat >> .ssh/authorized_keys; chown {user}:{user} .ssh/authorized_keys; chmod 0600 .ssh/authorized_keys"
    );
    let mut child = Command::new("docker")
        .args(["exec", "-i", &node.container, "sh", "-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed("adding the sandbox's key", e.to_string(), DOWN_HINT))?;
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        let _ = stdin.write_all(public.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| failed("adding the sandbox's key", e.to_string(), DOWN_HINT))?;
    if !out.status.success() {
        return Err(failed(format!("adding the sandbox's key on {}", node.host), String::from_utf8_lossy(&out.stderr).trim().to_string(), DOWN_HINT));
    }
    Ok(())
}

/// `kprov sandbox down`: remove what the state file records. Returns what was left in the
/// directory (files `up` did not write), which stays.
pub fn down(dir: &Path) -> Result<(State, Vec<String>), SandboxError> {
    let dir = absolute(dir);
    let state = load(&dir)?.ok_or_else(|| SandboxError::no_sandbox(&dir))?;
    let mut left = vec![];
    for r in super::removals(&state) {
        match r {
            Removal::Container(name) => match docker(&["rm", "-f", "-v", &name]) {
                Ok(_) => eprintln!("removed container {name}"),
                Err(e) if e.contains("No such container") => {}
                Err(e) => return Err(failed(format!("removing the container {name}"), e, "run kprov sandbox down again")),
            },
            Removal::Network(name) => {
                // Anything else that carries the sandbox's label (none, unless made by hand).
                let filter = format!("label={LABEL}={}", state.id);
                for id in docker(&["ps", "-a", "-q", "--filter", &filter]).unwrap_or_default().lines() {
                    let _ = docker(&["rm", "-f", "-v", id]);
                }
                match docker(&["network", "rm", &name]) {
                    Ok(_) => eprintln!("removed network {name}"),
                    Err(e) if e.contains("not found") || e.contains("No such network") => {}
                    Err(e) => return Err(failed(format!("removing the network {name}"), e, "run kprov sandbox down again")),
                }
            }
            Removal::File(path) => match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(failed(format!("removing {}", path.display()), e.to_string(), DOWN_HINT)),
            },
            Removal::Dir(path) => {
                let rest: Vec<String> = std::fs::read_dir(&path)
                    .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
                    .unwrap_or_default();
                if rest.is_empty() {
                    let _ = std::fs::remove_dir(&path);
                } else {
                    left = rest;
                }
            }
        }
    }
    Ok((state, left))
}

/// Each recorded node with its container's state (`running`, `exited`, `missing`...).
pub fn status(dir: &Path) -> Result<(State, Vec<String>), SandboxError> {
    let dir = absolute(dir);
    let state = load(&dir)?.ok_or_else(|| SandboxError::no_sandbox(&dir))?;
    let states =
        state.nodes.iter().map(|n| docker(&["inspect", "-f", "{{.State.Status}}", &n.container]).unwrap_or_else(|_| "missing".to_string())).collect();
    Ok((state, states))
}
