//! What every operation works with ([`Session`]: the inventory, the SSH connector, the
//! cancellation flag set by Ctrl-C, the event sink), and the glue from a validated inventory
//! to the engine's plain inputs: an [`Engine`] for a selection, and each host's
//! [`ConnectOptions`].

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::engine::Engine;
use crate::engine::context::{self, ClusterValues, HostValues, MirrorValues};
use crate::graph::{HostInfo, Selection};
use crate::inventory::model::{HostKeyPolicy as InvPolicy, Role};
use crate::inventory::{Host, Inventory};
use crate::roles::RoleSet;
use crate::secret::Secret;
use crate::transport::ssh::SshConnector;
use crate::transport::{self, Become, ConnectOptions, HostKeyPolicy, TransportError};

use super::Confirmation;
use super::events::Sink;

/// One operation's world: the inventory, one connection per host (opened on first use, closed
/// by `drive`), the flag Ctrl-C sets, and where events go.
pub struct Session {
    pub inventory: Inventory,
    pub connector: Arc<SshConnector>,
    /// Set by the first Ctrl-C: what runs finishes, nothing further starts.
    pub cancel: Arc<AtomicBool>,
    pub events: Sink,
}

impl Session {
    pub fn new(inventory: Inventory, events: Sink) -> Session {
        let connector = Arc::new(ssh_connector(&inventory));
        Session { inventory, connector, cancel: Arc::new(AtomicBool::new(false)), events }
    }

    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    /// The index of the first control plane in the inventory.
    pub fn first_control_plane(&self) -> usize {
        let first = &self.inventory.first_control_plane().name;
        self.inventory.hosts.iter().position(|h| &h.name == first).unwrap_or(0)
    }

    /// The one Ctrl-C path: the first press sets [`Session::cancel`] (the step that runs
    /// finishes, nothing further starts); the second exits 130 at once. Call inside the runtime.
    pub fn watch_ctrl_c(&self) {
        let cancel = self.cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\nInterrupted: the steps running now finish, nothing further starts (Ctrl-C again to abort).");
                cancel.store(true, Ordering::SeqCst);
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
    }
}

/// The one confirmation path: asks for `c.expected` to be typed on the terminal, and refuses
/// when standard input is not one.
pub fn confirm(c: &Confirmation) -> miette::Result<()> {
    if !std::io::stdin().is_terminal() {
        return Err(miette::miette!(
            code = "kprov::confirm::no_terminal",
            help = "pass --yes to confirm without a terminal (in scripts and CI)",
            "refusing to {} without --yes: standard input is not a terminal, so nobody can confirm; nothing was done",
            c.action
        ));
    }
    eprintln!("{}", c.what);
    eprint!("Type {} ({}) to confirm: ", c.expected_is, c.expected);
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| miette::miette!("cannot read the confirmation: {e}"))?;
    if line.trim() != c.expected {
        return Err(miette::miette!(
            code = "kprov::confirm::mismatch",
            "aborted: you typed {:?}, not {:?}; nothing was done",
            line.trim(),
            c.expected
        ));
    }
    Ok(())
}

/// The SSH connector for every host of `inv` (by inventory index).
pub fn ssh_connector(inv: &Inventory) -> SshConnector {
    SshConnector::new(inv.hosts.iter().map(connect_options).collect())
}

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
pub fn connect_options(host: &Host) -> Result<ConnectOptions, TransportError> {
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
            let pw = Secret::new(std::env::var(var).map_err(|_| TransportError::BecomePasswordUnset { host: host.name.clone(), var: var.clone() })?);
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
