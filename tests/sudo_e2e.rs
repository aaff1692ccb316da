//! sudo on real nodes, through the kprov binary: the password is written only in answer to
//! sudo's own prompt (never run as a command when sudo does not ask), a wrong password is
//! answered once and fails in sudo's words, a sudo that cannot run at all is reported with its
//! own message and the stage, and neither the password nor kprov's prompt nonce is ever shown.
//!
//! Node users (tests/nodes/setup.sh): `deploy` has NOPASSWD sudo, `ops` sudo with a password.
//! Users and sudo settings a case needs beyond that are made on the node at test time.

mod support;

use support::cli::{Kprov, code, p, text};
use support::nodes::{Flavour, NodeSet, SUDO_PASSWORD};

/// Files a password run as a root shell line would create, wherever the shell started.
const PWNED: &[&str] = &["/tmp/pwned", "/var/tmp/pwned", "/root/pwned", "/home/deploy/pwned", "/home/ops/pwned", "/pwned"];

/// A password that is also a root command: run as one, it leaves files behind.
const HOSTILE: &str = "touch /tmp/pwned; touch /var/tmp/pwned; id>pwned";

fn inventory(k: &Kprov, set: &NodeSet, user: &str) -> String {
    let inv = k.inventory(set, user, &[(0, "control-plane")], "  cni: flannel\n", "");
    let text_inv = std::fs::read_to_string(&inv).unwrap().replace("  agent: false\n", "  agent: false\n  become_password_env: KPROV_TEST_SUDO\n");
    std::fs::write(&inv, text_inv).unwrap();
    p(&inv).to_string()
}

fn assert_not_pwned(set: &NodeSet) {
    let found = set.sh(0, &format!("ls -d {} 2>/dev/null || true", PWNED.join(" ")));
    assert_eq!(found.trim(), "", "the sudo password ran as a command on the node");
}

/// Nothing kprov prints holds the password or its sudo nonces.
fn assert_clean_output(out: &str, password: &str) {
    assert!(!out.contains(password), "the sudo password reached the output:\n{out}");
    assert!(!out.contains("kprov-sudo-"), "kprov's prompt nonce reached the output:\n{out}");
    assert!(!out.contains("kprov-started-"), "kprov's start marker reached the output:\n{out}");
}

#[test]
fn a_password_for_a_sudo_that_does_not_ask_is_never_run() {
    let set = NodeSet::start(&[Flavour::Debian]);
    let k = Kprov::new();
    let inv = inventory(&k, &set, "deploy");
    let env = [("KPROV_TEST_SUDO", HOSTILE)];
    for args in [vec!["plan", inv.as_str(), "--tags", "prepare"], vec!["facts", inv.as_str(), "-vv"], vec!["facts", inv.as_str(), "--json"]] {
        let o = k.run_env(&args, &env);
        assert_eq!(code(&o), if args[0] == "plan" { 2 } else { 0 }, "{}", text(&o));
        assert_clean_output(&text(&o), HOSTILE);
        assert_not_pwned(&set);
    }
    // The facts really were read as root: the apply changes what only root can.
    let o = k.run_env(&["apply", inv.as_str(), "--tags", "prepare"], &env);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_eq!(set.sh(0, "cat /proc/sys/net/ipv4/ip_forward").trim(), "1");
    assert_clean_output(&text(&o), HOSTILE);
    assert_not_pwned(&set);
}

#[test]
fn a_cached_sudo_timestamp_gets_no_password_either() {
    let set = NodeSet::start(&[Flavour::Debian]);
    // One timestamp for all of ops's sessions: after the first sudo, later ones do not ask
    // (sudoers' timestamp_type=global; the default, per tty or parent process, does not carry
    // over between SSH commands). The password is also a shell line.
    set.sh(0, "echo 'Defaults:ops timestamp_type=global' > /etc/sudoers.d/zz-kprov-test && chmod 0440 /etc/sudoers.d/zz-kprov-test");
    set.sh(0, &format!("printf 'ops:%s\\n' '{HOSTILE}' | chpasswd"));
    let k = Kprov::new();
    let inv = inventory(&k, &set, "ops");
    let env = [("KPROV_TEST_SUDO", HOSTILE)];
    // The first run answers sudo's prompt; the runs after it find the timestamp.
    for _ in 0..3 {
        let o = k.run_env(&["plan", inv.as_str(), "--tags", "prepare"], &env);
        assert_eq!(code(&o), 2, "{}", text(&o));
        assert_clean_output(&text(&o), HOSTILE);
        assert_not_pwned(&set);
    }
    assert!(set.sh(0, "ls /run/sudo/ts/").contains("ops"), "sudo kept a timestamp for ops");
}

