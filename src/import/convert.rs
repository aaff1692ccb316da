//! The mapping of the [`Ansible`] model to a kprov inventory: roles, addresses, SSH settings,
//! the bastion, cluster settings, and the notes on everything that has no equivalent.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

use super::model::{Ansible, Group, Kind, Node, Origin, Var};
use super::output::{kprov_verdict, yaml_str};
use super::{CLUSTER_VARS, Format, Imported, KNOWN_GROUPS, SSH_VARS};
use crate::inventory::{Diagnostic, Place, did_you_mean};

/// Everything the output lists as not imported.
#[derive(Debug, Default)]
pub(super) struct Notes {
    pub(super) lines: Vec<String>,
    /// variable → (where it is set, why it has no equivalent)
    pub(super) vars: BTreeMap<String, (Vec<String>, Option<String>)>,
}

impl Notes {
    pub(super) fn var(&mut self, name: &str, origin: String, reason: Option<String>) {
        let (origins, why) = self.vars.entry(name.to_string()).or_default();
        if !origins.contains(&origin) {
            origins.push(origin);
        }
        if why.is_none() {
            *why = reason;
        }
    }

    pub(super) fn count(&self) -> usize {
        self.lines.len() + self.vars.len()
    }

    pub(super) fn render(&self) -> Vec<String> {
        let vars = self.vars.iter().map(|(name, (origins, why))| {
            let mut s = format!("{name} ({})", origins.join(", "));
            if let Some(w) = why {
                s.push_str(": ");
                s.push_str(w);
            }
            s
        });
        self.lines.iter().cloned().chain(vars).collect()
    }
}

/// Why a variable has no kprov equivalent, when there is more to say than its name.
pub(super) fn reason(var: &str) -> Option<&'static str> {
    Some(match var {
        "access_ip" => {
            "Kubespray's address for other hosts to reach this node by, when it differs from the one the node binds to (ip), as behind NAT; kprov's internal_address is both, so only an access_ip equal to it is imported"
        }
        "etcd_member_name" => "etcd runs stacked on the control planes, its members named after the nodes",
        "ansible_password" | "ansible_ssh_pass" | "ansible_ssh_password" => "passwords are never copied; kprov logs in with keys or an ssh-agent",
        "ansible_become_password" | "ansible_become_pass" | "ansible_sudo_pass" => {
            "passwords are never copied; put the sudo password in an environment variable and name it in ssh.become_password_env"
        }
        "ansible_ssh_common_args" | "ansible_ssh_extra_args" => "use ssh.bastion or ~/.ssh/config (which kprov reads)",
        "ansible_python_interpreter" => "kprov needs no Python on the hosts",
        "ansible_become_user" | "ansible_become_method" => "kprov becomes root with sudo",
        "ansible_connection" => "kprov always connects over SSH",
        "kube_apiserver_port" => "the API server listens on 6443",
        _ => return None,
    })
}

/// One host of the output.
#[derive(Debug)]
pub(super) struct OutHost {
    pub(super) name: String,
    pub(super) address: String,
    /// Kubespray's `ip` when it differs from the SSH address.
    pub(super) internal_address: Option<String>,
    pub(super) control_plane: bool,
    pub(super) worker: bool,
    /// user, port, private_key, become: as YAML scalars.
    pub(super) ssh: [Option<String>; 4],
}

pub(super) const SSH_KEYS: [&str; 4] = ["user", "port", "private_key", "become"];

pub(super) struct Conv<'a> {
    pub(super) a: &'a Ansible,
    pub(super) format: Format,
    pub(super) file: &'a str,
    pub(super) depths: HashMap<String, usize>,
    pub(super) member_sets: HashMap<String, HashSet<String>>,
    pub(super) notes: Notes,
    pub(super) errs: Vec<Diagnostic>,
    pub(super) warnings: Vec<Diagnostic>,
}

