//! The node image's recipe, embedded in the binary: the test nodes' own files
//! (tests/nodes/), so the sandbox's image is the test suite's image, with the same tag (a
//! hash of the recipe and the cache's key: an image built for either is reused by the other).
//! They are embedded from where the tests keep them rather than moved, so the test recipe stays
//! one set of files.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Flavour, SandboxError};

/// The recipe's files, by the names build-image.sh expects beside it.
pub const FILES: &[(&str, &str)] = &[
    ("build-image.sh", include_str!("../../tests/nodes/build-image.sh")),
    ("Dockerfile", include_str!("../../tests/nodes/Dockerfile")),
    ("setup.sh", include_str!("../../tests/nodes/setup.sh")),
    ("flavour-debian.sh", include_str!("../../tests/nodes/flavour-debian.sh")),
    ("flavour-ubuntu.sh", include_str!("../../tests/nodes/flavour-ubuntu.sh")),
    ("flavour-rpi.sh", include_str!("../../tests/nodes/flavour-rpi.sh")),
];

/// Where images, rootfs tarballs and the recipe's key are kept: `KPROV_CACHE`, else
/// `$XDG_CACHE_HOME/kprov`, else `~/.cache/kprov`.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("KPROV_CACHE").filter(|v| !v.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(d).join("kprov");
    }
    crate::inventory::expand_home("~/.cache/kprov")
}

/// Build (or load from the cache) the image for `flavour` and return its tag: the recipe is
/// written to a temporary directory and its build-image.sh run there (debootstrap, docker
/// import, docker build; minutes the first time, then cached). Its progress goes to stderr.
pub fn build_image(flavour: Flavour) -> Result<String, SandboxError> {
    let dir = std::env::temp_dir().join(format!(
        "kprov-recipe-{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos()
    ));
    let failed = |message: String| {
        SandboxError::Failed {
        what: format!("building the {} node image", flavour.name()),
        message,
        help: "the recipe needs root, debootstrap and a Docker engine (scripts/machine.sh installs them on Debian and Ubuntu); the Raspberry Pi flavour also needs qemu-user-static".into(),
    }
    };
    write_recipe(&dir).map_err(|e| failed(format!("cannot write the recipe to {}: {e}", dir.display())))?;
    let out = Command::new("bash")
        .arg(dir.join("build-image.sh"))
        .arg(flavour.name())
        .env("KPROV_TEST_CACHE", cache_dir())
        .stderr(std::process::Stdio::inherit())
        .output();
    let _ = std::fs::remove_dir_all(&dir);
    let out = out.map_err(|e| failed(format!("cannot run bash: {e}")))?;
    if !out.status.success() {
        return Err(failed(format!("build-image.sh failed ({}); its messages are above", out.status)));
    }
    let tag = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().trim().to_string();
    if tag.is_empty() {
        return Err(failed("build-image.sh printed no image tag".into()));
    }
    Ok(tag)
}

fn write_recipe(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, text) in FILES {
        std::fs::write(dir.join(name), text)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every flavour the sandbox offers has its recipe file embedded, and build-image.sh knows it.
    #[test]
    fn every_flavour_has_its_recipe() {
        let script = FILES.iter().find(|(n, _)| *n == "build-image.sh").unwrap().1;
        for f in [Flavour::Debian, Flavour::Ubuntu, Flavour::Rpi] {
            let file = format!("flavour-{}.sh", f.name());
            assert!(FILES.iter().any(|(n, _)| *n == file), "{file} is not embedded");
            assert!(
                script.lines().any(|l| l.trim_start().split_once(')').is_some_and(|(pat, _)| pat.split('|').any(|p| p == f.name()))),
                "build-image.sh has no case for {}",
                f.name()
            );
        }
    }
}
