//! The local apt repository (tests/doubles/build-repo.sh) served over HTTP on the test
//! network's gateway address, which the machine owns, so nodes reach it and nothing else.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct AptRepo {
    pub url: String,
    pub dir: PathBuf,
    /// The fingerprint of the repository's signing key (build-repo.sh writes it).
    pub fingerprint: String,
    server: Child,
}

impl AptRepo {
    pub fn serve(bind: Ipv4Addr) -> AptRepo {
        let out = Command::new("bash").arg(super::nodes::repo_root().join("tests/doubles/build-repo.sh")).output().expect("bash runs");
        assert!(out.status.success(), "building the local apt repository failed:\n{}", String::from_utf8_lossy(&out.stderr));
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim().lines().last().unwrap_or_default());
        // A free port on that address, then a static file server on it.
        let port = TcpListener::bind((bind, 0)).expect("bind on the test network's gateway").local_addr().unwrap().port();
        let server = Command::new("python3")
            .args(["-m", "http.server", "--bind", &bind.to_string(), &port.to_string(), "--directory"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 serves the repository");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&(bind, port).into(), Duration::from_millis(200)).is_err() {
            assert!(Instant::now() < deadline, "the repository server did not start on {bind}:{port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        let fingerprint = std::fs::read_to_string(dir.join("key.fingerprint")).expect("build-repo.sh writes key.fingerprint").trim().to_string();
        AptRepo { url: format!("http://{bind}:{port}"), dir, fingerprint, server }
    }

    /// The inventory `mirrors:` section pointing at this repository, with its key's
    /// fingerprint pinned as an operator pins a mirror's key.
    pub fn mirrors_yaml(&self) -> String {
        format!(
            "mirrors:\n  kubernetes_apt: {u}/core:/stable:/{{minor}}/deb/\n  kubernetes_apt_key_fingerprint: {f}\n  docker_apt: {u}/linux\n  docker_apt_key_fingerprint: {f}\n",
            u = self.url,
            f = self.fingerprint
        )
    }

    pub fn manifest(&self, file: &str) -> String {
        format!("{}/manifests/{file}", self.url)
    }

    /// The SHA-256 of a served manifest, for `cluster.cni_manifest_sha256`.
    pub fn manifest_sha256(&self, file: &str) -> String {
        kprov::digest::sha256_hex(&std::fs::read(self.dir.join("manifests").join(file)).expect("a served manifest"))
    }
}

impl Drop for AptRepo {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}