impl<'a> Conv<'a> {
    pub(super) fn new(a: &'a Ansible, format: Format, file: &'a str) -> Self {
        let member_sets = a.groups.iter().map(|g| (g.name.clone(), a.members(&g.name).into_iter().collect())).collect();
        Conv { a, format, file, depths: a.depths(), member_sets, notes: Notes::default(), errs: vec![], warnings: vec![] }
    }

    pub(super) fn is_member(&self, group: &str, host: &str) -> bool {
        group == "all" || self.member_sets.get(group).is_some_and(|s| s.contains(host))
    }

    /// A host's variables after Ansible's precedence: all, then groups by depth and name, then
    /// the host's own.
    pub(super) fn effective(&self, host: &str) -> BTreeMap<String, Var> {
        let mut groups: Vec<&Group> = self.a.groups.iter().filter(|g| self.is_member(&g.name, host)).collect();
        groups.sort_by_key(|g| (self.depths.get(&g.name).copied().unwrap_or(1), g.name.clone()));
        let mut vars = BTreeMap::new();
        for v in groups.iter().flat_map(|g| g.vars.iter()).chain(self.a.host(host).into_iter().flat_map(|h| h.vars.iter())) {
            vars.insert(v.name.clone(), v.clone());
        }
        vars
    }

    pub(super) fn all_name(&self) -> &'static str {
        match self.format {
            Format::Ini => "[all]",
            Format::Yaml => "all: hosts:",
        }
    }

    pub(super) fn run(&mut self) -> Option<Imported> {
        let cps = self.control_planes()?;
        let workers = if self.a.find_group("kube_node").is_some() { self.a.members("kube_node") } else { vec![] };
        let mut order: Vec<String> = cps.clone();
        order.extend(workers.iter().filter(|w| !cps.contains(w)).cloned());
        self.undefined_hosts(&order);
        if !self.errs.is_empty() {
            return None;
        }
        let effective: Vec<BTreeMap<String, Var>> = order.iter().map(|h| self.effective(h)).collect();
        let mut hosts = vec![];
        let mut names: HashMap<String, &str> = HashMap::new();
        let mut addresses: HashMap<String, Option<Place>> = HashMap::new();
        let mut cluster_ips: HashMap<String, (Option<Place>, bool)> = HashMap::new();
        for (h, vars) in order.iter().zip(&effective) {
            let Some(out) = self.host(h, vars, cps.contains(h), workers.contains(h)) else { continue };
            let at = self.a.host(h).and_then(|e| e.at);
            if let Some(first) = names.insert(out.name.clone(), h) {
                self.errs.push(
                    Diagnostic::error("kprov::import::host_name", format!("hosts `{first}` and `{h}` would both be the node `{}`", out.name))
                        .label(at, "second host")
                        .help("kprov node names are lowercase letters, digits and '-'; rename one of the hosts"),
                );
            }
            let addr_at = ["ansible_host", "ansible_ssh_host", "ip"]
                .iter()
                .find_map(|k| vars.get(*k).filter(|v| v.value.text().is_some()))
                .and_then(|v| v.value.at)
                .or(at);
            if let Some(first) = addresses.insert(out.address.to_ascii_lowercase(), addr_at) {
                self.errs.push(
                    Diagnostic::error("kprov::import::duplicate_address", format!("address `{}` is used by two hosts", out.address))
                        .label(addr_at, "second use")
                        .label(first, "first use")
                        .help("each host needs its own address (ansible_host); two entries for one machine would configure it twice"),
                );
            }
            let cluster_ip = out.internal_address.clone().or_else(|| out.address.parse::<IpAddr>().is_ok().then(|| out.address.clone()));
            let explicit = out.internal_address.is_some();
            let ip_at = vars.get("ip").and_then(|v| v.value.at).filter(|_| explicit).or(addr_at);
            if let Some(ip) = cluster_ip
                && let Some((first, first_explicit)) = cluster_ips.insert(ip.clone(), (ip_at, explicit))
                && (explicit || first_explicit)
            {
                self.errs.push(
                    Diagnostic::error("kprov::import::duplicate_ip", format!("cluster address `{ip}` is used by two hosts"))
                        .label(ip_at, "second use")
                        .label(first, "first use")
                        .help("each node needs its own IP inside the cluster (ip, else ansible_host)"),
                );
            }
            hosts.push(out);
        }
        if !self.errs.is_empty() {
            return None;
        }
        self.var_notes(&order, &effective, &hosts);
        let bastion = self.bastion();
        let cluster = self.cluster(&order, &effective, &hosts);
        self.structural_notes(&order, &cps);
        if !self.errs.is_empty() {
            return None;
        }
        self.conflicts();
        let ssh = ssh_defaults(&mut hosts);
        let yaml = self.emit(&cluster, &ssh, bastion.as_deref(), &hosts);
        Some(Imported {
            yaml,
            hosts: hosts.len(),
            control_planes: hosts.iter().filter(|h| h.control_plane).count(),
            workers: hosts.iter().filter(|h| h.worker).count(),
            both: hosts.iter().filter(|h| h.worker && h.control_plane).count(),
            not_imported: self.notes.count(),
            warnings: std::mem::take(&mut self.warnings),
        })
    }

    /// A warning for each host variable kprov imports that a host was given twice, with
    /// different values: both places, and the one Ansible uses. Ansible reads the inventory in
    /// order and sets a host's variable each time it meets it, so the later one wins, whatever
    /// the groups (and a host's own variables beat every group's).
    fn conflicts(&mut self) {
        for (host, earlier, later) in &self.a.conflicts {
            let (a, b) = (earlier.value.canonical(), later.value.canonical());
            let section = |g: &str| match self.format {
                Format::Ini => format!("[{g}]"),
                Format::Yaml => format!("{g}: hosts:"),
            };
            self.warnings.push(
                Diagnostic::warning(
                    "kprov::import::conflicting_value",
                    format!(
                        "host `{host}` has two values of {}: `{a}` in {} and `{b}` in {}; Ansible uses the later one, `{b}`, and so does this import",
                        later.name,
                        section(&earlier.written_in),
                        section(&later.written_in)
                    ),
                )
                .label(earlier.value.at, format!("{} of {host} in {} (overridden)", earlier.name, earlier.written_in))
                .label(later.value.at, format!("{} of {host} in {} (used)", later.name, later.written_in))
                .help(format!(
                    "give {host} one {}: Ansible keeps the last value it reads for a host, so the two groups disagree silently",
                    later.name
                )),
            );
        }
    }

    /// The hosts of kube_control_plane; an error when there are none.
    pub(super) fn control_planes(&mut self) -> Option<Vec<String>> {
        let first_line = || Some(Place { offset: 0, len: 1 });
        let Some(group) = self.a.find_group("kube_control_plane") else {
            let names: Vec<&str> = self.a.groups.iter().map(|g| g.name.as_str()).collect();
            let how = match self.format {
                Format::Ini => "add a [kube_control_plane] section listing them",
                Format::Yaml => "add all: children: kube_control_plane: hosts: listing them",
            };
            let near = did_you_mean("kube_control_plane", names.iter().copied());
            let mut d = Diagnostic::error("kprov::import::no_control_plane", "no kube_control_plane group");
            d = match near {
                Some(m) => d
                    .label(self.a.find_group(m).and_then(|g| g.at).or(self.a.groups_at).or_else(first_line), "not kube_control_plane")
                    .help(format!("did you mean `{m}`? Kubespray runs the API server on the hosts of kube_control_plane (or kube-master, its old name): rename the group, or {how}")),
                None => d
                    .label(self.a.groups_at.or_else(first_line), "the groups start here")
                    .help(format!("Kubespray runs the API server on the hosts of kube_control_plane (or kube-master, its old name); {how}")),
            };
            self.errs.push(d);
            return None;
        };
        let cps = self.a.members("kube_control_plane");
        if cps.is_empty() {
            self.errs.push(
                Diagnostic::error("kprov::import::no_control_plane", "kube_control_plane lists no hosts")
                    .label(group.at.or_else(first_line), "empty group")
                    .help("list the hosts that run the API server under kube_control_plane; the first one runs kubeadm init"),
            );
            return None;
        }
        Some(cps)
    }

    /// Hosts named in kube_control_plane or kube_node but defined nowhere, when the inventory
    /// defines its hosts in all.
    pub(super) fn undefined_hosts(&mut self, order: &[String]) {
        if !self.a.hosts.iter().any(|h| h.in_all) {
            return;
        }
        let defined: Vec<&str> = self.a.hosts.iter().filter(|h| h.in_all || h.has_vars).map(|h| h.name.as_str()).collect();
        for h in order {
            let Some(e) = self.a.host(h) else { continue };
            if e.in_all || e.has_vars {
                continue;
            }
            let example = match self.format {
                Format::Ini => format!("add it to [all] with its address: {h} ansible_host=10.0.0.10"),
                Format::Yaml => format!("add it under all: hosts: with its address: {h}: {{ ansible_host: 10.0.0.10 }}"),
            };
            self.errs.push(
                Diagnostic::error(
                    "kprov::import::undefined_host",
                    format!("host `{h}` is in {} but not defined in {}", e.first_group, self.all_name()),
                )
                .label(e.at, "not defined")
                .help(match did_you_mean(h, defined.iter().copied()) {
                    Some(m) => format!("did you mean `{m}`? Otherwise {example}"),
                    None => example,
                }),
            );
        }
    }

    /// A scalar variable, or an error when it is a mapping or a list.
    pub(super) fn scalar<'v>(&mut self, vars: &'v BTreeMap<String, Var>, keys: &[&str]) -> Option<(&'v str, &'v Var)> {
        for k in keys {
            let Some(v) = vars.get(*k) else { continue };
            match &v.value.kind {
                Kind::Scalar(s) if !s.is_empty() => return Some((s, v)),
                Kind::Null | Kind::Scalar(_) => {}
                Kind::Map(_) | Kind::Seq(_) => self.errs.push(
                    Diagnostic::error("kprov::import::value", format!("`{k}` must be a single value"))
                        .label(v.value.at, "a mapping or a list")
                        .help(format!("write {k}: VALUE")),
                ),
            }
        }
        None
    }

    pub(super) fn host(&mut self, h: &str, vars: &BTreeMap<String, Var>, control_plane: bool, worker: bool) -> Option<OutHost> {
        let entry_at = self.a.host(h).and_then(|e| e.at);
        let name = node_name(h);
        if name.is_empty() {
            self.errs.push(
                Diagnostic::error("kprov::import::host_name", format!("`{h}` cannot be made a node name"))
                    .label(entry_at, "no letters or digits")
                    .help("Kubernetes node names are lowercase letters, digits and '-'; rename the host"),
            );
            return None;
        }
        if name != h {
            self.notes.lines.push(format!("host name {h}: the node is named {name} (node names are lowercase letters, digits and '-')"));
        }
        let (address, addr_at) = match self.scalar(vars, &["ansible_host", "ansible_ssh_host", "ip"]) {
            Some((s, v)) => (s.to_string(), v.value.at),
            None => (h.to_string(), entry_at),
        };
        if let Some((message, help)) = kprov_verdict(None, &address) {
            self.errs.push(Diagnostic::error("kprov::import::address", message).label(addr_at, format!("the address of {h}")).help(help));
        }
        // Kubespray's ip is the node's address inside the cluster (kubelet's node IP, the API
        // server's advertise address, etcd's): kprov's internal_address.
        let mut internal_address = None;
        let mut ip_ok = true;
        if let Some((ip, v)) = self.scalar(vars, &["ip"]) {
            let ip = ip.trim();
            match ip.parse::<IpAddr>() {
                Ok(_) if ip != address => internal_address = Some(ip.to_string()),
                Ok(_) => {}
                Err(_) => {
                    ip_ok = false;
                    self.errs.push(
                        Diagnostic::error("kprov::import::ip", format!("ip `{ip}` is not an IP address"))
                            .label(v.value.at, format!("the ip of {h}"))
                            .help("Kubespray's ip is the node's IP inside the cluster (imported as internal_address), e.g. ip=10.3.0.1"),
                    );
                }
            }
        }
        if control_plane && ip_ok && internal_address.is_none() && address.parse::<IpAddr>().is_err() {
            let example = match self.format {
                Format::Ini => format!("{h} ansible_host={address} ip=10.3.0.1"),
                Format::Yaml => format!("{h}: {{ ansible_host: {address}, ip: 10.3.0.1 }}"),
            };
            self.errs.push(
                Diagnostic::error("kprov::import::no_ip", format!("control plane `{h}` is reached by the name `{address}` and has no ip"))
                    .label(addr_at, "a name, not an IP")
                    .help(format!(
                        "kprov needs a control plane's IP inside the cluster (the API server and etcd advertise it; Kubespray would have used the host's default-route address): add it as ip, e.g. {example}"
                    )),
            );
        }
        let user = self.scalar(vars, &["ansible_user", "ansible_ssh_user"]).map(|(s, _)| yaml_str(s));
        let port = match self.scalar(vars, &["ansible_port", "ansible_ssh_port"]) {
            Some((s, v)) => match s.trim().parse::<u16>() {
                Ok(p) if p > 0 => Some(p.to_string()),
                _ => {
                    self.errs.push(
                        Diagnostic::error("kprov::import::port", format!("`{s}` is not a port"))
                            .label(v.value.at, format!("the SSH port of {h}"))
                            .help("an SSH port is a number from 1 to 65535"),
                    );
                    None
                }
            },
            None => None,
        };
        let key = self.scalar(vars, &["ansible_ssh_private_key_file", "ansible_private_key_file"]).map(|(s, _)| yaml_str(s));
        let become_ = match self.scalar(vars, &["ansible_become"]) {
            Some((s, v)) => match parse_bool(s) {
                Some(b) => Some(b.to_string()),
                None => {
                    self.errs.push(
                        Diagnostic::error("kprov::import::become", format!("`{s}` is not true or false"))
                            .label(v.value.at, format!("ansible_become of {h}"))
                            .help("write ansible_become=true or ansible_become=false"),
                    );
                    None
                }
            },
            None => None,
        };
        Some(OutHost { name, address, internal_address, control_plane, worker, ssh: [user, port, key, become_] })
    }

    /// The variables of the imported hosts (and of groups none of them is in) that kprov has no
    /// equivalent for.
    pub(super) fn var_notes(&mut self, order: &[String], effective: &[BTreeMap<String, Var>], hosts: &[OutHost]) {
        for ((h, vars), out) in order.iter().zip(effective).zip(hosts) {
            for (name, var) in vars {
                let consumed = SSH_VARS.contains(&name.as_str())
                    || CLUSTER_VARS.contains(&name.as_str())
                    || (name == "ansible_connection" && var.value.text().is_some_and(|c| matches!(c, "ssh" | "smart" | "paramiko")))
                    || name == "ip"
                    || (name == "access_ip" && var.value.text().map(str::trim) == Some(out.internal_address.as_deref().unwrap_or(&out.address)));
                if !consumed {
                    let origin = match &var.from {
                        Origin::Host(_) => h.clone(),
                        g => g.label(),
                    };
                    self.notes.var(name, origin, reason(name).map(str::to_string));
                }
            }
        }
        for g in &self.a.groups {
            if g.vars.is_empty() || order.iter().any(|h| self.is_member(&g.name, h)) {
                continue;
            }
            for v in &g.vars {
                if g.name == "bastion" && SSH_VARS.contains(&v.name.as_str()) {
                    continue;
                }
                self.notes.var(&v.name, v.from.label(), reason(&v.name).map(str::to_string));
            }
        }
    }

    /// The first host of the bastion group → ssh.bastion (a YAML flow mapping).
    pub(super) fn bastion(&mut self) -> Option<String> {
        let members = self.a.find_group("bastion").map(|_| self.a.members("bastion")).unwrap_or_default();
        let (first, rest) = members.split_first()?;
        if !rest.is_empty() {
            self.notes.lines.push(format!("bastion hosts after the first ({}): kprov goes through one jump host", rest.join(", ")));
        }
        let vars = self.effective(first);
        let mut fields = vec![];
        let address = self.scalar(&vars, &["ansible_host", "ansible_ssh_host"]).map_or_else(|| first.clone(), |(s, _)| s.to_string());
        fields.push(format!("address: {}", yaml_str(&address)));
        if let Some((u, _)) = self.scalar(&vars, &["ansible_user", "ansible_ssh_user"]) {
            fields.push(format!("user: {}", yaml_str(u)));
        }
        if let Some((p, v)) = self.scalar(&vars, &["ansible_port", "ansible_ssh_port"]) {
            match p.trim().parse::<u16>() {
                Ok(n) if n > 0 => fields.push(format!("port: {n}")),
                _ => self.errs.push(
                    Diagnostic::error("kprov::import::port", format!("`{p}` is not a port"))
                        .label(v.value.at, format!("the SSH port of the bastion {first}"))
                        .help("an SSH port is a number from 1 to 65535"),
                ),
            }
        }
        if let Some((k, _)) = self.scalar(&vars, &["ansible_ssh_private_key_file", "ansible_private_key_file"]) {
            fields.push(format!("private_key: {}", yaml_str(k)));
        }
        for (name, var) in &vars {
            if !SSH_VARS.contains(&name.as_str()) && !CLUSTER_VARS.contains(&name.as_str()) && matches!(var.from, Origin::Host(_)) {
                self.notes.var(name, format!("bastion {first}"), reason(name).map(str::to_string));
            }
        }
        Some(format!("{{ {} }}", fields.join(", ")))
    }

    /// Cluster settings from the Kubespray variables every imported host agrees on.
    pub(super) fn cluster(&mut self, order: &[String], effective: &[BTreeMap<String, Var>], hosts: &[OutHost]) -> Vec<String> {
        let mut lines = vec![];
        let mut agreed: BTreeMap<&str, Node> = BTreeMap::new();
        for var in CLUSTER_VARS {
            let values: Vec<Option<&Var>> = effective.iter().map(|vars| vars.get(*var).filter(|v| !matches!(v.value.kind, Kind::Null))).collect();
            let set: Vec<&Var> = values.iter().flatten().copied().collect();
            let Some(first) = set.first() else { continue };
            let origins = || {
                let mut o: Vec<String> = vec![];
                for (h, v) in order.iter().zip(&values) {
                    if let Some(v) = v {
                        let label = match &v.from {
                            Origin::Host(_) => h.clone(),
                            g => g.label(),
                        };
                        if !o.contains(&label) {
                            o.push(label);
                        }
                    }
                }
                o
            };
            if set.len() < values.len() || set.iter().any(|v| v.value.canonical() != first.value.canonical()) {
                for o in origins() {
                    self.notes.var(var, o, Some("not the same on every host; kprov's cluster settings apply to the whole cluster".into()));
                }
                continue;
            }
            agreed.insert(var, first.value.clone());
        }
        let note = |notes: &mut Notes, var: &str, why: String| {
            let origin = effective.iter().find_map(|vars| vars.get(var)).map(|v| match &v.from {
                Origin::Host(h) => h.clone(),
                g => g.label(),
            });
            notes.var(var, origin.unwrap_or_default(), Some(why));
        };
        if let Some(n) = agreed.get("cluster_name") {
            match n.text() {
                Some(name) => {
                    lines.push(format!("name: {}", yaml_str(name)));
                    let dns_domain = effective.iter().any(|vars| vars.contains_key("dns_domain"));
                    if name != "cluster.local" && !dns_domain {
                        note(
                            &mut self.notes,
                            "cluster_name",
                            "imported as cluster.name, but Kubespray also made it the cluster's DNS domain; kprov's is cluster.local".into(),
                        );
                    }
                }
                None => note(&mut self.notes, "cluster_name", "not a single value".into()),
            }
        }
        let settings = [
            ("kube_version", "kubernetes_version"),
            ("kube_pods_subnet", "pod_cidr"),
            ("kube_service_addresses", "service_cidr"),
            ("kube_network_plugin", "cni"),
        ];
        for (var, key) in settings {
            let Some(n) = agreed.get(var) else { continue };
            let Some(text) = n.text() else {
                note(&mut self.notes, var, "not a single value".into());
                continue;
            };
            let value = if key == "kubernetes_version" {
                let v = text.trim().trim_start_matches('v');
                format!("\"{}\"", v.replace(['"', '\\'], ""))
            } else {
                yaml_str(text.trim())
            };
            let line = format!("{key}: {value}");
            match kprov_verdict(Some(&line), "10.0.0.1") {
                None => lines.push(line),
                Some((message, help)) => note(&mut self.notes, var, format!("kprov says: {message} ({help})")),
            }
        }
        if let Some(n) = agreed.get("container_manager")
            && n.text() != Some("containerd")
        {
            note(&mut self.notes, "container_manager", "kprov installs containerd only".into());
        }
        // The API endpoint: Kubespray's external load balancer, else the first control plane.
        let lb_host = agreed.get("apiserver_loadbalancer_domain_name").and_then(|n| n.text().map(str::to_string));
        let lb = agreed.get("loadbalancer_apiserver");
        let lb_address = lb.and_then(|n| n.get("address")).and_then(|n| n.text().map(str::to_string));
        let lb_port = lb.and_then(|n| n.get("port")).and_then(|n| n.text().map(str::to_string));
        let cps: Vec<&OutHost> = hosts.iter().filter(|h| h.control_plane).collect();
        let mut endpoint = None;
        if let Some(host) = lb_host.or(lb_address) {
            let ep = with_port(&host, lb_port.as_deref().unwrap_or("6443"));
            let line = format!("control_plane_endpoint: {}", yaml_str(&ep));
            match kprov_verdict(Some(&line), "10.0.0.1") {
                None => {
                    lines.push("# Kubespray's external load balancer (apiserver_loadbalancer_domain_name / loadbalancer_apiserver)".into());
                    lines.push(line);
                    endpoint = Some(ep);
                }
                Some((message, help)) => {
                    let var = if agreed.contains_key("apiserver_loadbalancer_domain_name") {
                        "apiserver_loadbalancer_domain_name"
                    } else {
                        "loadbalancer_apiserver"
                    };
                    note(&mut self.notes, var, format!("kprov says: {message} ({help})"));
                }
            }
        } else if lb.is_some() {
            note(&mut self.notes, "loadbalancer_apiserver", "no address in it".into());
        }
        if endpoint.is_none()
            && cps.len() > 1
            && let Some(first) = cps.first()
        {
            lines.push(format!("# {} control planes need one stable API address in front of them: replace this (the first", cps.len()));
            lines.push("# control plane's cluster address) with your load balancer or VIP, e.g. k8s-api.example.lan:6443.".into());
            lines.push(format!(
                "control_plane_endpoint: {}",
                yaml_str(&with_port(first.internal_address.as_deref().unwrap_or(&first.address), "6443"))
            ));
        }
        lines
    }

    pub(super) fn structural_notes(&mut self, order: &[String], cps: &[String]) {
        let bastions = self.a.find_group("bastion").map(|_| self.a.members("bastion")).unwrap_or_default();
        let left: Vec<String> = self
            .a
            .hosts
            .iter()
            .filter(|h| !order.contains(&h.name) && !bastions.contains(&h.name))
            .map(|h| {
                let groups: Vec<&str> = self
                    .a
                    .groups
                    .iter()
                    .filter(|g| !matches!(g.name.as_str(), "all" | "ungrouped") && self.is_member(&g.name, &h.name))
                    .map(|g| g.name.as_str())
                    .collect();
                if groups.is_empty() { h.name.clone() } else { format!("{} (in {})", h.name, groups.join(", ")) }
            })
            .collect();
        if !left.is_empty() {
            self.notes.lines.push(format!("hosts in neither kube_control_plane nor kube_node: {}", left.join(", ")));
        }
        if self.a.find_group("etcd").is_some() {
            let etcd = self.a.members("etcd");
            let mut a: Vec<&String> = etcd.iter().collect();
            let mut b: Vec<&String> = cps.iter().collect();
            a.sort();
            b.sort();
            if !etcd.is_empty() && a != b {
                self.notes.lines.push(format!(
                    "etcd group ({}): kprov runs etcd stacked on every control plane, so its members will be {}",
                    etcd.join(", "),
                    cps.join(", ")
                ));
            }
        }
        for g in &self.a.groups {
            if KNOWN_GROUPS.contains(&g.name.as_str()) {
                continue;
            }
            let members = self.a.members(&g.name);
            if !members.is_empty() {
                self.notes.lines.push(format!("group {} ({}): kprov has no equivalent", g.name, members.join(", ")));
            }
        }
    }
}

