//! The roles and templates compiled into the binary. A test checks that these lists match the
//! `roles/` and `templates/` directories, so a new file cannot be forgotten here.

pub const ROLES: &[(&str, &str)] = &[
];

pub const TEMPLATES: &[(&str, &str)] = &[
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
