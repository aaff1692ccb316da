"""The host-preparation work of kprov's swap, kernel, apt, containerd and kubernetes-packages
roles as a pyinfra deploy (operations: files, server, apt, systemd; facts decide what changes).
Environment from the driver: BENCH_REPO_URL (the local apt repository), BENCH_CODENAME."""
import os
from io import StringIO

from pyinfra import host
from pyinfra.facts.files import File
from pyinfra.facts.server import Command
from pyinfra.operations import apt, files, server, systemd

REPO = os.environ["BENCH_REPO_URL"]
CODENAME = os.environ.get("BENCH_CODENAME", "bookworm")
K8S_APT = f"{REPO}/core:/stable:/v1.34/deb/"
DOCKER_APT = f"{REPO}/linux/debian"
# pyinfra compares an exact version (no apt glob like kprov's and Ansible's "1.34.*").
K8S_VERSION = "1.34.2-1.1"

# --- swap
files.replace(
    name="swap entries commented out in fstab",
    path="/etc/fstab",
    text=r"^([[:space:]]*[^#[:space:]]+[[:space:]]+[^[:space:]]+[[:space:]]+swap[[:space:]].*)$",
    replace=r"# \1",
)
if host.get_fact(Command, command="swapon --show=NAME --noheadings"):
    server.shell(name="swap off", commands=["swapoff -a"])

# --- kernel modules and sysctl
files.put(
    name="modules-load file",
    src=StringIO("# Managed by the benchmark.\noverlay\nbr_netfilter\n"),
    dest="/etc/modules-load.d/k8s.conf",
    mode="644",
)
# server.modprobe reads /proc/modules, where built-in modules (overlay, br_netfilter in the
# test nodes' kernel) never appear, so it would run modprobe on every run: count a built-in
# module as loaded, as kprov's fact script and the Ansible play do.
LOADED = (
    "if cut -d' ' -f1 /proc/modules 2>/dev/null | grep -qx {m}; then echo yes; "
    "elif [ -d /sys/module/{m} ] && [ ! -e /sys/module/{m}/initstate ]; then echo yes; "
    "elif grep -q /{m}.ko /lib/modules/$(uname -r)/modules.builtin 2>/dev/null; then echo yes; else echo no; fi"
)
for m in ("overlay", "br_netfilter"):
    if host.get_fact(Command, command=LOADED.format(m=m)) != "yes":
        server.modprobe(name=f"module {m}", module=m)
sysctl_file = files.put(
    name="sysctl file",
    src=StringIO(
        "# Managed by the benchmark.\n"
        "net.bridge.bridge-nf-call-ip6tables = 1\n"
        "net.bridge.bridge-nf-call-iptables  = 1\n"
        "net.ipv4.ip_forward                 = 1\n"
    ),
    dest="/etc/sysctl.d/k8s.conf",
    mode="644",
)
server.shell(name="sysctl -p", commands=["sysctl -q -p /etc/sysctl.d/k8s.conf"], _if=sysctl_file.did_change)

# --- apt repositories
apt.packages(name="prerequisites", packages=["apt-transport-https", "ca-certificates", "curl", "gnupg"], update=True, cache_time=3600)
files.directory(name="keyrings directory", path="/etc/apt/keyrings", mode="755")
for ring, url in (("kubernetes-apt-keyring.gpg", f"{K8S_APT}Release.key"), ("docker.gpg", f"{DOCKER_APT}/gpg")):
    if not host.get_fact(File, path=f"/etc/apt/keyrings/{ring}"):
        server.shell(name=f"keyring {ring}", commands=[f"curl -fsSL {url} | gpg --batch --yes --dearmor -o /etc/apt/keyrings/{ring}"])
k8s_list = files.put(
    name="Kubernetes source list",
    src=StringIO(f"deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] {K8S_APT} /\n"),
    dest="/etc/apt/sources.list.d/kubernetes.list",
    mode="644",
)
docker_list = files.put(
    name="Docker source list",
    src=StringIO(f"deb [arch=amd64 signed-by=/etc/apt/keyrings/docker.gpg] {DOCKER_APT} {CODENAME} stable\n"),
    dest="/etc/apt/sources.list.d/docker.list",
    mode="644",
)
apt.update(name="apt update after new sources", _if=lambda: k8s_list.did_change() or docker_list.did_change())

# --- containerd
apt.packages(name="containerd.io", packages=["containerd.io"])
CONFIG_SAME = "containerd config default 2>/dev/null | sed 's/SystemdCgroup = false/SystemdCgroup = true/' | cmp -s - /etc/containerd/config.toml && echo same || echo differs"
if host.get_fact(Command, command=CONFIG_SAME) != "same":
    server.shell(
        name="containerd config with SystemdCgroup = true",
        commands=[
            "install -d -m 0755 /etc/containerd",
            "tmp=$(mktemp /etc/containerd/.bench.XXXXXX) && containerd config default | sed 's/SystemdCgroup = false/SystemdCgroup = true/' > $tmp && chmod 0644 $tmp && mv -f $tmp /etc/containerd/config.toml",
        ],
    )
    systemd.service(name="containerd restarted", service="containerd", running=True, restarted=True, enabled=True)
else:
    systemd.service(name="containerd running", service="containerd", running=True, enabled=True)

# --- kubelet, kubeadm, kubectl pinned and held
apt.packages(name="Kubernetes packages", packages=[f"kubelet={K8S_VERSION}", f"kubeadm={K8S_VERSION}", f"kubectl={K8S_VERSION}"])
held = host.get_fact(Command, command="apt-mark showhold") or ""
missing = [p for p in ("kubelet", "kubeadm", "kubectl") if p not in held.split()]
if missing:
    server.shell(name="held", commands=["apt-mark hold " + " ".join(missing)])
systemd.service(name="kubelet running and enabled", service="kubelet", running=True, enabled=True)