/// The ssh defaults: a value every host has, the same, becomes the default; when every host has
/// one but they differ, the most common becomes the default and the others stay per-host
/// overrides. When some host has none, the value cannot be a default (that host would inherit
/// it) and stays on the hosts that set it.
pub(super) fn ssh_defaults(hosts: &mut [OutHost]) -> [Option<String>; 4] {
    let mut defaults: [Option<String>; 4] = Default::default();
    for (i, default) in defaults.iter_mut().enumerate() {
        if hosts.is_empty() || hosts.iter().any(|h| h.ssh[i].is_none()) {
            continue;
        }
        let mut counts: Vec<(String, usize)> = vec![];
        for h in hosts.iter() {
            let Some(v) = &h.ssh[i] else { continue };
            match counts.iter_mut().find(|(x, _)| x == v) {
                Some((_, n)) => *n += 1,
                None => counts.push((v.clone(), 1)),
            }
        }
        // max_by_key returns the last maximum; reversed, ties go to the first host's value.
        let Some((common, _)) = counts.into_iter().rev().max_by_key(|(_, n)| *n) else { continue };
        for h in hosts.iter_mut() {
            if h.ssh[i].as_ref() == Some(&common) {
                h.ssh[i] = None;
            }
        }
        *default = Some(common);
    }
    defaults
}

