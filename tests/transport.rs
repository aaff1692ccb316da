//! The SSH transport against real OpenSSH servers on real Debian nodes.

mod support;

use std::time::{Duration, Instant};

use kprov::secret::Secret;
use kprov::transport::{Become, ConnectOptions, ExecOptions, HostKeyPolicy, Session, TransportError, UploadOptions};
use support::nodes::{Flavour, NodeSet, SUDO_PASSWORD};

fn options(set: &NodeSet, i: usize, user: &str) -> ConnectOptions {
    let mut o = ConnectOptions::new(set.node(i).name.clone(), set.node(i).ip.to_string(), user);
    o.identity_files = vec![set.key_path.clone()];
    o.use_agent = false;
    o.known_hosts = vec![set.known_hosts_path.clone()];
    o.connect_timeout = Duration::from_secs(5);
    o
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap()
}

#[test]
fn exec_output_exit_codes_many_commands_on_one_connection_and_uploads() {
    let set = NodeSet::start(&[Flavour::Debian]);
    let before = set.accepted_connections(0);
    rt().block_on(async {
        let s = Session::connect(&options(&set, 0, "root")).await.unwrap();
        let out = s.exec("echo out; echo err >&2; exit 3", ExecOptions::default()).await.unwrap();
        assert_eq!((out.stdout_text().as_str(), out.stderr_text().as_str(), out.exit_status), ("out\n", "err\n", 3));
        let out = s.exec("cat | tr a-z A-Z", ExecOptions { stdin: Some(b"hello".to_vec()), ..Default::default() }).await.unwrap();
        assert_eq!(out.stdout_text(), "HELLO");

        // 50 commands, 20 in flight at once, on the one connection.
        let mut set_ = tokio::task::JoinSet::new();
        let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(20));
        for i in 0..50 {
            let s = s.clone();
            let sem = sem.clone();
            set_.spawn(async move {
                let _p = sem.acquire().await.unwrap();
                let out = s.exec(&format!("sleep 0.1; echo {i}"), ExecOptions::default()).await.unwrap();
                assert_eq!(out.stdout_text().trim(), i.to_string());
            });
        }
        while let Some(r) = set_.join_next().await {
            r.unwrap();
        }

        // Atomic upload with mode and owner; no temp file left behind.
        let path = "/etc/kprov-test/it's here.conf";
        s.exec("mkdir -p /etc/kprov-test", ExecOptions::default()).await.unwrap();
        s.upload(
            path,
            b"a = 1\n$(touch /tmp/pwned)\n",
            UploadOptions { mode: 0o640, owner: Some("deploy".into()), group: Some("deploy".into()), become_: false },
        )
        .await
        .unwrap();
        s.close().await;
    });
    assert_eq!(set.accepted_connections(0) - before, 1, "one connection for everything");
    assert_eq!(set.sh(0, "cat '/etc/kprov-test/it'\\''s here.conf'"), "a = 1\n$(touch /tmp/pwned)\n");
    assert_eq!(set.sh(0, "stat -c '%a %U %G' '/etc/kprov-test/it'\\''s here.conf'").trim(), "640 deploy deploy");
    assert_eq!(set.sh(0, "ls -A /etc/kprov-test | wc -l").trim(), "1");
    assert!(!set.exec(0, "test -e /tmp/pwned").status.success());
}

