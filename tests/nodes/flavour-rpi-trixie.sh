# Flavour rpi-trixie: a real arm64 Debian 13 "trixie" userland (run under qemu-user emulation),
# with what Raspberry Pi OS trixie lays down, as test doubles: /etc/rpi-issue,
# /boot/firmware/cmdline.txt, and a stand-in for the rpi-swap package, whose generator makes
# swap units at every boot from swap.conf(5).
printf 'Raspberry Pi reference 2025-11-24\nGenerated using pi-gen, https://github.com/RPi-Distro/pi-gen, trixie arm64\n' > /etc/rpi-issue
mkdir -p /boot/firmware
printf 'console=serial0,115200 console=tty1 root=PARTUUID=6c586e13-02 rootfstype=ext4 fsck.repair=yes rootwait cfg80211.ieee80211_regdom=GB\n' > /boot/firmware/cmdline.txt
chmod 0755 /boot/firmware/cmdline.txt

# rpi-swap's main configuration, as the package ships it: every key commented out at its
# default (swap.conf(5): [Main] Mechanism, [File] Path/RamMultiplier/MaxSizeMiB/
# MaxDiskPercent/FixedSizeMiB, [Zram] Writeback*). Default mechanism: auto = zram+file.
mkdir -p /etc/rpi/swap.conf.d /usr/lib/rpi/swap.conf.d
cat > /etc/rpi/swap.conf <<'CONF'
# Raspberry Pi swap configuration (test double of rpi-swap's file); see swap.conf(5).
# The defaults are shown commented out. Prefer drop-ins in /etc/rpi/swap.conf.d/.

[Main]
#Mechanism=auto

[File]
#Path=/var/swap
#RamMultiplier=1
#MaxSizeMiB=2048
#MaxDiskPercent=50
#FixedSizeMiB=

[Zram]
#WritebackTrigger=auto
#WritebackInitialDelay=180min
#WritebackPeriodicInterval=24h
CONF

# What a swap unit would run: a container cannot swapon, so the stand-in unit records its
# activation with the boot it happened in (PID 1's start time: a container restart is a boot).
# (The stand-in units keep systemd's default dependencies: started that early under qemu, a
# service fails to spawn.)
cat > /usr/local/sbin/kprov-test-swapon <<'SH'
#!/bin/sh
read -r _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ start _ < /proc/1/stat
echo "swapon $1 boot=$start" >> /var/log/kprov-test-swap.log
SH
chmod 0755 /usr/local/sbin/kprov-test-swapon

# Stand-in for rpi-swap-generator, at the package's path. The real one (rpi-swap 1.2.1, what
# trixie ships) reads its keys with rpi-systemd-config, i.e. libsystemd's own parser
# (config_parse_standard_file_with_dropins_full, relaxed): the first main file of /etc/rpi,
# /run/rpi, /usr/local/lib/rpi, /usr/lib/rpi (one that is /dev/null or empty counts, and is
# read as nothing); then every *.conf drop-in of the four swap.conf.d directories, sorted by
# file name (C order), a name in an earlier directory hiding the same name in a later one, one
# that is /dev/null or empty masking it. Lines: whitespace trimmed, # and ; comments, [Section]
# headers taken as written (not trimmed inside), key=value trimmed around both, the last
# value wins, an empty value resets to the default; a line without = is ignored, and so is a
# key outside any section. A malformed section header is an error in libsystemd's parser, and
# then rpi-systemd-config returns no value at all: the generator falls back to its defaults
# (auto). Values are not unquoted. A Mechanism outside swapfile|zram|zram+file|auto|none
# counts as auto, and auto is zram+file. Line continuations (a trailing backslash) are not
# joined here: such a file is treated as malformed, which is stricter than the real parser.
# It generates, per mechanism, what the real one activates: zram and zram+file a swap on
# /dev/zram0, swapfile one on File::Path, none nothing. Each generated unit is a service that
# records its activation.
mkdir -p /usr/lib/systemd/system-generators
cat > /usr/lib/systemd/system-generators/rpi-swap-generator <<'GEN'
#!/bin/sh
# rpi-swap-generator stand-in (kprov test double): see tests/nodes/flavour-rpi-trixie.sh.
set -u
out=${1:-/run/systemd/generator}
mechanism=
path=
malformed=
read_conf() {
  section=
  while IFS= read -r line || [ -n "$line" ]; do
    line=$(printf '%s' "$line" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//')
    case $line in
      '#'*|';'*|'') ;;
      *'\') malformed=$1 ;;
      '['*']') section=${line#[}; section=${section%]} ;;
      '['*) malformed=$1 ;;
      *=*)
        [ -n "$section" ] || continue
        key=$(printf '%s' "${line%%=*}" | sed 's/[[:space:]]*$//')
        value=$(printf '%s' "${line#*=}" | sed 's/^[[:space:]]*//')
        case "$section:$key" in
          Main:Mechanism) mechanism=$value ;;
          File:Path) path=$value ;;
        esac ;;
    esac
  done < "$1"
}
# Empty files and links to /dev/null are read as nothing.
readable() { [ -s "$1" ] && ! [ "$1" -ef /dev/null ]; }
for d in /etc/rpi /run/rpi /usr/local/lib/rpi /usr/lib/rpi; do
  if [ -e "$d/swap.conf" ]; then
    if readable "$d/swap.conf"; then read_conf "$d/swap.conf"; fi
    break
  fi