/// `host` + `port` as an endpoint; IPv6 addresses in brackets.
pub(super) fn with_port(host: &str, port: &str) -> String {
    if host.contains(':') && !host.starts_with('[') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// An Ansible inventory name → a Kubernetes node name (RFC 1123 label).
pub(super) fn node_name(h: &str) -> String {
    let mapped: String = h.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    let trimmed = mapped.trim_matches('-');
    let short: String = trimmed.chars().take(63).collect();
    short.trim_end_matches('-').to_string()
}

/// Ansible's booleans.
pub(super) fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" | "y" | "t" => Some(true),
        "false" | "no" | "off" | "0" | "n" | "f" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names() {
        assert_eq!(node_name("node1"), "node1");
        assert_eq!(node_name("Node_1.example.com"), "node-1-example-com");
        assert_eq!(node_name("10.0.0.1"), "10-0-0-1");
        assert_eq!(node_name("__"), "");
    }

    #[test]
    fn defaults_take_the_common_value() {
        let host = |user: Option<&str>| OutHost {
            name: "n".into(),
            address: "a".into(),
            internal_address: None,
            control_plane: false,
            worker: true,
            ssh: [user.map(String::from), None, None, None],
        };
        let mut hosts = vec![host(Some("ubuntu")), host(Some("pi")), host(Some("ubuntu"))];
        let d = ssh_defaults(&mut hosts);
        assert_eq!(d[0].as_deref(), Some("ubuntu"));
        assert_eq!(hosts.iter().map(|h| h.ssh[0].as_deref()).collect::<Vec<_>>(), [None, Some("pi"), None]);
        let mut hosts = vec![host(Some("ubuntu")), host(None)];
        assert_eq!(ssh_defaults(&mut hosts)[0], None);
        assert_eq!(hosts[0].ssh[0].as_deref(), Some("ubuntu"));
    }
}
