//! Roles: the resources kprov puts on hosts, declared in YAML (`roles/*.yaml`) with minijinja
//! templates (`templates/`). Both directories are embedded in the binary, so
//! `kprov apply inventory.yaml` needs no other files; `--roles DIR` overlays a user's own
//! (a file with the same name replaces the embedded one, new names add roles).
//!
//! A role file:
//! ```yaml
//! name: kernel
//! description: Kernel modules and sysctl settings that Kubernetes networking needs
//! hosts: all            # all | control-plane | worker | first-control-plane | other-control-planes
//! after: [swap]         # roles that must be done first (on this host, or, for a role that
//!                       # does not run on this host, on every host that runs it)
//! tags: [prepare]
//! resources:
//!   - name: modules
//!     kernel_module: { names: [overlay, br_netfilter], file: /etc/modules-load.d/k8s.conf }
//!   - name: sysctl
//!     when: "facts.os.id != 'ubuntu'"     # optional minijinja expression
//!     sysctl: { file: /etc/sysctl.d/k8s.conf, values: { net.ipv4.ip_forward: "1" } }
//! ```
//! Resources of a role run in the order written. Every string in a resource is a template.

mod embedded;
mod render;

pub use render::{Pass, RenderError, Renderer, to_value};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Which hosts a role runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostSelector {
    All,
    ControlPlane,
    Worker,
    FirstControlPlane,
    OtherControlPlanes,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Role {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub hosts: HostSelector,
    #[serde(default)]
    pub after: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub resources: Vec<ResourceDecl>,
}

/// A resource as written in a role: a name, an optional `when`, and one `kind: {fields}` entry
/// kept as raw data until it is rendered for a host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceDecl {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    #[serde(flatten)]
    pub spec: BTreeMap<String, serde_json::Value>,
}

/// Where a role came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Embedded(&'static str),
    File(PathBuf),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Embedded(name) => write!(f, "embedded roles/{name}"),
            Origin::File(p) => write!(f, "{}", p.display()),
        }
    }
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum RoleError {
    #[error("cannot read {path}")]
    #[diagnostic(code(kprov::roles::io))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin}: {message}")]
    #[diagnostic(code(kprov::roles::syntax), help("see ARCHITECTURE.md and roles/*.yaml for the role format"))]
    Syntax { origin: String, message: String },
    #[error("{origin}: resource {resource:?} must have exactly one resource kind, found {found:?}")]
    #[diagnostic(
        code(kprov::roles::kind),
        help(
            "write one of: file, line, sysctl, kernel_module, kernel_cmdline, swap_off, apt_repository, apt_packages, service, command, capture, reboot, refuse"
        )
    )]
    Kind { origin: String, resource: String, found: Vec<String> },
    #[error("role {role:?} is declared twice ({first} and {second})")]
    #[diagnostic(code(kprov::roles::duplicate))]
    Duplicate { role: String, first: String, second: String },
    #[error("role {role:?} comes after {missing:?}, which no role file declares")]
    #[diagnostic(code(kprov::roles::unknown_after))]
    UnknownAfter { role: String, missing: String },
    #[error("template {name:?} not found")]
    #[diagnostic(code(kprov::roles::template))]
    MissingTemplate { name: String },
}

/// Every role and template kprov will use, in a stable order.
#[derive(Debug, Clone, Default)]
pub struct RoleSet {
    pub roles: Vec<(Origin, Role)>,
    pub templates: BTreeMap<String, String>,
}

