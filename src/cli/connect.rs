//! From a validated inventory to a ready [`Engine`] and an SSH [`Connector`]: the glue between
//! the inventory's shape and the engine's plain inputs.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::apply::{BoxFuture, Remote};
use crate::engine::context::{self, ClusterValues, HostValues, MirrorValues};
use crate::engine::{Connector, Engine};
use crate::graph::{HostInfo, Selection};
use crate::inventory::model::{HostKeyPolicy as InvPolicy, Role};
use crate::inventory::{Host, Inventory};
use crate::roles::RoleSet;
use crate::secret::Secret;
use crate::transport::{self, Become, ConnectOptions, ExecOptions, HostKeyPolicy, Session, TransportError};

/// Build the engine for `inv`.
pub fn engine(inv: &Inventory, roles: &RoleSet, selection: &Selection) -> miette::Result<Engine> {
    let cluster = ClusterValues {
        name: inv.cluster.name.clone(),
        kubernetes_version: inv.cluster.kubernetes_version.clone(),
        kubernetes_patch_version: inv.cluster.kubernetes_patch_version.clone(),
        pod_cidr: inv.cluster.pod_cidr.to_string(),
        service_cidr: inv.cluster.service_cidr.to_string(),
        cni: inv.cluster.cni.clone(),
        control_plane_endpoint: inv.endpoint(),
        advertise_address: inv.advertise_address(),
        preflight: crate::preflight::Policy {
            min_cpus: inv.cluster.preflight.min_cpus,
            min_memory_mib: inv.cluster.preflight.min_memory_mib,
            ignore: inv.cluster.preflight.ignore.clone(),
        },
        kube: inv.cluster.kube.clone(),
    };
    let hosts: Vec<HostValues> = inv
        .hosts
        .iter()
        .map(|h| HostValues {
            name: h.name.clone(),
            address: h.address.clone(),
            internal_address: h.internal_address.clone().unwrap_or_default(),
            roles: h
                .roles
                .iter()
                .map(|r| match r {
                    Role::ControlPlane => "control-plane".to_string(),
                    Role::Worker => "worker".to_string(),
                })
                .collect(),
            labels: h.labels.clone(),
            taints: h.taints.iter().map(|t| context::TaintValues { key: t.key.clone(), value: t.value.clone(), effect: t.effect.clone() }).collect(),
            advertise_address: h.advertise_address.clone(),
            watchdog: h.raspberry_pi.watchdog,
            ssh_user: h.ssh.user.clone(),
            kubelet: h.kubelet.clone(),
        })
        .collect();
    // A local manifest file is read here and shipped inside the script (kprov hashes it, and
    // checks the inventory's digest if it gives one); a URL is fetched by the control plane.
    let (cni_manifest, local) = match &inv.cluster.cni_manifest {
        Some(m) if !m.contains("://") => {
            let path = crate::inventory::expand_home(m);
            let bytes = std::fs::read(&path).map_err(|e| miette::miette!("cannot read cluster.cni_manifest {}: {e}", path.display()))?;
            let got = crate::digest::sha256_hex(&bytes);
            if let Some(want) = inv.cluster.cni_manifest_sha256.as_deref().and_then(crate::digest::normalize_sha256)
                && want != got
            {
                return Err(miette::miette!(
                    help = "the file is not the one you reviewed: compare it, then update cluster.cni_manifest_sha256",
                    "cluster.cni_manifest {}: expected sha256 {want}, the file has {got}",
                    path.display()
                ));
            }
            (Some(m.clone()), Some(bytes))
        }
        other => (other.clone(), None),
    };
    let value = |s: &Option<serde_saphyr::Spanned<String>>| s.as_ref().map(|s| s.value.clone());
    let mirrors = MirrorValues {
        kubernetes_apt: value(&inv.mirrors.kubernetes_apt).unwrap_or_else(|| context::DEFAULT_KUBERNETES_APT.into()),
        kubernetes_apt_key: value(&inv.mirrors.kubernetes_apt_key),
        docker_apt: value(&inv.mirrors.docker_apt).unwrap_or_else(|| context::DEFAULT_DOCKER_APT.into()),
        cni_manifest,
        kubernetes_apt_key_fingerprint: value(&inv.mirrors.kubernetes_apt_key_fingerprint),
        docker_apt_key_fingerprint: value(&inv.mirrors.docker_apt_key_fingerprint),
        insecure_skip_key_fingerprint: inv.mirrors.insecure_skip_key_fingerprint.as_ref().is_some_and(|s| s.value),
        cni_manifest_sha256: inv.cluster.cni_manifest_sha256.clone(),
        helm: inv.mirrors.helm.clone(),
    };
    let contexts = context::build(&cluster, &hosts, &mirrors, local.as_deref());
    let infos = inv.hosts.iter().map(|h| HostInfo { name: h.name.clone(), control_plane: h.is_control_plane(), worker: h.is_worker() }).collect();
    let addresses = inv.hosts.iter().map(|h| h.address.clone()).collect();
    Engine::new(infos, addresses, contexts, roles, selection).map_err(miette::Report::new)
}

