#!/bin/sh
# Runs inside the image build. Turns a debootstrap rootfs into a bootable systemd+sshd node.
set -eu

# Users: root (key login), ops (sudo with a password), deploy (sudo without one).
for u in ops deploy; do
  useradd --create-home --shell /bin/bash "$u"
done
echo 'ops:ops-login-pw-unused' | chpasswd
echo 'ops ALL=(ALL:ALL) ALL' > /etc/sudoers.d/ops
echo 'deploy ALL=(ALL:ALL) NOPASSWD: ALL' > /etc/sudoers.d/deploy
chmod 0440 /etc/sudoers.d/ops /etc/sudoers.d/deploy
# sudo asks ops for this password.
echo 'ops:ops-sudo-pw' | chpasswd
for home in /root /home/ops /home/deploy; do
  install -d -m 0700 "$home/.ssh"
  install -m 0600 /tmp/authorized_keys "$home/.ssh/authorized_keys"
done
chown -R ops:ops /home/ops/.ssh
chown -R deploy:deploy /home/deploy/.ssh

# Every container gets its own host keys at first boot, never baked into the image.
rm -f /etc/ssh/ssh_host_*
cat > /etc/systemd/system/ssh-hostkeys.service <<'UNIT'
[Unit]
Description=Generate SSH host keys on first boot
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
UNIT
systemctl enable ssh-hostkeys.service ssh.service

# Real hosts have overlay and br_netfilter built in or loadable; this kernel has them built in
# but ships no modules directory inside the container, so modprobe would fail. A boot unit
# lays down modules.builtin for the running kernel, as a real host's /lib/modules has it.
cat > /usr/local/sbin/kprov-test-modules <<'SCRIPT'
#!/bin/sh
d=/lib/modules/$(uname -r)
mkdir -p "$d"
printf 'kernel/fs/overlayfs/overlay.ko\nkernel/net/bridge/br_netfilter.ko\n' > "$d/modules.builtin"
: > "$d/modules.order"
depmod -a 2>/dev/null || true
SCRIPT
chmod 0755 /usr/local/sbin/kprov-test-modules
cat > /etc/systemd/system/kprov-test-modules.service <<'UNIT'
[Unit]
Description=Test node: list the kernel's built-in modules
DefaultDependencies=no
Before=sysinit.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/kprov-test-modules

[Install]
WantedBy=sysinit.target
UNIT
systemctl enable kprov-test-modules.service

# sshd: verbose logs (the benchmark counts connections and commands from them).
cat > /etc/ssh/sshd_config.d/kprov-test.conf <<'CONF'
LogLevel VERBOSE
MaxSessions 10
PasswordAuthentication no
PermitRootLogin prohibit-password
UseDNS no
CONF

# Nothing a container cannot do, nor anything that slows boot.
for u in getty@tty1.service console-getty.service serial-getty@.service getty.target \
         systemd-udevd.service systemd-udev-trigger.service systemd-modules-load.service \
         sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount \
         systemd-firstboot.service systemd-remount-fs.service apt-daily.timer apt-daily-upgrade.timer \
         e2scrub_all.timer fstrim.timer; do
  systemctl mask "$u" >/dev/null 2>&1 || true
done
: > /etc/machine-id
# A node without swap lines in fstab, like a fresh install; tests add swap state as needed.
printf '# /etc/fstab: static file system information.\n' > /etc/fstab
apt-get clean
rm -rf /var/lib/apt/lists/*