#[test]
fn become_with_and_without_a_password() {
    let set = NodeSet::start(&[Flavour::Debian]);
    rt().block_on(async {
        let mut o = options(&set, 0, "deploy");
        o.become_ = Some(Become { user: "root".into(), password: None });
        let s = Session::connect(&o).await.unwrap();
        let out = s.exec("id -u; echo \"$0\"", ExecOptions { become_: true, ..Default::default() }).await.unwrap();
        assert_eq!(out.stdout_text().lines().next(), Some("0"));
        let plain = s.exec("id -u", ExecOptions::default()).await.unwrap();
        assert_ne!(plain.stdout_text().trim(), "0");

        let mut o = options(&set, 0, "ops");
        o.become_ = Some(Become { user: "root".into(), password: Some(Secret::new(SUDO_PASSWORD)) });
        let s = Session::connect(&o).await.unwrap();
        let out = s.exec("id -u; cat", ExecOptions { become_: true, stdin: Some(b"script on stdin".to_vec()), ..Default::default() }).await.unwrap();
        assert_eq!(out.stdout_text(), "0\nscript on stdin");

        let mut o = options(&set, 0, "ops");
        o.become_ = Some(Become { user: "root".into(), password: Some(Secret::new("wrong-password-123")) });
        let s = Session::connect(&o).await.unwrap();
        let err = s.exec("id -u", ExecOptions { become_: true, ..Default::default() }).await.unwrap_err();
        assert!(matches!(err, TransportError::BecomeFailed { .. }), "{err}");
        assert!(!format!("{err} {err:?}").contains("wrong-password-123"));
        // sudo's own words; answered once, never a second time.
        assert!(err.to_string().contains("sudo: 1 incorrect password attempt"), "{err}");
        assert_eq!(err.stage(), "sudo");
        assert!(!err.to_string().contains("kprov-sudo-"), "the prompt nonce is not shown: {err}");

        let mut o = options(&set, 0, "ops");
        o.become_ = Some(Become { user: "root".into(), password: None });
        let s = Session::connect(&o).await.unwrap();
        let err = s.exec("id -u", ExecOptions { become_: true, ..Default::default() }).await.unwrap_err();
        assert!(matches!(err, TransportError::BecomeFailed { .. }), "{err}");
    });
}

#[test]
fn a_password_is_written_only_when_sudo_asks_for_it() {
    // deploy's sudo never asks (NOPASSWD): before, the password went first on stdin anyway
    // and `sh -s` ran it as root.
    let set = NodeSet::start(&[Flavour::Debian]);
    let hostile = "touch /tmp/pwned; id>/var/tmp/pwned";
    let sessions =
        |set: &NodeSet| set.sh(0, "journalctl -u ssh --no-pager -o cat | grep -c 'Starting session:' || true").trim().parse::<usize>().unwrap();
    let before = (set.accepted_connections(0), sessions(&set));
    rt().block_on(async {
        let mut o = options(&set, 0, "deploy");
        o.become_ = Some(Become { user: "root".into(), password: Some(Secret::new(hostile)) });
        let s = Session::connect(&o).await.unwrap();
        let out =
            s.exec("sh -s", ExecOptions { become_: true, stdin: Some(b"id -u\necho done >&2\n".to_vec()), ..Default::default() }).await.unwrap();
        assert_eq!((out.stdout_text().as_str(), out.stderr_text().as_str(), out.exit_status), ("0\n", "done\n", 0));
        // Input that needs the whole stdin still gets exactly it.
        let out = s.exec("cat", ExecOptions { become_: true, stdin: Some(b"exactly this".to_vec()), ..Default::default() }).await.unwrap();
        assert_eq!(out.stdout_text(), "exactly this");
        assert_eq!(out.stderr_text(), "", "sudo's chatter and kprov's markers stay out of the output");
        // The command's own failures are the command's, not sudo's.
        let out = s.exec("echo oops >&2; exit 7", ExecOptions { become_: true, ..Default::default() }).await.unwrap();
        assert_eq!((out.stderr_text().as_str(), out.exit_status), ("oops\n", 7));
        s.close().await;
    });
    assert!(!set.exec(0, "test -e /tmp/pwned || test -e /var/tmp/pwned").status.success(), "the password ran as a command");
    // Still one connection, and one session (command) per exec: the wait for sudo's prompt
    // happens inside the command's own channel.
    assert_eq!((set.accepted_connections(0) - before.0, sessions(&set) - before.1), (1, 3));
}