/// SSH connection settings for `host`, with ~/.ssh/config filling what the inventory leaves
/// unset.
pub fn connect_options(host: &Host) -> Result<ConnectOptions, String> {
    let s = &host.ssh;
    let mut address = host.address.clone();
    let mut user = s.user.clone();
    let mut port = s.port;
    let mut identity_files = s.identity_files.clone();
    let mut jump = s.bastion.as_ref().map(|b| {
        let mut j = ConnectOptions::new(format!("{} (bastion)", b.address), b.address.clone(), b.user.clone().unwrap_or_else(|| user.clone()));
        j.port = b.port.unwrap_or(22);
        j.identity_files = b.private_key.as_deref().map(|k| vec![crate::inventory::expand_home(k)]).unwrap_or_else(|| identity_files.clone());
        Box::new(j)
    });
    if s.use_ssh_config {
        let cfg_path = crate::inventory::expand_home("~/.ssh/config");
        let c = transport::ssh_config::for_host(&cfg_path, &host.address);
        if let Some(h) = c.host_name {
            address = h;
        }
        if !s.user_explicit
            && let Some(u) = c.user
        {
            user = u;
        }
        if !s.port_explicit
            && let Some(p) = c.port
        {
            port = p;
        }
        identity_files.extend(c.identity_files.into_iter().filter(|p| p.exists()));
        if jump.is_none()
            && let Some(pj) = c.proxy_jump
        {
            // user@host:port, the first hop of a chain.
            let first = pj.split(',').next().unwrap_or_default();
            let (ju, rest) = first.rsplit_once('@').map(|(u, r)| (Some(u.to_string()), r)).unwrap_or((None, first));
            let (jh, jp) = rest.rsplit_once(':').map(|(h, p)| (h, p.parse().unwrap_or(22))).unwrap_or((rest, 22));
            let jc = transport::ssh_config::for_host(&cfg_path, jh);
            let mut j = ConnectOptions::new(
                format!("{jh} (jump host)"),
                jc.host_name.unwrap_or_else(|| jh.to_string()),
                ju.or(jc.user).unwrap_or_else(|| user.clone()),
            );
            j.port = jc.port.unwrap_or(jp);
            j.identity_files = if jc.identity_files.is_empty() { identity_files.clone() } else { jc.identity_files };
            jump = Some(Box::new(j));
        }
    }
    if identity_files.is_empty() {
        // OpenSSH's defaults, when present.
        for name in ["id_ed25519", "id_ecdsa", "id_rsa"] {
            let p = crate::inventory::expand_home(&format!("~/.ssh/{name}"));
            if p.exists() {
                identity_files.push(p);
            }
        }
    }
    let password = match &s.become_password_env {
        Some(var) => {
            let pw =
                Secret::new(std::env::var(var).map_err(|_| format!("ssh.become_password_env names {var}, which is not set in the environment"))?);
            // Taken out of every output from here on, whatever prints it.
            crate::secret::remember(&pw);
            Some(pw)
        }
        None => None,
    };
    let mut o = ConnectOptions::new(host.name.clone(), address, user);
    o.port = port;
    o.identity_files = identity_files;
    o.use_agent = s.agent;
    o.known_hosts = vec![s.known_hosts.clone()];
    o.host_key_policy = match s.host_key_policy {
        InvPolicy::Strict => HostKeyPolicy::Strict,
        InvPolicy::AcceptNew => HostKeyPolicy::AcceptNew,
    };
    o.connect_timeout = s.connect_timeout;
    if let Some(j) = jump.as_mut() {
        j.known_hosts = o.known_hosts.clone();
        j.host_key_policy = o.host_key_policy;
        j.connect_timeout = o.connect_timeout;
    }
    o.jump = jump;
    o.become_ = s.become_.then(|| Become { user: "root".into(), password });
    Ok(o)
}

/// Connects over SSH with a few retries for connection set-up only (never for commands):
/// a host that is still booting or dropped one packet gets another chance.
pub struct SshConnector {
    pub options: Vec<Result<ConnectOptions, String>>,
    pub retries: u32,
    /// Every session opened, so the run can close them at the end.
    pub opened: Mutex<Vec<Session>>,
}

impl SshConnector {
    pub fn new(inv: &Inventory) -> SshConnector {
        SshConnector { options: inv.hosts.iter().map(connect_options).collect(), retries: 2, opened: Mutex::new(vec![]) }
    }

    pub async fn close_all(&self) {
        let sessions: Vec<Session> = std::mem::take(&mut *self.opened.lock().unwrap_or_else(|p| p.into_inner()));
        for s in sessions {
            s.close().await;
        }
    }
}