done
names=$(for d in /etc/rpi /run/rpi /usr/local/lib/rpi /usr/lib/rpi; do
  for f in "$d"/swap.conf.d/*.conf; do
    if [ -f "$f" ] || [ "$f" -ef /dev/null ]; then basename "$f"; fi
  done
done | LC_ALL=C sort -u)
for n in $names; do
  for d in /etc/rpi /run/rpi /usr/local/lib/rpi /usr/lib/rpi; do
    f="$d/swap.conf.d/$n"
    if [ -f "$f" ] || [ "$f" -ef /dev/null ]; then
      if readable "$f"; then read_conf "$f"; fi
      break
    fi
  done
done
if [ -n "$malformed" ]; then
  echo "rpi-swap-generator (stand-in): $malformed cannot be parsed; using the defaults" >&2
  mechanism= path=
fi
[ -n "$path" ] || path=/var/swap
case $mechanism in swapfile|zram|zram+file|none) ;; *) mechanism=auto ;; esac
if [ "$mechanism" = auto ]; then mechanism=zram+file; fi
unit() { # device
  name="kprov-test-swap-$(systemd-escape --path "$1").service"
  cat > "$out/$name" <<UNIT
# Automatically generated by rpi-swap-generator (kprov test double: stands in for a swap unit)
[Unit]
SourcePath=/etc/rpi/swap.conf
Description=Stand-in for the swap on $1

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/kprov-test-swapon $1
UNIT
  mkdir -p "$out/swap.target.wants"
  ln -sf "../$name" "$out/swap.target.wants/$name"
}
case $mechanism in
  zram|zram+file) unit /dev/zram0 ;;
  swapfile) unit "$path" ;;
  none) ;;
esac
GEN
chmod 0755 /usr/lib/systemd/system-generators/rpi-swap-generator

# Under qemu-user, systemd 257 cannot set up a unit's credentials: it forks with
# clone(CLONE_NEWNS) for that, which qemu refuses, and the unit fails with status 243
# (CREDENTIALS), journald and the gettys among them. No test node uses credentials, so every
# unit that asks for some gets a drop-in resetting the lists (an empty assignment resets each).
# tests/nodes/README.md, "Emulation".
for unit in $(grep -lE '^(ImportCredential|LoadCredential|LoadCredentialEncrypted|SetCredential|SetCredentialEncrypted)=' \
    /usr/lib/systemd/system/*.service 2>/dev/null); do
  d=/etc/systemd/system/$(basename "$unit").d
  mkdir -p "$d"
  printf '[Service]\nImportCredential=\nLoadCredential=\nLoadCredentialEncrypted=\nSetCredential=\nSetCredentialEncrypted=\n' > "$d/kprov-test-no-credentials.conf"
done
