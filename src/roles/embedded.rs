//! The roles and templates compiled into the binary. A test checks that these lists match the
//! `roles/` and `templates/` directories, so a new file cannot be forgotten here.

pub const ROLES: &[(&str, &str)] = &[
    ("00-preflight.yaml", include_str!("../../roles/00-preflight.yaml")),
    ("10-swap.yaml", include_str!("../../roles/10-swap.yaml")),
    ("20-kernel.yaml", include_str!("../../roles/20-kernel.yaml")),
    ("30-raspberry-pi.yaml", include_str!("../../roles/30-raspberry-pi.yaml")),
    ("40-apt.yaml", include_str!("../../roles/40-apt.yaml")),
    ("50-containerd.yaml", include_str!("../../roles/50-containerd.yaml")),
    ("60-kubernetes-packages.yaml", include_str!("../../roles/60-kubernetes-packages.yaml")),
    ("70-control-plane-init.yaml", include_str!("../../roles/70-control-plane-init.yaml")),
    ("80-join-command.yaml", include_str!("../../roles/80-join-command.yaml")),
    ("90-control-plane-join.yaml", include_str!("../../roles/90-control-plane-join.yaml")),
    ("95-worker-join.yaml", include_str!("../../roles/95-worker-join.yaml")),
    ("99-node-labels.yaml", include_str!("../../roles/99-node-labels.yaml")),
];

pub const TEMPLATES: &[(&str, &str)] = &[
    ("cni/apply.sh.j2", include_str!("../../templates/cni/apply.sh.j2")),
    ("cni/cilium.sh.j2", include_str!("../../templates/cni/cilium.sh.j2")),
    ("cni/patch.sh.j2", include_str!("../../templates/cni/patch.sh.j2")),
    ("cni/verify.sh.j2", include_str!("../../templates/cni/verify.sh.j2")),
    ("kubeadm/control-plane-end-state.sh.j2", include_str!("../../templates/kubeadm/control-plane-end-state.sh.j2")),
    ("kubeadm/init-done.sh.j2", include_str!("../../templates/kubeadm/init-done.sh.j2")),
    ("kubeadm/init-end-state.sh.j2", include_str!("../../templates/kubeadm/init-end-state.sh.j2")),
    ("kubeadm/init.yaml.j2", include_str!("../../templates/kubeadm/init.yaml.j2")),
    ("kubeadm/join-done.sh.j2", include_str!("../../templates/kubeadm/join-done.sh.j2")),
    ("kubeadm/join.sh.j2", include_str!("../../templates/kubeadm/join.sh.j2")),
    ("kubeadm/join.yaml.j2", include_str!("../../templates/kubeadm/join.yaml.j2")),
    ("kubeadm/node-labels.sh.j2", include_str!("../../templates/kubeadm/node-labels.sh.j2")),
    ("kubeadm/node-registration.yaml.j2", include_str!("../../templates/kubeadm/node-registration.yaml.j2")),
    ("kubeadm/worker-end-state.sh.j2", include_str!("../../templates/kubeadm/worker-end-state.sh.j2")),
];

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn listed(dir: &str) -> Vec<String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        let mut out = vec![];
        let mut stack = vec![root.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if !p.file_name().unwrap().to_string_lossy().starts_with('.') {
                    out.push(p.strip_prefix(&root).unwrap().to_string_lossy().into_owned());
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn every_role_file_is_embedded() {
        let mut names: Vec<String> = super::ROLES.iter().map(|(n, _)| n.to_string()).collect();
        names.sort();
        assert_eq!(names, listed("roles"));
    }

    #[test]
    fn every_template_is_embedded() {
        let mut names: Vec<String> = super::TEMPLATES.iter().map(|(n, _)| n.to_string()).collect();
        names.sort();
        assert_eq!(names, listed("templates"));
    }
}