pub async fn connect_with_retries(o: &ConnectOptions, retries: u32) -> Result<Session, TransportError> {
    let mut attempt = 0;
    loop {
        match Session::connect(o).await {
            Ok(s) => return Ok(s),
            Err(e) if e.is_transient() && attempt < retries => {
                attempt += 1;
                let backoff = Duration::from_millis(500 * 2u64.pow(attempt));
                tracing::info!("{e}; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
            }
            Err(e) => return Err(e),
        }
    }
}

impl Connector for SshConnector {
    fn connect(&self, host: usize) -> BoxFuture<'_, Result<Arc<dyn Remote>, String>> {
        Box::pin(async move {
            let o = self.options[host].clone()?;
            let session = connect_with_retries(&o, self.retries).await.map_err(|e| e.to_string())?;
            self.opened.lock().unwrap_or_else(|p| p.into_inner()).push(session.clone());
            Ok(Arc::new(SshRemote { session: tokio::sync::Mutex::new(session), options: o }) as Arc<dyn Remote>)
        })
    }
}

/// [`Remote`] over an SSH session: scripts run as `sh -s` through become.
pub struct SshRemote {
    session: tokio::sync::Mutex<Session>,
    options: ConnectOptions,
}

impl Remote for SshRemote {
    fn run_script(&self, script: String) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(async move {
            let out = self.run_script_output(script).await?;
            let mut text = out.stdout;
            if out.status.as_deref() != Some("exit status 0") {
                // The batch script itself exits 0; anything else is the shell or sudo failing.
                text.push_str(&format!("\n{}", crate::secret::redact(&out.stderr, [])));
            }
            Ok(text)
        })
    }

    fn run_script_output(&self, script: String) -> BoxFuture<'_, Result<crate::apply::ScriptOutput, String>> {
        Box::pin(async move {
            let session = self.session.lock().await.clone();
            let out = session
                .exec("sh -s", ExecOptions { become_: true, stdin: Some(script.into_bytes()), timeout: None })
                .await
                .map_err(|e| e.to_string())?;
            Ok(crate::apply::ScriptOutput { status: Some(transport::exit_text(&out)), stdout: out.stdout_text(), stderr: out.stderr_text() })
        })
    }

    fn reboot(&self, timeout: Duration) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let started = Instant::now();
            let host = self.options.host.clone();
            let session = self.session.lock().await.clone();
            // The kernel's boot id, and when PID 1 started: either changes when the host restarted
            // (the second also for a system container, whose kernel keeps running).
            let boot_id = |s: Session| async move {
                s.exec(
                    "echo \"$(cat /proc/sys/kernel/random/boot_id) $(cut -d' ' -f22 /proc/1/stat)\"",
                    ExecOptions { timeout: Some(Duration::from_secs(20)), ..Default::default() },
                )
                .await
                .map(|o| o.stdout_text().trim().to_string())
            };
            let before = boot_id(session.clone()).await.map_err(|e| e.to_string())?;
            // Detached, so the command returns before the connection drops.
            let _ = session
                .exec(
                    "nohup sh -c 'sleep 1; systemctl reboot' >/dev/null 2>&1 &",
                    ExecOptions { become_: true, timeout: Some(Duration::from_secs(20)), ..Default::default() },
                )
                .await;
            session.close().await;
            tokio::time::sleep(Duration::from_secs(3)).await;
            let mut last = "none (the host answered, with the boot from before the reboot)".to_string();
            while started.elapsed() < timeout {
                match Session::connect(&self.options).await {
                    Ok(s) => {
                        if let Ok(now) = boot_id(s.clone()).await
                            && !now.is_empty()
                            && now != before
                        {
                            *self.session.lock().await = s;
                            return Ok(());
                        }
                        s.close().await;
                    }
                    Err(e) => last = e.to_string(),
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(format!("{host} did not come back within {} after the reboot; last connection error: {last}", crate::wait::human(timeout)))
        })
    }
}

/// Hosts by name, for `--limit` validation.
pub fn check_limit(inv: &Inventory, limit: &[String]) -> miette::Result<()> {
    let names: BTreeMap<&str, ()> = inv.hosts.iter().map(|h| (h.name.as_str(), ())).collect();
    for l in limit {
        if !names.contains_key(l.as_str()) {
            let hint = crate::inventory::did_you_mean(l, names.keys().copied()).map(|s| format!(" (did you mean {s}?)")).unwrap_or_default();
            return Err(miette::miette!("--limit names {l}, which is not a host of the inventory{hint}"));
        }
    }
    Ok(())
}

pub fn roles(dir: Option<&Path>) -> miette::Result<RoleSet> {
    RoleSet::load(dir).map_err(miette::Report::new)
}