#[test]
fn host_keys_are_checked() {
    let set = NodeSet::start(&[Flavour::Debian, Flavour::Debian]);
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        // Node 1's key recorded for node 0's address: a changed key, refused, naming file:line.
        let wrong = dir.path().join("wrong");
        std::fs::write(&wrong, format!("# header\n{} {}\n", set.node(0).ip, set.host_key(1))).unwrap();
        let mut o = options(&set, 0, "root");
        o.known_hosts = vec![wrong.clone()];
        let err = Session::connect(&o).await.unwrap_err();
        match &err {
            TransportError::HostKeyMismatch { file, line, .. } => assert_eq!((file, *line), (&wrong, 2)),
            other => panic!("{other}"),
        }
        assert!(err.to_string().contains(&format!("{}:2", wrong.display())), "{err}");

        // Unknown under strict: refused. Under accept-new: recorded, then known.
        let empty = dir.path().join("empty");
        let mut o = options(&set, 0, "root");
        o.known_hosts = vec![empty.clone()];
        assert!(matches!(Session::connect(&o).await.unwrap_err(), TransportError::UnknownHostKey { .. }));
        o.host_key_policy = HostKeyPolicy::AcceptNew;
        Session::connect(&o).await.unwrap().close().await;
        let recorded = std::fs::read_to_string(&empty).unwrap();
        assert!(recorded.contains(&set.host_key(0)), "{recorded}");
        o.host_key_policy = HostKeyPolicy::Strict;
        Session::connect(&o).await.unwrap().close().await;
        // accept-new never overwrites a changed key.
        let mut o = options(&set, 0, "root");
        o.known_hosts = vec![wrong];
        o.host_key_policy = HostKeyPolicy::AcceptNew;
        assert!(matches!(Session::connect(&o).await.unwrap_err(), TransportError::HostKeyMismatch { .. }));
    });
}

#[test]
fn a_paused_node_times_out_without_hanging() {
    let set = NodeSet::start(&[Flavour::Debian]);
    rt().block_on(async {
        let mut o = options(&set, 0, "root");
        o.command_timeout = Duration::from_secs(3);
        let s = Session::connect(&o).await.unwrap();
        set.pause(0);
        let t0 = Instant::now();
        let err = s.exec("echo hi", ExecOptions::default()).await.unwrap_err();
        assert!(t0.elapsed() < Duration::from_secs(8), "took {:?}", t0.elapsed());
        assert!(matches!(err, TransportError::Timeout { .. } | TransportError::Protocol { .. }), "{err}");
        assert!(err.to_string().contains(&set.node(0).name), "{err}");
        assert_eq!(err.stage(), "command", "{err}");
        // A new connection to a paused host fails within the connect timeout too.
        let t0 = Instant::now();
        let err = Session::connect(&o).await.unwrap_err();
        assert!(t0.elapsed() < Duration::from_secs(8));
        assert!(err.is_transient(), "{err}");
        set.unpause(0);
    });
}

#[test]
fn jump_host_and_auth_failure() {
    let set = NodeSet::start(&[Flavour::Debian, Flavour::Debian]);
    rt().block_on(async {
        let mut o = options(&set, 1, "root");
        o.jump = Some(Box::new(options(&set, 0, "root")));
        let s = Session::connect(&o).await.unwrap();
        let out = s.exec("echo $SSH_CONNECTION", ExecOptions::default()).await.unwrap();
        // Node 1 saw the connection come from node 0.
        assert!(out.stdout_text().starts_with(&set.node(0).ip.to_string()), "{}", out.stdout_text());

        let mut bad = options(&set, 0, "root");
        let other = tempfile::tempdir().unwrap();
        let key = other.path().join("k");
        std::process::Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&key).status().unwrap();
        bad.identity_files = vec![key];
        let err = Session::connect(&bad).await.unwrap_err();
        assert!(matches!(err, TransportError::AuthFailed { .. }), "{err}");
        assert_eq!(err.stage(), "auth");
        assert!(err.to_string().contains("(stage: auth)"), "{err}");
        let unreachable = {
            let mut u = options(&set, 0, "root");
            u.port = 2;
            Session::connect(&u).await.unwrap_err()
        };
        assert!(matches!(unreachable, TransportError::Unreachable { .. }), "{unreachable}");
        assert!(unreachable.to_string().contains("(stage: connect)"), "{unreachable}");
    });
}
