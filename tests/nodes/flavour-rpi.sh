# Flavour rpi: a real arm64 Debian bookworm userland (run under qemu-user emulation), with the
# files Raspberry Pi OS has laid down by this fixture (test doubles):
# /etc/rpi-issue, /boot/firmware/cmdline.txt, and a dphys-swapfile unit that manages swap.
printf 'Raspberry Pi reference 2025-10-01\nGenerated using pi-gen, https://github.com/RPi-Distro/pi-gen\n' > /etc/rpi-issue
mkdir -p /boot/firmware
printf 'console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes rootwait\n' > /boot/firmware/cmdline.txt
chmod 0755 /boot/firmware/cmdline.txt
printf 'CONF_SWAPSIZE=512\n' > /etc/dphys-swapfile
# Stand-in for dphys-swapfile: records that it ran (a container cannot swapon a file).
cat > /usr/sbin/dphys-swapfile <<'SH'
#!/bin/sh
echo "dphys-swapfile $*" >> /var/log/dphys-swapfile.log
SH
chmod 0755 /usr/sbin/dphys-swapfile
cat > /lib/systemd/system/dphys-swapfile.service <<'UNIT'
[Unit]
Description=Stand-in for Raspberry Pi OS's dphys-swapfile (test double)

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/sbin/dphys-swapfile setup
ExecStart=/usr/sbin/dphys-swapfile swapon
ExecStop=/usr/sbin/dphys-swapfile swapoff

[Install]
WantedBy=multi-user.target
UNIT
systemctl enable dphys-swapfile.service