impl RoleSet {
    /// The embedded roles and templates, overlaid with `overlay` (a directory holding
    /// `*.yaml` role files and optionally a `templates/` directory) when given.
    pub fn load(overlay: Option<&Path>) -> Result<RoleSet, RoleError> {
        let mut files: BTreeMap<String, (Origin, String)> =
            embedded::ROLES.iter().map(|(name, text)| (name.to_string(), (Origin::Embedded(name), text.to_string()))).collect();
        let mut templates: BTreeMap<String, String> = embedded::TEMPLATES.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect();
        if let Some(dir) = overlay {
            for path in list_files(dir, "yaml")? {
                let text = read(&path)?;
                let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
                files.insert(name, (Origin::File(path), text));
            }
            let tdir = dir.join("templates");
            if tdir.is_dir() {
                for path in walk(&tdir)? {
                    let rel = path.strip_prefix(&tdir).unwrap_or(&path).to_string_lossy().replace('\\', "/");
                    templates.insert(rel, read(&path)?);
                }
            }
        }
        let mut roles = vec![];
        for (origin, text) in files.into_values() {
            roles.push((origin.clone(), parse_role(&origin, &text)?));
        }
        let set = RoleSet { roles, templates };
        set.check()?;
        Ok(set)
    }

    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.iter().map(|(_, r)| r).find(|r| r.name == name)
    }

    fn check(&self) -> Result<(), RoleError> {
        let mut seen: BTreeMap<&str, &Origin> = BTreeMap::new();
        for (origin, role) in &self.roles {
            if let Some(first) = seen.insert(&role.name, origin) {
                return Err(RoleError::Duplicate { role: role.name.clone(), first: first.to_string(), second: origin.to_string() });
            }
        }
        for (_, role) in &self.roles {
            for a in &role.after {
                if !seen.contains_key(a.as_str()) {
                    return Err(RoleError::UnknownAfter { role: role.name.clone(), missing: a.clone() });
                }
            }
        }
        Ok(())
    }
}

pub fn parse_role(origin: &Origin, text: &str) -> Result<Role, RoleError> {
    let role: Role = serde_saphyr::from_str(text).map_err(|e| RoleError::Syntax { origin: origin.to_string(), message: e.to_string() })?;
    for r in &role.resources {
        if r.spec.len() != 1 {
            return Err(RoleError::Kind { origin: origin.to_string(), resource: r.name.clone(), found: r.spec.keys().cloned().collect() });
        }
    }
    Ok(role)
}

fn read(path: &Path) -> Result<String, RoleError> {
    std::fs::read_to_string(path).map_err(|source| RoleError::Io { path: path.to_path_buf(), source })
}

fn list_files(dir: &Path, ext: &str) -> Result<Vec<PathBuf>, RoleError> {
    let entries = std::fs::read_dir(dir).map_err(|source| RoleError::Io { path: dir.to_path_buf(), source })?;
    let mut out: Vec<PathBuf> =
        entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file() && p.extension().is_some_and(|e| e == ext)).collect();
    out.sort();
    Ok(out)
}

fn walk(dir: &Path) -> Result<Vec<PathBuf>, RoleError> {
    let mut out = vec![];
    let entries = std::fs::read_dir(dir).map_err(|source| RoleError::Io { path: dir.to_path_buf(), source })?;
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p)?);
        } else {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_roles_load_and_are_ordered() {
        let set = RoleSet::load(None).unwrap();
        let names: Vec<&str> = set.roles.iter().map(|(_, r)| r.name.as_str()).collect();
        assert_eq!(names.first(), Some(&"preflight"));
        assert!(names.contains(&"control-plane-init") && names.contains(&"worker-join"));
        assert!(set.templates.contains_key("kubeadm/init.yaml.j2"));
    }

    #[test]
    fn overlay_replaces_and_adds() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("10-swap.yaml"), "name: swap\nhosts: worker\nresources: []\n").unwrap();
        std::fs::write(dir.path().join("99-extra.yaml"), "name: extra\nhosts: all\nafter: [swap]\nresources:\n  - {name: x, swap_off: {}}\n")
            .unwrap();
        let set = RoleSet::load(Some(dir.path())).unwrap();
        assert_eq!(set.role("swap").unwrap().hosts, HostSelector::Worker);
        assert!(set.role("extra").is_some());
        assert!(matches!(set.roles.iter().find(|(_, r)| r.name == "swap").unwrap().0, Origin::File(_)));
    }

    #[test]
    fn bad_roles_are_clear_errors() {
        let o = Origin::Embedded("t.yaml");
        let two = parse_role(&o, "name: a\nhosts: all\nresources:\n  - {name: x, swap_off: {}, file: {}}\n").unwrap_err();
        assert!(two.to_string().contains("exactly one resource kind"), "{two}");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.yaml"), "name: x\nhosts: all\nafter: [nope]\nresources: []\n").unwrap();
        let err = RoleSet::load(Some(dir.path())).unwrap_err();
        assert!(err.to_string().contains("\"nope\""), "{err}");
    }
}