#[test]
fn the_right_password_works_and_a_wrong_one_fails_in_sudos_words() {
    let set = NodeSet::start(&[Flavour::Debian]);
    let k = Kprov::new();
    let inv = inventory(&k, &set, "ops");
    let o = k.run_env(&["facts", inv.as_str()], &[("KPROV_TEST_SUDO", SUDO_PASSWORD)]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_clean_output(&text(&o), SUDO_PASSWORD);

    let wrong = "wrong-pw-9c1e";
    let before = set.sh(0, "journalctl --no-pager -o cat _COMM=sudo | grep -c 'incorrect password attempt' || true");
    for args in [vec!["plan", inv.as_str(), "--tags", "prepare"], vec!["facts", inv.as_str(), "-vv"]] {
        let o = k.run_env(&args, &[("KPROV_TEST_SUDO", wrong)]);
        let all = text(&o);
        assert_eq!(code(&o), 1, "{all}");
        assert!(all.contains("(stage: sudo)"), "names the stage: {all}");
        // sudo's own words, in the order it printed them.
        assert!(all.contains("Sorry, try again."), "{all}");
        assert!(all.contains("sudo: 1 incorrect password attempt"), "answered once, never twice: {all}");
        assert_clean_output(&all, wrong);
        assert_clean_output(&all, SUDO_PASSWORD);
    }
    // sudo's own log agrees: one wrong attempt per run.
    let after = set.sh(0, "journalctl --no-pager -o cat _COMM=sudo | grep -c 'incorrect password attempt' || true");
    let (before, after): (usize, usize) = (before.trim().parse().unwrap(), after.trim().parse().unwrap());
    assert_eq!(after - before, 2, "one attempt for each of the two runs");
}

#[test]
fn a_sudo_that_cannot_run_is_reported_in_its_own_words_with_the_stage() {
    let set = NodeSet::start(&[Flavour::Debian]);
    let k = Kprov::new();

    // A user sudoers does not know, made here: sudo asks, gets the password, then refuses.
    set.sh(
        0,
        "useradd --create-home --shell /bin/bash guest && echo 'guest:guest-pw-4411' | chpasswd \
         && install -d -m 0700 -o guest -g guest /home/guest/.ssh \
         && install -m 0600 -o guest -g guest /root/.ssh/authorized_keys /home/guest/.ssh/authorized_keys",
    );
    let inv = inventory(&k, &set, "guest");
    let o = k.run_env(&["plan", inv.as_str(), "--tags", "prepare"], &[("KPROV_TEST_SUDO", "guest-pw-4411")]);
    let all = text(&o);
    assert_eq!(code(&o), 1, "{all}");
    assert!(all.contains("(stage: sudo)"), "{all}");
    assert!(all.contains("guest is not in the sudoers file"), "sudo's own words: {all}");
    assert!(all.contains("exit status 1"), "{all}");
    assert_clean_output(&all, "guest-pw-4411");

    // sudo on a nosuid mount, the case of the issue: "effective uid is not 0".
    set.sh(0, "mount --bind /usr/bin /usr/bin && mount -o remount,bind,nosuid /usr/bin");
    let inv = inventory(&k, &set, "deploy");
    for args in [vec!["plan", inv.as_str(), "--tags", "prepare"], vec!["facts", inv.as_str(), "-vv"]] {
        let o = k.run_env(&args, &[("KPROV_TEST_SUDO", HOSTILE)]);
        let all = text(&o);
        assert_eq!(code(&o), 1, "{all}");
        assert!(all.contains("(stage: sudo)"), "{all}");
        assert!(all.contains("sudo: effective uid is not 0, is /usr/bin/sudo on a file system with the 'nosuid' option set"), "{all}");
        assert!(all.contains("exit status 1"), "{all}");
        assert!(!all.contains("ended early"), "not taken for a cut connection: {all}");
        assert_clean_output(&all, HOSTILE);
    }
    // Without a password (sudo -n) the same words.
    let plain = k.inventory(&set, "deploy", &[(0, "control-plane")], "  cni: flannel\n", "");
    let o = k.run(&["facts", p(&plain)]);
    let all = text(&o);
    assert_eq!(code(&o), 1, "{all}");
    assert!(all.contains("(stage: sudo)") && all.contains("effective uid is not 0"), "{all}");
    set.sh(0, "umount -l /usr/bin");
    assert_not_pwned(&set);
}

/// A sensitive step that fails after printing a certificate key the way `kubeadm init
/// --upload-certs` does (kubeadm's runUploadCerts: the key alone on the line after
/// `[upload-certs] Using certificate key:`), a key kprov never learned; and a plain step
/// whose failure output holds the sudo password.
const LEAKY_ROLE: &str = r#"name: leaky
description: Failures whose output holds secrets
hosts: all
after: [kernel]
tags: [prepare]
resources:
  - name: init-like
    command:
      description: fails after printing a certificate key
      run: |
        key=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
        printf '%s\n' "$key" > /root/kprov-test-key
        echo '[upload-certs] Storing the certificates in Secret "kubeadm-certs" in the "kube-system" Namespace'
        echo '[upload-certs] Using certificate key:'
        echo "$key"
        echo '[mark-control-plane] Marking the node as control-plane'
        echo 'error execution phase mark-control-plane: timed out waiting for the condition' >&2
        exit 1
      creates: /var/tmp/kprov-never-created
      sensitive: true
"#;

const LEAKY_PASSWORD_ROLE: &str = r#"name: leaky-password
description: A failure whose output holds the sudo password
hosts: all
after: [kernel]
tags: [prepare]
resources:
  - name: echo-password
    command:
      description: fails printing the sudo password
      run: echo "the password is $(echo PASSWORD_B64 | base64 -d)"; exit 3
      creates: /var/tmp/kprov-never-created
"#;

/// The role holds the password encoded, so only the host's output can leak it.
fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn failure_output_never_shows_a_certificate_key_or_the_sudo_password() {
    let set = NodeSet::start(&[Flavour::Debian]);
    let k = Kprov::new();
    let roles = k.path("roles");
    std::fs::create_dir_all(&roles).unwrap();
    std::fs::write(roles.join("98-leaky.yaml"), LEAKY_ROLE).unwrap();
    std::fs::write(roles.join("99-leaky-password.yaml"), LEAKY_PASSWORD_ROLE.replace("PASSWORD_B64", &b64(SUDO_PASSWORD))).unwrap();
    let inv = inventory(&k, &set, "ops");
    let env = [("KPROV_TEST_SUDO", SUDO_PASSWORD)];
    let mut outputs = vec![];
    for extra in [vec!["-vv"], vec!["--output", "json"]] {
        let mut args = vec!["apply", inv.as_str(), "--tags", "prepare", "--roles", p(&roles)];
        args.extend(extra);
        let o = k.run_env(&args, &env);
        assert_eq!(code(&o), 1, "{}", text(&o));
        let key = set.exec(0, "cat /root/kprov-test-key");
        let key = String::from_utf8_lossy(&key.stdout).trim().to_string();
        assert_eq!(key.len(), 64, "the sensitive step ran: {key}\n{}", text(&o));
        let all = text(&o);
        assert!(!all.contains(&key), "the certificate key reached the output:\n{all}");
        assert!(all.contains("mark-control-plane: timed out waiting for the condition"), "the host's words stay: {all}");
        assert!(all.contains("<redacted>"), "{all}");
        assert!(all.contains("exit status 3"), "{all}");
        outputs.push(all);
    }
    for all in &outputs {
        assert_clean_output(all, SUDO_PASSWORD);
    }
}
